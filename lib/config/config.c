/* The config.yaml loader: reads a campaign definition (DESIGN.md §6) with libyaml's event
 * API into a small tree of nodes that remember their line and column, refuses what a
 * config never needs and an attacker might use (anchors and aliases, custom tags, several
 * documents, documents over 1 MiB, deep nesting), checks every map for duplicate keys,
 * then walks the tree against the schema of config.h, filling defaults and naming
 * `file:line:column` and the field path in every error. libyaml errors are translated
 * here, once, into domain SL_ERR_CONFIG. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <yaml.h>

#include "config-private.h"
#include "specline/config.h"
#include "specline/json.h"
#include "specline/util.h"

#define SL_CONFIG_MAX_BYTES ((size_t)1 << 20)
#define SL_CONFIG_MAX_DEPTH 64
#define SL_CONFIG_MAX_VARS 4096
#define SL_CONFIG_MAX_ARGS 256
#define SL_PATH_MAX 256

/* ---- the node tree ------------------------------------------------------------------ */

typedef enum cnode_kind { CN_SCALAR, CN_SEQ, CN_MAP } cnode_kind_t;

typedef struct cnode {
  cnode_kind_t kind;
  unsigned line, col; /* 1-based */
  char *str;          /* scalars: the text, NUL-terminated */
  size_t len;
  bool plain;         /* scalars: plain style and no !!str tag, so it may be a number/null */
  struct cnode **kids; /* sequences: items; maps: key, value, key, value... */
  size_t n, cap;
} cnode_t;

typedef struct ctx {
  const char *name; /* file name for messages */
  const char *file; /* the file loaded, NULL for a string (paths are then not resolved) */
  sl_error_t *err;
} ctx_t;

static void node_free(cnode_t *n)
{
  size_t i;

  if (!n)
    return;
  for (i = 0; i < n->n; i++)
    node_free(n->kids[i]);
  free(n->kids);
  free(n->str);
  free(n);
}

static void node_add(cnode_t *parent, cnode_t *kid)
{
  if (parent->n == parent->cap) {
    parent->cap = parent->cap ? parent->cap * 2 : 8;
    parent->kids = sl_realloc(parent->kids, parent->cap * sizeof *parent->kids);
  }
  parent->kids[parent->n++] = kid;
}

static void fail_at(ctx_t *c, unsigned line, unsigned col, sl_config_code_t code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static void fail_at(ctx_t *c, unsigned line, unsigned col, sl_config_code_t code, const char *fmt, ...)
{
  char msg[256];
  va_list ap;

  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  sl_error_set(c->err, SL_ERR_CONFIG, code, "%s:%u:%u: %s", c->name, line, col, msg);
}

#define FAIL(c, node, code, ...) (fail_at((c), (node)->line, (node)->col, (code), __VA_ARGS__), false)

/* A printable rendering of a scalar for messages: at most 40 characters, odd bytes as '?'. */
static const char *show(const cnode_t *n, char *buf, size_t size)
{
  size_t i, o = 0;

  if (n->kind == CN_SEQ)
    return "a sequence";
  if (n->kind == CN_MAP)
    return "a mapping";
  if (n->plain && (n->len == 0 || !strcmp(n->str, "~") || !strcmp(n->str, "null") || !strcmp(n->str, "Null") ||
                   !strcmp(n->str, "NULL")))
    return "null";
  buf[o++] = '\'';
  for (i = 0; i < n->len && o + 5 < size && i < 40; i++)
    buf[o++] = isprint((unsigned char)n->str[i]) ? n->str[i] : '?';
  if (i < n->len && o + 5 < size) {
    memcpy(buf + o, "...", 3);
    o += 3;
  }
  buf[o++] = '\'';
  buf[o] = '\0';
  return buf;
}

/* Line and column of a byte offset, for reader errors that carry only an offset. */
static void offset_mark(const char *text, size_t len, size_t off, unsigned *line, unsigned *col)
{
  size_t i;

  *line = 1;
  *col = 1;
  for (i = 0; i < off && i < len; i++) {
    if (text[i] == '\n') {
      (*line)++;
      *col = 1;
    } else if (((unsigned char)text[i] & 0xC0) != 0x80) {
      (*col)++;
    }
  }
}

static void fail_syntax(ctx_t *c, const yaml_parser_t *p, const char *text, size_t len)
{
  unsigned line, col;
  const char *problem = p->problem ? p->problem : "invalid yaml";

  if (p->error == YAML_READER_ERROR) {
    offset_mark(text, len, p->problem_offset, &line, &col);
    fail_at(c, line, col, SL_CONFIG_E_SYNTAX, "yaml syntax error: %s", problem);
    return;
  }
  line = (unsigned)p->problem_mark.line + 1;
  col = (unsigned)p->problem_mark.column + 1;
  if (p->context)
    fail_at(c, line, col, SL_CONFIG_E_SYNTAX, "yaml syntax error: %s (%s at line %u column %u)",
            problem, p->context, (unsigned)p->context_mark.line + 1,
            (unsigned)p->context_mark.column + 1);
  else
    fail_at(c, line, col, SL_CONFIG_E_SYNTAX, "yaml syntax error: %s", problem);
}

/* Tags are allowed only when they are the core schema's own (!!str, !!int, ...). */
static bool tag_ok(const yaml_char_t *tag)
{
  return !tag || !strncmp((const char *)tag, "tag:yaml.org,2002:", 18);
}

static bool tag_is_str(const yaml_char_t *tag)
{
  return tag && !strcmp((const char *)tag, "tag:yaml.org,2002:str");
}

static cnode_t *node_new(cnode_kind_t kind, const yaml_mark_t *m)
{
  cnode_t *n = sl_calloc(1, sizeof *n);

  n->kind = kind;
  n->line = (unsigned)m->line + 1;
  n->col = (unsigned)m->column + 1;
  return n;
}

/* Parses the text into a tree. Returns true and *root (NULL for an empty stream) or false
 * with the error set. */
static bool tree_parse(ctx_t *c, const char *text, size_t len, cnode_t **root_out)
{
  yaml_parser_t p;
  yaml_event_t ev;
  cnode_t *stack[SL_CONFIG_MAX_DEPTH];
  size_t depth = 0;
  cnode_t *root = NULL;
  int docs = 0;
  bool ok = false, done = false;

  *root_out = NULL;
  if (!yaml_parser_initialize(&p)) {
    fail_at(c, 1, 1, SL_CONFIG_E_SYNTAX, "cannot initialise the yaml parser");
    return false;
  }
  yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
  while (!done) {
    cnode_t *n = NULL;
    const yaml_char_t *anchor = NULL, *tag = NULL;
    unsigned line, col;

    if (!yaml_parser_parse(&p, &ev)) {
      fail_syntax(c, &p, text, len);
      goto out_free_tree;
    }
    line = (unsigned)ev.start_mark.line + 1;
    col = (unsigned)ev.start_mark.column + 1;
    switch (ev.type) {
    case YAML_STREAM_END_EVENT:
      done = true;
      break;
    case YAML_DOCUMENT_START_EVENT:
      if (++docs > 1) {
        fail_at(c, line, col, SL_CONFIG_E_SYNTAX, "more than one yaml document (a config is one document)");
        goto out_free_event;
      }
      break;
    case YAML_ALIAS_EVENT:
      fail_at(c, line, col, SL_CONFIG_E_VALUE, "yaml aliases are not allowed in a config ('*%s')",
              (const char *)ev.data.alias.anchor);
      goto out_free_event;
    case YAML_SCALAR_EVENT:
      anchor = ev.data.scalar.anchor;
      tag = ev.data.scalar.tag;
      n = node_new(CN_SCALAR, &ev.start_mark);
      n->str = sl_strndup((const char *)ev.data.scalar.value, ev.data.scalar.length);
      n->len = ev.data.scalar.length;
      n->plain = ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE && !tag_is_str(tag);
      break;
    case YAML_SEQUENCE_START_EVENT:
      anchor = ev.data.sequence_start.anchor;
      tag = ev.data.sequence_start.tag;
      n = node_new(CN_SEQ, &ev.start_mark);
      break;
    case YAML_MAPPING_START_EVENT:
      anchor = ev.data.mapping_start.anchor;
      tag = ev.data.mapping_start.tag;
      n = node_new(CN_MAP, &ev.start_mark);
      break;
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT:
      if (depth > 0)
        depth--;
      break;
    default:
      break;
    }
    if (n) {
      if (anchor) {
        fail_at(c, line, col, SL_CONFIG_E_VALUE, "yaml anchors are not allowed in a config ('&%s')",
                (const char *)anchor);
        node_free(n);
        goto out_free_event;
      }
      if (!tag_ok(tag)) {
        fail_at(c, line, col, SL_CONFIG_E_VALUE, "yaml tag '%.60s' is not allowed in a config",
                (const char *)tag);
        node_free(n);
        goto out_free_event;
      }
      if (depth > 0)
        node_add(stack[depth - 1], n);
      else
        root = n;
      if (n->kind != CN_SCALAR) {
        if (depth == SL_CONFIG_MAX_DEPTH) {
          fail_at(c, line, col, SL_CONFIG_E_RANGE, "nesting deeper than %d levels", SL_CONFIG_MAX_DEPTH);
          goto out_free_event;
        }
        stack[depth++] = n;
      }
    }
    yaml_event_delete(&ev);
  }
  *root_out = root;
  root = NULL;
  ok = true;
  goto out_free_tree;

out_free_event:
  yaml_event_delete(&ev);
out_free_tree:
  node_free(root);
  yaml_parser_delete(&p);
  return ok;
}

/* ---- field paths and generic checks ------------------------------------------------- */

static void path_key(char *dst, const char *base, const char *key)
{
  if (!base || !*base)
    snprintf(dst, SL_PATH_MAX, "%s", key);
  else
    snprintf(dst, SL_PATH_MAX, "%s.%s", base, key);
}

static void path_index(char *dst, const char *base, size_t i)
{
  snprintf(dst, SL_PATH_MAX, "%s[%zu]", base, i);
}

/* "top level" or "'budget'", for "unknown key 'x' in ..." messages. */
static const char *where(const char *path, char *buf, size_t size)
{
  if (!path || !*path)
    return "top level";
  snprintf(buf, size, "'%s'", path);
  return buf;
}

typedef struct keyref {
  const cnode_t *key;
  size_t index;
} keyref_t;

static int keyref_cmp(const void *a, const void *b)
{
  const keyref_t *x = a, *y = b;
  size_t n = x->key->len < y->key->len ? x->key->len : y->key->len;
  int r = memcmp(x->key->str, y->key->str, n);

  if (r)
    return r;
  if (x->key->len != y->key->len)
    return x->key->len < y->key->len ? -1 : 1;
  return x->index < y->index ? -1 : (x->index > y->index);
}

/* Checks, through the whole tree, that map keys are scalars and unique. */
static bool tree_check_keys(ctx_t *c, const cnode_t *n, const char *path)
{
  char sub[SL_PATH_MAX], wbuf[SL_PATH_MAX + 2], sbuf[64];
  keyref_t *refs;
  const keyref_t *dup = NULL;
  size_t i, nk;

  if (n->kind == CN_SEQ) {
    for (i = 0; i < n->n; i++) {
      path_index(sub, path && *path ? path : "", i);
      if (!tree_check_keys(c, n->kids[i], sub))
        return false;
    }
    return true;
  }
  if (n->kind != CN_MAP)
    return true;
  nk = n->n / 2;
  for (i = 0; i < nk; i++)
    if (n->kids[2 * i]->kind != CN_SCALAR)
      return FAIL(c, n->kids[2 * i], SL_CONFIG_E_TYPE, "complex keys are not allowed in %s",
                  where(path, wbuf, sizeof wbuf));
  refs = sl_malloc((nk ? nk : 1) * sizeof *refs);
  for (i = 0; i < nk; i++) {
    refs[i].key = n->kids[2 * i];
    refs[i].index = i;
  }
  qsort(refs, nk, sizeof *refs, keyref_cmp);
  for (i = 1; i < nk; i++) {
    if (refs[i].key->len == refs[i - 1].key->len &&
        !memcmp(refs[i].key->str, refs[i - 1].key->str, refs[i].key->len) &&
        (!dup || refs[i].index < dup->index))
      dup = &refs[i];
  }
  if (dup) {
    const cnode_t *k = dup->key;

    fail_at(c, k->line, k->col, SL_CONFIG_E_DUPLICATE, "duplicate key %s in %s", show(k, sbuf, sizeof sbuf),
            where(path, wbuf, sizeof wbuf));
    free(refs);
    return false;
  }
  free(refs);
  for (i = 0; i < nk; i++) {
    path_key(sub, path, n->kids[2 * i]->str);
    if (!tree_check_keys(c, n->kids[2 * i + 1], sub))
      return false;
  }
  return true;
}

/* Optimal string alignment distance, for "did you mean" (short strings only). */
static size_t edit_distance(const char *a, const char *b)
{
  size_t la = strlen(a), lb = strlen(b), i, j;
  size_t d[33][33];

  if (la > 32 || lb > 32)
    return SIZE_MAX;
  for (i = 0; i <= la; i++)
    d[i][0] = i;
  for (j = 0; j <= lb; j++)
    d[0][j] = j;
  for (i = 1; i <= la; i++) {
    for (j = 1; j <= lb; j++) {
      size_t cost = a[i - 1] != b[j - 1], best = d[i - 1][j] + 1;

      if (d[i][j - 1] + 1 < best)
        best = d[i][j - 1] + 1;
      if (d[i - 1][j - 1] + cost < best)
        best = d[i - 1][j - 1] + cost;
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < best)
        best = d[i - 2][j - 2] + 1;
      d[i][j] = best;
    }
  }
  return d[la][lb];
}

/* Checks that N is a map whose keys are all in KEYS (NULL-terminated). */
static bool map_check(ctx_t *c, const cnode_t *n, const char *path, const char *const *keys)
{
  char wbuf[SL_PATH_MAX + 2], sbuf[64];
  size_t i, k;

  if (n->kind != CN_MAP && (!path || !*path))
    return FAIL(c, n, SL_CONFIG_E_TYPE, "a config must be a mapping, got %s", show(n, sbuf, sizeof sbuf));
  if (n->kind != CN_MAP)
    return FAIL(c, n, SL_CONFIG_E_TYPE, "field '%s': expected a mapping, got %s", path, show(n, sbuf, sizeof sbuf));
  for (i = 0; i < n->n; i += 2) {
    const cnode_t *key = n->kids[i];
    const char *best = NULL;
    size_t best_d = SIZE_MAX;

    for (k = 0; keys[k]; k++) {
      size_t d;

      if (strlen(keys[k]) == key->len && !strcmp(keys[k], key->str))
        break;
      d = edit_distance(key->str, keys[k]);
      if (d < best_d) {
        best_d = d;
        best = keys[k];
      }
    }
    if (keys[k])
      continue;
    if (best && best_d <= 2 && best_d < key->len)
      return FAIL(c, key, SL_CONFIG_E_UNKNOWN_KEY, "unknown key %s in %s (did you mean '%s'?)",
                  show(key, sbuf, sizeof sbuf), where(path, wbuf, sizeof wbuf), best);
    return FAIL(c, key, SL_CONFIG_E_UNKNOWN_KEY, "unknown key %s in %s", show(key, sbuf, sizeof sbuf),
                where(path, wbuf, sizeof wbuf));
  }
  return true;
}

static const cnode_t *map_get(const cnode_t *n, const char *key)
{
  size_t i, len = strlen(key);

  if (!n || n->kind != CN_MAP)
    return NULL;
  for (i = 0; i + 1 < n->n; i += 2)
    if (n->kids[i]->len == len && !memcmp(n->kids[i]->str, key, len))
      return n->kids[i + 1];
  return NULL;
}

static bool is_null(const cnode_t *n)
{
  if (n->kind != CN_SCALAR || !n->plain)
    return false;
  return n->len == 0 || !strcmp(n->str, "~") || !strcmp(n->str, "null") || !strcmp(n->str, "Null") ||
         !strcmp(n->str, "NULL");
}

/* ---- scalars ------------------------------------------------------------------------ */

static bool scan_digits(const char **p)
{
  const char *s = *p;

  while (isdigit((unsigned char)**p))
    (*p)++;
  return *p > s;
}

/* YAML 1.2 core-schema float (ints included); *nonfinite for .inf/.nan forms. */
static bool text_is_float(const char *s, bool *nonfinite)
{
  const char *p = s;
  bool digits;

  *nonfinite = false;
  if (*p == '+' || *p == '-')
    p++;
  if (!strcmp(p, ".inf") || !strcmp(p, ".Inf") || !strcmp(p, ".INF") || !strcmp(s, ".nan") ||
      !strcmp(s, ".NaN") || !strcmp(s, ".NAN")) {
    *nonfinite = true;
    return true;
  }
  digits = scan_digits(&p);
  if (*p == '.') {
    p++;
    digits = scan_digits(&p) || digits;
  }
  if (!digits)
    return false;
  if (*p == 'e' || *p == 'E') {
    p++;
    if (*p == '+' || *p == '-')
      p++;
    if (!scan_digits(&p))
      return false;
  }
  return *p == '\0';
}

static bool text_is_int(const char *s)
{
  const char *p = s;

  if (*p == '+' || *p == '-')
    p++;
  return scan_digits(&p) && *p == '\0';
}

/* "the quoted string " for quoted scalars, so "got '10'" is not a puzzle. */
static const char *quoted(const cnode_t *n)
{
  return n->kind == CN_SCALAR && !n->plain ? "the quoted string " : "";
}

static bool node_double(ctx_t *c, const cnode_t *n, const char *path, double *out)
{
  char sbuf[64];
  bool nonfinite;
  double v;

  if (n->kind != CN_SCALAR || !n->plain || !text_is_float(n->str, &nonfinite))
    return FAIL(c, n, SL_CONFIG_E_TYPE, "field '%s': expected a number, got %s%s", path, quoted(n),
                show(n, sbuf, sizeof sbuf));
  if (nonfinite)
    return FAIL(c, n, SL_CONFIG_E_RANGE, "field '%s': expected a finite number, got %s", path,
                show(n, sbuf, sizeof sbuf));
  errno = 0;
  v = strtod(n->str, NULL);
  if (!isfinite(v))
    return FAIL(c, n, SL_CONFIG_E_RANGE, "field '%s': expected a finite number, got %s", path,
                show(n, sbuf, sizeof sbuf));
  *out = v;
  return true;
}

static bool node_int(ctx_t *c, const cnode_t *n, const char *path, int64_t lo, int64_t hi, int64_t *out)
{
  char sbuf[64];
  long long v;

  if (n->kind != CN_SCALAR || !n->plain || !text_is_int(n->str))
    return FAIL(c, n, SL_CONFIG_E_TYPE, "field '%s': expected an integer, got %s%s", path, quoted(n),
                show(n, sbuf, sizeof sbuf));
  errno = 0;
  v = strtoll(n->str, NULL, 10);
  if (errno == ERANGE || v < lo || v > hi)
    return FAIL(c, n, SL_CONFIG_E_RANGE, "field '%s': must be between %lld and %lld, got %s", path, (long long)lo,
                (long long)hi, show(n, sbuf, sizeof sbuf));
  *out = (int64_t)v;
  return true;
}

/* The optional member KEY of map M as an integer in [lo, hi]; absent or null keeps *out. */
static bool get_int64(ctx_t *c, const cnode_t *m, const char *base, const char *key, int64_t lo, int64_t hi,
                      int64_t *out)
{
  const cnode_t *v = map_get(m, key);
  char path[SL_PATH_MAX];

  if (!v || is_null(v))
    return true;
  path_key(path, base, key);
  return node_int(c, v, path, lo, hi, out);
}

static bool get_int(ctx_t *c, const cnode_t *m, const char *base, const char *key, int lo, int hi, int *out)
{
  int64_t v = *out;

  if (!get_int64(c, m, base, key, lo, hi, &v))
    return false;
  *out = (int)v;
  return true;
}

/* Bounds for get_double: lo_open/hi_open make the bound exclusive. */
typedef struct drange {
  double lo, hi;
  bool lo_open, hi_open;
} drange_t;

static const drange_t NONNEG = {0, HUGE_VAL, false, false};
static const drange_t POSITIVE = {0, HUGE_VAL, true, false};
static const drange_t UNIT = {0, 1, false, false};

static bool get_double(ctx_t *c, const cnode_t *m, const char *base, const char *key, const drange_t *r,
                       double *out)
{
  const cnode_t *v = map_get(m, key);
  char path[SL_PATH_MAX];
  double d;

  if (!v || is_null(v))
    return true;
  path_key(path, base, key);
  if (!node_double(c, v, path, &d))
    return false;
  if (r && ((r->lo_open ? d <= r->lo : d < r->lo) || (r->hi_open ? d >= r->hi : d > r->hi))) {
    if (isinf(r->hi))
      return FAIL(c, v, SL_CONFIG_E_RANGE, "field '%s': must be %s %g, got %g", path, r->lo_open ? ">" : ">=",
                  r->lo, d);
    return FAIL(c, v, SL_CONFIG_E_RANGE, "field '%s': must be in %c%g, %g%c, got %g", path, r->lo_open ? '(' : '[',
                r->lo, r->hi, r->hi_open ? ')' : ']', d);
  }
  *out = d;
  return true;
}

static bool get_bool(ctx_t *c, const cnode_t *m, const char *base, const char *key, bool *out)
{
  const cnode_t *v = map_get(m, key);
  char path[SL_PATH_MAX], sbuf[64];

  if (!v || is_null(v))
    return true;
  path_key(path, base, key);
  if (v->kind == CN_SCALAR && v->plain) {
    if (!strcmp(v->str, "true") || !strcmp(v->str, "True") || !strcmp(v->str, "TRUE")) {
      *out = true;
      return true;
    }
    if (!strcmp(v->str, "false") || !strcmp(v->str, "False") || !strcmp(v->str, "FALSE")) {
      *out = false;
      return true;
    }
  }
  return FAIL(c, v, SL_CONFIG_E_TYPE, "field '%s': expected true or false, got %s", path, show(v, sbuf, sizeof sbuf));
}

/* A string member: absent or null leaves *out alone; otherwise replaces it with a copy. */
static bool get_str(ctx_t *c, const cnode_t *m, const char *base, const char *key, char **out)
{
  const cnode_t *v = map_get(m, key);
  char path[SL_PATH_MAX], sbuf[64];

  if (!v || is_null(v))
    return true;
  path_key(path, base, key);
  if (v->kind != CN_SCALAR)
    return FAIL(c, v, SL_CONFIG_E_TYPE, "field '%s': expected a string, got %s", path, show(v, sbuf, sizeof sbuf));
  if (strlen(v->str) != v->len)
    return FAIL(c, v, SL_CONFIG_E_VALUE, "field '%s': contains a NUL character", path);
  free(*out);
  *out = sl_strdup(v->str);
  return true;
}

/* Checks that an optional member is a string, without keeping it. */
static bool check_str(ctx_t *c, const cnode_t *m, const char *base, const char *key)
{
  char *tmp = NULL;
  bool ok = get_str(c, m, base, key, &tmp);

  free(tmp);
  return ok;
}

/* An enum word: one of WORDS (NULL-terminated). */
static bool get_enum(ctx_t *c, const cnode_t *m, const char *base, const char *key, const char *const *words,
                     char **out)
{
  const cnode_t *v = map_get(m, key);
  char path[SL_PATH_MAX], sbuf[64], list[128] = "";
  size_t i;

  if (!v || is_null(v))
    return true;
  path_key(path, base, key);
  if (v->kind == CN_SCALAR)
    for (i = 0; words[i]; i++)
      if (!strcmp(v->str, words[i]) && strlen(words[i]) == v->len) {
        free(*out);
        *out = sl_strdup(words[i]);
        return true;
      }
  for (i = 0; words[i]; i++) {
    size_t l = strlen(list);
    snprintf(list + l, sizeof list - l, "%s%s", i ? ", " : "", words[i]);
  }
  return FAIL(c, v, v->kind == CN_SCALAR ? SL_CONFIG_E_VALUE : SL_CONFIG_E_TYPE,
              "field '%s': expected one of %s, got %s", path, list, show(v, sbuf, sizeof sbuf));
}

static bool name_ok(const char *s)
{
  size_t i;

  if (!(isalpha((unsigned char)s[0]) || s[0] == '_'))
    return false;
  for (i = 1; s[i]; i++)
    if (!(isalnum((unsigned char)s[i]) || s[i] == '_'))
      return false;
  return i <= 63;
}

static bool experiment_ok(const char *s)
{
  size_t i;

  for (i = 0; s[i]; i++)
    if (!(isalnum((unsigned char)s[i]) || s[i] == '_' || s[i] == '-'))
      return false;
  return i >= 1 && i <= 64;
}

/* ---- sections ----------------------------------------------------------------------- */

/* A variable name seen so far, for the shared namespace of inputs, outputs and history. */
typedef struct seen_name {
  const char *name;
  const cnode_t *node;
  char path[SL_PATH_MAX];
} seen_name_t;

typedef struct names {
  seen_name_t *v;
  size_t n, cap;
} names_t;

static bool names_add(ctx_t *c, names_t *ns, const char *name, const cnode_t *node, const char *path)
{
  size_t i;

  for (i = 0; i < ns->n; i++)
    if (!strcmp(ns->v[i].name, name))
      return FAIL(c, node, SL_CONFIG_E_DUPLICATE, "field '%s': duplicate variable name '%s' (also %s)", path, name,
                  ns->v[i].path);
  if (ns->n == ns->cap) {
    ns->cap = ns->cap ? ns->cap * 2 : 16;
    ns->v = sl_realloc(ns->v, ns->cap * sizeof *ns->v);
  }
  ns->v[ns->n].name = name;
  ns->v[ns->n].node = node;
  snprintf(ns->v[ns->n].path, SL_PATH_MAX, "%s", path);
  ns->n++;
  return true;
}

static const char *const VAR_KEYS[] = {"name", "type", "default", "value_range", "calibration", NULL};

/* One variable from map ITEM; KEYNAME is the Synapse map key (NULL in list form). */
static bool parse_var(ctx_t *c, const cnode_t *item, const char *path, const cnode_t *keyname, bool is_input,
                      sl_var_t *v, names_t *ns)
{
  const cnode_t *name_node, *range, *def;
  char sub[SL_PATH_MAX], sbuf[64];

  if (!map_check(c, item, path, VAR_KEYS))
    return false;
  name_node = map_get(item, "name");
  if (name_node && is_null(name_node))
    name_node = NULL;
  if (!name_node)
    name_node = keyname;
  if (!name_node)
    return FAIL(c, item, SL_CONFIG_E_MISSING, "field '%s': missing required key 'name'", path);
  path_key(sub, path, "name");
  if (name_node->kind != CN_SCALAR)
    return FAIL(c, name_node, SL_CONFIG_E_TYPE, "field '%s': expected a string, got %s", sub,
                show(name_node, sbuf, sizeof sbuf));
  if (strlen(name_node->str) != name_node->len || !name_ok(name_node->str))
    return FAIL(c, name_node, SL_CONFIG_E_VALUE,
                "field '%s': bad name %s (letters, digits and '_', not starting with a digit, at most 63)", sub,
                show(name_node, sbuf, sizeof sbuf));
  v->name = sl_strdup(name_node->str);
  if (!names_add(c, ns, v->name, name_node, sub))
    return false;
  v->type = sl_strdup("float");
  {
    static const char *const types[] = {"float", NULL};
    if (!get_enum(c, item, path, "type", types, &v->type))
      return false;
  }
  range = map_get(item, "value_range");
  if (range && is_null(range))
    range = NULL;
  path_key(sub, path, "value_range");
  if (range) {
    if (range->kind != CN_SEQ || range->n != 2)
      return FAIL(c, range, SL_CONFIG_E_TYPE, "field '%s': expected [low, high], got %s", sub,
                  range->kind == CN_SEQ ? "a sequence of another length" : show(range, sbuf, sizeof sbuf));
    if (!node_double(c, range->kids[0], sub, &v->lo) || !node_double(c, range->kids[1], sub, &v->hi))
      return false;
    if (!(v->lo < v->hi))
      return FAIL(c, range, SL_CONFIG_E_RANGE, "field '%s': expected [low, high] with low < high, got [%g, %g]", sub,
                  v->lo, v->hi);
    v->has_range = true;
  } else if (is_input) {
    return FAIL(c, item, SL_CONFIG_E_MISSING, "field '%s': missing required key 'value_range'", path);
  }
  if (!get_bool(c, item, path, "calibration", &v->calibration))
    return false;
  if (v->calibration && !is_input)
    return FAIL(c, map_get(item, "calibration"), SL_CONFIG_E_VALUE,
                "field '%s': only an input can be a calibration parameter", path);
  def = map_get(item, "default");
  if (def && !is_null(def)) {
    path_key(sub, path, "default");
    if (!node_double(c, def, sub, &v->default_value))
      return false;
    v->has_default = true;
    if (v->has_range && (v->default_value < v->lo || v->default_value > v->hi))
      return FAIL(c, def, SL_CONFIG_E_RANGE, "field '%s': default %g is outside value_range [%g, %g]", sub,
                  v->default_value, v->lo, v->hi);
  }
  return true;
}

/* inputs/outputs: a list of maps, or Synapse's map of id -> {name, ...}. */
static bool parse_vars(ctx_t *c, const cnode_t *node, const char *field, bool is_input, sl_var_t **out,
                       size_t *n_out, names_t *ns)
{
  char path[SL_PATH_MAX], sbuf[64];
  size_t i, count;
  sl_var_t *vars;

  if (is_null(node))
    count = 0;
  else if (node->kind == CN_SEQ)
    count = node->n;
  else if (node->kind == CN_MAP)
    count = node->n / 2;
  else
    return FAIL(c, node, SL_CONFIG_E_TYPE, "field '%s': expected a list of variables, got %s", field,
                show(node, sbuf, sizeof sbuf));
  if (count > SL_CONFIG_MAX_VARS)
    return FAIL(c, node, SL_CONFIG_E_RANGE, "field '%s': at most %d variables, got %zu", field, SL_CONFIG_MAX_VARS,
                count);
  if (is_input && count == 0)
    return FAIL(c, node, SL_CONFIG_E_MISSING, "field '%s': at least one input is required", field);
  vars = sl_calloc(count ? count : 1, sizeof *vars);
  *out = vars;
  *n_out = 0;
  for (i = 0; i < count; i++) {
    const cnode_t *item, *key = NULL;

    if (node->kind == CN_SEQ) {
      item = node->kids[i];
      path_index(path, field, i);
    } else {
      key = node->kids[2 * i];
      item = node->kids[2 * i + 1];
      path_key(path, field, key->str);
    }
    (*n_out)++;
    if (!parse_var(c, item, path, key, is_input, &vars[i], ns))
      return false;
  }
  return true;
}

static bool parse_history(ctx_t *c, const cnode_t *h, sl_config_t *cfg, names_t *ns)
{
  static const char *const keys[] = {"name", "checkpoints", NULL};
  const cnode_t *name_node;
  char sbuf[64];

  if (is_null(h))
    return true;
  if (!map_check(c, h, "history", keys))
    return false;
  name_node = map_get(h, "name");
  if (!name_node || is_null(name_node))
    return FAIL(c, h, SL_CONFIG_E_MISSING, "field 'history': missing required key 'name'");
  if (name_node->kind != CN_SCALAR)
    return FAIL(c, name_node, SL_CONFIG_E_TYPE, "field 'history.name': expected a string, got %s",
                show(name_node, sbuf, sizeof sbuf));
  if (strlen(name_node->str) != name_node->len || !name_ok(name_node->str))
    return FAIL(c, name_node, SL_CONFIG_E_VALUE,
                "field 'history.name': bad name %s (letters, digits and '_', not starting with a digit, at most 63)",
                show(name_node, sbuf, sizeof sbuf));
  cfg->history.present = true;
  cfg->history.name = sl_strdup(name_node->str);
  if (!names_add(c, ns, cfg->history.name, name_node, "history.name"))
    return false;
  return get_int(c, h, "history", "checkpoints", 1, 65536, &cfg->history.checkpoints);
}

static void argv_push(sl_config_t *cfg, char *arg)
{
  cfg->simulator.argv = sl_realloc(cfg->simulator.argv, (cfg->simulator.argc + 2) * sizeof(char *));
  cfg->simulator.argv[cfg->simulator.argc++] = arg;
  cfg->simulator.argv[cfg->simulator.argc] = NULL;
}

static bool parse_command(ctx_t *c, const cnode_t *cmd, sl_config_t *cfg)
{
  const char *path = "simulator.command";
  char sub[SL_PATH_MAX], sbuf[64];
  size_t i;

  if (cmd->kind == CN_SEQ) {
    if (cmd->n > SL_CONFIG_MAX_ARGS)
      return FAIL(c, cmd, SL_CONFIG_E_RANGE, "field '%s': at most %d arguments", path, SL_CONFIG_MAX_ARGS);
    for (i = 0; i < cmd->n; i++) {
      const cnode_t *a = cmd->kids[i];

      path_index(sub, path, i);
      if (a->kind != CN_SCALAR || is_null(a))
        return FAIL(c, a, SL_CONFIG_E_TYPE, "field '%s': expected a string, got %s", sub,
                    is_null(a) ? "null" : show(a, sbuf, sizeof sbuf));
      if (strlen(a->str) != a->len)
        return FAIL(c, a, SL_CONFIG_E_VALUE, "field '%s': contains a NUL character", sub);
      if (i == 0 && a->len == 0)
        return FAIL(c, a, SL_CONFIG_E_VALUE, "field '%s': empty program name", sub);
      argv_push(cfg, sl_strdup(a->str));
    }
  } else if (cmd->kind == CN_SCALAR && !is_null(cmd)) {
    const char *p = cmd->str;

    if (strlen(cmd->str) != cmd->len)
      return FAIL(c, cmd, SL_CONFIG_E_VALUE, "field '%s': contains a NUL character", path);
    while (*p) {
      size_t len;

      while (*p == ' ' || *p == '\t')
        p++;
      len = strcspn(p, " \t");
      if (!len)
        break;
      if (cfg->simulator.argc == SL_CONFIG_MAX_ARGS)
        return FAIL(c, cmd, SL_CONFIG_E_RANGE, "field '%s': at most %d arguments", path, SL_CONFIG_MAX_ARGS);
      argv_push(cfg, sl_strndup(p, len));
      p += len;
    }
  } else {
    return FAIL(c, cmd, SL_CONFIG_E_TYPE, "field '%s': expected a list of strings or a string, got %s", path,
                is_null(cmd) ? "null" : show(cmd, sbuf, sizeof sbuf));
  }
  if (cfg->simulator.argc == 0)
    return FAIL(c, cmd, SL_CONFIG_E_VALUE, "field '%s': empty command", path);
  return true;
}

/* ---- simulator run directories (docs/simulator-protocol.md) -------------------------- */

/* True when the relative or absolute path p has a ".." component. */
static bool has_dotdot(const char *p)
{
  const char *s = p;

  while ((s = strstr(s, "..")) != NULL) {
    if ((s == p || s[-1] == '/') && (s[2] == '\0' || s[2] == '/'))
      return true;
    s += 2;
  }
  return false;
}

/* p made absolute against the config's directory (or the current one), with "." and empty
 * components dropped; NULL when the directory is unknown. */
static char *abs_clean(const ctx_t *c, const char *p)
{
  char *base = p[0] == '/' ? sl_strdup("") : sl__config_dir(c->file ? c->file : "x");
  sl_buf_t b;
  const char *s = p;
  size_t n;

  if (!base)
    return NULL;
  sl_buf_init(&b);
  sl_buf_printf(&b, "%s", strcmp(base, "/") ? base : "");
  free(base);
  while (*s) {
    n = strcspn(s, "/");
    if (n && !(n == 1 && s[0] == '.'))
      sl_buf_printf(&b, "/%.*s", (int)n, s);
    s += n;
    while (*s == '/')
      s++;
  }
  if (b.len == 0)
    sl_buf_append(&b, "/", 1);
  return sl_buf_detach(&b);
}

/* The runs directory must not be one whose cleanup could reach the user's files: not '/',
 * no '..', not the config's directory or one above it. */
static bool parse_workdir(ctx_t *c, const cnode_t *s, sl_config_t *cfg)
{
  const cnode_t *v = map_get(s, "workdir");
  const char *path = "simulator.workdir";
  char *abs, *cdir;
  bool ok = true;
  size_t n;

  if (!get_str(c, s, "simulator", "workdir", &cfg->simulator.workdir))
    return false;
  if (!cfg->simulator.workdir)
    return true;
  if (!strcmp(cfg->simulator.workdir, "none"))
    return true; /* no run directories (made NULL once parsed) */
  if (!cfg->simulator.workdir[0])
    return FAIL(c, v, SL_CONFIG_E_VALUE, "field '%s': empty path", path);
  if (has_dotdot(cfg->simulator.workdir))
    return FAIL(c, v, SL_CONFIG_E_VALUE, "field '%s': '..' is not allowed in '%s' (run directories stay below it)",
                path, cfg->simulator.workdir);
  abs = abs_clean(c, cfg->simulator.workdir);
  cdir = abs_clean(c, ".");
  if (abs && cdir) {
    n = strlen(abs);
    if (!strcmp(abs, "/"))
      ok = FAIL(c, v, SL_CONFIG_E_VALUE, "field '%s': '%s' is the root directory", path, cfg->simulator.workdir);
    else if (!strncmp(cdir, abs, n) && (cdir[n] == '\0' || cdir[n] == '/'))
      ok = FAIL(c, v, SL_CONFIG_E_VALUE,
                "field '%s': '%s' is the config's directory or above it (%s); name a directory of its own, "
                "e.g. 'run/runs'",
                path, cfg->simulator.workdir, abs);
  }
  free(abs);
  free(cdir);
  return ok;
}

static bool parse_keep(ctx_t *c, const cnode_t *s, sl_config_t *cfg)
{
  const cnode_t *v = map_get(s, "keep");
  char sbuf[64];

  if (!v || is_null(v))
    return true;
  if (v->kind == CN_SCALAR && (!strcmp(v->str, "true") || !strcmp(v->str, "True")))
    cfg->simulator.keep = SL_KEEP_ALWAYS;
  else if (v->kind == CN_SCALAR && (!strcmp(v->str, "false") || !strcmp(v->str, "False")))
    cfg->simulator.keep = SL_KEEP_NEVER;
  else if (v->kind == CN_SCALAR && !strcmp(v->str, "failed"))
    cfg->simulator.keep = SL_KEEP_FAILED;
  else
    return FAIL(c, v, SL_CONFIG_E_VALUE, "field 'simulator.keep': expected true, false or failed, got %s",
                show(v, sbuf, sizeof sbuf));
  return true;
}

/* Placeholders a template may use at config time: the inputs and the run's identity. */
static bool template_names(void *ud, const char *name, sl_buf_t *out)
{
  const sl_config_t *cfg = ud;

  (void)out;
  return sl_config_input_index(cfg, name) >= 0 || !strcmp(name, "sample_id") || !strcmp(name, "campaign") ||
         !strcmp(name, "run_dir") || !strcmp(name, "max_steps");
}

/* The items of a list (or the one scalar v) into *items (freed by the caller). */
static bool str_items(ctx_t *c, const cnode_t *v, const char *field, size_t max, const cnode_t ***items,
                      size_t *n)
{
  char sbuf[64];

  *n = 0;
  if (!v || is_null(v))
    return true;
  if (v->kind == CN_SCALAR) {
    *items = sl_calloc(1, sizeof **items);
    (*items)[(*n)++] = v;
    return true;
  }
  if (v->kind != CN_SEQ)
    return FAIL(c, v, SL_CONFIG_E_TYPE, "field '%s': expected a list, got %s", field, show(v, sbuf, sizeof sbuf));
  if (v->n > max)
    return FAIL(c, v, SL_CONFIG_E_RANGE, "field '%s': at most %zu entries", field, max);
  *items = sl_calloc(v->n ? v->n : 1, sizeof **items);
  for (*n = 0; *n < v->n; (*n)++)
    (*items)[*n] = v->kids[*n];
  return true;
}

static bool parse_template(ctx_t *c, const cnode_t *t, const char *path, sl_config_t *cfg)
{
  char sbuf[64], *abs;
  sl_error_t terr;

  if (t->kind != CN_SCALAR || is_null(t) || !t->len || strlen(t->str) != t->len)
    return FAIL(c, t, SL_CONFIG_E_TYPE, "field '%s': expected a file or directory name, got %s", path,
                show(t, sbuf, sizeof sbuf));
  abs = c->file ? abs_clean(c, t->str) : NULL;
  cfg->simulator.templates[cfg->simulator.n_templates++] = abs ? abs : sl_strdup(t->str);
  if (!c->file)
    return true; /* a config from a string: nothing on disk to check */
  if (!sl__config_template_apply_one(cfg->simulator.templates[cfg->simulator.n_templates - 1], NULL,
                                     template_names, cfg, &terr))
    return FAIL(c, t, SL_CONFIG_E_VALUE, "field '%s': %s", path, terr.message);
  return true;
}

static bool parse_templates(ctx_t *c, const cnode_t *s, sl_config_t *cfg)
{
  const cnode_t **items = NULL;
  char path[SL_PATH_MAX];
  size_t i, n;
  bool ok;

  if (!(ok = str_items(c, map_get(s, "templates"), "simulator.templates", 256, &items, &n)))
    goto out;
  cfg->simulator.templates = sl_calloc(n ? n : 1, sizeof(char *));
  for (i = 0; ok && i < n; i++) {
    path_index(path, "simulator.templates", i);
    ok = parse_template(c, items[i], path, cfg);
  }
out:
  free(items);
  return ok;
}

/* The key a file is stored under by default: its path with '/' and odd characters as '_'. */
static char *outfile_name(const char *file)
{
  char *n = sl_strndup(file, 63);
  size_t i;

  for (i = 0; n[i]; i++)
    if (!(isalnum((unsigned char)n[i]) || n[i] == '_' || n[i] == '.' || n[i] == '-'))
      n[i] = '_';
  return n;
}

static bool outfile_name_ok(const char *s)
{
  size_t i;

  for (i = 0; s[i]; i++)
    if (!(isalnum((unsigned char)s[i]) || s[i] == '_' || s[i] == '.' || s[i] == '-'))
      return false;
  return i >= 1 && i <= 63;
}

static bool parse_outfile(ctx_t *c, const cnode_t *o, const char *path, sl_sim_outfile_t *f)
{
  static const char *const keys[] = {"file", "name", "store", "max_bytes", "optional", NULL};
  static const char *const stores[] = {"content", "path", NULL};
  const cnode_t *fn = o->kind == CN_MAP ? map_get(o, "file") : o;
  char *store = NULL, sbuf[64];
  bool ok;

  f->max_bytes = 65536;
  if (o->kind == CN_MAP && !map_check(c, o, path, keys))
    return false;
  if (!fn || fn->kind != CN_SCALAR || is_null(fn) || !fn->len || strlen(fn->str) != fn->len)
    return FAIL(c, fn ? fn : o, fn ? SL_CONFIG_E_TYPE : SL_CONFIG_E_MISSING,
                "field '%s': expected a file name (or {file: NAME, ...}), got %s", path,
                fn ? show(fn, sbuf, sizeof sbuf) : "no 'file'");
  if (fn->str[0] == '/' || has_dotdot(fn->str))
    return FAIL(c, fn, SL_CONFIG_E_VALUE, "field '%s': '%s' must be a path inside the run directory (relative, no '..')",
                path, fn->str);
  f->file = sl_strdup(fn->str);
  if (o->kind != CN_MAP) {
    f->name = outfile_name(f->file);
    return true;
  }
  ok = get_str(c, o, path, "name", &f->name) && get_enum(c, o, path, "store", stores, &store) &&
       get_int64(c, o, path, "max_bytes", 1, 524288, &f->max_bytes) && get_bool(c, o, path, "optional", &f->optional);
  f->store_path = store && !strcmp(store, "path");
  free(store);
  if (ok && !f->name)
    f->name = outfile_name(f->file);
  else if (ok && !outfile_name_ok(f->name))
    ok = FAIL(c, map_get(o, "name"), SL_CONFIG_E_VALUE,
              "field '%s.name': bad name '%s' (letters, digits, '_', '.', '-', at most 63)", path, f->name);
  return ok;
}

static bool parse_outfiles(ctx_t *c, const cnode_t *s, sl_config_t *cfg)
{
  const cnode_t **items = NULL;
  char path[SL_PATH_MAX];
  size_t i, j, n;
  bool ok;

  if (!(ok = str_items(c, map_get(s, "outputs"), "simulator.outputs", 64, &items, &n)))
    goto out;
  cfg->simulator.outfiles = sl_calloc(n ? n : 1, sizeof *cfg->simulator.outfiles);
  for (i = 0; ok && i < n; i++) {
    path_index(path, "simulator.outputs", i);
    cfg->simulator.n_outfiles++;
    ok = parse_outfile(c, items[i], path, &cfg->simulator.outfiles[i]);
    for (j = 0; ok && j < i; j++)
      if (!strcmp(cfg->simulator.outfiles[j].name, cfg->simulator.outfiles[i].name))
        ok = FAIL(c, items[i], SL_CONFIG_E_DUPLICATE, "field '%s': name '%s' is used twice (give one a 'name')", path,
                  cfg->simulator.outfiles[i].name);
  }
out:
  free(items);
  return ok;
}

/* `workdir: none` leaves nowhere to put templates or to read output files from. */
static bool check_workdir_none(ctx_t *c, const cnode_t *s, const sl_config_t *cfg)
{
  if (!cfg->simulator.workdir || strcmp(cfg->simulator.workdir, "none") != 0 ||
      (cfg->simulator.n_templates == 0 && cfg->simulator.n_outfiles == 0))
    return true;
  return FAIL(c, map_get(s, "workdir"), SL_CONFIG_E_VALUE,
              "field 'simulator.workdir': 'none' leaves no run directory for simulator.%s",
              cfg->simulator.n_templates ? "templates" : "outputs");
}

static bool parse_simulator(ctx_t *c, const cnode_t *s, const cnode_t *root, sl_config_t *cfg)
{
  static const char *const keys[] = {"command",      "max_steps",  "wall_s",
                                     "step_delay",   "term_grace_s", "persistent",
                                     "max_runs_per_process", "workdir", "keep", "templates", "outputs", "bundle", NULL};
  const cnode_t *cmd;

  if (!s || is_null(s))
    return FAIL(c, root, SL_CONFIG_E_MISSING, "missing required key 'simulator'");
  if (!map_check(c, s, "simulator", keys))
    return false;
  cmd = map_get(s, "command");
  if (!cmd)
    return FAIL(c, s, SL_CONFIG_E_MISSING, "field 'simulator': missing required key 'command'");
  if (!parse_command(c, cmd, cfg))
    return false;
  return get_int64(c, s, "simulator", "max_steps", 1, INT64_MAX, &cfg->simulator.max_steps) &&
         get_double(c, s, "simulator", "wall_s", &POSITIVE, &cfg->simulator.wall_s) &&
         get_double(c, s, "simulator", "step_delay", &NONNEG, &cfg->simulator.step_delay) &&
         get_double(c, s, "simulator", "term_grace_s", &NONNEG, &cfg->simulator.term_grace_s) &&
         get_bool(c, s, "simulator", "persistent", &cfg->simulator.persistent) &&
         get_int64(c, s, "simulator", "max_runs_per_process", 1, INT64_MAX, &cfg->simulator.max_runs_per_process) &&
         get_int64(c, s, "simulator", "bundle", 1, SL_CONFIG_BUNDLE_MAX, &cfg->simulator.bundle) &&
         parse_workdir(c, s, cfg) && parse_keep(c, s, cfg) && parse_templates(c, s, cfg) && parse_outfiles(c, s, cfg) &&
         check_workdir_none(c, s, cfg);
}

static bool parse_policy(ctx_t *c, const cnode_t *p, sl_config_t *cfg, bool *batch_set)
{
  static const char *const keys[] = {"initial", "initial_n", "acquisition", "objective", "ucb_kappa",
                                     "oversubscribe", "batch", "seed", "diversity", "speculative", NULL};
  static const char *const skeys[] = {"enabled",        "min_fraction", "confidence",   "surprise_p",
                                      "audit_fraction", "rule",         "max_fraction", "plateau_pool", NULL};
  static const char *const rules[] = {"members", "conditioned", "plateau", NULL};
  static const char *const initials[] = {"sobol", "lhs", "grid", NULL};
  static const char *const acqs[] = {"max_std", "ucb", "none", NULL};
  static const drange_t open_unit = {0, 1, true, true};
  const cnode_t *spec, *obj;
  int64_t seed = (int64_t)cfg->policy.seed;
  char sbuf[64];

  if (!p || is_null(p))
    return true;
  if (!map_check(c, p, "policy", keys))
    return false;
  *batch_set = map_get(p, "batch") && !is_null(map_get(p, "batch"));
  if (!get_enum(c, p, "policy", "initial", initials, &cfg->policy.initial) ||
      !get_int(c, p, "policy", "initial_n", 1, 1000000, &cfg->policy.initial_n) ||
      !get_enum(c, p, "policy", "acquisition", acqs, &cfg->policy.acquisition) ||
      !get_str(c, p, "policy", "objective", &cfg->policy.objective) ||
      !get_double(c, p, "policy", "ucb_kappa", &NONNEG, &cfg->policy.ucb_kappa) ||
      !get_double(c, p, "policy", "oversubscribe", &(drange_t){1, 1000, false, false}, &cfg->policy.oversubscribe) ||
      !get_int(c, p, "policy", "batch", 1, 1000000, &cfg->policy.batch) ||
      !get_int64(c, p, "policy", "seed", 0, INT64_MAX, &seed) ||
      !get_double(c, p, "policy", "diversity", &NONNEG, &cfg->policy.diversity))
    return false;
  cfg->policy.seed = (uint64_t)seed;
  obj = map_get(p, "objective");
  if (cfg->policy.objective && sl_config_output_index(cfg, cfg->policy.objective) < 0)
    return FAIL(c, obj, SL_CONFIG_E_VALUE, "field 'policy.objective': %s is not one of the outputs",
                show(obj, sbuf, sizeof sbuf));
  if (!strcmp(cfg->policy.acquisition, "ucb") && !cfg->policy.objective)
    return FAIL(c, p, SL_CONFIG_E_MISSING, "field 'policy': acquisition 'ucb' needs an 'objective'");
  spec = map_get(p, "speculative");
  if (!spec || is_null(spec))
    return true;
  if (!map_check(c, spec, "policy.speculative", skeys))
    return false;
  return get_bool(c, spec, "policy.speculative", "enabled", &cfg->policy.speculative.enabled) &&
         get_double(c, spec, "policy.speculative", "min_fraction", &UNIT, &cfg->policy.speculative.min_fraction) &&
         get_double(c, spec, "policy.speculative", "confidence", &POSITIVE, &cfg->policy.speculative.confidence) &&
         get_double(c, spec, "policy.speculative", "surprise_p", &open_unit, &cfg->policy.speculative.surprise_p) &&
         get_double(c, spec, "policy.speculative", "audit_fraction", &UNIT,
                    &cfg->policy.speculative.audit_fraction) &&
         get_enum(c, spec, "policy.speculative", "rule", rules, &cfg->policy.speculative.rule) &&
         get_double(c, spec, "policy.speculative", "max_fraction", &UNIT, &cfg->policy.speculative.max_fraction) &&
         get_int(c, spec, "policy.speculative", "plateau_pool", 0, 4, &cfg->policy.speculative.plateau_pool);
}

static bool parse_budget(ctx_t *c, const cnode_t *b, const cnode_t *root, sl_config_t *cfg)
{
  static const char *const keys[] = {"max_sims", "max_steps", "target_nrmse", "wall_s", "max_failed", NULL};

  if (!b || is_null(b))
    return FAIL(c, root, SL_CONFIG_E_MISSING,
                "missing required key 'budget' (at least one of max_sims, max_steps, wall_s, target_nrmse)");
  if (!map_check(c, b, "budget", keys) ||
      !get_int64(c, b, "budget", "max_sims", 0, INT64_MAX, &cfg->budget.max_sims) ||
      !get_int64(c, b, "budget", "max_steps", 0, INT64_MAX, &cfg->budget.max_steps) ||
      !get_double(c, b, "budget", "target_nrmse", &NONNEG, &cfg->budget.target_nrmse) ||
      !get_double(c, b, "budget", "wall_s", &NONNEG, &cfg->budget.wall_s) ||
      !get_double(c, b, "budget", "max_failed", &NONNEG, &cfg->budget.max_failed))
    return false;
  if (cfg->budget.max_sims == 0 && cfg->budget.max_steps == 0 && cfg->budget.target_nrmse == 0 &&
      cfg->budget.wall_s == 0)
    return FAIL(c, b, SL_CONFIG_E_MISSING,
                "field 'budget': set at least one limit among max_sims, max_steps, wall_s, target_nrmse");
  return true;
}

static bool parse_learn(ctx_t *c, const cnode_t *l, sl_config_t *cfg)
{
  static const char *const keys[] = {"ensemble", "hidden", "layers", "epochs", "batch", "lr",
                                     "retrain_every", "validation_fraction", "loss", NULL};
  static const char *const losses[] = {"nll", "mse", NULL};
  static const drange_t lr_range = {0, 10, true, false};
  static const drange_t vf_range = {0, 1, false, true};

  if (!l || is_null(l))
    return true;
  return map_check(c, l, "learn", keys) && get_int(c, l, "learn", "ensemble", 1, 64, &cfg->learn.ensemble) &&
         get_int(c, l, "learn", "hidden", 1, 65536, &cfg->learn.hidden) &&
         get_int(c, l, "learn", "layers", 1, 64, &cfg->learn.layers) &&
         get_int(c, l, "learn", "epochs", 1, 100000000, &cfg->learn.epochs) &&
         get_int(c, l, "learn", "batch", 1, 1000000, &cfg->learn.batch) &&
         get_double(c, l, "learn", "lr", &lr_range, &cfg->learn.lr) &&
         get_int(c, l, "learn", "retrain_every", 1, 1000000000, &cfg->learn.retrain_every) &&
         get_double(c, l, "learn", "validation_fraction", &vf_range, &cfg->learn.validation_fraction) &&
         get_enum(c, l, "learn", "loss", losses, &cfg->learn.loss);
}

static bool parse_workers(ctx_t *c, const cnode_t *w, sl_config_t *cfg)
{
  static const char *const keys[] = {"simulate_workers", "slots", NULL};

  if (!w || is_null(w))
    return true;
  return map_check(c, w, "workers", keys) &&
         get_int(c, w, "workers", "simulate_workers", 1, 4096, &cfg->workers.simulate_workers) &&
         get_int(c, w, "workers", "slots", 1, 4096, &cfg->workers.slots);
}

/* One URL of `broker:` (len bytes of url): amqp:// or amqps://, and no credentials. */
static bool broker_url_check(ctx_t *c, const cnode_t *n, const char *url, size_t len)
{
  const char *rest = NULL, *slash, *end = url + len;

  if (len > 7 && !strncmp(url, "amqp://", 7))
    rest = url + 7;
  else if (len > 8 && !strncmp(url, "amqps://", 8))
    rest = url + 8;
  if (!rest)
    return FAIL(c, n, SL_CONFIG_E_VALUE, "field 'broker': expected an amqp:// or amqps:// url");
  slash = memchr(rest, '/', (size_t)(end - rest));
  if (memchr(rest, '@', (size_t)((slash ? slash : end) - rest)))
    return FAIL(c, n, SL_CONFIG_E_VALUE,
                "field 'broker': credentials do not belong in the config; use credentials_file or the environment");
  return true;
}

/* The comma ending the first URL of a broker list: one followed, after blanks, by another
 * amqp:// or amqps:// (the AMQP session splits the same way); NULL for the last URL. */
static const char *broker_list_sep(const char *p)
{
  for (; (p = strchr(p, ',')) != NULL; p++) {
    const char *q = p + 1 + strspn(p + 1, " \t");
    if (!strncmp(q, "amqp://", 7) || !strncmp(q, "amqps://", 8))
      return p;
  }
  return NULL;
}

/* Checks each URL of a comma-separated broker list. */
static bool broker_list_check(ctx_t *c, const cnode_t *n, const char *list)
{
  const char *p = list, *sep, *end;

  do {
    sep = broker_list_sep(p);
    end = sep ? sep : p + strlen(p);
    if (sep || p != list)
      while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    if (!broker_url_check(c, n, p, (size_t)(end - p)))
      return false;
    if (sep)
      p = sep + 1 + strspn(sep + 1, " \t");
  } while (sep);
  return true;
}

/* `broker:`: one amqp(s):// URL, several separated by commas, or a YAML list of them (the
 * nodes of a cluster); kept as one comma-separated string, which is what SPECLINE_AMQP_URL
 * and the AMQP session take. */
static bool get_broker(ctx_t *c, const cnode_t *root, sl_config_t *cfg)
{
  const cnode_t *v = map_get(root, "broker");
  char sbuf[64];
  sl_buf_t b;
  size_t i;

  if (!v || is_null(v))
    return true;
  if (v->kind != CN_SEQ)
    return get_str(c, root, "", "broker", &cfg->broker) && broker_list_check(c, v, cfg->broker);
  if (v->n == 0)
    return FAIL(c, v, SL_CONFIG_E_VALUE, "field 'broker': expected at least one url");
  sl_buf_init(&b);
  for (i = 0; i < v->n; i++) {
    const cnode_t *k = v->kids[i];
    if (k->kind != CN_SCALAR || strlen(k->str) != k->len) {
      sl_buf_release(&b);
      return FAIL(c, k, SL_CONFIG_E_TYPE, "field 'broker[%zu]': expected a url, got %s", i, show(k, sbuf, sizeof sbuf));
    }
    if (!broker_url_check(c, k, k->str, k->len)) {
      sl_buf_release(&b);
      return false;
    }
    sl_buf_printf(&b, "%s%s", i ? "," : "", k->str);
  }
  free(cfg->broker);
  cfg->broker = sl_buf_detach(&b);
  return true;
}

static bool parse_urls(ctx_t *c, const cnode_t *root, sl_config_t *cfg)
{
  const cnode_t *n;

  if (!get_str(c, root, "", "store", &cfg->store) || !get_broker(c, root, cfg) ||
      !get_str(c, root, "", "credentials_file", &cfg->credentials_file))
    return false;
  n = map_get(root, "store");
  if (cfg->store && n) {
    if (!(strncmp(cfg->store, "sqlite:", 7) == 0 && cfg->store[7]) && strncmp(cfg->store, "mongodb://", 10) != 0 &&
        strncmp(cfg->store, "mongodb+srv://", 14) != 0)
      return FAIL(c, n, SL_CONFIG_E_VALUE, "field 'store': expected 'sqlite:PATH' or a mongodb:// url");
  }
  n = map_get(root, "credentials_file");
  if (cfg->credentials_file && n && !*cfg->credentials_file)
    return FAIL(c, n, SL_CONFIG_E_VALUE, "field 'credentials_file': empty path");
  return true;
}

/* simulation_calibration: variable name -> {alpha, beta}; Synapse's alpha_guess/beta_guess
 * and descriptive keys are accepted too. */
static bool parse_calibration(ctx_t *c, const cnode_t *cal, sl_config_t *cfg)
{
  static const char *const keys[] = {"alpha", "beta", "alpha_guess", "beta_guess", "alpha_uncertainty",
                                     "beta_uncertainty", "name", "unit", "depends_on", NULL};
  char path[SL_PATH_MAX], sbuf[64];
  size_t i, count;

  if (!cal || is_null(cal))
    return true;
  if (cal->kind != CN_MAP)
    return FAIL(c, cal, SL_CONFIG_E_TYPE, "field 'simulation_calibration': expected a mapping, got %s",
                show(cal, sbuf, sizeof sbuf));
  count = cal->n / 2;
  if (count > 2 * SL_CONFIG_MAX_VARS)
    return FAIL(c, cal, SL_CONFIG_E_RANGE, "field 'simulation_calibration': too many entries");
  cfg->calibration = sl_calloc(count ? count : 1, sizeof *cfg->calibration);
  for (i = 0; i < count; i++) {
    const cnode_t *key = cal->kids[2 * i], *val = cal->kids[2 * i + 1];
    sl_calibration_t *e = &cfg->calibration[i];
    double alpha = 1, beta = 0;

    path_key(path, "simulation_calibration", key->str);
    if (sl_config_output_index(cfg, key->str) < 0 && sl_config_input_index(cfg, key->str) < 0)
      return FAIL(c, key, SL_CONFIG_E_VALUE, "field '%s': %s is not an input or output", path,
                  show(key, sbuf, sizeof sbuf));
    if (!map_check(c, val, path, keys) || !get_double(c, val, path, "alpha_guess", NULL, &alpha) ||
        !get_double(c, val, path, "alpha", NULL, &alpha) || !get_double(c, val, path, "beta_guess", NULL, &beta) ||
        !get_double(c, val, path, "beta", NULL, &beta) ||
        !get_double(c, val, path, "alpha_uncertainty", &NONNEG, &(double){0}) ||
        !get_double(c, val, path, "beta_uncertainty", &NONNEG, &(double){0}) ||
        !check_str(c, val, path, "name") || !check_str(c, val, path, "unit") ||
        !check_str(c, val, path, "depends_on"))
      return false;
    if (alpha == 0) {
      const cnode_t *a = map_get(val, "alpha") ? map_get(val, "alpha") : map_get(val, "alpha_guess");
      return FAIL(c, a, SL_CONFIG_E_RANGE, "field '%s.alpha': must not be 0 (experimental = simulation / alpha + beta)",
                  path);
    }
    e->name = sl_strdup(key->str);
    e->alpha = alpha;
    e->beta = beta;
    cfg->n_calibration++;
  }
  return true;
}

/* ---- the whole document ------------------------------------------------------------- */

static const char *const TOP_KEYS[] = {"experiment", "inputs", "outputs", "history", "simulator", "policy",
                                       "budget", "learn", "workers", "store", "broker", "credentials_file",
                                       "simulation_calibration",
                                       /* Synapse keys specline does not use, accepted unchecked */
                                       "database", "mlflow", "execution_mode", "date_filter", NULL};

static void config_defaults(sl_config_t *cfg)
{
  cfg->history.checkpoints = 32;
  cfg->simulator.max_steps = 1000;
  cfg->simulator.wall_s = 3600;
  cfg->budget.max_failed = 0.5;
  cfg->simulator.step_delay = 0;
  cfg->simulator.term_grace_s = 2;
  cfg->simulator.persistent = false;
  cfg->simulator.max_runs_per_process = 1000;
  cfg->simulator.bundle = 1;
  cfg->policy.initial = sl_strdup("sobol");
  cfg->policy.initial_n = 16;
  cfg->policy.acquisition = sl_strdup("max_std");
  cfg->policy.ucb_kappa = 2;
  cfg->policy.oversubscribe = 2;
  cfg->policy.seed = 1;
  cfg->policy.diversity = 0.1;
  cfg->policy.speculative.enabled = false;
  cfg->policy.speculative.min_fraction = 0.2;
  cfg->policy.speculative.confidence = 0.02;
  cfg->policy.speculative.surprise_p = 0.01;
  cfg->policy.speculative.audit_fraction = 0.1;
  cfg->policy.speculative.rule = sl_strdup("members");
  cfg->policy.speculative.max_fraction = 0.875; /* SL_SPEC_MAX_FRACTION_DEFAULT (engine) */
  cfg->policy.speculative.plateau_pool = 2;     /* SL_SPEC_PLATEAU_POOL_DEFAULT */
  cfg->learn.ensemble = 5;
  cfg->learn.hidden = 64;
  cfg->learn.layers = 2;
  cfg->learn.epochs = 200;
  cfg->learn.batch = 64;
  cfg->learn.lr = 1e-3;
  cfg->learn.retrain_every = 8;
  cfg->learn.validation_fraction = 0.2;
  cfg->learn.loss = sl_strdup("nll");
  cfg->workers.simulate_workers = 1;
  cfg->workers.slots = 2;
}

static bool config_parse(ctx_t *c, const cnode_t *root, sl_config_t *cfg)
{
  const cnode_t *n;
  names_t ns = {0};
  bool batch_set = false, ok = false;
  char sbuf[64];

  if (!map_check(c, root, "", TOP_KEYS))
    goto out;
  n = map_get(root, "experiment");
  if (!n || is_null(n)) {
    (void)FAIL(c, n ? n : root, SL_CONFIG_E_MISSING, "missing required key 'experiment'");
    goto out;
  }
  if (!get_str(c, root, "", "experiment", &cfg->experiment))
    goto out;
  if (!experiment_ok(cfg->experiment)) {
    (void)FAIL(c, n, SL_CONFIG_E_VALUE, "field 'experiment': bad campaign name %s (letters, digits, '_' and '-', at most 64)",
         show(n, sbuf, sizeof sbuf));
    goto out;
  }
  n = map_get(root, "inputs");
  if (!n) {
    (void)FAIL(c, root, SL_CONFIG_E_MISSING, "missing required key 'inputs'");
    goto out;
  }
  if (!parse_vars(c, n, "inputs", true, &cfg->inputs, &cfg->n_inputs, &ns))
    goto out;
  n = map_get(root, "outputs");
  if (n && !parse_vars(c, n, "outputs", false, &cfg->outputs, &cfg->n_outputs, &ns))
    goto out;
  n = map_get(root, "history");
  if (n && !parse_history(c, n, cfg, &ns))
    goto out;
  if (!parse_simulator(c, map_get(root, "simulator"), root, cfg) ||
      !parse_workers(c, map_get(root, "workers"), cfg) ||
      !parse_policy(c, map_get(root, "policy"), cfg, &batch_set) ||
      !parse_budget(c, map_get(root, "budget"), root, cfg) || !parse_learn(c, map_get(root, "learn"), cfg) ||
      !parse_urls(c, root, cfg) || !parse_calibration(c, map_get(root, "simulation_calibration"), cfg))
    goto out;
  if (!batch_set)
    cfg->policy.batch = cfg->workers.slots;
  if (!cfg->store)
    cfg->store = sl_asprintf("sqlite:run/%s.db", cfg->experiment);
  if (!cfg->simulator.workdir)
    cfg->simulator.workdir = sl_strdup("run/runs");
  else
    cfg->written.workdir = sl_strdup(cfg->simulator.workdir);
  if (!strcmp(cfg->simulator.workdir, "none")) {
    free(cfg->simulator.workdir);
    cfg->simulator.workdir = NULL;
  }
  ok = true;
out:
  free(ns.v);
  return ok;
}

/* ---- public API --------------------------------------------------------------------- */

/* Parses and validates yaml; `file`, when not NULL, is the file it came from: the paths
 * the config names are then resolved against its directory. */
static sl_config_t *config_load_text(const char *yaml, size_t len, const char *name, const char *file,
                                     sl_error_t *err)
{
  ctx_t c = {name ? name : "<string>", file, err};
  cnode_t *root = NULL;
  sl_config_t *cfg = NULL;

  if (!yaml)
    len = 0;
  if (len > SL_CONFIG_MAX_BYTES) {
    fail_at(&c, 1, 1, SL_CONFIG_E_RANGE, "config larger than %zu bytes", SL_CONFIG_MAX_BYTES);
    return NULL;
  }
  if (!tree_parse(&c, yaml ? yaml : "", len, &root))
    return NULL;
  if (!root || is_null(root)) {
    fail_at(&c, root ? root->line : 1, root ? root->col : 1, SL_CONFIG_E_MISSING,
            "empty config (expected a mapping with experiment, inputs, simulator and budget)");
    goto out_free_root;
  }
  if (!tree_check_keys(&c, root, ""))
    goto out_free_root;
  cfg = sl_calloc(1, sizeof *cfg);
  cfg->path = sl_strdup(c.name);
  config_defaults(cfg);
  if (!config_parse(&c, root, cfg)) {
    sl_config_destroy(cfg);
    cfg = NULL;
  } else {
    sl__config_resolve_paths(cfg, file);
  }
out_free_root:
  node_free(root);
  return cfg;
}

sl_config_t *sl_config_load_string(const char *yaml, size_t len, const char *name, sl_error_t *err)
{
  return config_load_text(yaml, len, name, NULL, err);
}

sl_config_t *sl_config_load(const char *path, sl_error_t *err)
{
  char *text;
  size_t len = 0;
  sl_config_t *cfg;

  if (!path) {
    sl_error_set(err, SL_ERR_CONFIG, SL_CONFIG_E_IO, "no config path given");
    return NULL;
  }
  text = sl_read_file(path, SL_CONFIG_MAX_BYTES, &len);
  if (!text) {
    if (errno == EFBIG)
      sl_error_set(err, SL_ERR_CONFIG, SL_CONFIG_E_RANGE, "%s:1:1: config larger than %zu bytes", path,
                   SL_CONFIG_MAX_BYTES);
    else
      sl_error_set(err, SL_ERR_CONFIG, SL_CONFIG_E_IO, "%s: cannot read: %s", path, strerror(errno));
    return NULL;
  }
  cfg = config_load_text(text, len, path, path, err);
  free(text);
  return cfg;
}

static void var_release(sl_var_t *v)
{
  free(v->name);
  free(v->type);
}

void sl_config_destroy(sl_config_t *cfg)
{
  size_t i;

  if (!cfg)
    return;
  free(cfg->path);
  free(cfg->experiment);
  for (i = 0; i < cfg->n_inputs; i++)
    var_release(&cfg->inputs[i]);
  free(cfg->inputs);
  for (i = 0; i < cfg->n_outputs; i++)
    var_release(&cfg->outputs[i]);
  free(cfg->outputs);
  free(cfg->history.name);
  for (i = 0; i < cfg->simulator.argc; i++)
    free(cfg->simulator.argv[i]);
  free(cfg->simulator.argv);
  free(cfg->policy.initial);
  free(cfg->policy.speculative.rule);
  free(cfg->policy.acquisition);
  free(cfg->policy.objective);
  free(cfg->learn.loss);
  free(cfg->store);
  free(cfg->broker);
  free(cfg->credentials_file);
  free(cfg->dir);
  free(cfg->written.store);
  free(cfg->written.credentials_file);
  for (i = 0; cfg->written.simulator_argv && cfg->written.simulator_argv[i]; i++)
    free(cfg->written.simulator_argv[i]);
  free(cfg->written.simulator_argv);
  free(cfg->written.workdir);
  free(cfg->simulator.workdir);
  for (i = 0; i < cfg->simulator.n_templates; i++)
    free(cfg->simulator.templates[i]);
  free(cfg->simulator.templates);
  for (i = 0; i < cfg->simulator.n_outfiles; i++) {
    free(cfg->simulator.outfiles[i].file);
    free(cfg->simulator.outfiles[i].name);
  }
  free(cfg->simulator.outfiles);
  for (i = 0; i < cfg->n_calibration; i++)
    free(cfg->calibration[i].name);
  free(cfg->calibration);
  free(cfg);
}

static int var_index(const sl_var_t *v, size_t n, const char *name)
{
  size_t i;

  if (!name)
    return -1;
  for (i = 0; i < n; i++)
    if (v[i].name && !strcmp(v[i].name, name))
      return (int)i;
  return -1;
}

int sl_config_input_index(const sl_config_t *cfg, const char *name)
{
  return cfg ? var_index(cfg->inputs, cfg->n_inputs, name) : -1;
}

int sl_config_output_index(const sl_config_t *cfg, const char *name)
{
  return cfg ? var_index(cfg->outputs, cfg->n_outputs, name) : -1;
}

const char *sl_config_broker_url(const sl_config_t *cfg)
{
  const char *env = getenv("SPECLINE_AMQP_URL");

  if (env && *env)
    return env;
  return cfg ? cfg->broker : NULL;
}

/* ---- JSON dump ---------------------------------------------------------------------- */

static json_t *json_str_or_null(const char *s)
{
  return s ? json_string(s) : json_null();
}

static json_t *vars_json(const sl_var_t *v, size_t n)
{
  json_t *a = json_array();
  size_t i;

  for (i = 0; i < n; i++) {
    json_t *o = json_object();

    json_object_set_new(o, "name", json_string(v[i].name));
    json_object_set_new(o, "type", json_string(v[i].type));
    json_object_set_new(o, "default", v[i].has_default ? json_real(v[i].default_value) : json_null());
    json_object_set_new(o, "value_range", v[i].has_range ? json_pack("[ff]", v[i].lo, v[i].hi) : json_null());
    if (v[i].calibration)
      json_object_set_new(o, "calibration", json_true());
    json_array_append_new(a, o);
  }
  return a;
}

/* The paths as the workers use them, relative ones resolved against the config's dir. */
static json_t *templates_json(const sl_config_t *cfg);
static void rundir_json(json_t *sim, const sl_config_t *cfg);

static json_t *resolved_json(const sl_config_t *cfg)
{
  json_t *argv = json_array();
  size_t i;

  for (i = 0; i < cfg->simulator.argc; i++)
    json_array_append_new(argv, json_string(cfg->simulator.argv[i]));
  return json_pack("{sosososososo}", "config_dir", json_str_or_null(cfg->dir), "store", json_str_or_null(cfg->store),
                   "credentials_file", json_str_or_null(cfg->credentials_file), "simulator_command", argv,
                   "simulator_workdir", json_str_or_null(cfg->simulator.workdir), "simulator_templates",
                   templates_json(cfg));
}

static json_t *templates_json(const sl_config_t *cfg)
{
  json_t *a = json_array();
  size_t i;

  for (i = 0; i < cfg->simulator.n_templates; i++)
    json_array_append_new(a, json_string(cfg->simulator.templates[i]));
  return a;
}

/* simulator.workdir, keep, templates and outputs (the run directories) into sim. */
static void rundir_json(json_t *sim, const sl_config_t *cfg)
{
  static const char *const keep[] = {[SL_KEEP_NEVER] = "false", [SL_KEEP_ALWAYS] = "true", [SL_KEEP_FAILED] = "failed"};
  json_t *outs = json_array();
  size_t i;

  json_object_set_new(sim, "workdir", json_string(cfg->written.workdir ? cfg->written.workdir : "run/runs"));
  json_object_set_new(sim, "keep", json_string(keep[cfg->simulator.keep]));
  json_object_set_new(sim, "templates", templates_json(cfg));
  for (i = 0; i < cfg->simulator.n_outfiles; i++) {
    const sl_sim_outfile_t *f = &cfg->simulator.outfiles[i];
    json_array_append_new(outs, json_pack("{sssssssIsb}", "file", f->file, "name", f->name, "store",
                                          f->store_path ? "path" : "content", "max_bytes", (json_int_t)f->max_bytes,
                                          "optional", f->optional));
  }
  json_object_set_new(sim, "outputs", outs);
}

char *sl_config_dump(const sl_config_t *cfg)
{
  json_t *root, *argv, *cal;
  char *out;
  size_t i;

  if (!cfg)
    return NULL;
  argv = json_array();
  for (i = 0; i < cfg->simulator.argc; i++)
    json_array_append_new(argv, json_string(cfg->written.simulator_argv ? cfg->written.simulator_argv[i]
                                                                        : cfg->simulator.argv[i]));
  cal = json_object();
  for (i = 0; i < cfg->n_calibration; i++)
    json_object_set_new(cal, cfg->calibration[i].name,
                        json_pack("{sfsf}", "alpha", cfg->calibration[i].alpha, "beta", cfg->calibration[i].beta));
  root = json_object();
  json_object_set_new(root, "experiment", json_string(cfg->experiment));
  json_object_set_new(root, "inputs", vars_json(cfg->inputs, cfg->n_inputs));
  json_object_set_new(root, "outputs", vars_json(cfg->outputs, cfg->n_outputs));
  json_object_set_new(root, "history",
                      cfg->history.present
                          ? json_pack("{sssi}", "name", cfg->history.name, "checkpoints", cfg->history.checkpoints)
                          : json_null());
  json_object_set_new(root, "simulator",
                      json_pack("{sosIsfsfsfsbsI}", "command", argv, "max_steps", (json_int_t)cfg->simulator.max_steps,
                                "wall_s", cfg->simulator.wall_s, "step_delay", cfg->simulator.step_delay,
                                "term_grace_s", cfg->simulator.term_grace_s, "persistent",
                                cfg->simulator.persistent, "max_runs_per_process",
                                (json_int_t)cfg->simulator.max_runs_per_process));
  rundir_json(json_object_get(root, "simulator"), cfg);
  json_object_set_new(json_object_get(root, "simulator"), "bundle", json_integer((json_int_t)cfg->simulator.bundle));
  json_object_set_new(
      root, "policy",
      json_pack("{sssisssosfsfsisIsfs{sbsfsfsfsfsssfsi}}", "initial", cfg->policy.initial, "initial_n",
                cfg->policy.initial_n, "acquisition", cfg->policy.acquisition, "objective",
                json_str_or_null(cfg->policy.objective), "ucb_kappa", cfg->policy.ucb_kappa, "oversubscribe",
                cfg->policy.oversubscribe, "batch", cfg->policy.batch, "seed", (json_int_t)cfg->policy.seed,
                "diversity", cfg->policy.diversity, "speculative", "enabled", (int)cfg->policy.speculative.enabled,
                "min_fraction", cfg->policy.speculative.min_fraction, "confidence",
                cfg->policy.speculative.confidence, "surprise_p", cfg->policy.speculative.surprise_p,
                "audit_fraction", cfg->policy.speculative.audit_fraction, "rule",
                cfg->policy.speculative.rule, "max_fraction", cfg->policy.speculative.max_fraction,
                "plateau_pool", cfg->policy.speculative.plateau_pool));
  json_object_set_new(root, "budget",
                      json_pack("{sIsIsfsfsf}", "max_sims", (json_int_t)cfg->budget.max_sims, "max_steps",
                                (json_int_t)cfg->budget.max_steps, "target_nrmse", cfg->budget.target_nrmse, "wall_s",
                                cfg->budget.wall_s, "max_failed", cfg->budget.max_failed));
  json_object_set_new(root, "learn",
                      json_pack("{sisisisisisfsisfss}", "ensemble", cfg->learn.ensemble, "hidden", cfg->learn.hidden,
                                "layers", cfg->learn.layers, "epochs", cfg->learn.epochs, "batch", cfg->learn.batch,
                                "lr", cfg->learn.lr, "retrain_every", cfg->learn.retrain_every,
                                "validation_fraction", cfg->learn.validation_fraction, "loss", cfg->learn.loss));
  json_object_set_new(root, "workers",
                      json_pack("{sisi}", "simulate_workers", cfg->workers.simulate_workers, "slots",
                                cfg->workers.slots));
  json_object_set_new(root, "store", json_str_or_null(cfg->written.store ? cfg->written.store : cfg->store));
  json_object_set_new(root, "broker", json_str_or_null(cfg->broker));
  json_object_set_new(root, "credentials_file", json_str_or_null(cfg->written.credentials_file
                                                                     ? cfg->written.credentials_file
                                                                     : cfg->credentials_file));
  json_object_set_new(root, "simulation_calibration", cal);
  json_object_set_new(root, "resolved", resolved_json(cfg));
  out = sl_json_dump(root, 2);
  json_decref(root);
  return out;
}
