/* Golden-vector runner: `proto_vector DIR` checks one case directory
 * tests/proto/<kind>/<case>/. The body is DIR/input, or is generated from DIR/input.gen
 * (lines "prefix TEXT", "repeat TEXT", "count N", "suffix TEXT": prefix, then TEXT repeated
 * N times, then suffix; for oversize and deep-nesting cases without MB-sized files). It is
 * decoded as <kind> (the parent directory's name); DIR/expected holds the canonical
 * re-encoding (compared byte for byte, a trailing newline trimmed), DIR/error the expected
 * code name, optionally followed by a space and a substring of the error message. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "specline/proto.h"
#include "specline/util.h"

#define MAX_FILE (8u << 20)

static void trim_newline(char *s)
{
  size_t n = strlen(s);

  while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r'))
    s[--n] = '\0';
}

/* Builds the body from an input.gen spec; NULL on a bad spec. */
static char *generate(const char *spec, size_t *len)
{
  char *copy = sl_strdup(spec), *line, *next, *out = NULL;
  const char *prefix = "", *repeat = "", *suffix = "";
  long count = 0, i;
  sl_buf_t b;

  for (line = copy; line && *line; line = next) {
    next = strchr(line, '\n');
    if (next)
      *next++ = '\0';
    if (strncmp(line, "prefix ", 7) == 0)
      prefix = line + 7;
    else if (strncmp(line, "repeat ", 7) == 0)
      repeat = line + 7;
    else if (strncmp(line, "suffix ", 7) == 0)
      suffix = line + 7;
    else if (strncmp(line, "count ", 6) == 0)
      count = strtol(line + 6, NULL, 10);
    else if (*line)
      goto out_free;
  }
  if (count < 0 || count > 10000000)
    goto out_free;
  sl_buf_init(&b);
  sl_buf_append(&b, prefix, strlen(prefix));
  for (i = 0; i < count; i++)
    sl_buf_append(&b, repeat, strlen(repeat));
  sl_buf_append(&b, suffix, strlen(suffix));
  *len = b.len;
  out = sl_buf_detach(&b);
out_free:
  free(copy);
  return out;
}

static char *path_join(const char *dir, const char *name)
{
  return sl_asprintf("%s/%s", dir, name);
}

int main(int argc, char **argv)
{
  char *dir, *kind_dir, *kind, *p, *body = NULL, *expected = NULL, *error = NULL, *got = NULL;
  char *spec = NULL, *want_msg;
  size_t len = 0, n;
  sl_error_t err;
  int rc = 1;

  if (argc != 2) {
    fprintf(stderr, "usage: proto_vector CASE_DIR\n");
    return 2;
  }
  dir = argv[1];
  n = strlen(dir);
  while (n > 1 && dir[n - 1] == '/')
    dir[--n] = '\0';
  kind_dir = sl_strndup(dir, (size_t)(strrchr(dir, '/') ? strrchr(dir, '/') - dir : 0));
  kind = strrchr(kind_dir, '/') ? strrchr(kind_dir, '/') + 1 : kind_dir;

  p = path_join(dir, "input");
  body = sl_read_file(p, MAX_FILE, &len);
  free(p);
  if (!body) {
    p = path_join(dir, "input.gen");
    spec = sl_read_file(p, 4096, NULL);
    free(p);
    if (!spec || !(body = generate(spec, &len))) {
      fprintf(stderr, "%s: no usable input or input.gen\n", dir);
      goto out;
    }
  }
  p = path_join(dir, "expected");
  expected = sl_read_file(p, MAX_FILE, NULL);
  free(p);
  p = path_join(dir, "error");
  error = sl_read_file(p, 4096, NULL);
  free(p);
  if (!expected == !error) {
    fprintf(stderr, "%s: needs exactly one of 'expected' and 'error'\n", dir);
    goto out;
  }

  sl_error_clear(&err);
  got = sl_proto_reencode(kind, body, len, NULL, &err);
  if (expected) {
    trim_newline(expected);
    if (!got) {
      fprintf(stderr, "%s: decode failed: %s %s\n", dir, sl_proto_code_name(err.code), err.message);
      goto out;
    }
    if (strcmp(got, expected) != 0) {
      fprintf(stderr, "%s: re-encoding differs\n  got:      %s\n  expected: %s\n", dir, got, expected);
      goto out;
    }
    printf("ok %s/%s: %s\n", kind, strrchr(dir, '/') ? strrchr(dir, '/') + 1 : dir, got);
  } else {
    trim_newline(error);
    want_msg = strchr(error, ' ');
    if (want_msg)
      *want_msg++ = '\0';
    if (got) {
      fprintf(stderr, "%s: decoded but %s was expected: %s\n", dir, error, got);
      goto out;
    }
    if (strcmp(sl_proto_code_name(err.code), error) != 0 || err.domain != SL_ERR_PROTO) {
      fprintf(stderr, "%s: got %s (%s), expected %s\n", dir, sl_proto_code_name(err.code),
              err.message, error);
      goto out;
    }
    if (want_msg && !strstr(err.message, want_msg)) {
      fprintf(stderr, "%s: message '%s' lacks '%s'\n", dir, err.message, want_msg);
      goto out;
    }
    printf("ok %s: %s %s\n", dir, error, err.message);
  }
  rc = 0;
out:
  free(kind_dir);
  free(body);
  free(spec);
  free(expected);
  free(error);
  free(got);
  return rc;
}
