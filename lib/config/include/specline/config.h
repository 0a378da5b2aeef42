/* config.yaml: the campaign definition (DESIGN.md §6), loaded with libyaml and validated
 * strictly. Every error names file:line:column and the field, e.g.
 *   examples/x/config.yaml:3:1: unknown key 'inptus' in top level (did you mean 'inputs'?)
 * YAML anchors/aliases, custom tags, several documents and files over 1 MiB are refused.
 * inputs/outputs may also be written as Synapse's map of id -> {name, ...}; Synapse's
 * database/mlflow/execution_mode/date_filter sections are accepted and ignored.
 */
#ifndef SPECLINE_CONFIG_H
#define SPECLINE_CONFIG_H

/* The most tasks (or points) one broker message may carry: simulator.bundle (the
 * codec's SL_PROTO_BUNDLE_MAX). */
#define SL_CONFIG_BUNDLE_MAX 1024

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "specline/error.h"
#include "specline/template.h"

/* Codes of domain SL_ERR_CONFIG. */
typedef enum sl_config_code {
  SL_CONFIG_E_IO = 1,      /* cannot open or read the file */
  SL_CONFIG_E_SYNTAX,      /* YAML syntax, more than one document */
  SL_CONFIG_E_UNKNOWN_KEY, /* key not in the schema */
  SL_CONFIG_E_MISSING,     /* required key absent */
  SL_CONFIG_E_TYPE,        /* wrong YAML type or unparsable number */
  SL_CONFIG_E_RANGE,       /* value out of its allowed range, empty/inverted value_range,
                              non-finite number (.inf, .nan), document over 1 MiB, nesting */
  SL_CONFIG_E_DUPLICATE,   /* duplicate variable name or duplicate key */
  SL_CONFIG_E_VALUE,       /* other invalid value (bad enum word, bad name characters,
                              yaml anchors/aliases/custom tags) */
} sl_config_code_t;

/* When a run directory is removed (simulator.keep). */
typedef enum sl_keep {
  SL_KEEP_NEVER = 0, /* `false` (default): removed once the run's point is confirmed */
  SL_KEEP_ALWAYS,    /* `true`: never removed */
  SL_KEEP_FAILED,    /* `failed`: kept for failed runs only */
} sl_keep_t;

/* One declared output file of simulator.outputs: read from the run directory after the
 * run and stored with the point under `name` (docs/simulator-protocol.md). */
typedef struct sl_sim_outfile {
  char *file;        /* relative to the run directory, no '..' component */
  char *name;        /* key in the point's `files` ([A-Za-z0-9_.-]+, at most 63 chars) */
  bool store_path;   /* `store: path`: the file's absolute path, else its content (text) */
  int64_t max_bytes; /* content: larger files fail the run; default 65536, at most 524288 */
  bool optional;     /* a missing file is left out instead of failing the run */
} sl_sim_outfile_t;

/* One input or output variable. */
typedef struct sl_var {
  char *name;         /* [A-Za-z_][A-Za-z0-9_]*, at most 63 chars */
  char *type;         /* "float" (the only type for now) */
  bool has_default;
  double default_value;
  bool has_range;     /* inputs: required; outputs: optional */
  double lo, hi;      /* value_range, lo < hi */
  bool calibration;   /* inputs: `calibration: true`, a parameter of the physics that an
                       * experiment does not know (shots may leave it out); the elevated
                       * model infers it from the shots (docs/transfer.md) */
} sl_var_t;

typedef struct sl_calibration {
  char *name;   /* output (or input) name; Synapse's alpha_guess/beta_guess are read too */
  double alpha; /* experimental = simulation / alpha + beta */
  double beta;
} sl_calibration_t;

typedef struct sl_config {
  char *path;         /* the file it came from */
  char *experiment;   /* campaign name: [A-Za-z0-9_-]+, at most 64 chars */

  sl_var_t *inputs;
  size_t n_inputs;    /* >= 1 */
  sl_var_t *outputs;
  size_t n_outputs;   /* >= 0 */

  struct {
    bool present;
    char *name;       /* name of the history variable in the simulator's "values" */
    int checkpoints;  /* K checkpoints the surrogate predicts, default 32 */
  } history;

  struct {
    char **argv;      /* NULL-terminated; argv[0] a program name or path (see `dir` below) */
    size_t argc;
    int64_t max_steps;    /* default 1000 */
    double wall_s;        /* per-run wall limit, default 3600 */
    double step_delay;    /* passed as --step-delay when > 0 (tests), default 0 */
    double term_grace_s;  /* SIGTERM → SIGKILL grace, default 2 */
    bool persistent;      /* one process serves many runs (docs/simulator-protocol.md), default false */
    int64_t max_runs_per_process; /* persistent: restart a process after this many runs, default 1000 */
    int64_t bundle;       /* tasks per <c>.sim message and points per <c>.store message at most,
                             1..SL_CONFIG_BUNDLE_MAX, default 1 (one per message) */
    char *workdir;        /* the runs directory: each run gets <workdir>/<sample_id> (a `.N`
                             suffix when that exists), default run/runs; relative paths are
                             resolved against `dir`; never '/', a '..' component, the config's
                             directory or one of its ancestors; NULL for `workdir: none` (no
                             run directories: the simulator starts where the worker runs) */
    sl_keep_t keep;       /* when a run directory is removed, default SL_KEEP_NEVER */
    char **templates;     /* files or directories copied into each run directory (a `.tmpl`
                             file rendered, see specline/template.h); absolute once loaded
                             from a file */
    size_t n_templates;
    sl_sim_outfile_t *outfiles; /* `simulator.outputs` */
    size_t n_outfiles;
  } simulator;

  struct {
    char *initial;        /* "sobol" (default) | "lhs" | "grid" */
    int initial_n;        /* default 16 */
    char *acquisition;    /* "max_std" (default) | "ucb" | "none" */
    char *objective;      /* output to maximise for ucb, or NULL */
    double ucb_kappa;     /* default 2 */
    double oversubscribe; /* default 2 */
    int batch;            /* acquisition batch size, default = slots */
    uint64_t seed;        /* default 1 */
    double diversity;     /* diversity penalty length scale in normalised units, default 0.1 */
    struct {
      bool enabled;         /* default false */
      double min_fraction;  /* default 0.2 */
      double confidence;    /* predicted std of the rest (normalised) below which to stop, default 0.02 */
      double surprise_p;    /* chi-square tail probability for the surprise test, default 0.01 */
      double audit_fraction;/* fraction of stops re-run to completion, default 0.1 */
      char *rule;           /* "members" (default), "conditioned" or "plateau" (docs/speculative.md) */
      double max_fraction;  /* conditioned/plateau: no stop past this fraction of a run, default 0.875 */
      int plateau_pool;     /* plateau: prefixes either side pooled in persistence's calibration, 0..4, default 2 */
    } speculative;
  } policy;

  struct {
    int64_t max_sims;     /* 0 = unlimited (but some budget must be set) */
    int64_t max_steps;
    double target_nrmse;  /* 0 = none */
    double wall_s;        /* campaign running time (downtime not counted) */
    double max_failed;    /* failed runs that end the campaign: >= 1 a count, < 1 a fraction
                             of stored runs (after 5 failures); 0 never; default 0.5 */
  } budget;

  struct {
    int ensemble;         /* default 5 */
    int hidden;           /* default 64 */
    int layers;           /* hidden layers, default 2 */
    int epochs;           /* default 200 */
    int batch;            /* default 64 */
    double lr;            /* default 1e-3 */
    int retrain_every;    /* new stored points between retrains, default 8 */
    double validation_fraction; /* of full runs held out, default 0.2 */
    char *loss;           /* "nll" (default) | "mse" */
  } learn;

  struct {
    int simulate_workers; /* `specline run` local workers, default 1 */
    int slots;            /* slots per simulate worker, default 2 */
  } workers;

  char *store;            /* "sqlite:PATH" (default sqlite:run/<experiment>.db) or mongodb://...;
                             a relative PATH is resolved against `dir` */
  char *broker;           /* amqp(s):// URL without credentials, or several (a cluster's nodes)
                             joined by commas (from a YAML list or a string); NULL = local */
  char *credentials_file; /* optional file with user:password for the broker (resolved against
                             `dir` when relative) */

  sl_calibration_t *calibration;
  size_t n_calibration;

  /* Paths a config names are relative to the config file (docs/config.md): at load,
   * `store` (sqlite:PATH), `credentials_file` and the simulator command (argv[0] when it
   * holds a '/', a later argument when a file of that name is beside the config) are
   * made absolute against `dir`; `written` keeps the text as the file has it.
   * sl_config_load_string resolves nothing (dir NULL: relative to the current directory). */
  char *dir;              /* absolute directory of the config file, or NULL */
  struct {
    char *store;
    char *credentials_file;
    char **simulator_argv; /* NULL-terminated, simulator.argc entries */
    char *workdir;         /* NULL when the default */
  } written;
} sl_config_t;

/* Loads and validates PATH. Returns a new config or NULL with *err set (domain
 * SL_ERR_CONFIG, message "PATH:LINE:COL: ..." naming the field). */
sl_config_t *sl_config_load(const char *path, sl_error_t *err);

/* Same, from a string; `name` is used in error messages in place of a path. */
sl_config_t *sl_config_load_string(const char *yaml, size_t len, const char *name, sl_error_t *err);

void sl_config_destroy(sl_config_t *cfg);

/* The effective config (defaults filled in) as indented JSON text, for `specline config
 * check --print`. Returns a malloc'd string the caller frees, or NULL when cfg is NULL. */
char *sl_config_dump(const sl_config_t *cfg);

/* Copies cfg's simulator.templates into the directory `dest` (a `.tmpl` file rendered
 * through `lookup`, written without its suffix; a directory's contents copied, recursively;
 * modes kept). With dest NULL nothing is written: every template is read and its
 * placeholders checked (config load does this with the names a run will know). Returns
 * false with err set (SL_ERR_TEMPLATE for a placeholder, SL_ERR_SYS for I/O, naming the
 * file). Thread-safety: reentrant. */
bool sl_config_templates_apply(const sl_config_t *cfg, const char *dest, sl_template_lookup_fn lookup, void *ud,
                               sl_error_t *err);

/* Index of a named input / output, or -1. */
int sl_config_input_index(const sl_config_t *cfg, const char *name);
int sl_config_output_index(const sl_config_t *cfg, const char *name);

/* The broker URL (or comma-separated URL list) to use: SPECLINE_AMQP_URL if set, else
 * cfg->broker, else NULL (local). */
const char *sl_config_broker_url(const sl_config_t *cfg);

#endif
