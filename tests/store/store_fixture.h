/* Shared helpers of the store tests: a hand-built campaign config (independent of the
 * YAML loader), temporary directories, point builders and a field-by-field comparison
 * of two points. */
#ifndef SPECLINE_TEST_STORE_FIXTURE_H
#define SPECLINE_TEST_STORE_FIXTURE_H

#include <stdbool.h>

#include "specline/config.h"
#include "specline/proto.h"

/* A config with the given experiment, NULL-terminated input and output name lists, and
 * store uri (may be NULL). Free with fx_config_free. */
sl_config_t *fx_config(const char *experiment, const char *const *inputs, const char *const *outputs,
                       const char *store);
void fx_config_free(sl_config_t *cfg);

/* The campaign used by most tests: "osc", inputs zeta and omega, outputs amplitude and
 * energy, history x. */
sl_config_t *fx_osc_config(const char *store);

/* A fresh directory under $TMPDIR (or /tmp), malloc'd; fx_rmrf removes it and frees. */
char *fx_tmpdir(void);
void fx_rmrf(char *dir);

/* A point of campaign `campaign` with inputs zeta/omega, outputs amplitude/energy (none
 * for failed), status, steps and worker set; caller releases with sl_store_point_release. */
void fx_point(sl_store_point_t *p, const char *campaign, const char *id, sl_point_status_t st, double zeta,
              double amplitude);
/* The same point with every optional field set (history, predicted, extra, date, origin,
 * error, experimental flag). */
void fx_point_full(sl_store_point_t *p, const char *campaign, const char *id);

/* Compares every field; prints the differences and returns their number. History is
 * compared only when with_history. */
int fx_point_diff(const sl_store_point_t *a, const sl_store_point_t *b, bool with_history);

#endif
