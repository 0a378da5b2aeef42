/* Small pieces the `specline` subcommands share: the usage-error line, a number of seconds
 * from an option, the quit signals and the pacing of a refresh loop (`specline top`,
 * `specline dashboard`, `specline broker`, `specline run`). */
#ifndef SPECLINE_CLI_UTIL_H
#define SPECLINE_CLI_UTIL_H

#include <getopt.h>
#include <stdbool.h>

/* Prints "specline CMD: MSG (see 'specline CMD --help')" on stderr; returns 2, the usage
 * exit code. cmd is the command as typed after `specline` ("top", "broker start"). */
int sl_cli_usage_error(const char *cmd, const char *msg);

/* Parses text as a whole number of seconds in [min_s, max_s] into *out (*out is written
 * even when false). False on trailing characters, no number, overflow, NaN or a value
 * out of range. */
bool sl_cli_seconds_parse(const char *text, double min_s, double max_s, double *out);

/* The operand and options of a live reader of a campaign (`specline top`, `specline
 * dashboard`): CONFIG, --interval S, --once, --mgmt-url URL, --broker-dir DIR. */
typedef struct sl_cli_watch {
  const char *config;     /* the one operand */
  const char *mgmt_url;   /* --mgmt-url, NULL when not given */
  const char *broker_dir; /* --broker-dir, NULL when not given */
  double interval_s;      /* --interval; the command sets its default first */
  bool once;              /* --once */
} sl_cli_watch_t;

/* The getopt_long entries of those options, for a command's table. */
/* clang-format off */
#define SL_CLI_WATCH_OPTIONS                                                                       \
  {"interval", required_argument, NULL, 'i'}, {"once", no_argument, NULL, '1'},                    \
      {"mgmt-url", required_argument, NULL, 'm'}, {"broker-dir", required_argument, NULL, 'b'}
/* clang-format on */

/* Takes getopt_long's answer c, with its optarg arg, for a command's options that are not
 * its own: one of SL_CLI_WATCH_OPTIONS into *w (--interval within [min_interval_s, 3600]).
 * Returns -1 when taken; 2, after sl_cli_usage_error(cmd, ...), for a bad --interval or an
 * unknown option. */
int sl_cli_watch_option(const char *cmd, int c, const char *arg, double min_interval_s, sl_cli_watch_t *w);

/* After getopt_long: the one CONFIG operand (argv[optind]) into w->config. Returns -1 when
 * there is exactly one, else 2 after sl_cli_usage_error(cmd, "needs exactly one CONFIG"). */
int sl_cli_watch_config(const char *cmd, int argc, char **argv, sl_cli_watch_t *w);

/* Calls handler on SIGINT and SIGTERM and ignores SIGPIPE (a closed pipe or socket is an
 * error return, not a death). Process-wide: call from the main thread before starting
 * any other. */
void sl_cli_signals_catch(void (*handler)(int));

/* Clears the quit request, then makes SIGINT and SIGTERM request a quit (see
 * sl_cli_quit_requested) and ignores SIGPIPE, as sl_cli_signals_catch. For a command
 * with one loop to leave; the request is process-wide. */
void sl_cli_quit_catch(void);

/* True once SIGINT or SIGTERM has come since sl_cli_quit_catch. Async-signal-safe. */
bool sl_cli_quit_requested(void);

/* The monotonic time of a refresh loop's next round: next + interval_s, or now +
 * interval_s when that has already passed (a slow round does not race to catch up). */
double sl_cli_next_tick(double next, double interval_s);

#endif
