/* specline-sim-noop: the cheapest possible simulator, for throughput benchmarks of the line.
 * It reads the one input line of the simulator protocol (docs/simulator-protocol.md),
 * accepts any input names as long as every value is a number, and at once writes
 * {"final": {"y": <sum of the inputs>}} with no step lines; it serves one run per input line
 * until stdin ends (persistent mode), then exits 0. Bad input exits
 * 2 with a message on stderr. The protocol plumbing is shared with the other simulators
 * through sims/common/simio.c; it never links libspecline. */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <stdio.h>

#include "simio.h"

#define SIM_NAME "specline-sim-noop"

static void usage(FILE *f)
{
  fputs("usage: " SIM_NAME " [--help]\n"
        "\n"
        "No-op simulator for throughput benchmarks, speaking the specline simulator\n"
        "protocol: reads one JSON line {\"inputs\": {...}, \"max_steps\": N, ...} on stdin\n"
        "and writes one line {\"final\": {\"y\": y}} at once, no step lines.\n"
        "\n"
        "  y = sum of all input values\n"
        "\n"
        "inputs: any names, any number values (max_steps and sample_id are ignored)\n"
        "\n"
        "options:\n"
        "  --step-delay S  accepted and ignored, for drop-in use in place of others\n"
        "  --help          this text\n"
        "\n"
        "exit status: 0 ok, 1 output failure, 2 bad input or usage\n",
        f);
}

int main(int argc, char **argv)
{
  json_t *root, *in, *v;
  const char *key, *val;
  double y = 0;

  simio_init(SIM_NAME);
  for (int i = 1; i < argc; i++) {
    if (simio_is_help(argv[i])) {
      usage(stdout);
      return 0;
    } else if (simio_option(argv, &i, "--step-delay", &val) && val) {
      continue; /* accepted and ignored */
    } else {
      simio_unknown_arg(usage, argv[i]);
    }
  }
  /* one run per input line until stdin ends (persistent mode keeps it open) */
  for (root = simio_read_request(); root; root = simio_next_request()) {
    y = 0;
    in = simio_inputs_object(root);
    json_object_foreach(in, key, v)
    {
      if (!json_is_number(v))
        simio_fail(2, "input '%s' is not a number", key);
      y += json_number_value(v);
    }
    json_decref(root);
    if (!isfinite(y))
      simio_fail(2, "the sum of the inputs is not finite");
    simio_final("{\"final\": {\"y\": %.17g}}", y);
  }
  return 0;
}
