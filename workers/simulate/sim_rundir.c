/* Run directories of the simulate worker (see sim_rundir.h). Creating a directory,
 * rendering its templates and reading its output files are small and run on the loop's
 * thread; removing one (any size: restart files, meshes) runs on the libuv thread pool,
 * even an empty one: on ext4 mounted with `discard` an rmdir took 0.67 ms, a mkdir 0.16 ms
 * (this project's build machine). */
#define _GNU_SOURCE /* nftw and its FTW_* flags */

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "specline/json.h"
#include "specline/log.h"
#include "specline/util.h"

#include "sim_rundir.h"

extern char **environ;

#define RUNDIR_MAX_SUFFIX 999
#define FILES_MAX_TOTAL ((size_t)768 << 10) /* leaves room in a 1 MiB store.point */

struct sim_rundir {
  char *sample_id;
  char *dir;
  void *confirm; /* the point's publish, once published */
  bool failed;   /* the point is failed (simulator.keep: failed) */
  sim_rundir_t *next;
};

/* What a template's placeholders may name for one run. */
typedef struct run_vars {
  json_t *line; /* the parsed input line */
  const char *sample_id, *campaign, *dir;
} run_vars_t;

void sim_rundirs_init(sim_rundirs_t *rd, uv_loop_t *loop, const sl_config_t *cfg)
{
  rd->loop = loop;
  rd->cfg = cfg;
  rd->head = NULL;
  rd->root_made = false;
}

static void rec_free(sim_rundir_t *r)
{
  free(r->sample_id);
  free(r->dir);
  free(r);
}

void sim_rundirs_release(sim_rundirs_t *rd)
{
  sim_rundir_t *r;

  while ((r = rd->head) != NULL) {
    rd->head = r->next;
    rec_free(r);
  }
}

/* The record of a sample's run; with confirm NULL: the one not yet published. */
static sim_rundir_t **rec_find(sim_rundirs_t *rd, const char *sample_id, void *confirm)
{
  sim_rundir_t **pp;

  for (pp = &rd->head; *pp; pp = &(*pp)->next)
    if (confirm ? (*pp)->confirm == confirm : (!(*pp)->confirm && !strcmp((*pp)->sample_id, sample_id)))
      return pp;
  return NULL;
}

/* ---- removal (thread pool) ---- */

typedef struct rm_work {
  uv_work_t req;
  char *dir;
  int err; /* errno of the first failure */
} rm_work_t;

static __thread int rm_errno;

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
  (void)st;
  (void)ftw;
  if ((flag == FTW_DP ? rmdir(path) : unlink(path)) != 0 && errno != ENOENT && !rm_errno)
    rm_errno = errno;
  return 0;
}

static void rm_run(uv_work_t *req)
{
  rm_work_t *w = req->data;

  rm_errno = 0;
  /* depth first, never following a symlink, never leaving the file system */
  if (nftw(w->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT) != 0 && !rm_errno)
    rm_errno = errno;
  w->err = rm_errno;
}

static void rm_done(uv_work_t *req, int status)
{
  rm_work_t *w = req->data;

  if (status == 0 && w->err)
    SL_WARN("cannot remove run directory '%s': %s", w->dir, strerror(w->err));
  free(w->dir);
  free(w);
}

/* Removes dir, only when it is a direct child of the runs directory. */
static void rundir_remove(sim_rundirs_t *rd, const char *dir)
{
  const char *root = rd->cfg->simulator.workdir, *name;
  size_t n = strlen(root);
  rm_work_t *w;

  name = strncmp(dir, root, n) == 0 && dir[n] == '/' ? dir + n + 1 : NULL;
  if (!name || !*name || strchr(name, '/') || name[0] == '.') {
    SL_ERROR("not removing '%s': not a run directory of '%s'", dir, root);
    return;
  }
  w = sl_calloc(1, sizeof *w);
  w->dir = sl_strdup(dir);
  w->req.data = w;
  if (uv_queue_work(rd->loop, &w->req, rm_run, rm_done) != 0) {
    rm_run(&w->req);
    rm_done(&w->req, 0);
  }
}

/* ---- creation ---- */

/* mkdir -p of the runs directory, 0755. */
static bool mkdirs(const char *path, char **why)
{
  char *p = sl_strdup(path), *s;
  bool ok = true;

  for (s = p + 1; ok; s++) {
    char c = *s;

    if (c != '/' && c != '\0')
      continue;
    *s = '\0';
    if (mkdir(p, 0755) != 0 && errno != EEXIST) {
      *why = sl_asprintf("cannot create runs directory '%s': %s", p, strerror(errno));
      ok = false;
    }
    *s = c;
    if (!c)
      break;
  }
  free(p);
  return ok;
}

/* A sample id is an identifier of proto ([A-Za-z0-9_.:-]+); as a directory name it must
 * also not be '.', '..' or hidden. */
static bool name_safe(const char *id)
{
  return id[0] && id[0] != '.' && !strchr(id, '/') && strlen(id) <= 200;
}

/* A new directory <root>/<id>[.N], 0755; its path or NULL with *why. */
static char *rundir_make(const char *root, const char *id, char **why)
{
  char *dir;
  int i;

  for (i = 0; i <= RUNDIR_MAX_SUFFIX; i++) {
    dir = i ? sl_asprintf("%s/%s.%d", root, id, i) : sl_asprintf("%s/%s", root, id);
    if (mkdir(dir, 0755) == 0)
      return dir;
    if (errno != EEXIST) {
      *why = sl_asprintf("cannot create run directory '%s': %s", dir, strerror(errno));
      free(dir);
      return NULL;
    }
    free(dir);
  }
  *why = sl_asprintf("cannot create run directory '%s/%s': %d copies already exist", root, id,
                     RUNDIR_MAX_SUFFIX + 1);
  return NULL;
}

/* A new directory for the run; the runs directory is made on the first run, and again
 * when it has vanished since (someone cleaned up by hand). */
static char *rundir_claim(sim_rundirs_t *rd, const char *id, char **why)
{
  const char *root = rd->cfg->simulator.workdir;
  char *dir;

  if (!rd->root_made && !(rd->root_made = mkdirs(root, why)))
    return NULL;
  dir = rundir_make(root, id, why);
  if (!dir && access(root, F_OK) != 0) {
    free(*why);
    *why = NULL;
    if ((rd->root_made = mkdirs(root, why)))
      dir = rundir_make(root, id, why);
  }
  return dir;
}

static bool run_lookup(void *ud, const char *name, sl_buf_t *out)
{
  run_vars_t *v = ud;
  json_t *j = json_object_get(json_object_get(v->line, "inputs"), name);

  if (json_is_number(j)) {
    sl_template_put_number(out, json_number_value(j));
  } else if (!strcmp(name, "sample_id")) {
    sl_buf_printf(out, "%s", v->sample_id);
  } else if (!strcmp(name, "campaign")) {
    sl_buf_printf(out, "%s", v->campaign);
  } else if (!strcmp(name, "run_dir")) {
    sl_buf_printf(out, "%s", v->dir);
  } else if (!strcmp(name, "max_steps") && json_is_integer(json_object_get(v->line, "max_steps"))) {
    sl_buf_printf(out, "%lld", (long long)json_integer_value(json_object_get(v->line, "max_steps")));
  } else {
    return false;
  }
  return true;
}

/* Copies or renders the templates into dir; false with *why. */
static bool templates_apply(const sl_config_t *cfg, const char *sample_id, const char *input, const char *dir,
                            char **why)
{
  run_vars_t v = {.sample_id = sample_id, .campaign = cfg->experiment, .dir = dir};
  sl_error_t err;
  bool ok;

  if (cfg->simulator.n_templates == 0)
    return true;
  v.line = json_loads(input, 0, NULL);
  ok = sl_config_templates_apply(cfg, dir, run_lookup, &v, &err);
  if (!ok)
    *why = sl_asprintf("run directory '%s': %s", dir, err.message);
  json_decref(v.line);
  return ok;
}

const char *sim_rundirs_start(sim_rundirs_t *rd, const char *sample_id, const char *input, char **why)
{
  const sl_config_t *cfg = rd->cfg;
  sim_rundir_t *r;
  char *dir;

  *why = NULL;
  if (!cfg->simulator.workdir || rec_find(rd, sample_id, NULL))
    return NULL; /* workdir: none, or a persistent terminate line */
  if (!name_safe(sample_id)) {
    *why = sl_asprintf("sample id '%s' cannot name a run directory", sample_id);
    return NULL;
  }
  if (!(dir = rundir_claim(rd, sample_id, why)))
    return NULL;
  if (!templates_apply(cfg, sample_id, input, dir, why)) {
    rundir_remove(rd, dir);
    free(dir);
    return NULL;
  }
  r = sl_calloc(1, sizeof *r);
  r->sample_id = sl_strdup(sample_id);
  r->dir = dir;
  r->next = rd->head;
  rd->head = r;
  return dir;
}

char *sim_rundirs_input_with_dir(const char *input, const char *dir)
{
  const char *end = strrchr(input, '}');
  sl_buf_t b;

  if (!end)
    return sl_strdup(input);
  sl_buf_init(&b);
  sl_buf_append(&b, input, (size_t)(end - input));
  sl_buf_printf(&b, "%s\"run_dir\":", end > input + 1 ? "," : "");
  sl_json_put_string(&b, dir);
  sl_buf_printf(&b, "}\n");
  return sl_buf_detach(&b);
}

/* ---- environment ---- */

static bool is_ours(const char *kv)
{
  return !strncmp(kv, "SPECLINE_SAMPLE_ID=", 19) || !strncmp(kv, "SPECLINE_RUN_DIR=", 17) ||
         !strncmp(kv, "SPECLINE_CAMPAIGN=", 18);
}

char **sim_rundirs_env(const sl_config_t *cfg, const char *sample_id, const char *dir)
{
  size_t n = 0, k = 0;
  char **env;

  while (environ[n])
    n++;
  env = sl_calloc(n + 4, sizeof *env);
  for (n = 0; environ[n]; n++)
    if (!is_ours(environ[n]))
      env[k++] = sl_strdup(environ[n]);
  env[k++] = sl_asprintf("SPECLINE_CAMPAIGN=%s", cfg->experiment);
  if (sample_id)
    env[k++] = sl_asprintf("SPECLINE_SAMPLE_ID=%s", sample_id);
  if (dir)
    env[k++] = sl_asprintf("SPECLINE_RUN_DIR=%s", dir);
  env[k] = NULL;
  return env;
}

void sim_rundirs_env_free(char **env)
{
  size_t i;

  for (i = 0; env && env[i]; i++)
    free(env[i]);
  free(env);
}

/* ---- output files ---- */

/* The content of one declared file: its text, or NULL with *why (NULL too, with *missing,
 * when it does not exist). */
static char *outfile_read(const char *path, const sl_sim_outfile_t *f, bool *missing, char **why)
{
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  struct stat st;
  char *text = NULL;
  json_t *utf8;
  size_t got = 0;
  ssize_t n;

  *missing = fd < 0 && errno == ENOENT;
  if (fd < 0) {
    *why = sl_asprintf("output file '%s': %s", path, strerror(errno));
    return NULL;
  }
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    *why = sl_asprintf("output file '%s' is not a regular file", path);
  } else if (st.st_size > f->max_bytes) {
    *why = sl_asprintf(
        "output file '%s' has %lld bytes, over its max_bytes %lld (store: path keeps its path instead)", path,
        (long long)st.st_size, (long long)f->max_bytes);
  } else {
    text = sl_malloc((size_t)st.st_size + 1);
    while (got < (size_t)st.st_size &&
           ((n = read(fd, text + got, (size_t)st.st_size - got)) > 0 || errno == EINTR))
      got += n > 0 ? (size_t)n : 0;
    text[got] = '\0';
    utf8 = json_stringn(text, got); /* NULL: not UTF-8 */
    if (!utf8 || memchr(text, '\0', got)) {
      *why = sl_asprintf("output file '%s' is not UTF-8 text (store: path keeps its path instead)", path);
      free(text);
      text = NULL;
    }
    json_decref(utf8);
  }
  close(fd);
  return text;
}

/* Reads the declared files of dir into p; returns the first problem of a required file
 * (malloc'd) or NULL. */
static char *outfiles_collect(const sl_config_t *cfg, const char *dir, sl_store_point_t *p)
{
  char *path, *text, *why, *problem = NULL;
  size_t i, total = 0;
  bool missing;

  p->file_names = sl_calloc(cfg->simulator.n_outfiles + 1, sizeof *p->file_names);
  p->file_texts = sl_calloc(cfg->simulator.n_outfiles + 1, sizeof *p->file_texts);
  for (i = 0; i < cfg->simulator.n_outfiles; i++) {
    const sl_sim_outfile_t *f = &cfg->simulator.outfiles[i];
    path = sl_asprintf("%s/%s", dir, f->file);
    why = NULL;
    if (f->store_path) {
      missing = access(path, F_OK) != 0;
      text = missing ? NULL : sl_strdup(path);
      if (missing)
        why = sl_asprintf("output file '%s': %s", path, strerror(errno));
    } else {
      text = outfile_read(path, f, &missing, &why);
    }
    if (text && (total += strlen(text)) > FILES_MAX_TOTAL) {
      free(why);
      why = sl_asprintf("output files total over %zu bytes at '%s'", FILES_MAX_TOTAL, path);
      free(text);
      text = NULL;
      missing = false;
    }
    if (text) {
      p->file_names[p->n_files] = sl_strdup(f->name);
      p->file_texts[p->n_files++] = text;
    } else if (!(missing && f->optional) && !problem) {
      problem = why;
      why = NULL;
    }
    free(why);
    free(path);
  }
  return problem;
}

void sim_rundirs_point(sim_rundirs_t *rd, sl_sim_sched_t *sched, const sl_sim_action_t *a)
{
  sim_rundir_t **pp = rec_find(rd, a->sample_id, NULL), *r;
  char *problem;

  if (!pp)
    return;
  r = *pp;
  problem = outfiles_collect(rd->cfg, r->dir, a->point);
  if (problem && a->point->status == SL_POINT_COMPLETE)
    sl_sim_sched_point_fail(sched, a->point, problem);
  free(problem);
  r->failed = a->point->status == SL_POINT_FAILED;
  r->confirm = a->confirm;
  if (!r->confirm) { /* untracked: nothing will confirm it */
    *pp = r->next;
    rec_free(r);
  }
}

void sim_rundirs_point_done(sl_store_point_t *p)
{
  size_t i;

  for (i = 0; i < p->n_files; i++) {
    free(p->file_names[i]);
    free(p->file_texts[i]);
  }
  free(p->file_names);
  free(p->file_texts);
  p->file_names = p->file_texts = NULL;
  p->n_files = 0;
}

void sim_rundirs_returned(sim_rundirs_t *rd, const char *sample_id)
{
  sim_rundir_t **pp = rec_find(rd, sample_id, NULL), *r;

  if (!pp)
    return;
  r = *pp;
  *pp = r->next;
  rundir_remove(rd, r->dir);
  rec_free(r);
}

void sim_rundirs_confirmed(sim_rundirs_t *rd, void *confirm, bool acked)
{
  sim_rundir_t **pp = confirm ? rec_find(rd, "", confirm) : NULL, *r;
  sl_keep_t keep = rd->cfg->simulator.keep;

  if (!pp)
    return;
  r = *pp;
  *pp = r->next;
  if (!acked)
    SL_WARN("keeping run directory '%s': its point was not stored", r->dir);
  else if (keep == SL_KEEP_NEVER || (keep == SL_KEEP_FAILED && !r->failed))
    rundir_remove(rd, r->dir);
  rec_free(r);
}
