/* specline-sim-environ: the environmental model of Bliznyuk et al. (2008), a pollutant
 * spilled twice into a long narrow channel, as listed in the Virtual Library of Simulation
 * Experiments ("environmental model function"). A mass M is spilled at location 0 at time 0
 * and again at location L at time tau; with diffusion rate D the concentration is
 *   C(s, t) = M / sqrt(4 pi D t) exp(-s^2 / (4 D t))
 *           + 1{t > tau} M / sqrt(4 pi D (t - tau)) exp(-(s - L)^2 / (4 D (t - tau))).
 * It is observed at one fixed location s (default 1.5, the middle of the library's grid
 * s = 0.5..2.5 and inside L's range, so the second spill can arrive from either side and
 * the first one is seen within a few time units for every D) at t = 0.2 i; step 300 is
 * t = 60. The second spill begins after tau ~ 30, so the first half of every history is
 * blind to L and tau: the adversarial case for speculative early stopping. Closed form, no
 * integration; implemented from the formula above. It knows only the simulator protocol
 * (docs/simulator-protocol.md), whose plumbing it shares with the other simulators through
 * sims/common/simio.c, and never links libspecline. */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <stdio.h>

#include "simio.h"

#define SIM_NAME "specline-sim-environ"
#define SIM_STEPS_DEFAULT 300L /* t up to 60 */
#define OUT_DT 0.2             /* time between output steps */
#define LOCATION_DEFAULT 1.5   /* observation point s */
#define SIM_PI 3.14159265358979323846

enum { IN_M, IN_D, IN_L, IN_TAU, N_INPUTS };

static const struct simio_input INPUTS[N_INPUTS] = {
  {"M", 7.0, 13.0, "mass of pollutant spilled at each location"},
  {"D", 0.02, 0.12, "diffusion rate in the channel (> 0)"},
  {"L", 0.01, 3.0, "location of the second spill"},
  {"tau", 30.01, 30.295, "time of the second spill (>= 0)"},
};

static void usage(FILE *f)
{
  fprintf(f,
          "usage: " SIM_NAME " [--location S] [--step-delay SECONDS] [--help]\n"
          "\n"
          "Environmental model (Bliznyuk et al. 2008, two pollutant spills), speaking the\n"
          "specline simulator protocol: reads one JSON line {\"inputs\": {...},\n"
          "\"max_steps\": N, \"sample_id\": \"...\"} on stdin, writes {\"step\": i, \"t\": t,\n"
          "\"values\": {\"c\": C(s, t)}, \"running\": {...}} for i = 1..N (running: the\n"
          "finals as they stand at step i) and then\n"
          "{\"final\": {\"c_final\": C(s, t_N), \"c_max\": max over the output steps}}.\n"
          "\n"
          "  C(s,t) = M / sqrt(4 pi D t) exp(-s^2 / (4 D t))\n"
          "         + 1{t > tau} M / sqrt(4 pi D (t - tau)) exp(-(s - L)^2 / (4 D (t - tau)))\n"
          "  t = %g i (closed form), max_steps default %ld (t = 60), s default %g\n"
          "\n",
          OUT_DT, SIM_STEPS_DEFAULT, LOCATION_DEFAULT);
  simio_usage_inputs(f, INPUTS, N_INPUTS, 4);
  fprintf(f, "  --location S    observe at s = S instead of %g\n" SIMIO_USAGE_STEP_DELAY SIMIO_USAGE_TAIL,
          LOCATION_DEFAULT);
}

/* Concentration at location s and time t > 0 (the formula in the file header). */
static double concentration(const double *in, double s, double t)
{
  const double M = in[IN_M], D = in[IN_D], L = in[IN_L], tau = in[IN_TAU];
  double c = M / sqrt(4 * SIM_PI * D * t) * exp(-s * s / (4 * D * t));
  if (t > tau)
    c += M / sqrt(4 * SIM_PI * D * (t - tau)) * exp(-(s - L) * (s - L) / (4 * D * (t - tau)));
  return c;
}

static void on_location(const char *opt, const char *val, void *s)
{
  *(double *)s = simio_parse_number(opt, val);
}

int main(int argc, char **argv)
{
  double step_delay = 0, s = LOCATION_DEFAULT, in[N_INPUTS], c = 0, c_max = -INFINITY;
  long n;

  simio_init(SIM_NAME);
  simio_parse_args(argc, argv, usage, &step_delay, "--location", on_location, &s);
  /* one run per input line until stdin ends (persistent mode keeps it open) */
  while (simio_next_run(INPUTS, N_INPUTS, SIM_STEPS_DEFAULT, in, &n)) {
    if (!(in[IN_D] > 0))
      simio_fail(2, "input 'D' must be > 0");
    if (!(in[IN_TAU] >= 0))
      simio_fail(2, "input 'tau' must be >= 0");
    c = 0;
    c_max = -INFINITY;
    for (long i = 1; i <= n; i++) {
      double t = (double)i * OUT_DT;
      c = concentration(in, s, t);
      if (!isfinite(c))
        simio_fail(1, "concentration is not finite at step %ld", i);
      if (c > c_max)
        c_max = c;
      if (!simio_step(step_delay,
                      "{\"step\": %ld, \"t\": %.10g, \"values\": {\"c\": %.17g}, "
                      "\"running\": {\"c_final\": %.17g, \"c_max\": %.17g}}",
                      i, t, c, c, c_max))
        break; /* terminated */
    }
    simio_final("{\"final\": {\"c_final\": %.17g, \"c_max\": %.17g}}", c, c_max);
  }
  return 0;
}
