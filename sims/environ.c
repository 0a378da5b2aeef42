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
 * (docs/simulator-protocol.md) and never links libspecline. */
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

#define SIM_NAME "specline-sim-environ"
#define SIM_LINE_MAX (1024 * 1024) /* longest accepted input line, bytes */
#define SIM_STEPS_MAX 100000000L   /* largest accepted max_steps */
#define SIM_STEPS_DEFAULT 300L     /* t up to 60 */
#define OUT_DT 0.2                 /* time between output steps */
#define LOCATION_DEFAULT 1.5       /* observation point s */
#define SIM_PI 3.14159265358979323846

typedef struct sim_input {
  const char *name;
  double lo, hi; /* recommended design range */
  const char *doc;
} sim_input_t;

enum { IN_M, IN_D, IN_L, IN_TAU, N_INPUTS };
#define KNOWN_INPUTS "M, D, L, tau"

static const sim_input_t INPUTS[N_INPUTS] = {
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
          "\"values\": {\"c\": C(s, t)}} for i = 1..N and then\n"
          "{\"final\": {\"c_final\": C(s, t_N), \"c_max\": max over the output steps}}.\n"
          "\n"
          "  C(s,t) = M / sqrt(4 pi D t) exp(-s^2 / (4 D t))\n"
          "         + 1{t > tau} M / sqrt(4 pi D (t - tau)) exp(-(s - L)^2 / (4 D (t - tau)))\n"
          "  t = %g i (closed form), max_steps default %ld (t = 60), s default %g\n"
          "\n"
          "inputs (all required; values outside the recommended range are accepted):\n",
          OUT_DT, SIM_STEPS_DEFAULT, LOCATION_DEFAULT);
  for (int i = 0; i < N_INPUTS; i++)
    fprintf(f, "  %-4s [%g, %g]  %s\n", INPUTS[i].name, INPUTS[i].lo, INPUTS[i].hi,
            INPUTS[i].doc);
  fprintf(f, "\n"
             "options:\n"
             "  --location S    observe at s = S instead of %g\n"
             "  --step-delay S  sleep S seconds after each output step (tests)\n"
             "  --help          this text\n"
             "\n"
             "exit status: 0 ok, 1 output or numerical failure, 2 bad input or usage;\n"
             "SIGTERM ends the run at once (default action)\n",
          LOCATION_DEFAULT);
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

/* Concentration at location s and time t > 0 (the formula in the file header). */
static double concentration(const double *in, double s, double t)
{
  const double M = in[IN_M], D = in[IN_D], L = in[IN_L], tau = in[IN_TAU];
  double c = M / sqrt(4 * SIM_PI * D * t) * exp(-s * s / (4 * D * t));
  if (t > tau)
    c += M / sqrt(4 * SIM_PI * D * (t - tau)) * exp(-(s - L) * (s - L) / (4 * D * (t - tau)));
  return c;
}

static double parse_number(const char *opt, const char *s)
{
  char *end;
  double v;
  if (!s)
    fail(2, "option '%s' needs a value", opt);
  errno = 0;
  v = strtod(s, &end);
  if (errno || end == s || *end || !isfinite(v))
    fail(2, "option '%s': '%s' is not a number", opt, s);
  return v;
}

int main(int argc, char **argv)
{
  double step_delay = 0, s = LOCATION_DEFAULT, in[N_INPUTS], c = 0, c_max = -INFINITY;
  json_t *root;
  long n;

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
    } else if (!strcmp(argv[i], "--location")) {
      s = parse_number(argv[i], argv[i + 1]);
      i++;
    } else if (!strncmp(argv[i], "--location=", 11)) {
      s = parse_number("--location", argv[i] + 11);
    } else {
      usage(stderr);
      fail(2, "unknown argument '%s'", argv[i]);
    }
  }

  root = read_request();
  parse_inputs(root, in);
  n = parse_max_steps(root, SIM_STEPS_DEFAULT);
  json_decref(root);
  if (!(in[IN_D] > 0))
    fail(2, "input 'D' must be > 0");
  if (!(in[IN_TAU] >= 0))
    fail(2, "input 'tau' must be >= 0");

  for (long i = 1; i <= n; i++) {
    double t = (double)i * OUT_DT;
    c = concentration(in, s, t);
    if (!isfinite(c))
      fail(1, "concentration is not finite at step %ld", i);
    if (c > c_max)
      c_max = c;
    printf("{\"step\": %ld, \"t\": %.10g, \"values\": {\"c\": %.17g}}\n", i, t, c);
    if (fflush(stdout) != 0)
      fail(1, "cannot write to stdout");
    sim_sleep(step_delay);
  }
  printf("{\"final\": {\"c_final\": %.17g, \"c_max\": %.17g}}\n", c, c_max);
  if (fflush(stdout) != 0)
    fail(1, "cannot write to stdout");
  return 0;
}
