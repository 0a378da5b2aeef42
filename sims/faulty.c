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
 * (docs/simulator-protocol.md), whose plumbing it shares with the other simulators through
 * sims/common/simio.c, and never links libspecline. */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "simio.h"

#define SIM_NAME "specline-sim-faulty"
#define BIG_LINE (SIMIO_LINE_MAX + SIMIO_LINE_MAX / 2) /* padding of mode 5's line */

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

static bool emit_step(long i, double step_delay)
{
  return simio_step(step_delay, "{\"step\": %ld, \"t\": %ld, \"values\": {\"x\": %ld}}", i, i, i);
}

static void emit_final(double y)
{
  simio_final("{\"final\": {\"y\": %.17g}}", y);
}

static void hang_forever(void)
{
  for (;;)
    pause();
}

/* Behaves as mode says (the table in the file header); returns the exit status when the
 * mode exits normally. */
static int run_mode(int mode, long n, double y, double step_delay)
{
  switch (mode) {
  case MODE_OK:
  case MODE_SLOW:
    for (long i = 1; i <= n; i++)
      if (!emit_step(i, step_delay))
        break; /* terminated */
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
    simio_fail(3, "simulated failure (mode 4)");
    return 3;
  case MODE_BIGLINE: {
    char *pad = malloc(BIG_LINE + 1);
    if (!pad)
      simio_fail(1, "out of memory");
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

static void on_mode(const char *opt, const char *val, void *mode)
{
  *(int *)mode = (int)simio_parse_long(opt, val, 0, N_MODES - 1, "a mode");
}

int main(int argc, char **argv)
{
  double step_delay = -1, delay_opt, y;
  int mode_opt = -1, mode, rc;
  json_t *root, *in, *v;
  const char *key;
  long n;

  simio_init(SIM_NAME);
  simio_parse_args(argc, argv, usage, &step_delay, "--mode", on_mode, &mode_opt);

  delay_opt = step_delay;
  /* one run per input line until stdin ends (persistent mode keeps it open) */
  for (root = simio_read_request(); root; root = simio_next_request()) {
    mode = mode_opt;
    step_delay = delay_opt;
    y = 0;
    in = simio_inputs_object(root);
    json_object_foreach(in, key, v)
    {
      if (!json_is_number(v))
        simio_fail(2, "input '%s' is not a number", key);
      if (strcmp(key, "mode") != 0) {
        y += json_number_value(v);
      } else if (mode < 0) {
        double m = floor(json_number_value(v));
        if (!(m >= 0 && m < N_MODES))
          simio_fail(2, "input 'mode' must be in [0, %d]", N_MODES - 1);
        mode = (int)m;
      }
    }
    if (mode < 0)
      mode = MODE_OK;
    n = simio_parse_max_steps(root, mode == MODE_SLOW ? 1000 : 5);
    json_decref(root);
    if (!isfinite(y))
      simio_fail(2, "the sum of the inputs is not finite");
    if (step_delay < 0)
      step_delay = mode == MODE_SLOW ? 0.2 : 0;

    if ((rc = run_mode(mode, n, y, step_delay)) != 0)
      return rc;
  }
  return 0;
}
