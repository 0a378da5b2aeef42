/* simio: the simulator-protocol plumbing compiled into every built-in simulator (simio.h
 * says what each function does). It holds what the simulators used to carry one copy each
 * of: the bounded read of the JSON input line, the checks of "inputs" and "max_steps", the
 * option parsing shared by all, the signal reset and the flushed writes of step and final
 * lines, with the error texts and exit statuses the tests and the simulate worker expect.
 * It depends on jansson and libc only, never on libspecline.
 *
 * stdin is read with read(2) into one buffer, not through stdio: between steps a run polls
 * the descriptor for the terminate control line of persistent mode, which stdio could have
 * swallowed into its own buffer unseen. */
#define _POSIX_C_SOURCE 200809L

#include "simio.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *sim_name = "specline-sim";

/* stdin: bytes read and not yet taken, one line of at most SIMIO_LINE_MAX plus its '\n' */
#define RBUF_SIZE (SIMIO_LINE_MAX + 1)
static char *rbuf;
static size_t rlen;
static bool reof;  /* stdin reached end of file (or failed) */
static bool rstop; /* the current run was asked to stop (a terminate control line) */

void simio_init(const char *name)
{
  sigset_t set;
  sim_name = name;
  signal(SIGTERM, SIG_DFL);
  signal(SIGPIPE, SIG_DFL);
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigprocmask(SIG_UNBLOCK, &set, NULL);
}

void simio_fail(int status, const char *fmt, ...)
{
  va_list ap;
  fprintf(stderr, "%s: ", sim_name);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  exit(status);
}

bool simio_is_help(const char *arg)
{
  return !strcmp(arg, "--help") || !strcmp(arg, "-h");
}

bool simio_option(char **argv, int *i, const char *name, const char **value)
{
  size_t len = strlen(name);
  const char *arg = argv[*i];

  if (!strcmp(arg, name)) {
    *value = argv[*i + 1];
    if (*value)
      (*i)++;
    return true;
  }
  if (!strncmp(arg, name, len) && arg[len] == '=') {
    *value = arg + len + 1;
    return true;
  }
  return false;
}

bool simio_common_option(char **argv, int *i, void (*usage)(FILE *), double *step_delay)
{
  const char *val;
  if (simio_is_help(argv[*i])) {
    usage(stdout);
    exit(0);
  }
  if (simio_option(argv, i, "--step-delay", &val)) {
    *step_delay = simio_parse_seconds("--step-delay", val);
    return true;
  }
  return false;
}

void simio_unknown_arg(void (*usage)(FILE *), const char *arg)
{
  usage(stderr);
  simio_fail(2, "unknown argument '%s'", arg);
}

void simio_parse_args(int argc, char **argv, void (*usage)(FILE *), double *step_delay, const char *name,
                      void (*on_option)(const char *name, const char *value, void *ud), void *ud)
{
  const char *val;

  for (int i = 1; i < argc; i++) {
    if (simio_common_option(argv, &i, usage, step_delay))
      continue;
    if (simio_option(argv, &i, name, &val))
      on_option(name, val, ud);
    else
      simio_unknown_arg(usage, argv[i]);
  }
}

/* Converts the value s of option opt into *v; fails with status 2 when s is NULL (no value)
 * and returns false when s is not a number from end to end. */
static bool option_double(const char *opt, const char *s, double *v)
{
  char *end;
  if (!s)
    simio_fail(2, "option '%s' needs a value", opt);
  errno = 0;
  *v = strtod(s, &end);
  return !errno && end != s && !*end;
}

double simio_parse_seconds(const char *opt, const char *s)
{
  double v;
  if (!option_double(opt, s, &v) || !(v >= 0) || v > 3600)
    simio_fail(2, "option '%s': '%s' is not a number of seconds in [0, 3600]", opt, s);
  return v;
}

double simio_parse_number(const char *opt, const char *s)
{
  double v;
  if (!option_double(opt, s, &v) || !isfinite(v))
    simio_fail(2, "option '%s': '%s' is not a number", opt, s);
  return v;
}

long simio_parse_long(const char *opt, const char *s, long lo, long hi, const char *what)
{
  char *end;
  long v;
  if (!s)
    simio_fail(2, "option '%s' needs a value", opt);
  errno = 0;
  v = strtol(s, &end, 10);
  if (errno || end == s || *end || v < lo || v > hi)
    simio_fail(2, "option '%s': '%s' is not %s in [%ld, %ld]", opt, s, what, lo, hi);
  return v;
}

/* Reads what stdin has (blocking until something or EOF) into the buffer; a full buffer
 * without a newline is a line too long. */
static void rbuf_read(void)
{
  ssize_t k;

  if (!rbuf && !(rbuf = malloc(RBUF_SIZE)))
    simio_fail(1, "out of memory");
  if (rlen == RBUF_SIZE)
    simio_fail(2, "input line longer than %d bytes", SIMIO_LINE_MAX);
  do
    k = read(STDIN_FILENO, rbuf + rlen, RBUF_SIZE - rlen);
  while (k < 0 && errno == EINTR);
  if (k <= 0)
    reof = true;
  else
    rlen += (size_t)k;
}

/* Length of the first complete line in the buffer (without its '\n'), or -1. */
static long rbuf_line(void)
{
  const char *nl = rlen ? memchr(rbuf, '\n', rlen) : NULL;
  return nl ? nl - rbuf : -1;
}

static void rbuf_drop(size_t n)
{
  n = n < rlen ? n : rlen;
  memmove(rbuf, rbuf + n, rlen - n);
  rlen -= n;
}

/* Whether line[0..n) is the control line {"terminate": true} (short: inputs are not
 * parsed twice). */
static bool is_terminate(const char *line, size_t n)
{
  json_t *root = n < 64 ? json_loadb(line, n, 0, NULL) : NULL;
  bool yes = root && json_is_object(root) && json_is_true(json_object_get(root, "terminate")) &&
             !json_object_get(root, "inputs");
  json_decref(root);
  return yes;
}

/* Benchmarks (bench/latency/cancel.sh): with $SPECLINE_SIM_STAMP_FILE set, each run's start
 * (its input line read) appends "start <pid> <CLOCK_REALTIME seconds>" to that file. */
static void stamp_run_start(void)
{
  static const char *path;
  static bool looked;
  struct timespec ts;
  char line[96];
  int fd, n;

  if (!looked) {
    path = getenv("SPECLINE_SIM_STAMP_FILE");
    looked = true;
  }
  if (!path || !*path)
    return;
  clock_gettime(CLOCK_REALTIME, &ts);
  n = snprintf(line, sizeof line, "start %d %.6f\n", (int)getpid(), (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9);
  fd = open(path, O_WRONLY | O_APPEND | O_CREAT, 0644);
  if (fd >= 0) {
    if (write(fd, line, (size_t)n) != n) { /* the benchmark reports missing stamps */
    }
    close(fd);
  }
}

json_t *simio_next_request(void)
{
  json_error_t jerr;
  json_t *root;
  long n;

  for (;;) {
    while ((n = rbuf_line()) < 0 && !reof)
      rbuf_read();
    if (n < 0 && rlen == 0)
      return NULL;
    if (n < 0)
      n = (long)rlen; /* the last line, without a newline */
    if (is_terminate(rbuf, (size_t)n)) { /* for a run that already ended: ignored */
      rbuf_drop((size_t)n + 1);
      continue;
    }
    root = json_loadb(rbuf, (size_t)n, JSON_REJECT_DUPLICATES | JSON_DECODE_INT_AS_REAL, &jerr);
    rbuf_drop((size_t)n + 1);
    if (!root)
      simio_fail(2, "input line is not JSON: column %d: %s", jerr.column, jerr.text);
    if (!json_is_object(root))
      simio_fail(2, "input line is not a JSON object");
    rstop = false;
    stamp_run_start();
    return root;
  }
}

json_t *simio_read_request(void)
{
  json_t *root = simio_next_request();

  if (!root)
    simio_fail(2, "no input line on stdin");
  return root;
}

bool simio_next_run(const struct simio_input *table, int n, long dflt_steps, double *vals, long *max_steps)
{
  static bool started;
  json_t *root = started ? simio_next_request() : simio_read_request();

  started = true;
  if (!root)
    return false;
  simio_parse_inputs(root, table, n, vals);
  *max_steps = simio_parse_max_steps(root, dflt_steps);
  json_decref(root);
  return true;
}

static double mono_now(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Takes the control lines at the head of the buffer; waits up to wait_s for more input
 * while none asked to stop. Returns whether the run was asked to stop. */
static bool check_stop(double wait_s)
{
  double until = mono_now() + wait_s;
  struct pollfd pfd = {.fd = STDIN_FILENO, .events = POLLIN};
  long n;
  int ms, rc;

  for (;;) {
    while (!rstop && (n = rbuf_line()) >= 0 && is_terminate(rbuf, (size_t)n)) {
      rbuf_drop((size_t)n + 1);
      rstop = true;
    }
    if (rstop || reof)
      break;
    ms = (int)ceil((until - mono_now()) * 1000);
    rc = poll(&pfd, 1, ms > 0 ? ms : 0);
    if (rc < 0 && errno == EINTR)
      continue;
    if (rc <= 0)
      return false;
    rbuf_read();
  }
  if (!rstop) /* stdin is closed: sleep the rest */
    simio_sleep(until - mono_now());
  return rstop;
}

bool simio_stopped(void)
{
  return rstop;
}

json_t *simio_inputs_object(json_t *root)
{
  json_t *in = json_object_get(root, "inputs");
  if (!json_is_object(in))
    simio_fail(2, "input line has no 'inputs' object");
  return in;
}

/* Fails with status 2 on the input key that is not in table, listing the known names. */
static void fail_unknown_input(const char *key, const struct simio_input *table, int n)
{
  fprintf(stderr, "%s: unknown input '%s' (known: ", sim_name, key);
  for (int i = 0; i < n; i++)
    fprintf(stderr, "%s%s", i ? ", " : "", table[i].name);
  fputs(")\n", stderr);
  exit(2);
}

void simio_parse_inputs(json_t *root, const struct simio_input *table, int n, double *vals)
{
  json_t *in = simio_inputs_object(root), *v;
  const char *key;
  bool *seen = calloc((size_t)n, sizeof(*seen));

  if (!seen)
    simio_fail(1, "out of memory");
  json_object_foreach(in, key, v)
  {
    int i;
    for (i = 0; i < n && strcmp(key, table[i].name) != 0; i++)
      ;
    if (i == n)
      fail_unknown_input(key, table, n);
    if (!json_is_number(v))
      simio_fail(2, "input '%s' is not a number", key);
    vals[i] = json_number_value(v);
    seen[i] = true;
  }
  for (int i = 0; i < n; i++)
    if (!seen[i])
      simio_fail(2, "missing input '%s'", table[i].name);
  free(seen);
}

long simio_parse_max_steps(json_t *root, long dflt)
{
  json_t *m = json_object_get(root, "max_steps");
  double v;
  if (!m || json_is_null(m))
    return dflt;
  if (!json_is_number(m))
    simio_fail(2, "'max_steps' is not a number");
  v = json_number_value(m);
  if (!(v >= 1 && v <= (double)SIMIO_STEPS_MAX) || v != floor(v))
    simio_fail(2, "'max_steps' must be an integer in [1, %ld]", SIMIO_STEPS_MAX);
  return (long)v;
}

void simio_usage_inputs(FILE *f, const struct simio_input *table, int n, int width)
{
  fputs("inputs (all required; values outside the recommended range are accepted):\n", f);
  for (int i = 0; i < n; i++)
    fprintf(f, "  %-*s [%g, %g]  %s\n", width, table[i].name, table[i].lo, table[i].hi,
            table[i].doc);
  fputs("\noptions:\n", f);
}

void simio_sleep(double s)
{
  struct timespec ts, rem;
  if (s <= 0)
    return;
  ts.tv_sec = (time_t)s;
  ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
  while (nanosleep(&ts, &rem) != 0 && errno == EINTR)
    ts = rem;
}

/* Ends the line just written on stdout and flushes it; fails with status 1 on error. */
static void end_line(void)
{
  putchar('\n');
  if (fflush(stdout) != 0)
    simio_fail(1, "cannot write to stdout");
}

bool simio_step(double step_delay, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
  end_line();
  return !check_stop(step_delay > 0 ? step_delay : 0);
}

void simio_final(const char *fmt, ...)
{
  va_list ap;
  if (rstop) { /* a terminated run's outputs are not used */
    fputs("{\"final\": {}}", stdout);
    end_line();
    return;
  }
  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
  end_line();
}
