/* A local RabbitMQ for single-machine runs and tests: Debian's rabbitmq-server started on
 * 127.0.0.1 with its own node name, data, logs, config, Erlang cookie, epmd and free ports,
 * all under one directory DIR, in its own process group (session) so that stop and kill
 * reach every process of it. As root, the server and rabbitmqctl run as the `rabbitmq`
 * user (setuid in the child, not Debian's su wrapper) with HOME=DIR, so both read the same
 * DIR/.erlang.cookie. Layout of DIR: rabbitmq.conf, enabled_plugins, rabbitmq-env.conf
 * (empty: keeps /etc/rabbitmq out), .erlang.cookie, mnesia/, log/ (startup.log holds the
 * server's stdout and stderr), rabbit.pid, tls/ (copies of the PEM files) and broker.env,
 * which other processes read with sl_local_broker_open(). */
#define _GNU_SOURCE 1 /* pipe2 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "dev-private.h"
#include "specline/broker.h"
#include "specline/log.h"
#include "specline/util.h"

#define RABBITMQ_SBIN "/usr/lib/rabbitmq/bin"
#define ENV_MAX 24

/* Who the broker's processes run as: the rabbitmq user when we are root, else ourselves. */
typedef struct broker_user {
  bool switch_user;
  uid_t uid;
  gid_t gid;
} broker_user_t;

/* ---- small helpers ---- */

static void sleep_s(double s)
{
  struct timespec ts;

  ts.tv_sec = (time_t)s;
  ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
  while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
    ;
}

static bool user_resolve(broker_user_t *u, sl_error_t *err)
{
  struct passwd *pw;

  u->switch_user = false;
  u->uid = geteuid();
  u->gid = getegid();
  if (geteuid() != 0)
    return true;
  pw = getpwnam("rabbitmq");
  if (!pw) {
    sl_error_set(err, SL_ERR_SYS, ENOENT, "no 'rabbitmq' user: is Debian's rabbitmq-server installed?");
    return false;
  }
  u->switch_user = true;
  u->uid = pw->pw_uid;
  u->gid = pw->pw_gid;
  return true;
}

/* In a forked child: become the broker user. Async-signal-safe calls only. */
static int user_become(const broker_user_t *u)
{
  if (!u->switch_user)
    return 0;
  if (setgroups(1, &u->gid) != 0 || setgid(u->gid) != 0 || setuid(u->uid) != 0)
    return -1;
  return 0;
}

static bool path_is_safe(const char *p)
{
  const char *c;

  for (c = p; *c; c++)
    if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
          strchr("/._-+@", *c)))
      return false;
  return true;
}

static bool mkdir_p(const char *path, mode_t mode, sl_error_t *err)
{
  char buf[PATH_MAX];
  char *p;

  if (!sl_strlcpy(buf, path, sizeof buf)) {
    sl_error_set(err, SL_ERR_SYS, ENAMETOOLONG, "path too long: '%s'", path);
    return false;
  }
  for (p = buf + 1; *p; p++) {
    if (*p != '/')
      continue;
    *p = '\0';
    if (mkdir(buf, mode) != 0 && errno != EEXIST)
      goto fail;
    *p = '/';
  }
  if (mkdir(buf, mode) != 0 && errno != EEXIST)
    goto fail;
  return true;
fail:
  sl_error_set(err, SL_ERR_SYS, errno, "cannot create directory '%s': %s", buf, strerror(errno));
  return false;
}

static bool file_write(const char *path, const char *text, mode_t mode, sl_error_t *err)
{
  size_t len = strlen(text), off = 0;
  ssize_t n;
  int fd;

  fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0)
    goto fail;
  while (off < len) {
    n = write(fd, text + off, len - off);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      close(fd);
      goto fail;
    }
    off += (size_t)n;
  }
  if (fchmod(fd, mode) != 0 || close(fd) != 0)
    goto fail;
  return true;
fail:
  sl_error_set(err, SL_ERR_SYS, errno, "cannot write '%s': %s", path, strerror(errno));
  return false;
}

/* Recursively removes `path` (no error if it does not exist). */
static void tree_remove(const char *path)
{
  struct stat st;
  struct dirent *e;
  DIR *d;
  char *sub;

  if (lstat(path, &st) != 0)
    return;
  if (S_ISDIR(st.st_mode)) {
    d = opendir(path);
    if (d) {
      while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
          continue;
        sub = sl_asprintf("%s/%s", path, e->d_name);
        tree_remove(sub);
        free(sub);
      }
      closedir(d);
    }
    rmdir(path);
  } else {
    unlink(path);
  }
}

static void tree_chown(const char *path, uid_t uid, gid_t gid)
{
  struct stat st;
  struct dirent *e;
  DIR *d;
  char *sub;

  if (lstat(path, &st) != 0)
    return;
  if (lchown(path, uid, gid) != 0)
    SL_DEBUG("cannot chown '%s': %s", path, strerror(errno));
  if (!S_ISDIR(st.st_mode))
    return;
  d = opendir(path);
  if (!d)
    return;
  while ((e = readdir(d)) != NULL) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
      continue;
    sub = sl_asprintf("%s/%s", path, e->d_name);
    tree_chown(sub, uid, gid);
    free(sub);
  }
  closedir(d);
}

static uint64_t rng_next(void)
{
  static uint64_t state;

  if (!state)
    state = sl_mono_ns() ^ ((uint64_t)getpid() << 32) ^ (uint64_t)time(NULL);
  state ^= state << 13;
  state ^= state >> 7;
  state ^= state << 17;
  return state;
}

static bool port_bindable(int port)
{
  struct sockaddr_in a;
  int fd, one = 1;
  bool ok;

  fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return false;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ok = bind(fd, (struct sockaddr *)&a, sizeof a) == 0;
  close(fd);
  return ok;
}

/* A free loopback port in [20000, 32000) (below the usual ephemeral range), not in taken. */
static int port_pick(const int *taken, size_t n_taken)
{
  int attempt, port;
  size_t i;

  for (attempt = 0; attempt < 500; attempt++) {
    port = 20000 + (int)(rng_next() % 12000);
    for (i = 0; i < n_taken; i++)
      if (taken[i] == port)
        break;
    if (i == n_taken && port_bindable(port))
      return port;
  }
  return 0;
}

/* Picks a port and records it in taken[*nt]. */
static int port_claim(int *taken, size_t *nt)
{
  int port = port_pick(taken, *nt);

  taken[(*nt)++] = port;
  return port;
}

/* Whether something accepts TCP connections on 127.0.0.1:port. */
static bool port_accepts(int port)
{
  struct sockaddr_in a;
  int fd;
  bool ok;

  fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return false;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
  close(fd);
  return ok;
}

/* Reads /proc/PID/stat: state and process group. False when the process is gone. */
static bool proc_stat(pid_t pid, char *state, pid_t *pgrp)
{
  char path[64], buf[512], *rp;
  ssize_t n;
  int fd, ppid, pg;

  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return false;
  n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0)
    return false;
  buf[n] = '\0';
  rp = strrchr(buf, ')');
  if (!rp || sscanf(rp + 1, " %c %d %d", state, &ppid, &pg) != 3)
    return false;
  *pgrp = pg;
  return true;
}

static char *proc_cmdline(pid_t pid)
{
  char path[64], *s;
  size_t len, i;

  snprintf(path, sizeof path, "/proc/%d/cmdline", (int)pid);
  s = sl_read_file(path, 65536, &len);
  if (!s)
    return NULL;
  for (i = 0; i < len; i++)
    if (s[i] == '\0')
      s[i] = ' ';
  return s;
}

/* Counts the live (non-zombie) members of process group pgid. With `b`, counts only the
 * members that are b's beam (its command line has "-home DIR") or b's epmd ("-port N"),
 * so that a pid reused by an unrelated program after a reboot is never taken for it. */
static int group_count(pid_t pgid, const sl_local_broker_t *b)
{
  struct dirent *e;
  DIR *d;
  char state, *cmd, *home = NULL, *port = NULL;
  pid_t pid, pg;
  int n = 0;

  if (pgid <= 1)
    return 0;
  d = opendir("/proc");
  if (!d)
    return 0;
  if (b) {
    home = sl_asprintf("-home %s ", b->dir);
    port = sl_asprintf("epmd -port %d ", b->epmd_port);
  }
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9')
      continue;
    pid = (pid_t)atoi(e->d_name);
    /* the leader counts before its setsid() too: right after fork its pgid is ours */
    if (!proc_stat(pid, &state, &pg) || (pg != pgid && pid != pgid) || state == 'Z' || state == 'X')
      continue;
    if (b) {
      cmd = proc_cmdline(pid);
      if (!cmd || (!strstr(cmd, home) && !strstr(cmd, port))) {
        free(cmd);
        continue;
      }
      free(cmd);
    }
    n++;
  }
  closedir(d);
  free(home);
  free(port);
  return n;
}

static void reap(pid_t pid)
{
  if (pid > 0)
    while (waitpid(pid, NULL, WNOHANG) > 0)
      ;
}

/* Waits up to timeout_s for the group to have no live member (reaping our child). */
static bool group_wait_gone(pid_t pgid, double timeout_s)
{
  double deadline = sl_mono() + timeout_s;

  for (;;) {
    reap(pgid);
    if (group_count(pgid, NULL) == 0)
      return true;
    if (sl_mono() >= deadline)
      return false;
    sleep_s(0.05);
  }
}

/* ---- environment and spawning ---- */

typedef struct env {
  char *v[ENV_MAX];
  size_t n;
} env_t;

static void env_add(env_t *e, char *kv_take)
{
  if (e->n < ENV_MAX - 1)
    e->v[e->n++] = kv_take;
  else
    free(kv_take);
  e->v[e->n] = NULL;
}

static void env_release(env_t *e)
{
  size_t i;

  for (i = 0; i < e->n; i++)
    free(e->v[i]);
  e->n = 0;
}

/* The environment of the server and of rabbitmqctl: minimal and the same for both, so
 * they agree on HOME (cookie) and epmd. */
static void env_build(env_t *e, const sl_local_broker_t *b)
{
  e->n = 0;
  e->v[0] = NULL;
  env_add(e, sl_strdup("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"));
  env_add(e, sl_asprintf("HOME=%s", b->dir));
  env_add(e, sl_strdup("LANG=C.UTF-8"));
  env_add(e, sl_strdup("LC_ALL=C.UTF-8"));
  env_add(e, sl_asprintf("ERL_EPMD_PORT=%d", b->epmd_port));
  env_add(e, sl_strdup("ERL_EPMD_ADDRESS=127.0.0.1"));
  env_add(e, sl_asprintf("RABBITMQ_NODENAME=%s", b->nodename));
  env_add(e, sl_asprintf("RABBITMQ_DIST_PORT=%d", b->dist_port));
  env_add(e, sl_asprintf("RABBITMQ_MNESIA_BASE=%s/mnesia", b->dir));
  env_add(e, sl_asprintf("RABBITMQ_LOG_BASE=%s/log", b->dir));
  env_add(e, sl_asprintf("RABBITMQ_PID_FILE=%s/rabbit.pid", b->dir));
  env_add(e, sl_asprintf("RABBITMQ_CONFIG_FILE=%s/rabbitmq.conf", b->dir));
  env_add(e, sl_asprintf("RABBITMQ_ADVANCED_CONFIG_FILE=%s/advanced.config", b->dir));
  env_add(e, sl_asprintf("RABBITMQ_ENABLED_PLUGINS_FILE=%s/enabled_plugins", b->dir));
  env_add(e, sl_asprintf("RABBITMQ_CONF_ENV_FILE=%s/rabbitmq-env.conf", b->dir));
  env_add(e, sl_strdup("RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=-kernel inet_dist_use_interface {127,0,0,1}"));
}

static char *sbin_path(const char *name)
{
  const char *dir = getenv("SPECLINE_RABBITMQ_SBIN");
  char *p = sl_asprintf("%s/%s", dir && *dir ? dir : RABBITMQ_SBIN, name);

  if (access(p, X_OK) == 0)
    return p;
  free(p);
  return NULL;
}

/* Forks a child in a session of its own (its pid is its process group) with stdin from
 * /dev/null, stdout and stderr appended to logpath (given to owner first when owner
 * switches user), no other descriptor and every signal at its default action, none
 * blocked. Returns the child's pid in the parent, 0 in the child, -1 with *err set. */
static pid_t fork_logged(const char *logpath, const broker_user_t *owner, sl_error_t *err)
{
  pid_t pid;
  int fd, i;

  fd = open(logpath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) {
    sl_error_set(err, SL_ERR_SYS, errno, "cannot open '%s': %s", logpath, strerror(errno));
    return -1;
  }
  if (owner && owner->switch_user && fchown(fd, owner->uid, owner->gid) != 0)
    SL_DEBUG("cannot chown '%s': %s", logpath, strerror(errno));
  pid = fork();
  if (pid < 0) {
    sl_error_set(err, SL_ERR_SYS, errno, "cannot fork: %s", strerror(errno));
    close(fd);
    return -1;
  }
  if (pid == 0) {
    int devnull = open("/dev/null", O_RDONLY);
    sigset_t none;
    setsid();
    if (devnull >= 0)
      dup2(devnull, 0);
    dup2(fd, 1);
    dup2(fd, 2);
    close_range(3, ~0U, 0); /* nothing of ours (e.g. ctest's pipes) may live on in the child */
    for (i = 1; i < NSIG; i++)
      signal(i, SIG_DFL);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    return 0;
  }
  close(fd);
  return pid;
}

/* Forks the server: a new session (so its pgid is its pid), stdout/stderr appended to
 * log/startup.log, the broker user, its own epmd started first (so it lives in the same
 * group), then rabbitmq-server. Returns the child's pid (the group id) or -1. */
static pid_t server_spawn(const sl_local_broker_t *b, const broker_user_t *u, sl_error_t *err)
{
  char *server = sbin_path("rabbitmq-server"), *epmd = sl_find_program("epmd");
  char *logpath = sl_asprintf("%s/log/startup.log", b->dir), port[16];
  char *server_argv[] = {"rabbitmq-server", NULL};
  char *epmd_argv[] = {"epmd", "-port", port, "-address", "127.0.0.1", NULL};
  pid_t pid = -1, epid;
  env_t env;
  int i;

  snprintf(port, sizeof port, "%d", b->epmd_port);
  env_build(&env, b);
  if (!server || !epmd) {
    sl_error_set(err, SL_ERR_SYS, ENOENT, "cannot find '%s': install Debian's rabbitmq-server",
                 server ? "epmd" : RABBITMQ_SBIN "/rabbitmq-server");
    goto out;
  }
  pid = fork_logged(logpath, u, err);
  if (pid == 0) {
    if (user_become(u) != 0 || chdir(b->dir) != 0) {
      static const char msg[] = "specline: cannot switch to the broker user or its directory\n";
      if (write(2, msg, sizeof msg - 1) < 0)
        _exit(126);
      _exit(126);
    }
    epid = fork();
    if (epid == 0) {
      execve(epmd, epmd_argv, env.v);
      _exit(127);
    }
    for (i = 0; i < 200 && !port_accepts(b->epmd_port); i++) {
      struct timespec ts = {0, 25000000};
      nanosleep(&ts, NULL);
    }
    execve(server, server_argv, env.v);
    _exit(127);
  }
out:
  env_release(&env);
  free(server);
  free(epmd);
  free(logpath);
  return pid;
}

/* Runs a program as the broker user with the broker's environment; captures stdout into
 * *out (may be NULL) and stderr into *errout (may be NULL). Kills it after timeout_s.
 * Returns the exit status, 128+signal, or -1 with *err set. */
static int ctl_run(const sl_local_broker_t *b, const char *prog, const char *const *args, double timeout_s,
                   char **out, char **errout, sl_error_t *err)
{
  broker_user_t u;
  char *path = NULL, **argv = NULL;
  sl_buf_t ob, eb;
  int po[2] = {-1, -1}, pe[2] = {-1, -1}, status = 0, rc = -1;
  size_t n = 0, i;
  pid_t pid;
  env_t env;
  double deadline;
  bool killed = false;

  sl_buf_init(&ob);
  sl_buf_init(&eb);
  env.n = 0;
  if (out)
    *out = NULL;
  if (errout)
    *errout = NULL;
  if (!user_resolve(&u, err))
    goto out;
  path = sbin_path(prog);
  if (!path) {
    sl_error_set(err, SL_ERR_SYS, ENOENT, "cannot find '%s/%s': install Debian's rabbitmq-server", RABBITMQ_SBIN, prog);
    goto out;
  }
  while (args && args[n])
    n++;
  argv = sl_calloc(n + 4, sizeof *argv);
  argv[0] = (char *)prog;
  argv[1] = "-n";
  argv[2] = b->nodename;
  for (i = 0; i < n; i++)
    argv[3 + i] = (char *)args[i];
  env_build(&env, b);
  if (pipe2(po, O_CLOEXEC) != 0 || pipe2(pe, O_CLOEXEC) != 0) {
    sl_error_set(err, SL_ERR_SYS, errno, "cannot create pipe: %s", strerror(errno));
    goto out;
  }
  pid = fork();
  if (pid < 0) {
    sl_error_set(err, SL_ERR_SYS, errno, "cannot fork: %s", strerror(errno));
    goto out;
  }
  if (pid == 0) {
    int devnull = open("/dev/null", O_RDONLY);
    setpgid(0, 0);
    if (devnull >= 0)
      dup2(devnull, 0);
    dup2(po[1], 1);
    dup2(pe[1], 2);
    if (user_become(&u) != 0 || chdir(b->dir) != 0)
      _exit(126);
    execve(path, argv, env.v);
    _exit(127);
  }
  setpgid(pid, pid);
  close(po[1]);
  close(pe[1]);
  po[1] = pe[1] = -1;
  deadline = sl_mono() + timeout_s;
  while (po[0] >= 0 || pe[0] >= 0) {
    struct pollfd pf[2] = {{po[0], POLLIN, 0}, {pe[0], POLLIN, 0}};
    char buf[4096];
    double left = deadline - sl_mono();
    ssize_t got;
    int k;

    if (left <= 0) {
      kill(-pid, SIGKILL);
      killed = true;
      break;
    }
    if (poll(pf, 2, (int)(left * 1000) + 1) < 0 && errno != EINTR)
      break;
    for (k = 0; k < 2; k++) {
      int *fdp = k == 0 ? &po[0] : &pe[0];
      if (*fdp < 0 || !(pf[k].revents & (POLLIN | POLLHUP | POLLERR)))
        continue;
      got = read(*fdp, buf, sizeof buf);
      if (got > 0) {
        sl_buf_append(k == 0 ? &ob : &eb, buf, (size_t)got);
      } else if (got == 0 || errno != EINTR) {
        close(*fdp);
        *fdp = -1;
      }
    }
  }
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
    ;
  if (killed) {
    sl_error_set(err, SL_ERR_SYS, ETIMEDOUT, "'%s' against node '%s' did not finish within %.0f s", prog,
                 b->nodename, timeout_s);
    goto out;
  }
  rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  if (rc != 0)
    SL_DEBUG("%s %s: exit %d: %s", prog, n ? args[0] : "", rc, eb.data ? eb.data : "");
  if (out)
    *out = sl_buf_detach(&ob);
  if (errout)
    *errout = sl_buf_detach(&eb);
out:
  for (i = 0; i < 2; i++) {
    if (po[i] >= 0)
      close(po[i]);
    if (pe[i] >= 0)
      close(pe[i]);
  }
  env_release(&env);
  sl_buf_release(&ob);
  sl_buf_release(&eb);
  free(argv);
  free(path);
  return rc;
}

int sl_local_broker_ctl(const sl_local_broker_t *b, const char *const *args, char **out, sl_error_t *err)
{
  return ctl_run(b, "rabbitmqctl", args, 120, out, NULL, err);
}

/* ---- files in DIR ---- */

static char *dir_file(const sl_local_broker_t *b, const char *name)
{
  return sl_asprintf("%s/%s", b->dir, name);
}

static bool tls_copy(const char *src, const char *dst, sl_error_t *err)
{
  size_t len;
  char *data = sl_read_file(src, 1 << 20, &len);
  bool ok;

  if (!data) {
    sl_error_set(err, SL_ERR_SYS, errno ? errno : EIO, "cannot read TLS file '%s'", src);
    return false;
  }
  ok = file_write(dst, data, 0600, err);
  free(data);
  return ok;
}

/* Writes rabbitmq.conf, enabled_plugins, an empty rabbitmq-env.conf and the TLS copies. */
static bool config_write(const sl_local_broker_t *b, const sl_local_broker_opts_t *o, sl_error_t *err)
{
  sl_buf_t c;
  char *path = NULL, *tlsdir = NULL, *f = NULL;
  bool ok = false;

  sl_buf_init(&c);
  sl_buf_printf(&c, "# written by specline (broker/local.c); rewritten on each start\n"
                    "listeners.tcp.default = 127.0.0.1:%d\n"
                    "loopback_users.guest = true\n",
                b->amqp_port);
  if (o->consumer_timeout_ms > 0)
    sl_buf_printf(&c, "# global on RabbitMQ 3.10 (per-queue only from 3.12)\nconsumer_timeout = %lld\n",
                  (long long)o->consumer_timeout_ms);
  if (o->heartbeat_s > 0)
    sl_buf_printf(&c, "heartbeat = %d\n", o->heartbeat_s);
  if (b->mgmt_port)
    sl_buf_printf(&c, "management.tcp.port = %d\nmanagement.tcp.ip = 127.0.0.1\n", b->mgmt_port);
  if (o->conf_extra)
    sl_buf_printf(&c, "%s%s", o->conf_extra, *o->conf_extra && o->conf_extra[strlen(o->conf_extra) - 1] != '\n' ? "\n" : "");
  if (b->amqps_port) {
    tlsdir = dir_file(b, "tls");
    if (!mkdir_p(tlsdir, 0700, err))
      goto out;
    f = sl_asprintf("%s/cert.pem", tlsdir);
    if (!tls_copy(o->tls_cert, f, err))
      goto out;
    free(f);
    f = sl_asprintf("%s/key.pem", tlsdir);
    if (!tls_copy(o->tls_key, f, err))
      goto out;
    free(f);
    f = sl_asprintf("%s/ca.pem", tlsdir);
    if (!tls_copy(o->tls_ca, f, err))
      goto out;
    sl_buf_printf(&c,
                  "listeners.ssl.default = 127.0.0.1:%d\n"
                  "ssl_options.cacertfile = %s/ca.pem\n"
                  "ssl_options.certfile = %s/cert.pem\n"
                  "ssl_options.keyfile = %s/key.pem\n"
                  "ssl_options.verify = verify_peer\n"
                  "ssl_options.fail_if_no_peer_cert = false\n"
                  "ssl_options.versions.1 = tlsv1.3\n"
                  "ssl_options.versions.2 = tlsv1.2\n",
                  b->amqps_port, tlsdir, tlsdir, tlsdir);
  }
  path = dir_file(b, "rabbitmq.conf");
  if (!file_write(path, c.data, 0644, err))
    goto out;
  free(path);
  path = dir_file(b, "enabled_plugins");
  if (!file_write(path, b->mgmt_port ? "[rabbitmq_management].\n" : "[].\n", 0644, err))
    goto out;
  free(path);
  path = dir_file(b, "rabbitmq-env.conf");
  sl_buf_release(&c);
  sl_buf_init(&c);
  sl_buf_printf(&c, "# settings come from the environment specline sets; sourced by rabbitmq-env\n");
  if (o->erl_args && *o->erl_args)
    sl_buf_printf(&c, "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=\"$RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS %s\"\n", o->erl_args);
  if (!file_write(path, c.data, 0644, err))
    goto out;
  ok = true;
out:
  sl_buf_release(&c);
  free(path);
  free(tlsdir);
  free(f);
  return ok;
}

static bool cookie_write(const sl_local_broker_t *b, const char *given, sl_error_t *err)
{
  char cookie[33], *path = dir_file(b, ".erlang.cookie");
  bool ok;
  int i;

  for (i = 0; i < 32; i++)
    cookie[i] = (char)('A' + (int)(rng_next() % 26));
  cookie[32] = '\0';
  unlink(path);
  ok = file_write(path, given ? given : cookie, 0400, err);
  free(path);
  return ok;
}

static bool env_file_write(const sl_local_broker_t *b, sl_error_t *err)
{
  sl_buf_t e;
  bool ok;

  sl_buf_init(&e);
  sl__dev_env_broker(&e, b, b->url);
  if (b->amqps_url)
    sl_buf_printf(&e, "SPECLINE_AMQPS_URL=%s\nSPECLINE_BROKER_AMQPS_PORT=%d\n", b->amqps_url, b->amqps_port);
  ok = sl__dev_env_write(b->dir, e.data, err);
  sl_buf_release(&e);
  return ok;
}

/* Checks, as the broker user, that DIR can be entered and written. */
static bool dir_check_access(const char *dir, const broker_user_t *u, sl_error_t *err)
{
  int status;
  pid_t pid;

  if (!u->switch_user)
    return true;
  pid = fork();
  if (pid < 0) {
    sl_error_set(err, SL_ERR_SYS, errno, "cannot fork: %s", strerror(errno));
    return false;
  }
  if (pid == 0) {
    if (user_become(u) != 0)
      _exit(2);
    _exit(access(dir, R_OK | W_OK | X_OK) == 0 ? 0 : 1);
  }
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
    ;
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
    return true;
  sl_error_set(err, SL_ERR_SYS, EACCES,
               "user 'rabbitmq' cannot reach '%s': every parent directory must be world-traversable (o+x); "
               "choose a directory under /tmp or a build directory",
               dir);
  return false;
}

/* ---- public API ---- */

void sl_local_broker_opts_default(sl_local_broker_opts_t *o)
{
  memset(o, 0, sizeof *o);
  o->management = true;
  o->start_timeout_s = 90;
}

void sl_local_broker_destroy(sl_local_broker_t *b, bool remove_dir)
{
  if (!b)
    return;
  if (remove_dir && b->dir)
    tree_remove(b->dir);
  sl_local_broker_free(b);
}

/* Kills the whole process group and waits for it to be gone. */
static bool group_kill(pid_t pgid, sl_error_t *err)
{
  if (pgid <= 1)
    return true;
  kill(pgid, SIGKILL); /* the leader, even if it has not reached setsid() yet */
  if (kill(-pgid, SIGKILL) != 0 && errno != ESRCH) {
    sl_error_set(err, SL_ERR_SYS, errno, "cannot kill process group %d: %s", (int)pgid, strerror(errno));
    return false;
  }
  if (!group_wait_gone(pgid, 10)) {
    sl_error_set(err, SL_ERR_SYS, EBUSY, "process group %d is still alive after SIGKILL", (int)pgid);
    return false;
  }
  return true;
}

/* Handles what an earlier broker left in DIR: an error without force; with force, kills
 * it if it still runs and removes its state. */
static bool stale_clear(const char *dir, bool force, sl_error_t *err)
{
  sl_local_broker_t *old;
  char *path;
  bool alive, ok = true;
  static const char *const names[] = {"mnesia", "log", "rabbit.pid", "broker.env", "tls", ".erlang.cookie"};
  size_t i;

  if (!sl__dev_env_exists(dir))
    return true;
  old = sl_local_broker_open(dir, NULL);
  alive = old && group_count(old->pid, old) > 0;
  if (!force) {
    sl_error_set(err, SL_ERR_SYS, EEXIST, "'%s' already holds a %s broker%s%s%s; use --force to replace it", dir,
                 alive ? "running" : "stopped", old ? " (node '" : "", old ? old->nodename : "", old ? "')" : "");
    sl_local_broker_destroy(old, false);
    return false;
  }
  if (alive) {
    SL_INFO("killing the stale broker '%s' (process group %d)", old->nodename, (int)old->pid);
    ok = group_kill(old->pid, err);
  }
  sl_local_broker_destroy(old, false);
  if (!ok)
    return false;
  for (i = 0; i < sizeof names / sizeof names[0]; i++) {
    path = sl_asprintf("%s/%s", dir, names[i]);
    tree_remove(path);
    free(path);
  }
  return true;
}

/* Waits until the node answers: pid file, `rabbitmqctl wait`, the AMQP port, and the
 * management API when on. Fails early when the server's processes are gone. */
static bool broker_wait_ready(sl_local_broker_t *b, double timeout_s, sl_error_t *err)
{
  double t0 = sl_mono(), deadline = t0 + timeout_s, left;
  char *pidfile = dir_file(b, "rabbit.pid"), tbuf[32], *errout = NULL;
  const char *args[] = {"wait", pidfile, "--timeout", tbuf, NULL};
  bool ok = false;
  int rc;

  while (access(pidfile, R_OK) != 0) {
    reap(b->pid);
    if (group_count(b->pid, NULL) == 0) {
      sl_error_set(err, SL_ERR_SYS, ECHILD, "rabbitmq-server exited during start; see '%s/log/startup.log'", b->dir);
      goto out;
    }
    if (sl_mono() > deadline)
      goto timeout;
    sleep_s(0.1);
  }
  left = deadline - sl_mono();
  snprintf(tbuf, sizeof tbuf, "%d", left > 1 ? (int)left : 1);
  rc = ctl_run(b, "rabbitmqctl", args, left + 15, NULL, &errout, err);
  if (rc < 0)
    goto out;
  if (rc != 0) {
    sl_error_set(err, SL_ERR_SYS, EIO, "node '%s' did not come up (rabbitmqctl wait: exit %d); see '%s/log'",
                 b->nodename, rc, b->dir);
    goto out;
  }
  while (!port_accepts(b->amqp_port)) {
    if (sl_mono() > deadline)
      goto timeout;
    sleep_s(0.05);
  }
  while (b->mgmt_url) {
    sl_queue_info_t *q = NULL;
    size_t n = 0;
    if (sl_mgmt_queues(b->mgmt_url, "guest", "guest", "/", NULL, &q, &n, NULL)) {
      sl_queue_info_free(q, n);
      break;
    }
    if (sl_mono() > deadline)
      goto timeout;
    sleep_s(0.1);
  }
  SL_DEBUG("broker '%s' ready in %.1f s", b->nodename, sl_mono() - t0);
  ok = true;
  goto out;
timeout:
  sl_error_set(err, SL_ERR_SYS, ETIMEDOUT, "broker '%s' not ready within %.0f s; see '%s/log'", b->nodename,
               timeout_s, b->dir);
out:
  free(errout);
  free(pidfile);
  return ok;
}

/* Spawns the server for an already laid-out b and waits; kills it on failure. */
static bool broker_launch(sl_local_broker_t *b, const broker_user_t *u, double timeout_s, sl_error_t *err)
{
  char *pidfile = dir_file(b, "rabbit.pid");

  unlink(pidfile);
  free(pidfile);
  tree_chown(b->dir, u->uid, u->gid);
  b->pid = server_spawn(b, u, err);
  if (b->pid < 0)
    return false;
  if (!broker_wait_ready(b, timeout_s > 0 ? timeout_s : 90, err)) {
    group_kill(b->pid, NULL);
    return false;
  }
  return env_file_write(b, err);
}

sl_local_broker_t *sl_local_broker_start(const sl_local_broker_opts_t *opts, sl_error_t *err)
{
  sl_local_broker_opts_t defaults;
  sl_local_broker_t *b = NULL;
  broker_user_t u;
  char *subdir;
  int taken[6] = {0};
  size_t nt = 0;
  bool tls, ok = false;

  if (!opts) {
    sl_local_broker_opts_default(&defaults);
    opts = &defaults;
  }
  tls = opts->tls_cert && opts->tls_key && opts->tls_ca;
  if (!user_resolve(&u, err))
    return NULL;
  b = sl_calloc(1, sizeof *b);
  if (!(b->dir = sl__dev_dir_prepare(opts->dir, "specline-broker", err)))
    goto out;
  if (!stale_clear(b->dir, opts->force, err))
    goto out;
  subdir = dir_file(b, "mnesia");
  ok = mkdir_p(subdir, 0750, err);
  free(subdir);
  subdir = dir_file(b, "log");
  ok = ok && mkdir_p(subdir, 0755, err);
  free(subdir);
  if (!ok)
    goto out;
  ok = false;
  b->amqp_port = port_claim(taken, &nt);
  b->dist_port = port_claim(taken, &nt);
  b->epmd_port = opts->epmd_port > 0 ? opts->epmd_port : port_claim(taken, &nt);
  if (opts->management)
    b->mgmt_port = port_claim(taken, &nt);
  if (tls)
    b->amqps_port = port_claim(taken, &nt);
  if (!b->amqp_port || !b->dist_port || !b->epmd_port || (opts->management && !b->mgmt_port) ||
      (tls && !b->amqps_port)) {
    sl_error_set(err, SL_ERR_SYS, EADDRINUSE, "cannot find free loopback ports");
    goto out;
  }
  b->nodename = opts->node_name ? sl_strdup(opts->node_name)
                                 : sl_asprintf("specline-%d-%d@localhost", (int)getpid(), b->amqp_port);
  b->url = sl_asprintf("amqp://guest:guest@127.0.0.1:%d/", b->amqp_port);
  if (b->mgmt_port)
    b->mgmt_url = sl_asprintf("http://127.0.0.1:%d", b->mgmt_port);
  if (b->amqps_port)
    b->amqps_url = sl_asprintf("amqps://guest:guest@localhost:%d/", b->amqps_port);
  if (!config_write(b, opts, err) || !cookie_write(b, opts->cookie, err))
    goto out;
  SL_INFO("starting rabbitmq node '%s' in '%s' (amqp port %d)", b->nodename, b->dir, b->amqp_port);
  ok = broker_launch(b, &u, opts->start_timeout_s, err);
out:
  if (!ok) {
    sl_local_broker_destroy(b, false);
    b = NULL;
  }
  return b;
}

bool sl_local_broker_restart(sl_local_broker_t *b, const sl_local_broker_opts_t *opts, sl_error_t *err)
{
  broker_user_t u;
  double timeout = opts ? opts->start_timeout_s : 90;

  if (!user_resolve(&u, err))
    return false;
  reap(b->pid);
  if (group_count(b->pid, b) > 0) {
    sl_error_set(err, SL_ERR_SYS, EBUSY, "broker '%s' is still running; stop or kill it first", b->nodename);
    return false;
  }
  if (opts) {
    sl_local_broker_t probe = *b;
    if (!!opts->management != !!b->mgmt_port) {
      sl_error_set(err, SL_ERR_SYS, EINVAL, "restart cannot switch the management plugin on or off");
      return false;
    }
    if ((opts->tls_cert != NULL) != (b->amqps_port != 0)) {
      sl_error_set(err, SL_ERR_SYS, EINVAL, "restart cannot switch TLS on or off");
      return false;
    }
    if (!config_write(&probe, opts, err))
      return false;
  }
  SL_INFO("restarting rabbitmq node '%s'", b->nodename);
  return broker_launch(b, &u, timeout, err);
}

bool sl_local_broker_kill(sl_local_broker_t *b, sl_error_t *err)
{
  double t0;

  if (!group_kill(b->pid, err))
    return false;
  /* The group is gone, but the listening socket can outlive it for a moment on a loaded
   * machine; a caller that restarts at once (or checks the port) must find it closed. */
  for (t0 = sl_mono(); b->amqp_port > 0 && port_accepts(b->amqp_port); usleep(20000)) {
    if (sl_mono() - t0 > 10) {
      sl_error_set(err, SL_ERR_SYS, EBUSY, "port %d still accepts 10 s after the broker was killed", b->amqp_port);
      return false;
    }
  }
  return true;
}

bool sl_local_broker_stop(sl_local_broker_t *b, double grace_s, sl_error_t *err)
{
  char *pidfile = dir_file(b, "rabbit.pid");
  const char *args[] = {"stop", pidfile, NULL};
  bool ok = true;
  int rc;

  reap(b->pid);
  if (group_count(b->pid, b) == 0)
    goto out;
  if (grace_s <= 0)
    grace_s = 30;
  rc = ctl_run(b, "rabbitmqctl", args, grace_s, NULL, NULL, NULL);
  if (rc != 0)
    SL_WARN("graceful stop of '%s' failed (%d); killing it", b->nodename, rc);
  /* what remains (epmd, the server script) goes with the group */
  kill(-b->pid, SIGTERM);
  if (!group_wait_gone(b->pid, 2))
    ok = group_kill(b->pid, err);
out:
  if (ok)
    unlink(pidfile);
  free(pidfile);
  return ok;
}

bool sl_local_broker_running(const sl_local_broker_t *b)
{
  reap(b->pid);
  return group_count(b->pid, b) > 0;
}

bool sl_local_broker_alive(const sl_local_broker_t *b, double wait_s)
{
  double end = sl_mono() + wait_s;

  while (sl_local_broker_running(b)) {
    if (port_accepts(b->amqp_port) || sl_mono() >= end)
      return true;
    usleep(100000);
  }
  return false;
}

/* ---- for devtools/cluster.c (dev-private.h) ---- */

bool sl__dev_mkdir_p(const char *path, mode_t mode, sl_error_t *err)
{
  return mkdir_p(path, mode, err);
}

void sl__dev_env_broker(sl_buf_t *e, const sl_local_broker_t *b, const char *url)
{
  sl_buf_printf(e,
                "SPECLINE_AMQP_URL=%s\nSPECLINE_MGMT_URL=%s\nSPECLINE_BROKER_PID=%d\n"
                "SPECLINE_BROKER_NODE=%s\nSPECLINE_BROKER_DIR=%s\nSPECLINE_BROKER_AMQP_PORT=%d\n"
                "SPECLINE_BROKER_MGMT_PORT=%d\nSPECLINE_BROKER_DIST_PORT=%d\nSPECLINE_BROKER_EPMD_PORT=%d\n",
                url, b->mgmt_url ? b->mgmt_url : "", (int)b->pid, b->nodename, b->dir, b->amqp_port, b->mgmt_port,
                b->dist_port, b->epmd_port);
}

bool sl__dev_env_write(const char *dir, const char *text, sl_error_t *err)
{
  char *path = sl_asprintf("%s/broker.env", dir), *tmp = sl_asprintf("%s/broker.env.tmp", dir);
  bool ok = file_write(tmp, text, 0644, err);

  if (ok && rename(tmp, path) != 0) {
    sl_error_set(err, SL_ERR_SYS, errno, "cannot write '%s': %s", path, strerror(errno));
    ok = false;
  }
  free(path);
  free(tmp);
  return ok;
}

bool sl__dev_env_exists(const char *dir)
{
  char *path = sl_asprintf("%s/broker.env", dir);
  bool there = access(path, F_OK) == 0;

  free(path);
  return there;
}

void sl__dev_tree_remove(const char *path)
{
  tree_remove(path);
}

int sl__dev_port_pick(void)
{
  int none[1] = {0};

  return port_pick(none, 0);
}

bool sl__dev_port_accepts(int port)
{
  return port_accepts(port);
}

bool sl__dev_group_kill(pid_t pgid, sl_error_t *err)
{
  return group_kill(pgid, err);
}

char *sl__dev_cookie_new(void)
{
  char *c = sl_calloc(33, 1);
  int i;

  for (i = 0; i < 32; i++)
    c[i] = (char)('A' + (int)(rng_next() % 26));
  return c;
}

char *sl__dev_dir_prepare(const char *dir, const char *prefix, sl_error_t *err)
{
  broker_user_t u;
  char real[PATH_MAX], *tmpl;
  const char *tmp = getenv("TMPDIR");

  if (!user_resolve(&u, err))
    return NULL;
  if (dir) {
    if (!mkdir_p(dir, 0755, err))
      return NULL;
    if (!realpath(dir, real)) {
      sl_error_set(err, SL_ERR_SYS, errno, "cannot resolve '%s': %s", dir, strerror(errno));
      return NULL;
    }
  } else {
    tmpl = sl_asprintf("%s/%s-XXXXXX", tmp && *tmp ? tmp : "/tmp", prefix);
    if (!mkdtemp(tmpl) || !realpath(tmpl, real)) {
      sl_error_set(err, SL_ERR_SYS, errno, "cannot create a directory like '%s': %s", tmpl, strerror(errno));
      free(tmpl);
      return NULL;
    }
    free(tmpl);
    chmod(real, 0755); /* mkdtemp makes it 0700: the broker user must enter it */
  }
  if (!path_is_safe(real)) {
    sl_error_set(err, SL_ERR_SYS, EINVAL,
                 "broker directory '%s' has characters rabbitmq-server cannot take (use [A-Za-z0-9/._+-@])", real);
    return NULL;
  }
  if (u.switch_user && lchown(real, u.uid, u.gid) != 0) {
    sl_error_set(err, SL_ERR_SYS, errno, "cannot give '%s' to user 'rabbitmq': %s", real, strerror(errno));
    return NULL;
  }
  if (!dir_check_access(real, &u, err))
    return NULL;
  return sl_strdup(real);
}

bool sl__dev_epmd_alive(pid_t pid, int port)
{
  char *cmd, *want;
  bool ok;

  if (pid <= 1 || kill(pid, 0) != 0)
    return false;
  cmd = proc_cmdline(pid);
  want = sl_asprintf("epmd -port %d ", port);
  ok = cmd && strstr(cmd, want);
  free(cmd);
  free(want);
  return ok;
}

pid_t sl__dev_epmd_spawn(const char *dir, int port, sl_error_t *err)
{
  char *epmd = sl_find_program("epmd"), *logpath = sl_asprintf("%s/epmd.log", dir), portbuf[16];
  char *argv[] = {"epmd", "-port", portbuf, "-address", "127.0.0.1", NULL};
  char *envp[] = {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8", NULL};
  broker_user_t u;
  pid_t pid = -1;
  int i;

  snprintf(portbuf, sizeof portbuf, "%d", port);
  if (!epmd) {
    sl_error_set(err, SL_ERR_SYS, ENOENT, "cannot find 'epmd': install Debian's rabbitmq-server");
    goto out;
  }
  if (!user_resolve(&u, err))
    goto out;
  pid = fork_logged(logpath, NULL, err);
  if (pid < 0)
    goto out;
  if (pid == 0) {
    if (user_become(&u) != 0 || chdir(dir) != 0)
      _exit(126);
    execve(epmd, argv, envp);
    _exit(127);
  }
  for (i = 0; i < 400 && !port_accepts(port); i++) {
    reap(pid);
    if (kill(pid, 0) != 0)
      break;
    sleep_s(0.025);
  }
  if (!port_accepts(port)) {
    sl_error_set(err, SL_ERR_SYS, EIO, "epmd did not listen on port %d; see '%s'", port, logpath);
    group_kill(pid, NULL);
    pid = -1;
  }
out:
  free(epmd);
  free(logpath);
  return pid;
}
