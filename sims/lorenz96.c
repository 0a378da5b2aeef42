/* specline-sim-lorenz96: the Lorenz-96 model, the campaign's negative control. N variables
 * on a ring (default 40, option --n) follow dx_i/dt = (x_{i+1} - x_{i-2}) x_{i-1} - x_i + F,
 * indices mod N, from x_i = F for all i with x_0 += perturb. Classical RK4 at an internal
 * step of 0.01, output every 0.05 (5 substeps per output step): history value "x0", the
 * first component; finals "energy" (mean of x_i^2 / 2 at the end) and "mean_x" (mean of
 * x_i at the end). For F up to about 3 the flow is regular (a difference of 1e-6 in
 * perturb stays below 1e-2); from about 3.5 to 5 it is weakly chaotic (that difference
 * reaches 0.01 to 1 by t = 20, depending on perturb); for F of about 8 and above it grows
 * to the size of the attractor (~10) by t ~ 10, so no surrogate can predict the tail of a
 * history from its beginning, and speculative stopping must not pretend it can. It knows only the simulator
 * protocol (docs/simulator-protocol.md), whose plumbing it shares with the other simulators
 * through sims/common/simio.c, and never links libspecline. */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "simio.h"

#define SIM_NAME "specline-sim-lorenz96"
#define SIM_STEPS_DEFAULT 400L /* t up to 20 */
#define OUT_DT 0.05            /* time between output steps */
#define SUBSTEPS 5             /* RK4 steps of 0.01 per output step */
#define N_DEFAULT 40
#define N_MIN 4
#define N_MAX 100000

enum { IN_F, IN_PERTURB, N_INPUTS };

static const struct simio_input INPUTS[N_INPUTS] = {
  {"F", 4.0, 12.0, "forcing (weakly chaotic from about 4, strongly from 8)"},
  {"perturb", 0.001, 0.1, "initial perturbation added to x_0"},
};

static void usage(FILE *f)
{
  fprintf(f,
          "usage: " SIM_NAME " [--n N] [--step-delay SECONDS] [--help]\n"
          "\n"
          "Lorenz-96 model, speaking the specline simulator protocol: reads one JSON line\n"
          "{\"inputs\": {...}, \"max_steps\": N, \"sample_id\": \"...\"} on stdin, writes\n"
          "{\"step\": i, \"t\": t, \"values\": {\"x0\": x_0}, \"running\": {...}} for\n"
          "i = 1..N (running: the finals of the state at step i) and then\n"
          "{\"final\": {\"energy\": mean(x_i^2)/2, \"mean_x\": mean(x_i)}} at the last step.\n"
          "\n"
          "  dx_i/dt = (x_{i+1} - x_{i-2}) x_{i-1} - x_i + F,  i = 0..N-1 mod N\n"
          "  x_i(0) = F, x_0(0) = F + perturb\n"
          "  RK4, internal step %g, output step %g, max_steps default %ld (t = 20), N %d\n"
          "\n",
          OUT_DT / SUBSTEPS, OUT_DT, SIM_STEPS_DEFAULT, N_DEFAULT);
  simio_usage_inputs(f, INPUTS, N_INPUTS, 8);
  fprintf(f, "  --n N           number of variables, %d..%d (default %d)\n" SIMIO_USAGE_STEP_DELAY SIMIO_USAGE_TAIL,
          N_MIN, N_MAX, N_DEFAULT);
}

typedef struct l96 {
  int n;
  double F;
  double *x, *k1, *k2, *k3, *k4, *tmp; /* n each */
} l96_t;

static void l96_deriv(const l96_t *m, const double *x, double *dx)
{
  const int n = m->n;
  for (int i = 0; i < n; i++) {
    int ip1 = (i + 1) % n, im1 = (i + n - 1) % n, im2 = (i + n - 2) % n;
    dx[i] = (x[ip1] - x[im2]) * x[im1] - x[i] + m->F;
  }
}

static void l96_rk4(l96_t *m, double h)
{
  const int n = m->n;
  l96_deriv(m, m->x, m->k1);
  for (int i = 0; i < n; i++)
    m->tmp[i] = m->x[i] + h / 2 * m->k1[i];
  l96_deriv(m, m->tmp, m->k2);
  for (int i = 0; i < n; i++)
    m->tmp[i] = m->x[i] + h / 2 * m->k2[i];
  l96_deriv(m, m->tmp, m->k3);
  for (int i = 0; i < n; i++)
    m->tmp[i] = m->x[i] + h * m->k3[i];
  l96_deriv(m, m->tmp, m->k4);
  for (int i = 0; i < n; i++)
    m->x[i] += h / 6 * (m->k1[i] + 2 * m->k2[i] + 2 * m->k3[i] + m->k4[i]);
}

static void run(const l96_t *mr, const double *in, long steps, double step_delay);

static void on_n(const char *opt, const char *val, void *n)
{
  *(int *)n = (int)simio_parse_long(opt, val, N_MIN, N_MAX, "an integer");
}

int main(int argc, char **argv)
{
  double step_delay = 0, in[N_INPUTS];
  l96_t m = {.n = N_DEFAULT};
  long steps;

  simio_init(SIM_NAME);
  simio_parse_args(argc, argv, usage, &step_delay, "--n", on_n, &m.n);
  /* one run per input line until stdin ends (persistent mode keeps it open) */
  while (simio_next_run(INPUTS, N_INPUTS, SIM_STEPS_DEFAULT, in, &steps))
    run(&m, in, steps, step_delay);
  return 0;
}

/* The final outputs of the current state: energy mean(x_i^2)/2 and mean(x_i) over i. */
static void finals(const l96_t *m, double *energy, double *mean)
{
  double e = 0, mu = 0;
  for (int i = 0; i < m->n; i++) {
    e += m->x[i] * m->x[i] / 2;
    mu += m->x[i];
  }
  *energy = e / m->n;
  *mean = mu / m->n;
}

/* One run: RK4 from the initial state, a step line per output step (with the running
 * finals: the outputs of the state at that step), the final line. */
static void run(const l96_t *mr, const double *in, long steps, double step_delay)
{
  l96_t m = *mr;
  double *mem;

  mem = calloc((size_t)m.n * 6, sizeof(double));
  if (!mem)
    simio_fail(1, "out of memory");
  m.x = mem;
  m.k1 = mem + m.n;
  m.k2 = mem + 2 * m.n;
  m.k3 = mem + 3 * m.n;
  m.k4 = mem + 4 * m.n;
  m.tmp = mem + 5 * m.n;
  m.F = in[IN_F];
  for (int i = 0; i < m.n; i++)
    m.x[i] = m.F;
  m.x[0] += in[IN_PERTURB];

  for (long s = 1; s <= steps; s++) {
    double e, mean;
    for (int k = 0; k < SUBSTEPS; k++)
      l96_rk4(&m, OUT_DT / SUBSTEPS);
    finals(&m, &e, &mean);
    if (!isfinite(m.x[0]) || !isfinite(e) || !isfinite(mean))
      simio_fail(1, "solution is not finite at step %ld", s);
    if (!simio_step(step_delay,
                    "{\"step\": %ld, \"t\": %.10g, \"values\": {\"x0\": %.15g}, "
                    "\"running\": {\"energy\": %.15g, \"mean_x\": %.15g}}",
                    s, (double)s * OUT_DT, m.x[0], e, mean))
      break; /* terminated */
  }
  {
    double e, mean;
    finals(&m, &e, &mean);
    if (!isfinite(e))
      simio_fail(1, "solution is not finite at the end");
    simio_final("{\"final\": {\"energy\": %.15g, \"mean_x\": %.15g}}", e, mean);
  }
  free(mem);
}
