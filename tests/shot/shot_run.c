/* See shot_run.h. */
#define _GNU_SOURCE
#include "shot_run.h"

#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "specline/util.h"

static char tmp_dir[256];
static pid_t tmp_owner;

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
  return remove(path);
}

/* Removes the temp dir at exit (only in the process that made it, not in forked children). */
static void tmp_cleanup(void)
{
  if (tmp_dir[0] && getpid() == tmp_owner && !getenv("SPECLINE_TEST_KEEP"))
    nftw(tmp_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

const char *shot_tmpdir(void)
{
  if (!tmp_dir[0]) {
    const char *t = getenv("TMPDIR");
    snprintf(tmp_dir, sizeof tmp_dir, "%s/specline-shot-XXXXXX", t && *t ? t : "/tmp");
    if (!mkdtemp(tmp_dir))
      abort();
    tmp_owner = getpid();
    atexit(tmp_cleanup);
  }
  return tmp_dir;
}

char *shot_write(const char *name, const char *text)
{
  char *path = sl_asprintf("%s/%s", shot_tmpdir(), name);
  FILE *f = fopen(path, "wb");
  if (!f)
    abort();
  fputs(text, f);
  fclose(f);
  return path;
}

const char *shot_example(const char *file)
{
  static char paths[4][1024];
  static int next;
  char *path = paths[next++ % 4];
  const char *src = getenv("SPECLINE_SOURCE_DIR");
  snprintf(path, sizeof paths[0], "%s/examples/oscillator-experiment/%s", src ? src : ".", file);
  return path;
}

static char *slurp(const char *path)
{
  size_t len = 0;
  char *s = sl_read_file(path, 64u << 20, &len);
  if (s && len > 0)
    return s;
  free(s);
  return sl_strdup("");
}

int shot_run(const char *const *args, char **out, char **err)
{
  char *argv[64], *opath = sl_asprintf("%s/.out", shot_tmpdir()), *epath = sl_asprintf("%s/.err", shot_tmpdir());
  const char *bin = getenv("SPECLINE_BIN_DIR");
  int argc = 0, rc = -1, status, fo, fe;
  pid_t pid;

  argv[argc++] = sl_asprintf("%s/specline", bin && *bin ? bin : ".");
  argv[argc++] = sl_strdup("shot");
  for (; *args && argc < 63; args++)
    argv[argc++] = sl_strdup(*args);
  argv[argc] = NULL;
  fflush(stdout);
  fflush(stderr);
  pid = fork();
  if (pid == 0) {
    fo = open(opath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    fe = open(epath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fo < 0 || fe < 0 || dup2(fo, 1) < 0 || dup2(fe, 2) < 0)
      _exit(127);
    execv(argv[0], argv);
    _exit(127);
  }
  if (pid > 0 && waitpid(pid, &status, 0) == pid)
    rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  if (out)
    *out = slurp(opath);
  if (err)
    *err = slurp(epath);
  while (argc > 0)
    free(argv[--argc]);
  free(opath);
  free(epath);
  return rc;
}

int shot_count(const char *hay, const char *needle)
{
  int n = 0;
  const char *p = hay;
  while ((p = strstr(p, needle))) {
    n++;
    p += strlen(needle);
  }
  return n;
}
