/* specline-sim-noop: the cheapest possible simulator, for throughput benchmarks of the line.
 * It reads the one input line of the simulator protocol (docs/simulator-protocol.md),
 * accepts any input names as long as every value is a number, and at once writes
 * {"final": {"y": <sum of the inputs>}} with no step lines, then exits 0. Bad input exits
 * 2 with a message on stderr. It never links libspecline. */
#define _POSIX_C_SOURCE 200809L

#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SIM_NAME "specline-sim-noop"
#define SIM_LINE_MAX (1024 * 1024) /* longest accepted input line, bytes */

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

int main(int argc, char **argv)
{
  json_t *root, *in, *v;
  const char *key;
  double y = 0;

  signal(SIGTERM, SIG_DFL);
  signal(SIGPIPE, SIG_DFL);
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      usage(stdout);
      return 0;
    } else if (!strcmp(argv[i], "--step-delay") && i + 1 < argc) {
      i++;
    } else if (!strncmp(argv[i], "--step-delay=", 13)) {
      continue;
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
    y += json_number_value(v);
  }
  json_decref(root);
  if (!isfinite(y))
    fail(2, "the sum of the inputs is not finite");
  printf("{\"final\": {\"y\": %.17g}}\n", y);
  if (fflush(stdout) != 0)
    fail(1, "cannot write to stdout");
  return 0;
}
