/* Small pieces the `specline` subcommands share: the usage-error line, a number of seconds
 * from an option, the quit signals and the pacing of a refresh loop (`specline top`,
 * `specline dashboard`, `specline broker`, `specline run`). */
#ifndef SPECLINE_CLI_UTIL_H
#define SPECLINE_CLI_UTIL_H

#include <stdbool.h>

/* Prints "specline CMD: MSG (see 'specline CMD --help')" on stderr; returns 2, the usage
 * exit code. cmd is the command as typed after `specline` ("top", "broker start"). */
int sl_cli_usage_error(const char *cmd, const char *msg);

/* Parses text as a whole number of seconds in [min_s, max_s] into *out (*out is written
 * even when false). False on trailing characters, no number, overflow, NaN or a value
 * out of range. */
bool sl_cli_seconds_parse(const char *text, double min_s, double max_s, double *out);

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
