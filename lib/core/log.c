/* Logging: one line per record on stderr, "2026-11-22T20:11:08.123Z info  [worker] msg". */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "specline/log.h"
#include "specline/util.h"

static sl_log_level_t g_level = SL_LOG_INFO;
static char g_worker[64] = "specline";

void sl_log_init(const char *worker_id)
{
  const char *env = getenv("SPECLINE_LOG");

  if (worker_id)
    sl_strlcpy(g_worker, worker_id, sizeof g_worker);
  if (env) {
    if (!strcasecmp(env, "debug"))
      g_level = SL_LOG_DEBUG;
    else if (!strcasecmp(env, "info"))
      g_level = SL_LOG_INFO;
    else if (!strcasecmp(env, "warn") || !strcasecmp(env, "warning"))
      g_level = SL_LOG_WARN;
    else if (!strcasecmp(env, "error"))
      g_level = SL_LOG_ERROR;
  }
}

sl_log_level_t sl_log_level(void) { return g_level; }

void sl_log_set_level(sl_log_level_t level) { g_level = level; }

void sl_log(sl_log_level_t level, const char *fmt, ...)
{
  static const char *const names[] = {"debug", "info ", "warn ", "error"};
  char line[2048];
  struct timespec ts;
  struct tm tm;
  va_list ap;
  int n;

  if (level < g_level)
    return;
  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s [%s] ", tm.tm_year + 1900,
               tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000L,
               names[level], g_worker);
  va_start(ap, fmt);
  n += vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
  va_end(ap);
  if (n > (int)sizeof line - 2)
    n = (int)sizeof line - 2;
  line[n++] = '\n';
  if (write(STDERR_FILENO, line, (size_t)n) < 0) {
    /* nowhere left to report it */
  }
}
