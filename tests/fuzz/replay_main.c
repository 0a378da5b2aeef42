/* Replay driver for the fuzz targets in ordinary builds: linked with one fuzz_<x>.c, it
 * feeds LLVMFuzzerTestOneInput every regular file found under the directories given on
 * the command line (the target's corpus and, for message kinds, the golden vectors), plus
 * a few built-in edge inputs, so the harness code and the decoders run under every CI
 * build (and under its sanitizers) without clang or libFuzzer. A crash is a test failure. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "specline/util.h"

#define REPLAY_MAX_INPUT (4u << 20)
#define REPLAY_MAX_DEPTH 4

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static long replay_path(const char *path, int depth)
{
  struct stat st;
  struct dirent *de;
  DIR *d;
  char *body, *child;
  size_t len;
  long n = 0;

  if (stat(path, &st) != 0)
    return 0;
  if (S_ISREG(st.st_mode)) {
    body = sl_read_file(path, REPLAY_MAX_INPUT, &len);
    if (!body)
      return 0;
    LLVMFuzzerTestOneInput((const uint8_t *)body, len);
    free(body);
    return 1;
  }
  if (!S_ISDIR(st.st_mode) || depth > REPLAY_MAX_DEPTH || !(d = opendir(path)))
    return 0;
  while ((de = readdir(d)) != NULL) {
    if (de->d_name[0] == '.')
      continue;
    child = sl_asprintf("%s/%s", path, de->d_name);
    n += replay_path(child, depth + 1);
    free(child);
  }
  closedir(d);
  return n;
}

int main(int argc, char **argv)
{
  static const char *const builtin[] = {"", "{", "{}", "[]", "null", "{\"v\":1}", "\"\\u0000\"",
                                        "{\"v\":1,\"kind\":\"x\"}", "1e999", "[[[[[[[[[[[[]]]]]]]]]]]]"};
  long n = 0;
  size_t i;
  int a;

  for (i = 0; i < sizeof builtin / sizeof builtin[0]; i++, n++)
    LLVMFuzzerTestOneInput((const uint8_t *)builtin[i], strlen(builtin[i]));
  for (a = 1; a < argc; a++) {
    long k = replay_path(argv[a], 0);
    printf("replayed %ld inputs from %s\n", k, argv[a]);
    n += k;
  }
  printf("%ld inputs replayed without a crash\n", n);
  return 0;
}
