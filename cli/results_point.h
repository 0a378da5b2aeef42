/* What one stored point shows in `specline results`: the reason it ended as it did (the
 * stop rule and its statistic, an operator's terminate, the failure text), the prediction
 * a speculative stop relied on regrouped from the store's flat names ("y.12", "y.12.std",
 * "z2") into one tail per history variable plus scalars, and the whole point as a JSON
 * object (inputs, outputs, status, history observed and predicted, ...). Pure functions of
 * a config and a point; the CLI prints what they return. */
#ifndef SPECLINE_CLI_RESULTS_POINT_H
#define SPECLINE_CLI_RESULTS_POINT_H

#include <jansson.h>
#include <stdbool.h>

#include "specline/config.h"
#include "specline/proto.h"

/* Why the point ended as it did, one line: "" for a complete run; for a terminated one
 * "speculative stop after checkpoint 8/32: tracked the model (z2 1.23)", "operator
 * terminate" or "operator terminate: TEXT"; for a failed one the stored failure text
 * (line breaks kept). Returns a malloc'd string the caller frees. */
char *sl_results_reason(const sl_config_t *cfg, const sl_store_point_t *p);

/* The point's predicted values as a JSON object, or NULL (new reference) when it has
 * none: {"<history>": {"checkpoint": [k...], "step": [s...], "mean": [...], "std": [...]},
 * "<other name>": value, ...}. Steps are the simulator steps of the checkpoints
 * (sl_checkpoint_step with the config's checkpoints and max_steps). */
json_t *sl_results_predicted_json(const sl_config_t *cfg, const sl_store_point_t *p);

/* A short human summary of the same: "log_env[8..31] z2=1.23"; "" when none. Malloc'd. */
char *sl_results_predicted_text(const sl_config_t *cfg, const sl_store_point_t *p);

/* The whole point as a JSON object (new reference): sample_id, inputs {}, outputs {},
 * status, steps, experimental_flag, reason, wall_s, produced_at, and when stored worker,
 * origin, error, date, extra {}, history {"<name>": {"observed": [...], "predicted":
 * {"checkpoint", "step", "mean", "std"}}} (predicted only on a stopped run that carried
 * a prediction), predicted {other scalars such as z2}. Inputs and outputs follow the
 * config's order; an absent value is null. */
json_t *sl_results_point_json(const sl_config_t *cfg, const sl_store_point_t *p);

#endif
