/* Input templates of run directories: simulator.templates names files and directories that
 * are copied into each run's directory before the simulator starts. A file whose name ends
 * in `.tmpl` is rendered (specline/template.h: `{{name}}` placeholders) and written without
 * the suffix; a directory's contents are copied recursively. Modes are kept, so a script
 * stays executable. The same walk, with no destination, checks every template when the
 * config is loaded, so an unknown placeholder is a config error, not a failed run. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config-private.h"
#include "specline/util.h"

#define TEMPLATE_MAX_BYTES ((size_t)16 << 20) /* one template file */
#define TEMPLATE_MAX_DEPTH 16

static bool is_tmpl(const char *name)
{
  size_t n = strlen(name);
  return n > 5 && !strcmp(name + n - 5, ".tmpl");
}

static bool sys_fail(sl_error_t *err, const char *what, const char *path)
{
  sl_error_set(err, SL_ERR_SYS, errno, "cannot %s '%s': %s", what, path, strerror(errno));
  return false;
}

/* Writes len bytes to a new file dest with mode; an existing file is replaced. */
static bool write_all(const char *dest, const char *data, size_t len, mode_t mode, sl_error_t *err)
{
  int fd = open(dest, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode & 07777);
  ssize_t w;

  if (fd < 0)
    return sys_fail(err, "create", dest);
  while (len > 0) {
    w = write(fd, data, len);
    if (w < 0 && errno == EINTR)
      continue;
    if (w < 0) {
      sys_fail(err, "write", dest);
      close(fd);
      return false;
    }
    data += w;
    len -= (size_t)w;
  }
  if (close(fd) != 0)
    return sys_fail(err, "write", dest);
  return true;
}

/* One regular file: read, rendered when .tmpl, written into dest_dir (when not NULL). */
static bool apply_file(const char *src, const char *name, const struct stat *st, const char *dest_dir,
                       sl_template_lookup_fn lookup, void *ud, sl_error_t *err)
{
  size_t len = 0;
  char *text = sl_read_file(src, TEMPLATE_MAX_BYTES, &len), *dest;
  sl_buf_t out;
  bool ok = true;

  if (!text)
    return sys_fail(err, "read template", src);
  sl_buf_init(&out);
  if (is_tmpl(name))
    ok = sl_template_render(text, len, src, lookup, ud, &out, err);
  else
    sl_buf_append(&out, text, len);
  if (ok && dest_dir) {
    dest = is_tmpl(name) ? sl_asprintf("%s/%.*s", dest_dir, (int)(strlen(name) - 5), name)
                         : sl_asprintf("%s/%s", dest_dir, name);
    ok = write_all(dest, out.data ? out.data : "", out.len, st->st_mode, err);
    free(dest);
  }
  sl_buf_release(&out);
  free(text);
  return ok;
}

static bool apply_dir(const char *src, const char *dest_dir, int depth, sl_template_lookup_fn lookup,
                      void *ud, sl_error_t *err);

/* src (file or directory) into dest_dir under `name`; a directory at depth 0 is merged
 * into dest_dir itself. */
static bool apply_path(const char *src, const char *name, const char *dest_dir, int depth,
                       sl_template_lookup_fn lookup, void *ud, sl_error_t *err)
{
  struct stat st;
  char *sub;
  bool ok;

  if (stat(src, &st) != 0)
    return sys_fail(err, "read template", src);
  if (S_ISREG(st.st_mode))
    return apply_file(src, name, &st, dest_dir, lookup, ud, err);
  if (!S_ISDIR(st.st_mode)) {
    sl_error_set(err, SL_ERR_SYS, EINVAL, "template '%s' is neither a file nor a directory", src);
    return false;
  }
  if (depth >= TEMPLATE_MAX_DEPTH) {
    sl_error_set(err, SL_ERR_SYS, ELOOP, "template directory '%s' nests deeper than %d", src,
                 TEMPLATE_MAX_DEPTH);
    return false;
  }
  if (depth == 0 || !dest_dir)
    return apply_dir(src, dest_dir, depth, lookup, ud, err);
  sub = sl_asprintf("%s/%s", dest_dir, name);
  ok = (mkdir(sub, st.st_mode & 07777) == 0 || errno == EEXIST || sys_fail(err, "create", sub)) &&
       apply_dir(src, sub, depth, lookup, ud, err);
  free(sub);
  return ok;
}

static bool apply_dir(const char *src, const char *dest_dir, int depth, sl_template_lookup_fn lookup,
                      void *ud, sl_error_t *err)
{
  DIR *d = opendir(src);
  struct dirent *e;
  char *path;
  bool ok = true;

  if (!d)
    return sys_fail(err, "read template directory", src);
  while (ok && (e = readdir(d)) != NULL) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
      continue;
    path = sl_asprintf("%s/%s", src, e->d_name);
    ok = apply_path(path, e->d_name, dest_dir, depth + 1, lookup, ud, err);
    free(path);
  }
  closedir(d);
  return ok;
}

bool sl__config_template_apply_one(const char *src, const char *dest, sl_template_lookup_fn lookup, void *ud,
                                   sl_error_t *err)
{
  const char *slash = strrchr(src, '/');

  return apply_path(src, slash ? slash + 1 : src, dest, 0, lookup, ud, err);
}

bool sl_config_templates_apply(const sl_config_t *cfg, const char *dest, sl_template_lookup_fn lookup,
                               void *ud, sl_error_t *err)
{
  size_t i;

  for (i = 0; i < cfg->simulator.n_templates; i++)
    if (!sl__config_template_apply_one(cfg->simulator.templates[i], dest, lookup, ud, err))
      return false;
  return true;
}
