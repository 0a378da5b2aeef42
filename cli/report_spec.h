/* The "Speculation" section of `specline report` (report_spec.c): what the stops did —
 * runs complete / stopped / failed, steps used against the same runs complete (the
 * saving), audits and false stops with their Clopper–Pearson bound — and the +-2 sigma
 * coverage pooled, per output group on the held-out runs, and of the audited stops'
 * predicted tails. The counts come from run_summary.c (what `specline run` prints). */
#ifndef SPECLINE_CLI_REPORT_SPEC_H
#define SPECLINE_CLI_REPORT_SPEC_H

#include <stdbool.h>
#include <stddef.h>

#include "run_summary.h"
#include "specline/config.h"
#include "specline/dataset.h"
#include "specline/error.h"
#include "specline/store.h"
#include "specline/util.h"

typedef struct sl_report_spec {
  bool read;           /* the store was read (false: missing store, all counts 0) */
  sl_run_tally_t tally;
  double cov_pooled, cov_history, cov_finals; /* on the held-out runs; NaN without */
  size_t n_heldout;
} sl_report_spec_t;

/* Fills *s from st (borrowed; NULL = a store that does not exist yet) and the newest
 * model's predictions mean/std (val->n x val->p, NULL without a model) of the held-out
 * rows val. Release with sl_report_spec_release whatever the result. False with *err when
 * the store cannot be read. */
bool sl_report_spec_compute(sl_report_spec_t *s, const sl_config_t *cfg, sl_store_t *st, const sl_dataset_t *val,
                            const float *mean, const float *std, sl_error_t *err);
/* Appends the section's text lines (the stdout summary) to b. */
void sl_report_spec_text(const sl_report_spec_t *s, sl_buf_t *b);
/* Appends the section's HTML (a heading and a table) to h. */
void sl_report_spec_html(const sl_report_spec_t *s, sl_buf_t *h);
/* Frees what sl_report_spec_compute allocated. */
void sl_report_spec_release(sl_report_spec_t *s);

#endif
