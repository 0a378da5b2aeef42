/* The `specline report` section on the elevated model (report_transfer.c): the newest
 * elevated model against the experimental shots in the store. */
#ifndef SPECLINE_CLI_REPORT_TRANSFER_H
#define SPECLINE_CLI_REPORT_TRANSFER_H

#include "specline/config.h"
#include "specline/store.h"
#include "specline/util.h"

/* Appends the section "Elevated model against the shots" to h: the model's method and
 * metrics, which shots trained it (the ids the learn worker stored with it), and per
 * measured output the predicted mean ± 2σ against the measured value for every shot,
 * trained and other shots apart, with their NRMSE and coverage. st may be NULL (no store
 * yet); what is missing is said in the section. *plot_id is advanced past the plots'
 * ids. Reads only; errors are written into the section. */
void sl__report_transfer_html(sl_buf_t *h, const sl_config_t *cfg, sl_store_t *st, int *plot_id);

#endif
