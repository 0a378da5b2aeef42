/* A tiny test runner: tests are listed in one table per executable, filtered by a name
 * substring given as argv[1], and the run ends with "N passed, N failed" (", N skipped").
 * A test that cannot run here (no GPU, no MongoDB URI) calls SL_SKIP with a reason; a
 * skip is never counted as a pass. */
#ifndef SPECLINE_SLTEST_H
#define SPECLINE_SLTEST_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct sl_test_case {
  const char *name;
  void (*fn)(void);
} sl_test_case_t;

extern int sl_test_failures_; /* failures in the current test */
extern int sl_test_skipped_;  /* set by SL_SKIP */

#define SL_CHECK(cond)                                                                   \
  do {                                                                                   \
    if (!(cond)) {                                                                       \
      fprintf(stderr, "  %s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);         \
      sl_test_failures_++;                                                               \
    }                                                                                    \
  } while (0)

#define SL_CHECKF(cond, ...)                                                             \
  do {                                                                                   \
    if (!(cond)) {                                                                       \
      fprintf(stderr, "  %s:%d: check failed: %s: ", __FILE__, __LINE__, #cond);        \
      fprintf(stderr, __VA_ARGS__);                                                      \
      fputc('\n', stderr);                                                               \
      sl_test_failures_++;                                                               \
    }                                                                                    \
  } while (0)

/* Fails the test and returns from it. */
#define SL_REQUIRE(cond)                                                                 \
  do {                                                                                   \
    if (!(cond)) {                                                                       \
      fprintf(stderr, "  %s:%d: required: %s\n", __FILE__, __LINE__, #cond);             \
      sl_test_failures_++;                                                               \
      return;                                                                            \
    }                                                                                    \
  } while (0)

#define SL_CHECK_INT(a, b)                                                               \
  do {                                                                                   \
    long long a_ = (long long)(a), b_ = (long long)(b);                                  \
    if (a_ != b_) {                                                                      \
      fprintf(stderr, "  %s:%d: %s == %s: %lld != %lld\n", __FILE__, __LINE__, #a, #b,   \
              a_, b_);                                                                   \
      sl_test_failures_++;                                                               \
    }                                                                                    \
  } while (0)

#define SL_CHECK_STR(a, b)                                                               \
  do {                                                                                   \
    const char *a_ = (a), *b_ = (b);                                                     \
    if (!a_ || !b_ || strcmp(a_, b_) != 0) {                                             \
      fprintf(stderr, "  %s:%d: %s == %s: '%s' != '%s'\n", __FILE__, __LINE__, #a, #b,   \
              a_ ? a_ : "(null)", b_ ? b_ : "(null)");                                   \
      sl_test_failures_++;                                                               \
    }                                                                                    \
  } while (0)

#define SL_CHECK_NEAR(a, b, tol)                                                         \
  do {                                                                                   \
    double a_ = (a), b_ = (b);                                                           \
    if (!(fabs(a_ - b_) <= (tol))) {                                                     \
      fprintf(stderr, "  %s:%d: %s ~ %s: %g != %g (tol %g)\n", __FILE__, __LINE__, #a,   \
              #b, a_, b_, (double)(tol));                                                \
      sl_test_failures_++;                                                               \
    }                                                                                    \
  } while (0)

#define SL_SKIP(...)                                                                     \
  do {                                                                                   \
    fprintf(stderr, "  SKIP: ");                                                         \
    fprintf(stderr, __VA_ARGS__);                                                        \
    fputc('\n', stderr);                                                                 \
    sl_test_skipped_ = 1;                                                                \
    return;                                                                              \
  } while (0)

/* Runs the table; returns the process exit status (0 = all ran passed). A run where every
 * selected test skipped exits 77 (ctest SKIP_RETURN_CODE). */
int sl_test_run(const sl_test_case_t *tests, int argc, char **argv);

#define SL_TEST_MAIN(...)                                                                \
  int main(int argc, char **argv)                                                        \
  {                                                                                      \
    static const sl_test_case_t tests_[] = {__VA_ARGS__, {NULL, NULL}};                  \
    return sl_test_run(tests_, argc, argv);                                              \
  }

#define SL_T(fn) {#fn, fn}

/* Runs the shell command line `cmd`, reads its stdout to the end into *out (malloc'd, ""
 * at least) and returns its exit status, or -1 when it could not run or was killed. */
int sl_test_capture(const char *cmd, char **out);

#endif
