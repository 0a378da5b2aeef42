/* Starting a simulator process for the simulate worker without fork(). posix_spawnp (in
 * glibc a clone that shares the worker's memory until the exec) does not copy the
 * worker's page tables; on virtual machines where that copy is slow, process creation
 * was the throughput limit of short simulations. The simulator gets its own session, a
 * clean signal state and three pipes for its stdin, stdout and stderr; reaping it is the
 * caller's business.
 *
 * Thread-safety: sl_sim_spawn may be called from any thread. */
#ifndef SPECLINE_SIMULATE_SIM_SPAWN_H
#define SPECLINE_SIMULATE_SIM_SPAWN_H

#include <sys/types.h>

typedef struct sl_sim_proc {
  pid_t pid; /* also its process group: kill(-pid, sig) reaches its children */
  int in;    /* the worker's end of its stdin (write) */
  int out;   /* the worker's end of its stdout (read) */
  int err;   /* the worker's end of its stderr (read) */
} sl_sim_proc_t;

/* Starts argv[0], looked up on PATH when it has no slash, with arguments argv (NULL
 * terminated), environment envp (NULL: the worker's), in directory cwd (NULL: the
 * worker's), in a session of its own, with an empty
 * signal mask and every signal at its default action (the worker ignores SIGPIPE and
 * handles others; the simulator must not inherit that).
 *
 * Returns 0 with *proc filled: the caller owns the three descriptors (blocking,
 * close-on-exec) and must reap the pid with waitpid. Otherwise returns an errno value
 * (for a missing or non-executable program, the exec's own error; a cwd that cannot be
 * entered, chdir's) and leaves nothing
 * open and no process behind. */
int sl_sim_spawn(char *const argv[], char *const envp[], const char *cwd, sl_sim_proc_t *proc);

#endif
