/* Shared helpers of the store tests and of the tests of the commands that read a store
 * (`specline results`, `specline report`): a hand-built campaign config (independent of
 * the YAML loader), temporary directories, point builders, a field-by-field comparison of
 * two points, a store filled with given points, and the built `specline` run on a config
 * written in a temp dir. */
#ifndef SPECLINE_TEST_STORE_FIXTURE_H
#define SPECLINE_TEST_STORE_FIXTURE_H

#include <stdarg.h>
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

/* A speculatively stopped run as simulate stores it: the observed prefix of x in history,
 * no outputs, the prediction the stop relied on (tail checkpoints 3 and 4 of x, the
 * finals, z2) in predicted (docs/store.md, "A stopped run"). */
void fx_point_stopped(sl_store_point_t *p, const char *id);

/* Compares every field; prints the differences and returns their number. History is
 * compared only when with_history. */
int fx_point_diff(const sl_store_point_t *a, const sl_store_point_t *b, bool with_history);

/* Opens the store at uri for cfg, puts the n points, then releases them (always) and closes
 * the store. Returns false, printing why, when the store cannot be opened or written. */
bool fx_store_fill(const char *uri, const sl_config_t *cfg, sl_store_point_t *p, size_t n);

/* A command-line test: a fresh temp dir, the built `specline` ($SPECLINE_BIN_DIR/specline)
 * and a config file written in the dir. */
typedef struct fx_cli {
  char *dir;           /* fresh temp dir (removed by fx_cli_release) */
  char *bin;           /* the specline binary */
  char *config;        /* dir/NAME once fx_cli_config has written it, else NULL */
  const char *command; /* the subcommand fx_cli_run runs ("results"), borrowed */
} fx_cli_t;

/* Makes the temp dir for tests of `specline COMMAND` (a static string; NULL when the test
 * writes its own command lines); false (nothing to release) when SPECLINE_BIN_DIR is not
 * set. */
bool fx_cli_init(fx_cli_t *c, const char *command);
/* Writes c->dir/name from the printf format fmt and its arguments and sets c->config;
 * false when the file cannot be written. */
bool fx_cli_config(fx_cli_t *c, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Runs `specline COMMAND ARGS 2>/dev/null` (c->command), ARGS from the printf format
 * args_fmt; returns its exit status (-1: could not run) and its stdout in *out (malloc'd,
 * "" at least). */
int fx_cli_vrun(const fx_cli_t *c, char **out, const char *args_fmt, va_list ap);
int fx_cli_run(const fx_cli_t *c, char **out, const char *args_fmt, ...) __attribute__((format(printf, 3, 4)));
/* The same, for the exit status alone (stdout discarded). */
int fx_cli_status(const fx_cli_t *c, const char *args_fmt, ...) __attribute__((format(printf, 2, 3)));
/* In a test function: skips the test when SPECLINE_BIN_DIR is not set (run outside ctest),
 * else requires setup_call (true) to go on. Needs sltest.h. */
#define FX_CLI_SETUP(setup_call)                                                         \
  do {                                                                                   \
    if (!getenv("SPECLINE_BIN_DIR"))                                                     \
      SL_SKIP("SPECLINE_BIN_DIR not set (run through ctest)");                           \
    SL_REQUIRE(setup_call);                                                              \
  } while (0)

/* Frees c and removes its dir (kept, and named on stderr, when SPECLINE_TEST_KEEP is set). */
void fx_cli_release(fx_cli_t *c);

#endif
