/* Helpers of the shot tests: temp files, and the built `specline shot` run as a child
 * process ($SPECLINE_BIN_DIR/specline) with its stdout and stderr captured. */
#ifndef SPECLINE_TEST_SHOT_RUN_H
#define SPECLINE_TEST_SHOT_RUN_H

#include <stdbool.h>

/* A fresh temp dir (static string) for this process, removed at exit unless
 * SPECLINE_TEST_KEEP is set. */
const char *shot_tmpdir(void);
/* Writes text to DIR/name; returns the malloc'd path. */
char *shot_write(const char *name, const char *text);
/* A file of examples/oscillator-experiment (static string, valid for 4 calls). */
const char *shot_example(const char *file);
/* Runs `specline shot` with args (NULL-terminated, without "shot"); *out / *err receive
 * what it printed (malloc'd, either pointer may be NULL). Returns its exit code, -1 when it
 * could not run or was killed. */
int shot_run(const char *const *args, char **out, char **err);
/* Counts occurrences of needle in hay. */
int shot_count(const char *hay, const char *needle);

#endif
