/* The simulator line protocol (docs/simulator-protocol.md) seen from the line's side:
 * parsing one line a simulator wrote on stdout, and building the one input line it reads.
 * Every line is bounded and validated; a bad line is an error naming the line number and
 * what is wrong, never a crash. */
#ifndef SPECLINE_SIMLINE_H
#define SPECLINE_SIMLINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "specline/error.h"
#include "specline/proto.h"

#define SL_SIMLINE_MAX (1u << 20) /* longest accepted output line, bytes */

/* Persistent simulators (simulator.persistent): the control line written on stdin to end
 * the running run early. A simulator may honour it by writing its final line at once;
 * read between runs (the run ended first) it is ignored. */
#define SL_SIMLINE_TERMINATE "{\"terminate\": true}\n"

/* Codes of domain SL_ERR_SIM. */
typedef enum sl_sim_code {
  SL_SIM_E_LINE = 1, /* a line breaks the protocol (docs/simulator-protocol.md) */
  SL_SIM_E_START,    /* the simulator cannot be started or given its input line */
  SL_SIM_E_EXIT,     /* the simulator failed: non-zero exit, no final line or too few steps */
} sl_sim_code_t;

typedef enum sl_simline_kind { SL_SIMLINE_STEP = 1, SL_SIMLINE_FINAL } sl_simline_kind_t;

/* One parsed line: a step {"step": i, "t": time, "values": {...}} (optionally with
 * "running": {...}, the final outputs as they stand after this step) or a final
 * {"final": {...}}. `values` holds the step's values or the final outputs. */
typedef struct sl_simline {
  sl_simline_kind_t kind;
  int64_t step; /* steps: >= 0; 0 when the simulator omits it */
  double t;     /* steps: simulated time; NAN when omitted */
  sl_values_t values;
  sl_values_t running; /* steps: the running finals (observed so far); empty when absent */
} sl_simline_t;

/* Parses one line (without its newline). lineno is used in error messages only. On
 * failure *err has domain SL_ERR_SIM, code SL_SIM_E_LINE, and says "line N: ...". On success the caller
 * releases *out with sl_simline_release. */
bool sl_simline_parse(const char *line, size_t len, int64_t lineno, sl_simline_t *out, sl_error_t *err);
void sl_simline_release(sl_simline_t *l);

/* The input line for a task: {"inputs": {...}, "max_steps": N, "sample_id": "..."} plus a
 * trailing newline. Returns a malloc'd string. */
char *sl_simline_input(const sl_values_t *inputs, int64_t max_steps, const char *sample_id);

/* Checkpoints: the surrogate predicts a history at K checkpoints of a run of max_steps
 * steps. Checkpoint k (0-based) is step ceil((k + 1) · max_steps / K) (1-based), so the
 * last checkpoint is the last step. Simulate publishes progress at these steps, explore
 * compares them with the prediction and learn trains on them: one definition for all. */
int64_t sl_checkpoint_step(int64_t k, int64_t checkpoints, int64_t max_steps);

/* The checkpoint whose step is `step`, or -1 when `step` is not a checkpoint. */
int64_t sl_checkpoint_of_step(int64_t step, int64_t checkpoints, int64_t max_steps);

#endif
