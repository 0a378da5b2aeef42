/* Runs specline-sim-oscillator (optionally with --cubic K) on one input row and returns
 * what the simulate worker would have stored: a complete store.point with the history
 * and the final outputs. Shared by bench_transfer and make_shots; no broker involved. */
#ifndef SPECLINE_BENCH_OSCSIM_H
#define SPECLINE_BENCH_OSCSIM_H

#include <stdbool.h>

#include "specline/config.h"
#include "specline/proto.h"

/* The simulator binary: $SPECLINE_BIN_DIR/specline-sim-oscillator, else the build's bin/.
 * Returns a static string. */
const char *oscsim_path(void);

/* Runs the simulator for inputs `in` (cfg's inputs, config order) with max_steps of cfg
 * and the cubic term K (0 = the linear oscillator). Fills *pt (release it with
 * sl_store_point_release). False with a message on stderr when the run fails. */
bool oscsim_run(const sl_config_t *cfg, const double *in, double cubic, sl_store_point_t *pt);

/* The same with the damping ratio raised by dzeta (the input named zeta: an unmodelled
 * friction). Inputs marked `calibration: true` are stored in *pt but not sent to the
 * simulator (the caller passes their physics, e.g. K, as cubic). */
bool oscsim_run_ex(const sl_config_t *cfg, const double *in, double cubic, double dzeta, sl_store_point_t *pt);

#endif
