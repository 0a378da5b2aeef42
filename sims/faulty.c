/* specline-sim-faulty: a simulator that misbehaves on purpose, for the robustness and fault
 * tests of the simulate worker. Its behaviour is chosen by the option --mode M or, when that
 * is absent, by the input "mode" (a number, floored, so a campaign can sample it); any other
 * inputs are accepted and summed into the final "y". The modes:
 *   0 ok       steps 1..N (default N = 5) with value x = i, then {"final": {"y": sum}}, exit 0
 *   1 segv     2 steps, then raises SIGSEGV (core dumps disabled)
 *   2 garbage  1 step, then 3 lines that are not protocol JSON, then a valid final, exit 0
 *   3 hang     1 step, then waits forever; SIGTERM ends it
 *   4 error    2 steps, 3 lines on stderr ending "simulated failure (mode 4)", exit 3
 *   5 bigline  1 step, then a step line over 1 MiB (valid JSON padded with a long string),
 *              then a valid final, exit 0
 *   6 immortal ignores SIGTERM, 1 step, then waits forever; only SIGKILL ends it
 *   7 slow     steps 1..N (default N = 1000), sleeping --step-delay (default 0.2 s) after
 *              each, then the final, exit 0; SIGTERM ends it
 * Input errors exit 2 as in every simulator. It knows only the simulator protocol
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
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define SIM_NAME "specline-sim-faulty"
#define SIM_LINE_MAX (1024 * 1024) /* longest accepted input line, bytes */
#define SIM_STEPS_MAX 100000000L   /* largest accepted max_steps */
#define BIG_LINE (SIM_LINE_MAX + SIM_LINE_MAX / 2) /* padding of mode 5's line */

enum { MODE_OK, MODE_SEGV, MODE_GARBAGE, MODE_HANG, MODE_ERROR, MODE_BIGLINE, MODE_IMMORTAL,
       MODE_SLOW, N_MODES };

static void usage(FILE *f)
{
  fputs("usage: " SIM_NAME " [--mode M] [--step-delay SECONDS] [--help]\n"
        "\n"
        "A simulator that misbehaves on purpose (fault tests), speaking the specline\n"
        "simulator protocol when it behaves: reads one JSON line {\"inputs\": {...},\n"
        "\"max_steps\": N, ...}, writes {\"step\": i, \"t\": i, \"values\": {\"x\": i}} lines\n"
        "and {\"final\": {\"y\": sum of the inputs other than mode}}.\n"
        "\n"
        "modes (--mode M, else input \"mode\", floored; default 0):\n"
        "  0 ok        N steps (default 5), final, exit 0\n"
        "  1 segv      2 steps, then SIGSEGV\n"
        "  2 garbage   1 step, 3 non-JSON lines, then a valid final, exit 0\n"
        "  3 hang      1 step, then hangs forever (SIGTERM ends it)\n"
        "  4 error     2 steps, a message on stderr, exit 3\n"
        "  5 bigline   1 step, one line over 1 MiB, then a valid final, exit 0\n"
        "  6 immortal  ignores SIGTERM: 1 step, then hangs forever (SIGKILL needed)\n"
        "  7 slow      N steps (default 1000), sleeping --step-delay (default 0.2 s)\n"
        "              after each, final, exit 0\n"
        "\n"
        "inputs: any names, number values; \"mode\" selects the mode when --mode is absent\n"
        "\n"
        "options:\n"
        "  --mode M        the mode, 0..7 (overrides the input)\n"
        "  --step-delay S  sleep S seconds after each output step (all modes)\n"
        "  --help          this text\n"
        "\n"
        "exit status: 0 ok, 1 output failure, 2 bad input or usage, 3 mode 4\n",
        f);
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

static void emit_step(long i, double step_delay)
{
  printf("{\"step\": %ld, \"t\": %ld, \"values\": {\"x\": %ld}}\n", i, i, i);
  if (fflush(stdout) != 0)
    fail(1, "cannot write to stdout");
  sim_sleep(step_delay);
}

static void emit_final(double y)
{
  printf("{\"final\": {\"y\": %.17g}}\n", y);
  if (fflush(stdout) != 0)
    fail(1, "cannot write to stdout");
}

static void hang_forever(void)
{
  for (;;)
    pause();
}

static int parse_mode(const char *opt, const char *s)
{
  char *end;
  long v;
  if (!s)
    fail(2, "option '%s' needs a value", opt);
  errno = 0;
  v = strtol(s, &end, 10);
  if (errno || end == s || *end || v < 0 || v >= N_MODES)
    fail(2, "option '%s': '%s' is not a mode in [0, %d]", opt, s, N_MODES - 1);
  return (int)v;
}

/* Behaves as mode says (the table in the file header); returns the exit status when the
 * mode exits normally. */
static int run_mode(int mode, long n, double y, double step_delay)
{
  switch (mode) {
  case MODE_OK:
  case MODE_SLOW:
    for (long i = 1; i <= n; i++)
      emit_step(i, step_delay);
    emit_final(y);
    return 0;
  case MODE_SEGV: {
    struct rlimit nocore = {0, 0};
    emit_step(1, step_delay);
    emit_step(2, step_delay);
    setrlimit(RLIMIT_CORE, &nocore);
    signal(SIGSEGV, SIG_DFL);
    raise(SIGSEGV);
    return 1; /* not reached */
  }
  case MODE_GARBAGE:
    emit_step(1, step_delay);
    fputs("this is not json\n"
          "{\"step\": 2, \"t\": \n"
          "\x01\x02\xff\xfe binary junk\n",
          stdout);
    emit_final(y);
    return 0;
  case MODE_HANG:
    emit_step(1, step_delay);
    hang_forever();
    return 1;
  case MODE_ERROR:
    emit_step(1, step_delay);
    emit_step(2, step_delay);
    fputs(SIM_NAME ": reading mesh 'grid.dat'\n", stderr);
    fputs(SIM_NAME ": warning: residual 1e3 after 50 iterations\n", stderr);
    fail(3, "simulated failure (mode 4)");
    return 3;
  case MODE_BIGLINE: {
    char *pad = malloc(BIG_LINE + 1);
    if (!pad)
      fail(1, "out of memory");
    memset(pad, 'a', BIG_LINE);
    pad[BIG_LINE] = '\0';
    emit_step(1, step_delay);
    printf("{\"step\": 2, \"t\": 2, \"values\": {\"x\": 2}, \"pad\": \"%s\"}\n", pad);
    free(pad);
    emit_final(y);
    return 0;
  }
  case MODE_IMMORTAL:
    signal(SIGTERM, SIG_IGN);
    emit_step(1, step_delay);
    hang_forever();
    return 1;
  }
  return 1;
}

int main(int argc, char **argv)
{
  double step_delay = -1, y = 0;
  int mode = -1;
  json_t *root, *in, *v;
  const char *key;
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
    } else if (!strcmp(argv[i], "--mode")) {
      mode = parse_mode(argv[i], argv[i + 1]);
      i++;
    } else if (!strncmp(argv[i], "--mode=", 7)) {
      mode = parse_mode("--mode", argv[i] + 7);
    } else {
      usage(stderr);
      fail(2, "unknown argument '%s'", argv[i]);
    }
  }

  root = read_request();
  in = json_object_get(root, "inputs");
  if (!json_is_object(in))
    fail(2, "input line has no 'inputs' object");
  json_object_foreach(in, key, v)
  {
    if (!json_is_number(v))
      fail(2, "input '%s' is not a number", key);
    if (strcmp(key, "mode") != 0) {
      y += json_number_value(v);
    } else if (mode < 0) {
      double m = floor(json_number_value(v));
      if (!(m >= 0 && m < N_MODES))
        fail(2, "input 'mode' must be in [0, %d]", N_MODES - 1);
      mode = (int)m;
    }
  }
  if (mode < 0)
    mode = MODE_OK;
  n = parse_max_steps(root, mode == MODE_SLOW ? 1000 : 5);
  json_decref(root);
  if (!isfinite(y))
    fail(2, "the sum of the inputs is not finite");
  if (step_delay < 0)
    step_delay = mode == MODE_SLOW ? 0.2 : 0;

  return run_mode(mode, n, y, step_delay);
}
