/* specline-sim-oscillator: the driven, damped harmonic oscillator, the reference campaign's
 * simulator. It solves x'' + 2 zeta omega0 x' + omega0^2 x + K x^3 = F cos(omega t),
 * x(0) = x0, x'(0) = 0, where K = 0 unless --cubic K adds a cubic spring term (the "altered
 * physics" that examples/oscillator-experiment uses to stand in for reality), with classical RK4 at a fixed internal step of 0.005 (20 substeps per output
 * step of 0.1), writes x at every output step and, at the end, the steady-state amplitude
 * and max |x|. Once the transient (decaying like exp(-zeta omega0 t)) has died out, the
 * amplitude tends to the analytic F / sqrt((omega0^2 - omega^2)^2 + (2 zeta omega0 omega)^2);
 * the estimate is half the peak-to-peak of x over the last forcing period of the run (at
 * most the last half of the run), taken on the internal substeps. Every step line also
 * carries both finals as they stand at that step ("running", the run taken to end there;
 * at the last step they equal the final line), so a run stopped early keeps its finals so far.
 *
 * Besides x, every output step carries "env", a smooth estimate of the envelope (amplitude)
 * of x: env = sqrt(2 * Hann-weighted mean of x^2 over the trailing window of ENV_PERIODS (2)
 * periods of the slower of the two oscillations, the forcing (omega) and the free, damped
 * one (omega0 sqrt(1 - zeta^2))), taken on the internal substeps (the window rounded up to
 * whole substeps; while t is shorter than the window the Hann weights are stretched over
 * [0, t], x0 included; a window longer than the run is the whole run). For
 * x = A cos(omega t - phi) it is A up to the Hann window's leakage (exactly A when the window
 * holds a whole number of periods of x^2, a few 0.1% otherwise), so env shows the transient
 * and then settles on the steady-state amplitude. The window spans the slower period because
 * the transient oscillates at the free frequency: a window of one forcing period (the first
 * definition) left the free oscillation in env whenever omega0 < omega (env wiggled with
 * the phase of x, jagged from checkpoint to checkpoint), and the Hann weights damp the beat
 * and double-frequency terms that a flat window leaves. Unlike x itself,
 * whose phase omega t runs to tens of radians over a run, it is a slowly varying, smooth
 * function of t and of the inputs (a moving average, no maximum), so a history of env at a
 * few dozen checkpoints is learnable from the inputs and predictable from its prefix.
 * "log_env" is its natural log (floored at 1e-300 before the log): the same curve with the
 * resonance ridge tamed (env spans about 0.04 to 7 over the recommended ranges), the
 * reference campaign's history (examples/oscillator). It is a user program that
 * knows only the simulator protocol (docs/simulator-protocol.md), whose plumbing it shares
 * with the other simulators through sims/common/simio.c, and never links libspecline:
 * one JSON line on stdin, JSON lines on stdout, exit 0 on success, 2 on bad input. */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "simio.h"

#define SIM_NAME "specline-sim-oscillator"
#define SIM_STEPS_DEFAULT 400L /* t up to 40 */
#define OUT_DT 0.1             /* simulated time between output steps */
#define SUBSTEPS 20            /* RK4 steps per output step */
#define SIM_PI 3.14159265358979323846
#define ENV_PERIODS 2 /* env's window: periods of the slower oscillation */

enum { IN_ZETA, IN_OMEGA0, IN_F, IN_OMEGA, IN_X0, N_INPUTS };

static const struct simio_input INPUTS[N_INPUTS] = {
  {"zeta", 0.05, 0.5, "damping ratio (>= 0)"},
  {"omega0", 0.5, 2.0, "natural angular frequency (> 0)"},
  {"F", 0.1, 1.0, "forcing amplitude"},
  {"omega", 0.5, 2.0, "forcing angular frequency (> 0)"},
  {"x0", -1.0, 1.0, "initial displacement (initial velocity is 0)"},
};

static void usage(FILE *f)
{
  fprintf(f,
          "usage: " SIM_NAME " [--step-delay SECONDS] [--cubic K] [--help]\n"
          "\n"
          "Driven damped harmonic oscillator, speaking the specline simulator protocol:\n"
          "reads one JSON line {\"inputs\": {...}, \"max_steps\": N, \"sample_id\": \"...\"}\n"
          "on stdin, writes {\"step\": i, \"t\": t, \"values\": {\"x\": x, \"env\": e,\n"
          "\"log_env\": l}, \"running\": {\"amplitude\": a, \"max_abs_x\": m}} for i = 1..N and\n"
          "then {\"final\": {\"amplitude\": A, \"max_abs_x\": M}}; running holds the finals as\n"
          "they stand at step i (the run taken to end there).\n"
          "\n"
          "  x'' + 2 zeta omega0 x' + omega0^2 x + K x^3 = F cos(omega t),  x(0) = x0, x'(0) = 0\n"
          "  RK4, internal step %g, output step %g (t = %g i), max_steps default %ld\n"
          "  amplitude: half the peak-to-peak of x over the last forcing period 2 pi/omega\n"
          "             of the run (at most its last half); tends to the steady state\n"
          "             F / sqrt((omega0^2 - omega^2)^2 + (2 zeta omega0 omega)^2) when K = 0\n"
          "  max_abs_x: max |x| over the whole run, x0 included\n"
          "  env:       per step, a smooth envelope of x: sqrt(2 mean x^2), the mean Hann-\n"
          "             weighted over the trailing 2 periods of the slower of the forcing\n"
          "             (omega) and the free oscillation (omega0 sqrt(1 - zeta^2)) on the\n"
          "             internal substeps ([0, t], x0 included, while t is shorter); about A\n"
          "             for x = A cos(omega t - phi): the transient, then the steady amplitude\n"
          "  log_env:   per step, ln(env) (env floored at 1e-300)\n"
          "\n",
          OUT_DT / SUBSTEPS, OUT_DT, OUT_DT, SIM_STEPS_DEFAULT);
  simio_usage_inputs(f, INPUTS, N_INPUTS, 8);
  fprintf(f, SIMIO_USAGE_STEP_DELAY
             "  --cubic K       add the cubic spring term K x^3 (K in [-100, 100], default 0)\n"
             SIMIO_USAGE_TAIL);
}

/* Parses the value s of option opt as K of --cubic, a number in [-100, 100], into *k;
 * fails with status 2 otherwise. */
static void on_cubic(const char *opt, const char *s, void *k)
{
  char *end;
  double v;
  if (!s)
    simio_fail(2, "option '%s' needs a value", opt);
  errno = 0;
  v = strtod(s, &end);
  if (errno || end == s || *end || !(v >= -100 && v <= 100))
    simio_fail(2, "option '%s': '%s' is not a number in [-100, 100]", opt, s);
  *(double *)k = v;
}

typedef struct osc {
  double zeta, omega0, F, omega;
  double cubic; /* K of the cubic spring term, 0 for the linear oscillator */
} osc_t;

static void deriv(const osc_t *o, double t, double x, double v, double *dx, double *dv)
{
  *dx = v;
  *dv = o->F * cos(o->omega * t) - 2 * o->zeta * o->omega0 * v - o->omega0 * o->omega0 * x;
  if (o->cubic != 0)
    *dv -= o->cubic * x * x * x;
}

/* Hann weights of a window of m points (the end points get 0 unless m < 3, then all 1). */
static void hann_weights(double *w, size_t m)
{
  for (size_t j = 0; j < m; j++)
    w[j] = m < 3 ? 1.0 : 0.5 * (1 - cos(2 * SIM_PI * (double)j / (double)(m - 1)));
}

static void rk4(const osc_t *o, double t, double h, double *x, double *v)
{
  double k1x, k1v, k2x, k2v, k3x, k3v, k4x, k4v;
  deriv(o, t, *x, *v, &k1x, &k1v);
  deriv(o, t + h / 2, *x + h / 2 * k1x, *v + h / 2 * k1v, &k2x, &k2v);
  deriv(o, t + h / 2, *x + h / 2 * k2x, *v + h / 2 * k2v, &k3x, &k3v);
  deriv(o, t + h, *x + h * k3x, *v + h * k3v, &k4x, &k4v);
  *x += h / 6 * (k1x + 2 * k2x + 2 * k3x + k4x);
  *v += h / 6 * (k1v + 2 * k2v + 2 * k3v + k4v);
}

/* The amplitude as it stands at time t_now: half the peak-to-peak of x over the last
 * forcing period (at most the last half of [0, t_now]), the final amplitude's definition
 * with the run ending at t_now, so at the last step it equals the final amplitude. The
 * ring holds the newest n of len substeps (x, t), the next slot to write at pos. */
static double running_amplitude(const double *xs, const double *ts, size_t len, size_t pos, size_t n,
                                double t_now, double window)
{
  double lo = INFINITY, hi = -INFINITY;

  if (window > t_now / 2)
    window = t_now / 2;
  const double t_from = t_now - window;
  for (size_t j = 0; j < n; j++) {
    size_t at = (pos + len - 1 - j) % len;
    if (ts[at] < t_from - 1e-9)
      break;
    lo = xs[at] < lo ? xs[at] : lo;
    hi = xs[at] > hi ? xs[at] : hi;
  }
  return hi >= lo ? (hi - lo) / 2 : 0;
}

int main(int argc, char **argv)
{
  double step_delay = 0, cubic = 0, in[N_INPUTS];
  osc_t o;
  long n;

  simio_init(SIM_NAME);
  simio_parse_args(argc, argv, usage, &step_delay, "--cubic", on_cubic, &cubic);
  /* one run per input line until stdin ends (persistent mode keeps it open) */
  while (simio_next_run(INPUTS, N_INPUTS, SIM_STEPS_DEFAULT, in, &n)) {
    o.zeta = in[IN_ZETA];
    o.omega0 = in[IN_OMEGA0];
    o.F = in[IN_F];
    o.omega = in[IN_OMEGA];
    o.cubic = cubic;
    if (!(o.zeta >= 0))
      simio_fail(2, "input 'zeta' must be >= 0");
    if (!(o.omega0 > 0))
      simio_fail(2, "input 'omega0' must be > 0");
    if (!(o.omega > 0))
      simio_fail(2, "input 'omega' must be > 0");

    {
      const double h = OUT_DT / SUBSTEPS, t_end = (double)n * OUT_DT;
      double window = 2 * SIM_PI / o.omega;
      double x = in[IN_X0], v = 0, max_abs = fabs(x), lo = INFINITY, hi = -INFINITY;
      /* env: a Hann-weighted mean of x^2 over the trailing ENV_PERIODS periods of the slower of
       * the forcing and the free (damped) oscillation, on the internal substeps; a ring of the
       * last w_sub + 1 values of x^2 (slot 0 starts with x0^2); until the ring is full the
       * window is [0, t], its Hann weights stretched over it */
      double w_slow = o.omega, w_free = o.zeta < 1 ? o.omega0 * sqrt(1 - o.zeta * o.zeta) : 0;
      double w_sub, *ring, *hann;
      size_t w_len, w_pos;
      if (w_free > 0 && w_free < w_slow)
        w_slow = w_free;
      w_sub = ceil(ENV_PERIODS * 2 * SIM_PI / w_slow / h - 1e-9);
      if (!(w_sub <= (double)n * SUBSTEPS)) /* a window longer than the run is the whole run */
        w_sub = (double)n * SUBSTEPS;
      w_len = (w_sub < 1 ? 1 : (size_t)w_sub) + 1; /* the window's substeps plus its start point */
      ring = calloc(w_len, sizeof *ring);
      hann = calloc(w_len, sizeof *hann);
      /* the running amplitude: x and t on the substeps of the last forcing period */
      const size_t a_len = (size_t)ceil(window / h) + 2;
      size_t a_pos = 0, a_n = 0;
      double *a_x = calloc(a_len, sizeof *a_x), *a_t = calloc(a_len, sizeof *a_t);
      if (!ring || !hann || !a_x || !a_t)
        simio_fail(1, "out of memory");
      hann_weights(hann, w_len);
      ring[0] = x * x;
      w_pos = 1;
      if (window > t_end / 2)
        window = t_end / 2;
      const double t_from = t_end - window;

      for (long i = 1; i <= n; i++) {
        double env;
        size_t filled = (size_t)i * SUBSTEPS + 1;
        for (int k = 0; k < SUBSTEPS; k++) {
          double t = ((double)(i - 1) * SUBSTEPS + k) * h;
          rk4(&o, t, h, &x, &v);
          t += h;
          if (fabs(x) > max_abs)
            max_abs = fabs(x);
          if (t >= t_from - 1e-9) {
            lo = x < lo ? x : lo;
            hi = x > hi ? x : hi;
          }
          ring[w_pos] = x * x;
          w_pos = (w_pos + 1) % w_len;
          a_x[a_pos] = x;
          a_t[a_pos] = t;
          a_pos = (a_pos + 1) % a_len;
          a_n += a_n < a_len;
        }
        if (!isfinite(x))
          simio_fail(1, "solution is not finite at step %ld", i);
        if (filled < w_len) { /* [0, t]: slots 0..filled-1 in time order, weights stretched */
          double s = 0, ws = 0;
          hann_weights(hann, filled);
          for (size_t j = 0; j < filled; j++) {
            s += hann[j] * ring[j];
            ws += hann[j];
          }
          env = sqrt(2 * s / ws);
          if (filled + SUBSTEPS >= w_len)
            hann_weights(hann, w_len); /* the full window from the next step on */
        } else { /* the oldest value is at w_pos */
          double s = 0, ws = 0;
          for (size_t j = 0; j < w_len; j++) {
            s += hann[j] * ring[(w_pos + j) % w_len];
            ws += hann[j];
          }
          env = sqrt(2 * s / ws);
        }
        if (!simio_step(step_delay,
                        "{\"step\": %ld, \"t\": %.10g, \"values\": {\"x\": %.15g, \"env\": %.15g, "
                        "\"log_env\": %.15g}, \"running\": {\"amplitude\": %.15g, \"max_abs_x\": %.15g}}",
                        i, (double)i * OUT_DT, x, env, log(env > 1e-300 ? env : 1e-300),
                        running_amplitude(a_x, a_t, a_len, a_pos, a_n, (double)i * OUT_DT, 2 * SIM_PI / o.omega),
                        max_abs))
          break; /* terminated */
      }
      free(a_x);
      free(a_t);
      free(ring);
      free(hann);
      simio_final("{\"final\": {\"amplitude\": %.15g, \"max_abs_x\": %.15g}}", (hi - lo) / 2,
                  max_abs);
    }
  }
  return 0;
}
