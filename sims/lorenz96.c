/* specline-sim-lorenz96: the Lorenz-96 model, the campaign's negative control. N variables
 * on a ring (default 40, option --n) follow dx_i/dt = (x_{i+1} - x_{i-2}) x_{i-1} - x_i + F,
 * indices mod N, from x_i = F for all i with x_0 += perturb. Classical RK4 at an internal
 * step of 0.01, output every 0.05 (5 substeps per output step): history value "x0", the
 * first component; finals "energy" (mean of x_i^2 / 2 at the end) and "mean_x" (mean of
 * x_i at the end). For F up to about 3 the flow is regular (a difference of 1e-6 in
 * perturb stays below 1e-2); from about 3.5 to 5 it is weakly chaotic (that difference
 * reaches 0.01 to 1 by t = 20, depending on perturb); for F of about 8 and above it grows
 * to the size of the attractor (~10) by t ~ 10, so no surrogate can predict the tail of a
 * history from its beginning, and speculative stopping must not pretend it can. It knows only the simulator protocol (docs/simulator-protocol.md) and never links
 * libspecline. */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SIM_NAME "specline-sim-lorenz96"
#define SIM_LINE_MAX (1024 * 1024) /* longest accepted input line, bytes */
#define SIM_STEPS_MAX 100000000L   /* largest accepted max_steps */
#define SIM_STEPS_DEFAULT 400L     /* t up to 20 */
#define OUT_DT 0.05                /* time between output steps */
#define SUBSTEPS 5                 /* RK4 steps of 0.01 per output step */
#define N_DEFAULT 40
#define N_MIN 4
#define N_MAX 100000

typedef struct sim_input {
  const char *name;
  double lo, hi; /* recommended design range */
  const char *doc;
} sim_input_t;

enum { IN_F, IN_PERTURB, N_INPUTS };
#define KNOWN_INPUTS "F, perturb"

static const sim_input_t INPUTS[N_INPUTS] = {
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
          "{\"step\": i, \"t\": t, \"values\": {\"x0\": x_0}} for i = 1..N and then\n"
          "{\"final\": {\"energy\": mean(x_i^2)/2, \"mean_x\": mean(x_i)}} at the last step.\n"
          "\n"
          "  dx_i/dt = (x_{i+1} - x_{i-2}) x_{i-1} - x_i + F,  i = 0..N-1 mod N\n"
          "  x_i(0) = F, x_0(0) = F + perturb\n"
          "  RK4, internal step %g, output step %g, max_steps default %ld (t = 20), N %d\n"
          "\n"
          "inputs (all required; values outside the recommended range are accepted):\n",
          OUT_DT / SUBSTEPS, OUT_DT, SIM_STEPS_DEFAULT, N_DEFAULT);
  for (int i = 0; i < N_INPUTS; i++)
    fprintf(f, "  %-8s [%g, %g]  %s\n", INPUTS[i].name, INPUTS[i].lo, INPUTS[i].hi,
            INPUTS[i].doc);
  fprintf(f, "\n"
             "options:\n"
             "  --n N           number of variables, %d..%d (default %d)\n"
             "  --step-delay S  sleep S seconds after each output step (tests)\n"
             "  --help          this text\n"
             "\n"
             "exit status: 0 ok, 1 output or numerical failure, 2 bad input or usage;\n"
             "SIGTERM ends the run at once (default action)\n",
          N_MIN, N_MAX, N_DEFAULT);
}

static void fail(int status, const char *fmt, ...)
{
  va_list ap;
  fputs(SIM_NAME ": ", stderr);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  exit(status);
}

/* SIGTERM and SIGPIPE must kill us even when the parent ignored or blocked them. */
static void sim_signals(void)
{
  sigset_t set;
  signal(SIGTERM, SIG_DFL);
  signal(SIGPIPE, SIG_DFL);
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigprocmask(SIG_UNBLOCK, &set, NULL);
}

static void sim_sleep(double s)
{
  struct timespec ts, rem;
  if (s <= 0)
    return;
  ts.tv_sec = (time_t)s;
  ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
  while (nanosleep(&ts, &rem) != 0 && errno == EINTR)
    ts = rem;
}

static double parse_seconds(const char *opt, const char *s)
{
  char *end;
  double v;
  if (!s)
    fail(2, "option '%s' needs a value", opt);
  errno = 0;
  v = strtod(s, &end);
  if (errno || end == s || *end || !(v >= 0) || v > 3600)
    fail(2, "option '%s': '%s' is not a number of seconds in [0, 3600]", opt, s);
  return v;
}

/* Reads the one input line (at most SIM_LINE_MAX bytes) and parses it as a JSON object. */
static json_t *read_request(void)
{
  char *buf = malloc(SIM_LINE_MAX);
  size_t n = 0;
  int c;
  json_error_t jerr;
  json_t *root;

  if (!buf)
    fail(1, "out of memory");
  while ((c = getchar()) != EOF && c != '\n') {
    if (n == SIM_LINE_MAX)
      fail(2, "input line longer than %d bytes", SIM_LINE_MAX);
    buf[n++] = (char)c;
  }
  if (n == 0 && c == EOF)
    fail(2, "no input line on stdin");
  root = json_loadb(buf, n, JSON_REJECT_DUPLICATES | JSON_DECODE_INT_AS_REAL, &jerr);
  free(buf);
  if (!root)
    fail(2, "input line is not JSON: column %d: %s", jerr.column, jerr.text);
  if (!json_is_object(root))
    fail(2, "input line is not a JSON object");
  return root;
}

/* Fills vals[] from root.inputs: every name known, every value a number, none missing. */
static void parse_inputs(json_t *root, double *vals)
{
  json_t *in = json_object_get(root, "inputs"), *v;
  const char *key;
  bool seen[N_INPUTS] = {false};

  if (!json_is_object(in))
    fail(2, "input line has no 'inputs' object");
  json_object_foreach(in, key, v)
  {
    int i;
    for (i = 0; i < N_INPUTS && strcmp(key, INPUTS[i].name) != 0; i++)
      ;
    if (i == N_INPUTS)
      fail(2, "unknown input '%s' (known: %s)", key, KNOWN_INPUTS);
    if (!json_is_number(v))
      fail(2, "input '%s' is not a number", key);
    vals[i] = json_number_value(v);
    seen[i] = true;
  }
  for (int i = 0; i < N_INPUTS; i++)
    if (!seen[i])
      fail(2, "missing input '%s'", INPUTS[i].name);
}

static long parse_max_steps(json_t *root, long dflt)
{
  json_t *m = json_object_get(root, "max_steps");
  double v;
  if (!m || json_is_null(m))
    return dflt;
  if (!json_is_number(m))
    fail(2, "'max_steps' is not a number");
  v = json_number_value(m);
  if (!(v >= 1 && v <= (double)SIM_STEPS_MAX) || v != floor(v))
    fail(2, "'max_steps' must be an integer in [1, %ld]", SIM_STEPS_MAX);
  return (long)v;
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

static int parse_n(const char *opt, const char *s)
{
  char *end;
  long v;
  if (!s)
    fail(2, "option '%s' needs a value", opt);
  errno = 0;
  v = strtol(s, &end, 10);
  if (errno || end == s || *end || v < N_MIN || v > N_MAX)
    fail(2, "option '%s': '%s' is not an integer in [%d, %d]", opt, s, N_MIN, N_MAX);
  return (int)v;
}

int main(int argc, char **argv)
{
  double step_delay = 0, in[N_INPUTS], *mem;
  l96_t m = {.n = N_DEFAULT};
  json_t *root;
  long steps;

  sim_signals();
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      usage(stdout);
      return 0;
    } else if (!strcmp(argv[i], "--step-delay")) {
      step_delay = parse_seconds(argv[i], argv[i + 1]);
      i++;
    } else if (!strncmp(argv[i], "--step-delay=", 13)) {
      step_delay = parse_seconds("--step-delay", argv[i] + 13);
    } else if (!strcmp(argv[i], "--n")) {
      m.n = parse_n(argv[i], argv[i + 1]);
      i++;
    } else if (!strncmp(argv[i], "--n=", 4)) {
      m.n = parse_n("--n", argv[i] + 4);
    } else {
      usage(stderr);
      fail(2, "unknown argument '%s'", argv[i]);
    }
  }

  root = read_request();
  parse_inputs(root, in);
  steps = parse_max_steps(root, SIM_STEPS_DEFAULT);
  json_decref(root);

  mem = calloc((size_t)m.n * 6, sizeof(double));
  if (!mem)
    fail(1, "out of memory");
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
    for (int k = 0; k < SUBSTEPS; k++)
      l96_rk4(&m, OUT_DT / SUBSTEPS);
    if (!isfinite(m.x[0]))
      fail(1, "solution is not finite at step %ld", s);
    printf("{\"step\": %ld, \"t\": %.10g, \"values\": {\"x0\": %.15g}}\n", s,
           (double)s * OUT_DT, m.x[0]);
    if (fflush(stdout) != 0)
      fail(1, "cannot write to stdout");
    sim_sleep(step_delay);
  }
  {
    double e = 0, mean = 0;
    for (int i = 0; i < m.n; i++) {
      e += m.x[i] * m.x[i] / 2;
      mean += m.x[i];
    }
    e /= m.n;
    mean /= m.n;
    if (!isfinite(e))
      fail(1, "solution is not finite at the end");
    printf("{\"final\": {\"energy\": %.15g, \"mean_x\": %.15g}}\n", e, mean);
  }
  free(mem);
  if (fflush(stdout) != 0)
    fail(1, "cannot write to stdout");
  return 0;
}
