/* bench-simstamp: a pass-through simulator wrapper for the cancel-latency benchmark.
 * Appends "start <pid> <CLOCK_REALTIME seconds>" to $BENCH_SIMSTAMP_FILE (O_APPEND, one
 * write) and execs the real simulator given as its arguments, stdin/stdout/stderr and the
 * process (pid, process group) unchanged, so the worker cannot tell it from the simulator.
 * usage: bench-simstamp SIMULATOR [ARGS...] */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
  const char *f = getenv("BENCH_SIMSTAMP_FILE");
  struct timespec ts;

  clock_gettime(CLOCK_REALTIME, &ts);
  if (argc < 2) {
    fprintf(stderr, "usage: bench-simstamp SIMULATOR [ARGS...]\n");
    return 2;
  }
  if (f && *f) {
    char line[96];
    int fd = open(f, O_WRONLY | O_APPEND | O_CREAT, 0644);
    int n = snprintf(line, sizeof line, "start %d %.6f\n", (int)getpid(), (double)ts.tv_sec + ts.tv_nsec * 1e-9);
    if (fd >= 0) {
      if (write(fd, line, (size_t)n) != n) { /* the benchmark reports missing stamps */
      }
      close(fd);
    }
  }
  execvp(argv[1], argv + 1);
  perror("bench-simstamp: exec");
  return 127;
}
