/* Logging to stderr: one line per record with an ISO-8601 UTC timestamp, the level, the
 * worker id and the message. The level comes from SPECLINE_LOG (debug|info|warn|error,
 * default info). Thread-safe: each record is one write(2). */
#ifndef SPECLINE_LOG_H
#define SPECLINE_LOG_H

typedef enum sl_log_level { SL_LOG_DEBUG = 0, SL_LOG_INFO, SL_LOG_WARN, SL_LOG_ERROR } sl_log_level_t;

/* Sets the worker id printed on each line (copied; NULL keeps the program name) and reads
 * SPECLINE_LOG. Safe to call more than once. */
void sl_log_init(const char *worker_id);

/* The current threshold; records below it are dropped. */
sl_log_level_t sl_log_level(void);
void sl_log_set_level(sl_log_level_t level);

void sl_log(sl_log_level_t level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define SL_DEBUG(...) sl_log(SL_LOG_DEBUG, __VA_ARGS__)
#define SL_INFO(...) sl_log(SL_LOG_INFO, __VA_ARGS__)
#define SL_WARN(...) sl_log(SL_LOG_WARN, __VA_ARGS__)
#define SL_ERROR(...) sl_log(SL_LOG_ERROR, __VA_ARGS__)

#endif
