/* Helpers shared by the AMQP tests: opening the shared test broker of the ctest fixture
 * (SPECLINE_TEST_BROKER_DIR/broker.env), unique names per run, pumping several blocking
 * sessions until a condition holds, closing a connection from the broker side with
 * rabbitmqctl, and capturing the log (stderr) of a stretch of a test. */
#ifndef SPECLINE_TESTS_AMQP_TEST_H
#define SPECLINE_TESTS_AMQP_TEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdbool.h>
#include <unistd.h>

#include "sltest.h"
#include "specline/amqp.h"
#include "specline/broker.h"
#include "specline/util.h"

/* The shared broker, or NULL (the caller skips) when the fixture dir is not set. */
static inline sl_local_broker_t *amqp_test_broker(void)
{
  const char *dir = getenv("SPECLINE_TEST_BROKER_DIR");
  sl_error_t err;
  sl_local_broker_t *b;

  if (!dir || !*dir)
    return NULL;
  b = sl_local_broker_open(dir, &err);
  if (!b)
    fprintf(stderr, "  cannot open the test broker in '%s': %s\n", dir, err.message);
  return b;
}

static inline sl_local_broker_t **amqp_test__shared(void)
{
  static sl_local_broker_t *b;

  return &b;
}

static inline void amqp_test__shared_release(void)
{
  sl_local_broker_destroy(*amqp_test__shared(), false);
}

/* The shared broker opened once per test program (released at exit), or NULL (the caller
 * skips) when the fixture dir is not set. */
static inline sl_local_broker_t *amqp_test_shared_broker(void)
{
  sl_local_broker_t **b = amqp_test__shared();

  if (!*b) {
    *b = amqp_test_broker();
    if (*b)
      atexit(amqp_test__shared_release);
  }
  return *b;
}

/* The number n of a test message "m-<n>" (a body under 32 bytes), or -1. */
static inline int amqp_test_body_id(const sl_amqp_delivery_t *d)
{
  char buf[32];

  if (d->len <= 2 || d->len >= sizeof buf)
    return -1;
  memcpy(buf, d->body, d->len);
  buf[d->len] = '\0';
  return atoi(buf + 2);
}

/* Counts one publisher confirm: into *acked_n when the broker took the message, else into
 * *nacked_n. */
static inline void amqp_test_count_confirm(bool acked, int *acked_n, int *nacked_n)
{
  if (acked)
    (*acked_n)++;
  else
    (*nacked_n)++;
}

/* "amqptest-<pid>-<tag>" */
static inline void amqp_test_name(char *out, size_t n, const char *tag)
{
  snprintf(out, n, "amqptest-%ld-%s", (long)getpid(), tag);
}

/* Runs every session until *flag becomes nonzero or timeout_s passes; returns *flag. */
static inline int amqp_test_pump(sl_amqp_t **ss, size_t n, volatile int *flag, double timeout_s)
{
  double deadline = sl_mono() + timeout_s;
  sl_error_t err;
  size_t i;

  while (!*flag && sl_mono() < deadline)
    for (i = 0; i < n; i++)
      if (!sl_amqp_run_once(ss[i], 5, &err))
        fprintf(stderr, "  run_once: %s\n", err.message);
  return *flag;
}

/* Closes, from the broker side, every connection whose client-given name is `name`
 * (3.10 lists it inside client_properties). Returns how many, -1 on error. */
static inline int amqp_test_close_connection(sl_local_broker_t *b, const char *name)
{
  const char *list[] = {"list_connections", "-q", "--no-table-headers", "pid", "client_properties", NULL};
  char *out = NULL, *line, *next, needle[300];
  sl_error_t err;
  int closed = 0;

  snprintf(needle, sizeof needle, "{\"connection_name\",\"%s\"}", name);
  if (sl_local_broker_ctl(b, list, &out, &err) != 0 || !out) {
    fprintf(stderr, "  list_connections failed\n");
    free(out);
    return -1;
  }
  for (line = out; line && *line; line = next) {
    char *tab;
    next = strchr(line, '\n');
    if (next)
      *next++ = '\0';
    tab = strchr(line, '\t');
    if (!tab || !strstr(tab, needle))
      continue;
    *tab = '\0';
    {
      const char *cl[] = {"close_connection", line, "test: forced by amqp test", NULL};
      if (sl_local_broker_ctl(b, cl, NULL, &err) == 0)
        closed++;
    }
  }
  free(out);
  return closed;
}

/* The log of a stretch of a test: stderr goes to a temporary file in between. */
typedef struct amqp_test_log {
  int saved;
  char path[64];
} amqp_test_log_t;

static inline bool amqp_test_log_begin(amqp_test_log_t *l)
{
  int fd;

  snprintf(l->path, sizeof l->path, "/tmp/sl-amqp-log-XXXXXX");
  fd = mkstemp(l->path);
  if (fd < 0)
    return false;
  fflush(stderr);
  l->saved = dup(2);
  dup2(fd, 2);
  close(fd);
  return true;
}

/* Restores stderr, echoes the captured text there, and returns it (malloc'd, never NULL). */
static inline char *amqp_test_log_end(amqp_test_log_t *l)
{
  char *text;

  fflush(stderr);
  dup2(l->saved, 2);
  close(l->saved);
  text = sl_read_file(l->path, 1 << 20, NULL);
  unlink(l->path);
  if (!text)
    text = sl_strdup("");
  fputs(text, stderr);
  return text;
}

#endif
