/* Tests of the built-in simulators (sims/), run as the line runs them: each binary from
 * SPECLINE_BIN_DIR is started with pipes, fed one input line, and its output lines are
 * parsed with jansson. They check the protocol shape (docs/simulator-protocol.md), the
 * physics against closed forms (oscillator steady amplitude, environ formula, Lorenz-96
 * sensitivity), bad input (exit 2 with a message), prompt SIGTERM and every faulty mode. */
#define _GNU_SOURCE

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sltest.h"

typedef struct simproc {
  pid_t pid;
  int in, out, err;       /* our ends of the child's stdin, stdout, stderr; -1 closed */
  char *obuf, *ebuf;      /* everything read so far, NUL-terminated */
  size_t olen, elen;
  int status;             /* waitpid status once reaped */
  bool reaped;
} simproc_t;

static double now(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Starts bin/specline-sim-NAME with args (NULL-terminated); its input is written
 * later, from pump(). */
static bool sim_spawn(const char *name, const char *const *args, simproc_t *p)
{
  const char *dir = getenv("SPECLINE_BIN_DIR");
  char path[4096];
  char *argv[16];
  int in[2], out[2], err[2], n = 0;

  memset(p, 0, sizeof(*p));
  snprintf(path, sizeof(path), "%s/specline-sim-%s", dir ? dir : "bin", name);
  argv[n++] = path;
  for (; args && *args && n < 15; args++)
    argv[n++] = (char *)*args;
  argv[n] = NULL;
  signal(SIGPIPE, SIG_IGN);
  if (pipe2(in, O_CLOEXEC) || pipe2(out, O_CLOEXEC) || pipe2(err, O_CLOEXEC))
    return false;
  p->pid = fork();
  if (p->pid == 0) {
    dup2(in[0], 0);
    dup2(out[1], 1);
    dup2(err[1], 2);
    signal(SIGPIPE, SIG_DFL);
    execv(path, argv);
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  close(err[1]);
  p->in = in[1];
  p->out = out[0];
  p->err = err[0];
  fcntl(p->in, F_SETFL, O_NONBLOCK);
  p->obuf = calloc(1, 1);
  p->ebuf = calloc(1, 1);
  return p->pid > 0;
}

static void append(char **buf, size_t *len, const char *data, size_t n)
{
  *buf = realloc(*buf, *len + n + 1);
  memcpy(*buf + *len, data, n);
  *len += n;
  (*buf)[*len] = '\0';
}

/* Moves data between the child and us until stop(p) holds, both outputs hit EOF, or the
 * deadline passes. Writes input[*written..] to stdin and closes it when done. Returns
 * true when stopped by stop() or EOF, false on timeout. */
static bool pump(simproc_t *p, const char *input, size_t *written, double deadline,
                 bool (*stop)(const simproc_t *))
{
  char chunk[65536];
  size_t inlen = input ? strlen(input) : 0;

  for (;;) {
    struct pollfd fds[3];
    int nf = 0, ms;
    if (stop && stop(p))
      return true;
    if (p->out < 0 && p->err < 0)
      return true;
    if (p->in >= 0 && *written >= inlen) {
      close(p->in);
      p->in = -1;
    }
    if (p->in >= 0)
      fds[nf++] = (struct pollfd){.fd = p->in, .events = POLLOUT};
    if (p->out >= 0)
      fds[nf++] = (struct pollfd){.fd = p->out, .events = POLLIN};
    if (p->err >= 0)
      fds[nf++] = (struct pollfd){.fd = p->err, .events = POLLIN};
    ms = (int)((deadline - now()) * 1000);
    if (ms <= 0 || poll(fds, (nfds_t)nf, ms) <= 0)
      return false;
    for (int i = 0; i < nf; i++) {
      if (!fds[i].revents)
        continue;
      if (fds[i].fd == p->in) {
        ssize_t w = write(p->in, input + *written, inlen - *written);
        if (w > 0) {
          *written += (size_t)w;
        } else if (errno != EAGAIN) {
          close(p->in);
          p->in = -1;
        }
        continue;
      }
      ssize_t r = read(fds[i].fd, chunk, sizeof(chunk));
      bool is_out = fds[i].fd == p->out;
      if (r > 0) {
        if (is_out)
          append(&p->obuf, &p->olen, chunk, (size_t)r);
        else
          append(&p->ebuf, &p->elen, chunk, (size_t)r);
      } else if (r == 0 || errno != EINTR) {
        close(fds[i].fd);
        if (is_out)
          p->out = -1;
        else
          p->err = -1;
      }
    }
  }
}

/* Reaps the child if it exits before the deadline; returns whether it did. */
static bool sim_wait(simproc_t *p, double deadline)
{
  while (!p->reaped) {
    pid_t r = waitpid(p->pid, &p->status, WNOHANG);
    if (r == p->pid) {
      p->reaped = true;
      break;
    }
    if (now() >= deadline)
      return false;
    usleep(1000);
  }
  return true;
}

static void sim_free(simproc_t *p)
{
  if (!p->reaped) {
    kill(p->pid, SIGKILL);
    waitpid(p->pid, &p->status, 0);
  }
  if (p->in >= 0)
    close(p->in);
  if (p->out >= 0)
    close(p->out);
  if (p->err >= 0)
    close(p->err);
  free(p->obuf);
  free(p->ebuf);
}

/* Cuts the next line out of *cur in place (NULL at the end). */
static char *next_line(char **cur)
{
  char *s = *cur, *nl;
  if (!*s)
    return NULL;
  nl = strchr(s, '\n');
  *cur = nl ? nl + 1 : s + strlen(s);
  if (nl)
    *nl = '\0';
  return s;
}

static bool has_line(const simproc_t *p)
{
  return memchr(p->obuf, '\n', p->olen) != NULL;
}

/* Runs a simulator to completion (SIGKILL after timeout_s). */
static void sim_run(const char *name, const char *const *args, const char *input,
                    double timeout_s, simproc_t *p)
{
  size_t written = 0;
  double deadline = now() + timeout_s;
  SL_REQUIRE(sim_spawn(name, args, p));
  pump(p, input, &written, deadline, NULL);
  if (!sim_wait(p, deadline)) {
    kill(p->pid, SIGKILL);
    sim_wait(p, now() + 5);
  }
}

static bool exited_with(const simproc_t *p, int code)
{
  return p->reaped && WIFEXITED(p->status) && WEXITSTATUS(p->status) == code;
}

static bool killed_by(const simproc_t *p, int sig)
{
  return p->reaped && WIFSIGNALED(p->status) && WTERMSIG(p->status) == sig;
}

/* Checks the protocol shape of a complete run: every line JSON, steps 1..n in order with
 * increasing t and a number under values.VALUE, then one final object as the last line;
 * when the last step line carries running finals, they equal the final line's (the run
 * taken to end at that step is the run). Fills hist[0..n-1] when given. Returns the final
 * object (new reference) or NULL. */
static json_t *check_protocol(const simproc_t *p, const char *value, long n, double *hist)
{
  long step = 0;
  double last_t = -INFINITY;
  json_t *final = NULL, *running = NULL;
  char *copy = strdup(p->obuf), *cur = copy;

  for (char *line = next_line(&cur); line; line = next_line(&cur)) {
    json_error_t jerr;
    json_t *j = json_loads(line, 0, &jerr), *f;
    SL_CHECKF(j != NULL, "line %ld not JSON: %s", step + 1, jerr.text);
    SL_CHECKF(final == NULL, "a line after the final");
    if (!j)
      break;
    if ((f = json_object_get(j, "final"))) {
      SL_CHECK(json_is_object(f));
      final = json_incref(f);
    } else {
      json_t *v = json_object_get(json_object_get(j, "values"), value);
      double t = json_number_value(json_object_get(j, "t"));
      step++;
      SL_CHECK_INT(json_integer_value(json_object_get(j, "step")), step);
      SL_CHECKF(t > last_t, "t not increasing at step %ld", step);
      SL_CHECKF(json_is_number(v), "no number values.%s at step %ld", value, step);
      if (hist && step <= n)
        hist[step - 1] = json_number_value(v);
      last_t = t;
      json_decref(running);
      running = json_incref(json_object_get(j, "running")); /* NULL when absent */
    }
    json_decref(j);
  }
  free(copy);
  SL_CHECK_INT(step, n);
  SL_CHECKF(final != NULL, "no final line");
  if (running && final) {
    const char *key;
    json_t *fv;
    SL_CHECK_INT(json_object_size(running), json_object_size(final));
    json_object_foreach(final, key, fv)
    {
      json_t *rv = json_object_get(running, key);
      SL_CHECKF(json_is_number(rv) && json_number_value(rv) == json_number_value(fv),
                "running '%s' at the last step differs from the final", key);
    }
  }
  json_decref(running);
  return final;
}

static double final_num(json_t *final, const char *key)
{
  json_t *v = json_object_get(final, key);
  SL_CHECKF(json_is_number(v), "final has no number '%s'", key);
  return json_is_number(v) ? json_number_value(v) : NAN;
}

static void test_protocol_shape(void)
{
  static const struct {
    const char *sim, *input, *value, *f1, *f2;
    long n;
  } cases[] = {
    {"oscillator", "{\"inputs\": {\"zeta\": 0.2, \"omega0\": 1, \"F\": 0.5, \"omega\": 1.5, "
                   "\"x0\": 0.3}, \"max_steps\": 37, \"sample_id\": \"abc\"}\n",
     "x", "amplitude", "max_abs_x", 37},
    {"oscillator", "{\"inputs\": {\"zeta\": 0.2, \"omega0\": 1, \"F\": 0.5, \"omega\": 1.5, "
                   "\"x0\": 0.3}}\n",
     "x", "amplitude", "max_abs_x", 400},
    {"environ", "{\"inputs\": {\"M\": 10, \"D\": 0.07, \"L\": 1.5, \"tau\": 30.1}}\n", "c",
     "c_final", "c_max", 300},
    {"lorenz96", "{\"inputs\": {\"F\": 8, \"perturb\": 0.01}, \"max_steps\": 50}\n", "x0",
     "energy", "mean_x", 50},
    {"faulty", "{\"inputs\": {\"a\": 1.5, \"b\": 2}, \"max_steps\": 3}\n", "x", "y", "y", 3},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    simproc_t p;
    json_t *final;
    sim_run(cases[i].sim, NULL, cases[i].input, 20, &p);
    SL_CHECKF(exited_with(&p, 0), "%s: status %d, stderr %s", cases[i].sim, p.status, p.ebuf);
    SL_CHECK_INT(p.elen, 0);
    final = check_protocol(&p, cases[i].value, cases[i].n, NULL);
    if (strcmp(cases[i].sim, "faulty") != 0) /* the three physical models send running finals */
      SL_CHECKF(strstr(p.obuf, "\"running\": {") != NULL, "%s: no running finals", cases[i].sim);
    SL_CHECK(isfinite(final_num(final, cases[i].f1)));
    SL_CHECK(isfinite(final_num(final, cases[i].f2)));
    json_decref(final);
    sim_free(&p);
  }
}

static void test_oscillator_amplitude(void)
{
  /* lightly damped, off resonance; the transient decays like exp(-0.2 t) */
  const double zeta = 0.1, w0 = 2, F = 0.5, w = 1;
  const double a = F / sqrt(pow(w0 * w0 - w * w, 2) + pow(2 * zeta * w0 * w, 2));
  simproc_t p;
  json_t *final;
  double hist[400], amp, max_abs;

  sim_run("oscillator", NULL,
          "{\"inputs\": {\"zeta\": 0.1, \"omega0\": 2, \"F\": 0.5, \"omega\": 1, \"x0\": 0.8},"
          " \"max_steps\": 400}\n",
          20, &p);
  SL_REQUIRE(exited_with(&p, 0));
  final = check_protocol(&p, "x", 400, hist);
  amp = final_num(final, "amplitude");
  max_abs = final_num(final, "max_abs_x");
  SL_CHECKF(fabs(amp - a) <= 0.02 * a, "amplitude %g, analytic %g", amp, a);
  SL_CHECK(max_abs >= amp);
  SL_CHECK(max_abs >= 0.8); /* x0 counts */
  /* the history follows the exact solution: steady state plus decaying transient */
  {
    const double phi = atan2(2 * zeta * w0 * w, w0 * w0 - w * w), wd = w0 * sqrt(1 - zeta * zeta);
    const double c1 = 0.8 - a * cos(phi), c2 = (zeta * w0 * c1 - a * w * sin(phi)) / wd;
    for (int i = 0; i < 400; i += 37) {
      double t = 0.1 * (i + 1);
      double x = a * cos(w * t - phi) + exp(-zeta * w0 * t) * (c1 * cos(wd * t) + c2 * sin(wd * t));
      SL_CHECK_NEAR(hist[i], x, 1e-7);
    }
  }
  json_decref(final);
  sim_free(&p);

  /* a heavier, resonant case: steady state well reached, amplitude near F/(2 zeta w0^2) */
  sim_run("oscillator", NULL,
          "{\"inputs\": {\"zeta\": 0.4, \"omega0\": 1.5, \"F\": 1, \"omega\": 1.5, \"x0\": 0},"
          " \"max_steps\": 400}\n",
          20, &p);
  SL_REQUIRE(exited_with(&p, 0));
  final = check_protocol(&p, "x", 400, NULL);
  SL_CHECK_NEAR(final_num(final, "amplitude"), 1 / (2 * 0.4 * 1.5 * 1.5), 0.01 / 1.8);
  json_decref(final);
  sim_free(&p);
}

/* The oscillator's per-step "env": sqrt(2 Hann-weighted mean x^2) over the trailing two
 * periods of the slower of the free and the forced oscillation, and "log_env", its log. It
 * starts at |x0|-ish, is smooth in t (no jump between output steps larger than the transient
 * allows) and settles on the analytic steady-state amplitude; "x" is still there. */
static void test_oscillator_env(void)
{
  const double zeta = 0.1, w0 = 2, F = 0.5, w = 1;
  const double a = F / sqrt(pow(w0 * w0 - w * w, 2) + pow(2 * zeta * w0 * w, 2));
  simproc_t p;
  json_t *final;
  double env[400], x[400], max_jump = 0;

  sim_run("oscillator", NULL,
          "{\"inputs\": {\"zeta\": 0.1, \"omega0\": 2, \"F\": 0.5, \"omega\": 1, \"x0\": 0.8},"
          " \"max_steps\": 400}\n",
          20, &p);
  SL_REQUIRE(exited_with(&p, 0));
  json_decref(check_protocol(&p, "x", 400, x));
  final = check_protocol(&p, "env", 400, env);
  for (int i = 0; i < 400; i++) {
    SL_CHECKF(env[i] >= 0 && isfinite(env[i]), "env[%d] = %g", i, env[i]);
    if (i > 0 && fabs(env[i] - env[i - 1]) > max_jump)
      max_jump = fabs(env[i] - env[i - 1]);
  }
  /* the first step's window is [0, 0.1]: x stays near x0 = 0.8, so env ~ sqrt(2) 0.8 */
  SL_CHECK_NEAR(env[0], sqrt(2) * 0.8, 0.05);
  /* the transient decays like exp(-0.2 t): by t = 40 env is the steady amplitude */
  SL_CHECKF(fabs(env[399] - a) <= 0.01 * a, "env(40) %g, analytic amplitude %g", env[399], a);
  SL_CHECKF(fabs(env[399] - final_num(final, "amplitude")) <= 0.01 * a, "env(40) %g vs amplitude %g",
            env[399], final_num(final, "amplitude"));
  SL_CHECKF(max_jump < 0.1, "env jumps by %g between output steps", max_jump);
  json_decref(final);
  {
    double lenv[400];
    json_decref(check_protocol(&p, "log_env", 400, lenv));
    for (int i = 0; i < 400; i += 13)
      SL_CHECK_NEAR(lenv[i], log(env[i]), 1e-9);
  }
  sim_free(&p);
}

static double environ_c(double M, double D, double L, double tau, double s, double t)
{
  double c = M / sqrt(4 * M_PI * D * t) * exp(-s * s / (4 * D * t));
  if (t > tau)
    c += M / sqrt(4 * M_PI * D * (t - tau)) * exp(-(s - L) * (s - L) / (4 * D * (t - tau)));
  return c;
}

static void test_environ_formula(void)
{
  static const long at[] = {1, 10, 100, 150, 151, 152, 160, 200, 300};
  simproc_t p, q;
  double h1[300], h2[300];
  json_t *f1, *f2;
  bool differs_after = false;

  sim_run("environ", NULL, "{\"inputs\": {\"M\": 10, \"D\": 0.07, \"L\": 1.2, \"tau\": 30.1}}\n",
          20, &p);
  sim_run("environ", NULL, "{\"inputs\": {\"M\": 10, \"D\": 0.07, \"L\": 2.9, \"tau\": 30.1}}\n",
          20, &q);
  SL_REQUIRE(exited_with(&p, 0) && exited_with(&q, 0));
  f1 = check_protocol(&p, "c", 300, h1);
  f2 = check_protocol(&q, "c", 300, h2);
  for (size_t i = 0; i < sizeof(at) / sizeof(at[0]); i++) {
    double want = environ_c(10, 0.07, 1.2, 30.1, 1.5, 0.2 * (double)at[i]);
    SL_CHECK_NEAR(h1[at[i] - 1], want, 1e-12 * want);
  }
  SL_CHECK_NEAR(final_num(f1, "c_final"), h1[299], 0);
  /* the second spill: histories equal until tau (t = 30.1 lies between steps 150, 151) */
  for (int i = 0; i < 300; i++) {
    if (i < 150)
      SL_CHECKF(h1[i] == h2[i], "step %d differs before tau", i + 1);
    else if (fabs(h1[i] - h2[i]) > 1e-3)
      differs_after = true;
    if (i >= 150)
      SL_CHECK(h1[i] > environ_c(10, 0.07, 0, 1e9, 1.5, 0.2 * (i + 1)));
  }
  SL_CHECK(differs_after);
  SL_CHECK(final_num(f1, "c_max") > h1[149] + 1); /* the second spill at 0.3 from s */
  json_decref(f1);
  json_decref(f2);
  sim_free(&p);
  sim_free(&q);

  /* --location moves the observation point */
  {
    const char *args[] = {"--location", "0.5", NULL};
    double h[300];
    sim_run("environ", args, "{\"inputs\": {\"M\": 10, \"D\": 0.07, \"L\": 1.2, \"tau\": 30.1}}\n",
            20, &p);
    SL_REQUIRE(exited_with(&p, 0));
    json_decref(check_protocol(&p, "c", 300, h));
    SL_CHECK_NEAR(h[49], environ_c(10, 0.07, 1.2, 30.1, 0.5, 10), 1e-12 * h[49]);
    sim_free(&p);
  }
}

/* max |x0 difference| over the run between perturb p and p + 1e-6 at forcing F */
static double lorenz_divergence(double F, double pert)
{
  char in1[256], in2[256];
  double h1[400], h2[400], m = 0;
  simproc_t p, q;
  snprintf(in1, sizeof(in1), "{\"inputs\": {\"F\": %g, \"perturb\": %.10g}}\n", F, pert);
  snprintf(in2, sizeof(in2), "{\"inputs\": {\"F\": %g, \"perturb\": %.10g}}\n", F, pert + 1e-6);
  sim_run("lorenz96", NULL, in1, 20, &p);
  sim_run("lorenz96", NULL, in2, 20, &q);
  SL_CHECK(exited_with(&p, 0) && exited_with(&q, 0));
  json_decref(check_protocol(&p, "x0", 400, h1));
  json_decref(check_protocol(&q, "x0", 400, h2));
  for (int i = 0; i < 400; i++)
    m = fmax(m, fabs(h1[i] - h2[i]));
  sim_free(&p);
  sim_free(&q);
  return m;
}

static void test_lorenz96_sensitivity(void)
{
  /* t = 20 (400 steps of 0.05). F = 8 is strongly chaotic: 1e-6 grows to O(1..10). F = 4
   * for N = 40 is weakly chaotic (measured 0.01 to 1 by t = 20 depending on perturb), so
   * it is checked at one perturb against a bound 20x below the F = 8 divergence; F = 3
   * is regular. */
  double d8 = lorenz_divergence(8, 0.05), d4 = lorenz_divergence(4, 0.05);
  double d3 = lorenz_divergence(3, 0.01);
  SL_CHECKF(d8 > 1, "F=8 divergence %g", d8);
  SL_CHECKF(d4 < 0.5 && d4 < d8 / 20, "F=4 divergence %g (F=8 %g)", d4, d8);
  SL_CHECKF(d3 < 1e-2, "F=3 divergence %g", d3);
}

static void test_bad_input(void)
{
  static const struct {
    const char *sim, *input, *msg;
  } cases[] = {
    {"oscillator", "{\"inputs\": {\"zeta\": 0.1, \"omega0\": 1, \"F\": 1, \"omega\": 1, "
                   "\"x0\": 0, \"zetta\": 1}}\n", "unknown input 'zetta'"},
    {"oscillator", "{\"inputs\": {\"zeta\": 0.1, \"omega0\": 1, \"F\": 1, \"omega\": 1}}\n",
     "missing input 'x0'"},
    {"oscillator", "{\"inputs\": {\"zeta\": 0.1, \"omega0\": 1, \"F\": \"1\", \"omega\": 1, "
                   "\"x0\": 0}}\n", "input 'F' is not a number"},
    {"oscillator", "{\"inputs\": {\"zeta\": 0.1, \"omega0\": -1, \"F\": 1, \"omega\": 1, "
                   "\"x0\": 0}}\n", "'omega0' must be > 0"},
    {"oscillator", "{\"inputs\": {\"zeta\": 0.1, \"omega0\": 1, \"F\": 1, \"omega\": 1, "
                   "\"x0\": 0}, \"max_steps\": 2.5}\n", "'max_steps' must be an integer"},
    {"oscillator", "{\"inputs\": {\"zeta\": 0.1, \"zeta\": 0.2}}\n", "not JSON"},
    {"environ", "{\"inputs\": {\"M\": 10, \"D\": 0.07, \"L\": 1}}\n", "missing input 'tau'"},
    {"environ", "{\"inputs\": {\"M\": 10, \"D\": 0, \"L\": 1, \"tau\": 30}}\n", "'D' must be > 0"},
    {"environ", "not json\n", "not JSON"},
    {"lorenz96", "[1, 2]\n", "not a JSON object"},
    {"lorenz96", "{\"max_steps\": 3}\n", "no 'inputs' object"},
    {"lorenz96", "{\"inputs\": {\"F\": 8, \"perturb\": 0.1, \"G\": 1}}\n", "unknown input 'G'"},
    {"lorenz96", "", "no input line"},
    {"noop", "{\"inputs\": {\"a\": null}}\n", "input 'a' is not a number"},
    {"faulty", "{\"inputs\": {\"mode\": 8}}\n", "'mode' must be in [0, 7]"},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    simproc_t p;
    sim_run(cases[i].sim, NULL, cases[i].input, 10, &p);
    SL_CHECKF(exited_with(&p, 2), "%s case %zu: status %d", cases[i].sim, i, p.status);
    SL_CHECKF(strstr(p.ebuf, cases[i].msg) != NULL, "%s case %zu: stderr '%s'", cases[i].sim,
              i, p.ebuf);
    SL_CHECK_INT(p.olen, 0);
    sim_free(&p);
  }

  /* an input line over 1 MiB is refused without reading it whole */
  {
    size_t n = (1u << 20) + 100;
    char *big = malloc(n + 2);
    simproc_t p;
    memset(big, ' ', n);
    big[0] = '{';
    big[n - 1] = '}';
    big[n] = '\n';
    big[n + 1] = '\0';
    sim_run("oscillator", NULL, big, 10, &p);
    SL_CHECK(exited_with(&p, 2));
    SL_CHECK(strstr(p.ebuf, "longer than") != NULL);
    sim_free(&p);
    free(big);
  }
  /* unknown options */
  {
    const char *args[] = {"--frobnicate", NULL}, *args2[] = {"--step-delay", "x", NULL};
    simproc_t p;
    sim_run("environ", args, "", 10, &p);
    SL_CHECK(exited_with(&p, 2) && strstr(p.ebuf, "unknown argument '--frobnicate'"));
    sim_free(&p);
    sim_run("lorenz96", args2, "", 10, &p);
    SL_CHECK(exited_with(&p, 2) && strstr(p.ebuf, "--step-delay"));
    sim_free(&p);
  }
}

/* Starts a --step-delay run, waits for its first step, sends SIGTERM and returns the
 * seconds until it was gone (or a large number). */
static double time_sigterm(const char *sim, const char *const *args, const char *input,
                           int *status)
{
  simproc_t p;
  size_t written = 0;
  double t0, dt = 1e9;
  if (!sim_spawn(sim, args, &p))
    return dt;
  pump(&p, input, &written, now() + 10, has_line);
  SL_CHECKF(has_line(&p), "%s: no first step", sim);
  t0 = now();
  kill(p.pid, SIGTERM);
  if (sim_wait(&p, t0 + 2))
    dt = now() - t0;
  *status = p.status;
  sim_free(&p);
  return dt;
}

static void test_sigterm(void)
{
  const char *delay[] = {"--step-delay", "0.5", NULL};
  const char *fast[] = {"--step-delay=0.001", NULL};
  const char *osc = "{\"inputs\": {\"zeta\": 0.1, \"omega0\": 1, \"F\": 1, \"omega\": 1, "
                    "\"x0\": 0}, \"max_steps\": 100000}\n";
  int st = 0;
  double dt = time_sigterm("oscillator", delay, osc, &st);
  SL_CHECKF(dt < 0.2, "oscillator took %g s", dt);
  SL_CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM);
  dt = time_sigterm("oscillator", fast, osc, &st);
  SL_CHECKF(dt < 0.2, "oscillator (fast steps) took %g s", dt);
  dt = time_sigterm("environ", delay,
                    "{\"inputs\": {\"M\": 10, \"D\": 0.07, \"L\": 1, \"tau\": 30}}\n", &st);
  SL_CHECKF(dt < 0.2, "environ took %g s", dt);
  dt = time_sigterm("lorenz96", delay, "{\"inputs\": {\"F\": 8, \"perturb\": 0.1}}\n", &st);
  SL_CHECKF(dt < 0.2, "lorenz96 took %g s", dt);
}

static void test_noop(void)
{
  simproc_t p;
  const char *args[] = {"--step-delay", "5", NULL};
  double t0 = now();
  sim_run("noop", args, "{\"inputs\": {\"a\": 1.5, \"b\": -4, \"anything\": 10}, "
                        "\"max_steps\": 1000, \"sample_id\": \"s\"}\n", 10, &p);
  SL_CHECK(exited_with(&p, 0));
  SL_CHECK(now() - t0 < 1);
  SL_CHECK_STR(p.obuf, "{\"final\": {\"y\": 7.5}}\n");
  sim_free(&p);
}

static void test_help(void)
{
  static const char *sims[][2] = {{"oscillator", "omega0"}, {"environ", "tau"},
                                  {"lorenz96", "perturb"},  {"noop", "sum"},
                                  {"faulty", "immortal"}};
  const char *args[] = {"--help", NULL};
  for (size_t i = 0; i < sizeof(sims) / sizeof(sims[0]); i++) {
    simproc_t p;
    sim_run(sims[i][0], args, "", 10, &p);
    SL_CHECK(exited_with(&p, 0));
    SL_CHECKF(strstr(p.obuf, "usage:") && strstr(p.obuf, sims[i][1]), "%s --help", sims[i][0]);
    sim_free(&p);
  }
}

static void test_faulty_modes(void)
{
  const char *ok_in = "{\"inputs\": {\"a\": 1, \"b\": 2}}\n";
  simproc_t p;
  size_t written = 0;
  json_t *final;

  { /* 0: ok, y sums the inputs other than mode; the input mode is floored */
    sim_run("faulty", NULL, "{\"inputs\": {\"a\": 1, \"mode\": 0.9}}\n", 10, &p);
    SL_CHECK(exited_with(&p, 0));
    final = check_protocol(&p, "x", 5, NULL);
    SL_CHECK_NEAR(final_num(final, "y"), 1, 0);
    json_decref(final);
    sim_free(&p);
  }
  { /* 1: segfault after two steps */
    const char *a[] = {"--mode", "1", NULL};
    sim_run("faulty", a, ok_in, 10, &p);
    SL_CHECK(killed_by(&p, SIGSEGV));
    SL_CHECK_STR(p.obuf, "{\"step\": 1, \"t\": 1, \"values\": {\"x\": 1}}\n"
                         "{\"step\": 2, \"t\": 2, \"values\": {\"x\": 2}}\n");
    sim_free(&p);
  }
  { /* 2: garbage lines between a valid step and a valid final */
    const char *a[] = {"--mode=2", NULL};
    int bad = 0;
    char *cur;
    sim_run("faulty", a, ok_in, 10, &p);
    SL_CHECK(exited_with(&p, 0));
    cur = p.obuf;
    for (char *l = next_line(&cur); l; l = next_line(&cur)) {
      json_t *j = json_loads(l, 0, NULL);
      bad += j == NULL;
      json_decref(j);
    }
    SL_CHECK_INT(bad, 3);
    sim_free(&p);
  }
  { /* 3: hangs after one step; SIGTERM ends it */
    SL_REQUIRE(sim_spawn("faulty", NULL, &p));
    pump(&p, "{\"inputs\": {\"mode\": 3}}\n", &written, now() + 5, has_line);
    SL_CHECK(has_line(&p));
    SL_CHECK(!sim_wait(&p, now() + 0.3));
    kill(p.pid, SIGTERM);
    SL_CHECK(sim_wait(&p, now() + 0.2) && killed_by(&p, SIGTERM));
    sim_free(&p);
  }
  { /* 4: exit 3 with a message; the input mode 4.5 is floored */
    sim_run("faulty", NULL, "{\"inputs\": {\"mode\": 4.5}}\n", 10, &p);
    SL_CHECK(exited_with(&p, 3));
    SL_CHECK(strstr(p.ebuf, "simulated failure (mode 4)") != NULL);
    sim_free(&p);
  }
  { /* 5: one valid JSON line longer than 1 MiB, then a final */
    const char *a[] = {"--mode", "5", NULL};
    char *nl, *second;
    sim_run("faulty", a, ok_in, 10, &p);
    SL_CHECK(exited_with(&p, 0));
    nl = strchr(p.obuf, '\n');
    SL_REQUIRE(nl);
    second = nl + 1;
    nl = strchr(second, '\n');
    SL_REQUIRE(nl);
    SL_CHECK(nl - second > (1 << 20));
    SL_CHECK(strstr(nl, "\"final\"") != NULL);
    sim_free(&p);
  }
  { /* 6: ignores SIGTERM; SIGKILL needed. --mode overrides the input mode */
    const char *a[] = {"--mode", "6", NULL};
    written = 0;
    SL_REQUIRE(sim_spawn("faulty", a, &p));
    pump(&p, "{\"inputs\": {\"mode\": 0}}\n", &written, now() + 5, has_line);
    SL_CHECK(has_line(&p));
    kill(p.pid, SIGTERM);
    SL_CHECK(!sim_wait(&p, now() + 0.3));
    kill(p.pid, SIGKILL);
    SL_CHECK(sim_wait(&p, now() + 1) && killed_by(&p, SIGKILL));
    sim_free(&p);
  }
  { /* 7: slow, --step-delay per step */
    const char *a[] = {"--step-delay", "0.05", NULL};
    double t0 = now();
    sim_run("faulty", a, "{\"inputs\": {\"mode\": 7}, \"max_steps\": 4}\n", 10, &p);
    SL_CHECK(exited_with(&p, 0));
    SL_CHECK(now() - t0 >= 0.2);
    json_decref(check_protocol(&p, "x", 4, NULL));
    sim_free(&p);
    /* default delay 0.2 s: two steps take at least 0.4 s */
    t0 = now();
    sim_run("faulty", NULL, "{\"inputs\": {\"mode\": 7}, \"max_steps\": 2}\n", 10, &p);
    SL_CHECK(exited_with(&p, 0) && now() - t0 >= 0.4);
    sim_free(&p);
  }
}

SL_TEST_MAIN(SL_T(test_protocol_shape), SL_T(test_oscillator_amplitude), SL_T(test_oscillator_env),
             SL_T(test_environ_formula), SL_T(test_lorenz96_sensitivity), SL_T(test_bad_input),
             SL_T(test_sigterm), SL_T(test_noop), SL_T(test_help), SL_T(test_faulty_modes))
