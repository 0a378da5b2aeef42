/* posix_spawnp of a simulator with its stdio on three pipes, in its own session, with a
 * clean signal state (see sim_spawn.h). */
#define _GNU_SOURCE /* pipe2, POSIX_SPAWN_SETSID */

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <unistd.h>

#include "sim_spawn.h"

extern char **environ;

enum { SIM_STDIO = 3 }; /* stdin, stdout, stderr */

static void close_fds(int *fds, int n)
{
  int i;

  for (i = 0; i < n; i++) {
    if (fds[i] >= 0)
      close(fds[i]);
    fds[i] = -1;
  }
}

/* Moves *fd above the standard streams: the child's dup2 onto 0-2 must not overwrite
 * another pipe end (a worker started with a closed stdio gets low descriptors). */
static int fd_above_stdio(int *fd)
{
  int moved;

  if (*fd > STDERR_FILENO)
    return 0;
  moved = fcntl(*fd, F_DUPFD_CLOEXEC, STDERR_FILENO + 1);
  if (moved < 0)
    return errno;
  close(*fd);
  *fd = moved;
  return 0;
}

static int pipe_open(int fds[2])
{
  int rc;

  if (pipe2(fds, O_CLOEXEC) != 0)
    return errno;
  if ((rc = fd_above_stdio(&fds[0])) != 0 || (rc = fd_above_stdio(&fds[1])) != 0)
    close_fds(fds, 2);
  return rc;
}

/* child[i] becomes the simulator's descriptor i, parent[i] is the worker's end. */
static int stdio_pipes_open(int child[SIM_STDIO], int parent[SIM_STDIO])
{
  int i, rc, fds[2];

  for (i = 0; i < SIM_STDIO; i++)
    child[i] = parent[i] = -1;
  for (i = 0; i < SIM_STDIO; i++) {
    if ((rc = pipe_open(fds)) != 0) {
      close_fds(child, SIM_STDIO);
      close_fds(parent, SIM_STDIO);
      return rc;
    }
    child[i] = i == STDIN_FILENO ? fds[0] : fds[1];
    parent[i] = i == STDIN_FILENO ? fds[1] : fds[0];
  }
  return 0;
}

static int stdio_actions_init(posix_spawn_file_actions_t *fa, const int child[SIM_STDIO], const char *cwd)
{
  int i, rc;

  if ((rc = posix_spawn_file_actions_init(fa)) != 0)
    return rc;
  for (i = 0; i < SIM_STDIO; i++) {
    if ((rc = posix_spawn_file_actions_adddup2(fa, child[i], i)) != 0) {
      posix_spawn_file_actions_destroy(fa);
      return rc;
    }
  }
  /* glibc >= 2.29; the run directory (a failed chdir is the spawn's error) */
  if (cwd && (rc = posix_spawn_file_actions_addchdir_np(fa, cwd)) != 0) {
    posix_spawn_file_actions_destroy(fa);
    return rc;
  }
  return 0;
}

/* Own session (a terminate or kill reaches the simulator's children through its group),
 * empty signal mask, default action for every signal: SIG_IGN survives an exec, and a
 * simulator that ignores SIGPIPE would not die on a closed stdout. (glibc leaves its two
 * internal signals, 32 and 33, below SIGRTMIN and reserved to C libraries, ignored.) */
static int attrs_init(posix_spawnattr_t *attr)
{
  sigset_t none, all;
  int rc;

  sigemptyset(&none);
  sigfillset(&all);
  if ((rc = posix_spawnattr_init(attr)) != 0)
    return rc;
  rc = posix_spawnattr_setflags(attr, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  if (rc == 0)
    rc = posix_spawnattr_setsigmask(attr, &none);
  if (rc == 0)
    rc = posix_spawnattr_setsigdefault(attr, &all);
  if (rc != 0)
    posix_spawnattr_destroy(attr);
  return rc;
}

int sl_sim_spawn(char *const argv[], char *const envp[], const char *cwd, sl_sim_proc_t *proc)
{
  int child[SIM_STDIO], parent[SIM_STDIO];
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t attr;
  pid_t pid;
  int rc;

  if ((rc = stdio_pipes_open(child, parent)) != 0)
    return rc;
  if ((rc = attrs_init(&attr)) != 0)
    goto out_close_pipes;
  if ((rc = stdio_actions_init(&fa, child, cwd)) != 0)
    goto out_destroy_attr;
  rc = posix_spawnp(&pid, argv[0], &fa, &attr, argv, envp ? envp : environ);
  posix_spawn_file_actions_destroy(&fa);
out_destroy_attr:
  posix_spawnattr_destroy(&attr);
out_close_pipes:
  close_fds(child, SIM_STDIO);
  if (rc != 0) {
    close_fds(parent, SIM_STDIO);
    return rc;
  }
  proc->pid = pid;
  proc->in = parent[STDIN_FILENO];
  proc->out = parent[STDOUT_FILENO];
  proc->err = parent[STDERR_FILENO];
  return 0;
}
