/* sl_buf: detaching a buffer always gives a terminated string, empty ones included (an empty
 * one gave unterminated heap bytes: a command with no output read as garbage); sl_vasprintf
 * formats from a va_list. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "sltest.h"
#include "specline/util.h"

static void test_detach_empty_is_terminated(void)
{
  for (int i = 0; i < 50; i++) {
    sl_buf_t b;
    char *s;
    /* dirty the heap so an unterminated block would show */
    char *junk = malloc(64);
    memset(junk, 'x', 64);
    free(junk);
    sl_buf_init(&b);
    s = sl_buf_detach(&b);
    SL_REQUIRE(s != NULL);
    SL_CHECK_STR(s, "");
    free(s);
  }
}

static void test_append_and_detach(void)
{
  sl_buf_t b;
  char *s;

  sl_buf_init(&b);
  sl_buf_append(&b, "abc", 3);
  sl_buf_printf(&b, "-%d-", 42);
  s = sl_buf_detach(&b);
  SL_CHECK_STR(s, "abc-42-");
  SL_CHECK(b.data == NULL && b.len == 0); /* detached: the buffer is empty again */
  free(s);
}

static char *vfmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* sl_vasprintf of the arguments, twice (through a va_copy): both must agree. */
static char *vfmt(const char *fmt, ...)
{
  va_list ap, again;
  char *s, *t;

  va_start(ap, fmt);
  va_copy(again, ap);
  s = sl_vasprintf(fmt, ap);
  t = sl_vasprintf(fmt, again);
  va_end(again);
  va_end(ap);
  SL_CHECK_STR(s, t);
  free(t);
  return s;
}

static void test_vasprintf(void)
{
  char big[3000], *s;

  s = vfmt("%s=%d %.2f", "k", -7, 0.125);
  SL_CHECK_STR(s, "k=-7 0.12");
  free(s);
  s = vfmt("%s", "");
  SL_REQUIRE(s != NULL);
  SL_CHECK_STR(s, "");
  free(s);
  memset(big, 'y', sizeof big - 1); /* longer than any first guess of the buffer */
  big[sizeof big - 1] = '\0';
  s = vfmt("<%s>", big);
  SL_REQUIRE(s != NULL);
  SL_CHECK_INT(strlen(s), sizeof big + 1);
  SL_CHECK(s[0] == '<' && s[sizeof big] == '>' && s[1] == 'y');
  free(s);
}

SL_TEST_MAIN(SL_T(test_detach_empty_is_terminated), SL_T(test_append_and_detach), SL_T(test_vasprintf))
