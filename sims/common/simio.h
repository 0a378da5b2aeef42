/* simio: the simulator-protocol plumbing shared by the built-in simulators in sims/, compiled
 * into each of them (sims/CMakeLists.txt) so that every simulator stays a stand-alone user
 * program that knows only the protocol (docs/simulator-protocol.md) and never links
 * libspecline. It reads and checks the one bounded JSON input line, validates inputs
 * against a simulator's table of names, parses the common options (--help, --step-delay
 * and numeric option values), puts SIGTERM and SIGPIPE back to their default action, and
 * writes step and final lines with a flush after each. A simulator serves one run per
 * input line until stdin ends (simio_read_request, then simio_next_request), which is both
 * modes of the protocol: the worker closes stdin after the one line of a spawned run, and
 * keeps it open for the next lines of a persistent one. Between steps simio_step watches
 * stdin for the terminate control line. Every error is reported on stderr
 * as "<simulator name>: <message>" followed by exit(status): 2 for bad input or usage, 1
 * for output failures, as the protocol asks. Single-threaded, like the simulators. */
#ifndef SIMIO_H
#define SIMIO_H

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>

#define SIMIO_LINE_MAX (1024 * 1024) /* longest accepted input line, bytes */
#define SIMIO_STEPS_MAX 100000000L   /* largest accepted max_steps */

/* One entry of a simulator's input table: the name in "inputs", its recommended design
 * range (documentation only: values outside are accepted) and a one-line description. */
struct simio_input {
  const char *name;
  double lo, hi;
  const char *doc;
};

/* Records name (a string literal, borrowed for the life of the program) as the prefix of
 * every error message, and gives SIGTERM and SIGPIPE their default action, unblocking
 * SIGTERM, so that both end the run even when the parent ignored or blocked them. Call
 * first in main(). */
void simio_init(const char *name);

/* Writes "<name>: <fmt ...>\n" on stderr and exits with status. Never returns. */
void simio_fail(int status, const char *fmt, ...)
  __attribute__((format(printf, 2, 3), noreturn));

/* Returns whether arg asks for the help text ("--help" or "-h"). */
bool simio_is_help(const char *arg);

/* Matches argv[*i] against the option name given as "--name V" or "--name=V". On a match,
 * stores V in *value (NULL when "--name" is the last argument; borrowed from argv),
 * advances *i past a separate value and returns true; otherwise returns false. */
bool simio_option(char **argv, int *i, const char *name, const char **value);

/* Handles argv[*i] when it is an option every simulator shares: "--help" or "-h" prints
 * usage(stdout) and exits 0; "--step-delay S" or "--step-delay=S" stores S, checked by
 * simio_parse_seconds(), in *step_delay and advances *i past a separate value. Returns
 * whether argv[*i] was such an option. */
bool simio_common_option(char **argv, int *i, void (*usage)(FILE *), double *step_delay);

/* Prints usage(stderr) and fails with status 2 on the unknown argument arg. */
void simio_unknown_arg(void (*usage)(FILE *), const char *arg) __attribute__((noreturn));

/* Walks argv[1..argc-1] in order: the common options (simio_common_option), then the
 * option name ("--name V" or "--name=V"), whose value (NULL when it is the last argument)
 * is handed to on_option(name, value, ud) at each occurrence; any other argument fails
 * (simio_unknown_arg). For a simulator with one option of its own. */
void simio_parse_args(int argc, char **argv, void (*usage)(FILE *), double *step_delay, const char *name,
                      void (*on_option)(const char *name, const char *value, void *ud), void *ud);

/* Parses the value s of option opt as seconds in [0, 3600]; fails with status 2 when s is
 * NULL or not such a number. */
double simio_parse_seconds(const char *opt, const char *s);

/* Parses the value s of option opt as a finite number; fails with status 2 otherwise. */
double simio_parse_number(const char *opt, const char *s);

/* Parses the value s of option opt as a decimal integer in [lo, hi]; fails with status 2
 * otherwise, saying "is not <what> in [lo, hi]" (what: "an integer", "a mode"). */
long simio_parse_long(const char *opt, const char *s, long lo, long hi, const char *what);

/* Reads the first input line from stdin (at most SIMIO_LINE_MAX bytes) and returns it parsed
 * as a JSON object, a new reference the caller frees with json_decref(). Fails with status
 * 2 on a missing, over-long or non-object line, 1 when out of memory. */
json_t *simio_read_request(void);

/* The next run's input line as simio_read_request, or NULL at the end of stdin. Control
 * lines {"terminate": true} read between runs (their run ended first) are skipped. */
json_t *simio_next_request(void);

/* The next run's request for a simulator with a table of numeric inputs: the first call
 * reads as simio_read_request (failing when stdin has no line at all), later ones as
 * simio_next_request; fills vals as simio_parse_inputs and *max_steps as
 * simio_parse_max_steps(root, dflt_steps), and frees the request. Returns false at the end
 * of stdin. */
bool simio_next_run(const struct simio_input *table, int n, long dflt_steps, double *vals, long *max_steps);

/* Whether the current run was asked to stop by a terminate control line (persistent mode):
 * the simulator should write its final line now (simio_final writes an empty one). */
bool simio_stopped(void);

/* Returns root's "inputs" object (borrowed); fails with status 2 when there is none. */
json_t *simio_inputs_object(json_t *root);

/* Fills vals[0..n-1] from root's "inputs" in the order of table[0..n-1]: every name must be
 * in the table, every value a number and no name missing, else fails with status 2. */
void simio_parse_inputs(json_t *root, const struct simio_input *table, int n, double *vals);

/* Returns root's "max_steps", or dflt when it is absent or null; fails with status 2 when it
 * is not an integer in [1, SIMIO_STEPS_MAX]. */
long simio_parse_max_steps(json_t *root, long dflt);

/* The middle of a usage text on f: the line "inputs (all required; ...):", table[0..n-1]
 * one "  <name> [lo, hi]  doc" line each, the name padded to width, then an empty line and
 * "options:". */
void simio_usage_inputs(FILE *f, const struct simio_input *table, int n, int width);

/* The end of a simulator's usage text: the --step-delay line (SIMIO_USAGE_STEP_DELAY),
 * then --help and the exit statuses (SIMIO_USAGE_TAIL), as string literals to paste into a
 * format. */
#define SIMIO_USAGE_STEP_DELAY "  --step-delay S  sleep S seconds after each output step (tests)\n"
#define SIMIO_USAGE_TAIL                                                                  \
  "  --help          this text\n"                                                       \
  "\n"                                                                                   \
  "exit status: 0 ok, 1 output or numerical failure, 2 bad input or usage;\n"           \
  "SIGTERM ends the run at once (default action)\n"

/* Sleeps s seconds (nothing when s <= 0), resuming after signals that are handled. */
void simio_sleep(double s);

/* Writes one line made from fmt (a step line, without the newline) on stdout, flushes it
 * and then waits step_delay seconds, watching stdin for a terminate control line; fails
 * with status 1 when stdout cannot be written. Returns false once the run was asked to
 * stop (then end the run: simio_final). */
bool simio_step(double step_delay, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Writes the final line made from fmt (without the newline) on stdout and flushes it; fails
 * with status 1 when stdout cannot be written. When the run was asked to stop it writes
 * {"final": {}} instead (a terminated run's outputs are not used). */
void simio_final(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
