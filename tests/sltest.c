/* The runner behind sltest.h. */
#include <sys/wait.h>
#include <time.h>

#include "sltest.h"
#include "specline/util.h"

int sl_test_failures_;
int sl_test_skipped_;

int sl_test_run(const sl_test_case_t *tests, int argc, char **argv)
{
  const char *filter = argc > 1 ? argv[1] : NULL;
  int passed = 0, failed = 0, skipped = 0;
  const sl_test_case_t *t;

  setvbuf(stdout, NULL, _IOLBF, 0);
  for (t = tests; t->name; t++) {
    struct timespec a, b;
    if (filter && !strstr(t->name, filter))
      continue;
    sl_test_failures_ = 0;
    sl_test_skipped_ = 0;
    clock_gettime(CLOCK_MONOTONIC, &a);
    t->fn();
    clock_gettime(CLOCK_MONOTONIC, &b);
    double ms = (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6;
    if (sl_test_failures_) {
      failed++;
      printf("FAIL %s (%.0f ms)\n", t->name, ms);
    } else if (sl_test_skipped_) {
      skipped++;
      printf("SKIP %s\n", t->name);
    } else {
      passed++;
      printf("ok   %s (%.0f ms)\n", t->name, ms);
    }
  }
  printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
  if (failed)
    return 1;
  if (passed == 0 && skipped > 0)
    return 77;
  return 0;
}

int sl_test_capture(const char *cmd, char **out)
{
  FILE *p = popen(cmd, "r");
  char chunk[4096];
  sl_buf_t b;
  size_t n;
  int st;

  sl_buf_init(&b);
  if (!p) {
    *out = sl_buf_detach(&b);
    return -1;
  }
  while ((n = fread(chunk, 1, sizeof chunk, p)) > 0)
    sl_buf_append(&b, chunk, n);
  st = pclose(p);
  *out = sl_buf_detach(&b);
  return st != -1 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}
