/* Small pieces the `specline` subcommands share (cli_util.h): the usage-error line, a
 * number of seconds from an option, the quit signals and the pacing of a refresh loop. */
#include "cli_util.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "specline/util.h"

static volatile sig_atomic_t quit_requested;

static void on_quit_signal(int signum)
{
  (void)signum;
  quit_requested = 1;
}

int sl_cli_usage_error(const char *cmd, const char *msg)
{
  fprintf(stderr, "specline %s: %s (see 'specline %s --help')\n", cmd, msg, cmd);
  return 2;
}

bool sl_cli_seconds_parse(const char *text, double min_s, double max_s, double *out)
{
  char *end;

  errno = 0;
  *out = strtod(text, &end);
  return !(errno || end == text || *end || !(*out >= min_s) || *out > max_s);
}

int sl_cli_watch_option(const char *cmd, int c, const char *arg, double min_interval_s, sl_cli_watch_t *w)
{
  char msg[80];

  switch (c) {
  case 'i':
    if (sl_cli_seconds_parse(arg, min_interval_s, 3600, &w->interval_s))
      return -1;
    snprintf(msg, sizeof msg, "--interval needs a number of seconds between %g and 3600", min_interval_s);
    return sl_cli_usage_error(cmd, msg);
  case '1':
    w->once = true;
    return -1;
  case 'm':
    w->mgmt_url = arg;
    return -1;
  case 'b':
    w->broker_dir = arg;
    return -1;
  default:
    return sl_cli_usage_error(cmd, "unknown option");
  }
}

int sl_cli_watch_config(const char *cmd, int argc, char **argv, sl_cli_watch_t *w)
{
  if (optind != argc - 1)
    return sl_cli_usage_error(cmd, "needs exactly one CONFIG");
  w->config = argv[optind];
  return -1;
}

void sl_cli_signals_catch(void (*handler)(int))
{
  struct sigaction sa;

  memset(&sa, 0, sizeof sa);
  sa.sa_handler = handler;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);
}

void sl_cli_quit_catch(void)
{
  quit_requested = 0;
  sl_cli_signals_catch(on_quit_signal);
}

bool sl_cli_quit_requested(void)
{
  return quit_requested != 0;
}

double sl_cli_next_tick(double next, double interval_s)
{
  next += interval_s;
  if (next < sl_mono())
    next = sl_mono() + interval_s;
  return next;
}
