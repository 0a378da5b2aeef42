/* Parsing and validation of experimental shot files (see shot.h): a bounded line reader
 * over the file's bytes, CSV (RFC 4180 quotes) and JSON lines into one row's cells, the
 * checks of each cell against the config, the shot-id rule and duplicate detection within
 * the file. Every problem is kept as "path:line:column: why". Pure: bytes in, rows out. */
#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "specline/shot.h"
#include "specline/util.h"

#define SHOT_COLS_MAX 1024      /* CSV fields per line */
#define SHOT_DATE_MAX 64        /* bytes of a date string */
#define SHOT_INT_MAX 9007199254740992.0 /* 2^53: larger integers are not exact doubles */
#define SHOT_LINE_MAX SL_SHOT_LINE_MAX
#define SHOT_ROWS_MAX SL_SHOT_ROWS_MAX

/* ---- one row's cells, whatever the file format ---- */

typedef enum cell_kind {
  CELL_ABSENT = 0, /* column not in the file, empty field or JSON null */
  CELL_NUMBER,     /* a finite number in .num */
  CELL_NONFINITE,  /* NaN, Inf or out of the double range */
  CELL_BAD,        /* not a number (or, for date, not a string) */
  CELL_STRING,     /* a string in .str (date) */
} cell_kind_t;

typedef struct cell {
  cell_kind_t kind;
  double num;
  const char *str; /* borrowed; date only */
  char label[80];  /* how errors name the column: "3" or "zeta" */
} cell_t;

/* Slots: inputs 0..D-1, outputs D..D+O-1, then the three extras. */
enum { EXTRA_DATE = 0, EXTRA_SHOT, EXTRA_SCAN, N_EXTRA };
static const char *const extra_names[N_EXTRA] = {"date", "shot_number", "scan_number"};

void sl_shot_file_init(sl_shot_file_t *sf, const sl_config_t *cfg, const char *path)
{
  memset(sf, 0, sizeof *sf);
  sf->cfg = cfg;
  sf->path = sl_strdup(path);
  sf->n_slots = cfg->n_inputs + cfg->n_outputs + N_EXTRA;
}

static void shot_row_release(sl_shot_row_t *r)
{
  free(r->in);
  free(r->out);
  free(r->has_out);
  free(r->date);
}

void sl_shot_file_release(sl_shot_file_t *sf)
{
  size_t i;

  for (i = 0; i < sf->n_rows; i++)
    shot_row_release(&sf->rows[i]);
  for (i = 0; i < sf->n_kept; i++)
    free(sf->errors[i]);
  free(sf->errors);
  free(sf->rows);
  free(sf->ids);
  free(sf->path);
  memset(sf, 0, sizeof *sf);
}

static void shot_error(sl_shot_file_t *sf, int line, const char *col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Counts a problem and keeps "path:line:col: why" (the first SL_SHOT_ERRORS_KEPT). */
static void shot_error(sl_shot_file_t *sf, int line, const char *col, const char *fmt, ...)
{
  sl_buf_t b;
  va_list ap;

  if (sf->n_errors++ >= SL_SHOT_ERRORS_KEPT)
    return;
  sl_buf_init(&b);
  sl_buf_printf(&b, "%s:%d:%s: ", sf->path, line, col);
  va_start(ap, fmt);
  sl_buf_vprintf(&b, fmt, ap);
  va_end(ap);
  if (!sf->errors)
    sf->errors = sl_calloc(SL_SHOT_ERRORS_KEPT, sizeof *sf->errors);
  sf->errors[sf->n_kept++] = sl_buf_detach(&b);
}

static const char *slot_name(const sl_shot_file_t *sf, size_t slot)
{
  size_t d = sf->cfg->n_inputs, o = sf->cfg->n_outputs;
  if (slot < d)
    return sf->cfg->inputs[slot].name;
  if (slot < d + o)
    return sf->cfg->outputs[slot - d].name;
  return extra_names[slot - d - o];
}

/* Slot of a column/key name, or -1. */
static int slot_of(const sl_shot_file_t *sf, const char *name)
{
  int i;
  for (i = 0; i < (int)sf->n_slots; i++)
    if (!strcmp(slot_name(sf, (size_t)i), name))
      return i;
  return -1;
}

/* ---- numbers ---- */

static bool word_is(const char *s, const char *w)
{
  return !strcasecmp(s, w);
}

/* A decimal number (no hex, no words); NaN/Inf spellings and overflow are CELL_NONFINITE. */
static cell_kind_t parse_number(const char *s, double *v)
{
  const char *p = s, *q;
  char *end;

  if (!*s)
    return CELL_ABSENT;
  if (*p == '+' || *p == '-')
    p++;
  if (word_is(p, "nan") || word_is(p, "inf") || word_is(p, "infinity"))
    return CELL_NONFINITE;
  for (q = p; *q; q++)
    if (!isdigit((unsigned char)*q) && *q != '.' && *q != 'e' && *q != 'E' && *q != '+' && *q != '-')
      return CELL_BAD;
  errno = 0;
  *v = strtod(s, &end);
  if (end == s || *end)
    return CELL_BAD;
  if (!isfinite(*v) || (errno == ERANGE && fabs(*v) > 1.0))
    return CELL_NONFINITE;
  return CELL_NUMBER;
}

/* ---- validation of one row's cells into a shot_row ---- */

static void id_table_grow(sl_shot_file_t *sf);

/* Index of an earlier good row with the same id, or -1 (and remembers this one). */
static long id_seen(sl_shot_file_t *sf, size_t row)
{
  size_t mask, h;

  if ((sf->n_rows + 1) * 2 > sf->ids_cap)
    id_table_grow(sf);
  mask = sf->ids_cap - 1;
  h = (size_t)sl_hash64(sf->rows[row].id, strlen(sf->rows[row].id), 0) & mask;
  while (sf->ids[h] != (size_t)-1) {
    if (!strcmp(sf->rows[sf->ids[h]].id, sf->rows[row].id))
      return (long)sf->ids[h];
    h = (h + 1) & mask;
  }
  sf->ids[h] = row;
  return -1;
}

static void id_table_grow(sl_shot_file_t *sf)
{
  size_t old_cap = sf->ids_cap, *old = sf->ids, i, h;

  sf->ids_cap = old_cap ? old_cap * 2 : 1024;
  sf->ids = sl_malloc(sf->ids_cap * sizeof *sf->ids);
  for (i = 0; i < sf->ids_cap; i++)
    sf->ids[i] = (size_t)-1;
  for (i = 0; i < old_cap; i++) {
    if (old[i] == (size_t)-1)
      continue;
    h = (size_t)sl_hash64(sf->rows[old[i]].id, strlen(sf->rows[old[i]].id), 0) & (sf->ids_cap - 1);
    while (sf->ids[h] != (size_t)-1)
      h = (h + 1) & (sf->ids_cap - 1);
    sf->ids[h] = old[i];
  }
  free(old);
}

void sl_shot_id(const sl_config_t *cfg, const sl_shot_row_t *r, char out[24])
{
  sl_values_t key;
  char name[96];
  size_t i;

  sl_values_init(&key);
  for (i = 0; i < cfg->n_inputs; i++)
    if (!isnan(r->in[i]))
      sl_values_add(&key, cfg->inputs[i].name, r->in[i]);
  sl_values_add(&key, "@experimental", 1);
  if (r->has_shot)
    sl_values_add(&key, "@shot_number", r->shot);
  if (r->has_scan)
    sl_values_add(&key, "@scan_number", r->scan);
  if (!r->has_shot)
    for (i = 0; i < cfg->n_outputs; i++)
      if (r->has_out[i]) {
        snprintf(name, sizeof name, "@output.%s", cfg->outputs[i].name);
        sl_values_add(&key, name, r->out[i]);
      }
  sl_sample_id(cfg->experiment, &key, 0, out);
  sl_values_release(&key);
}

static bool check_integer(sl_shot_file_t *sf, int line, const cell_t *c, const char *name)
{
  if (c->num != floor(c->num) || fabs(c->num) > SHOT_INT_MAX) {
    shot_error(sf, line, c->label, "%s %.17g is not an integer", name, c->num);
    return false;
  }
  return true;
}

static bool check_date(sl_shot_file_t *sf, int line, const cell_t *c)
{
  const unsigned char *p;

  if (strlen(c->str) > SHOT_DATE_MAX) {
    shot_error(sf, line, c->label, "date longer than %d bytes", SHOT_DATE_MAX);
    return false;
  }
  for (p = (const unsigned char *)c->str; *p; p++)
    if (*p < 0x20 || *p == 0x7f) {
      shot_error(sf, line, c->label, "date contains a control character");
      return false;
    }
  return true;
}

/* Checks the cells of one data row (n_slots of them); appends a good row, reports each
 * problem of a bad one. */
static void shot_add_row(sl_shot_file_t *sf, int line, const cell_t *cells)
{
  const sl_config_t *cfg = sf->cfg;
  size_t d = cfg->n_inputs, o = cfg->n_outputs, i, n_out = 0;
  const cell_t *ex = cells + d + o;
  bool ok = true;
  sl_shot_row_t r;
  long dup;

  memset(&r, 0, sizeof r);
  r.line = line;
  r.in = sl_calloc(d ? d : 1, sizeof *r.in);
  r.out = sl_calloc(o ? o : 1, sizeof *r.out);
  r.has_out = sl_calloc(o ? o : 1, sizeof *r.has_out);
  for (i = 0; i < d + o; i++) {
    const cell_t *c = &cells[i];
    const char *name = slot_name(sf, i);
    const sl_var_t *v = i < d ? &cfg->inputs[i] : &cfg->outputs[i - d];
    switch (c->kind) {
    case CELL_ABSENT:
      if (i < d && v->calibration) {
        r.in[i] = NAN; /* not known for this shot: inferred by the elevated model */
      } else if (i < d) {
        shot_error(sf, line, c->label, "missing value for input '%s' (every input is required)", name);
        ok = false;
      }
      continue;
    case CELL_NONFINITE:
      shot_error(sf, line, c->label, "'%s' is not a finite number", name);
      ok = false;
      continue;
    case CELL_BAD:
    case CELL_STRING:
      shot_error(sf, line, c->label, "'%s' is not a number", name);
      ok = false;
      continue;
    case CELL_NUMBER:
      break;
    }
    if (v->has_range && (c->num < v->lo || c->num > v->hi)) {
      shot_error(sf, line, c->label, "%s '%s' = %.15g outside its value_range [%g, %g]", i < d ? "input" : "output",
                 name, c->num, v->lo, v->hi);
      ok = false;
      continue;
    }
    if (i < d) {
      r.in[i] = c->num;
    } else {
      r.out[i - d] = c->num;
      r.has_out[i - d] = true;
      n_out++;
    }
  }
  if (ok && n_out == 0 && o > 0) {
    char first[80];
    snprintf(first, sizeof first, "%s", cells[d].label);
    shot_error(sf, line, first, "no output value (at least one of the outputs is required)");
    ok = false;
  }
  for (i = EXTRA_SHOT; i <= EXTRA_SCAN; i++) {
    const cell_t *c = &ex[i];
    if (c->kind == CELL_ABSENT)
      continue;
    if (c->kind != CELL_NUMBER) {
      shot_error(sf, line, c->label, "'%s' is not %s", extra_names[i],
                 c->kind == CELL_NONFINITE ? "a finite number" : "a number");
      ok = false;
    } else if (!check_integer(sf, line, c, extra_names[i])) {
      ok = false;
    } else if (i == EXTRA_SHOT) {
      r.has_shot = true;
      r.shot = c->num;
    } else {
      r.has_scan = true;
      r.scan = c->num;
    }
  }
  if (ex[EXTRA_DATE].kind == CELL_STRING) {
    if (check_date(sf, line, &ex[EXTRA_DATE]))
      r.date = sl_strdup(ex[EXTRA_DATE].str);
    else
      ok = false;
  } else if (ex[EXTRA_DATE].kind != CELL_ABSENT) {
    shot_error(sf, line, ex[EXTRA_DATE].label, "'date' is not a string");
    ok = false;
  }
  if (!ok) {
    shot_row_release(&r);
    sf->n_bad++;
    return;
  }
  sl_shot_id(cfg, &r, r.id);
  if (sf->n_rows == sf->cap) {
    sf->cap = sf->cap ? sf->cap * 2 : 64;
    sf->rows = sl_realloc(sf->rows, sf->cap * sizeof *sf->rows);
  }
  sf->rows[sf->n_rows] = r;
  dup = id_seen(sf, sf->n_rows);
  if (dup >= 0) {
    shot_error(sf, line, r.has_shot ? ex[EXTRA_SHOT].label : cells[0].label,
               "duplicate shot: same inputs and %s as line %d (sample id %s)",
               r.has_shot ? "shot_number" : "outputs", sf->rows[dup].line, r.id);
    shot_row_release(&r);
    sf->n_bad++;
    return;
  }
  sf->n_rows++;
}

/* ---- bounded line reader ---- */

typedef struct line_reader {
  const char *p, *end; /* the bytes not read yet */
  char *buf;           /* SHOT_LINE_MAX + 1 */
  size_t len;
  int line;            /* 1-based number of the line in buf */
  bool too_long;       /* the line was longer than SHOT_LINE_MAX (buf holds its start) */
  bool has_nul;
} line_reader_t;

/* Reads the next line (without its \n or \r\n). Returns false at the end of the data. */
static bool line_next(line_reader_t *lr)
{
  lr->len = 0;
  lr->too_long = lr->has_nul = false;
  if (lr->p >= lr->end)
    return false;
  lr->line++;
  for (; lr->p < lr->end && *lr->p != '\n'; lr->p++) {
    if (*lr->p == '\0')
      lr->has_nul = true;
    if (lr->len < SHOT_LINE_MAX)
      lr->buf[lr->len++] = *lr->p;
    else
      lr->too_long = true;
  }
  if (lr->p < lr->end)
    lr->p++; /* the newline */
  if (!lr->too_long && lr->len > 0 && lr->buf[lr->len - 1] == '\r')
    lr->len--;
  lr->buf[lr->len] = '\0';
  if (lr->line == 1 && lr->len >= 3 && !memcmp(lr->buf, "\xEF\xBB\xBF", 3)) {
    memmove(lr->buf, lr->buf + 3, lr->len - 2);
    lr->len -= 3;
  }
  return true;
}

static bool blank(const char *s)
{
  for (; *s; s++)
    if (!isspace((unsigned char)*s))
      return false;
  return true;
}

/* Line-level problems common to both formats; true when the line is usable. */
static bool line_ok(sl_shot_file_t *sf, const line_reader_t *lr)
{
  if (lr->too_long) {
    shot_error(sf, lr->line, "1", "line longer than %d bytes", SHOT_LINE_MAX);
    return false;
  }
  if (lr->has_nul) {
    shot_error(sf, lr->line, "1", "line contains a NUL byte");
    return false;
  }
  return true;
}

static bool rows_limit(sl_shot_file_t *sf, int line)
{
  if (sf->n_read < SHOT_ROWS_MAX)
    return true;
  shot_error(sf, line, "1", "more than %d rows in one file", SHOT_ROWS_MAX);
  sf->fatal = true;
  return false;
}

/* ---- CSV ---- */

/* Splits a CSV line in place (RFC 4180 quotes, "" inside quotes; unquoted fields are
 * trimmed). Returns the field count, or -1 with *why and *bad_col set. */
static int csv_split(char *s, char **fields, int max, const char **why, int *bad_col)
{
  int n = 0;
  char *r = s, *w;

  for (;;) {
    if (n == max) {
      *why = "too many fields";
      *bad_col = n + 1;
      return -1;
    }
    while (*r == ' ' || *r == '\t')
      r++;
    if (*r == '"') {
      fields[n] = w = ++r;
      for (;;) {
        if (!*r) {
          *why = "unterminated quoted field";
          *bad_col = n + 1;
          return -1;
        }
        if (*r == '"' && r[1] == '"') {
          *w++ = '"';
          r += 2;
        } else if (*r == '"') {
          r++;
          break;
        } else {
          *w++ = *r++;
        }
      }
      while (*r == ' ' || *r == '\t')
        r++;
      if (*r && *r != ',') {
        *why = "characters after a closing quote";
        *bad_col = n + 1;
        return -1;
      }
      *w = '\0';
    } else {
      char *end;
      bool more;
      fields[n] = r;
      while (*r && *r != ',')
        r++;
      more = *r == ',';
      end = r;
      while (end > fields[n] && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
      *end = '\0';
      if (strchr(fields[n], '"')) {
        *why = "quote inside an unquoted field";
        *bad_col = n + 1;
        return -1;
      }
      n++;
      if (!more)
        return n;
      r++; /* the comma */
      continue;
    }
    n++;
    if (!*r)
      return n;
    r++; /* the comma */
  }
}

/* Reads the header; fills col_slot[] (slot per CSV column). False on a header error. */
static bool csv_header(sl_shot_file_t *sf, line_reader_t *lr, int *col_slot, int *n_cols)
{
  char *fields[SHOT_COLS_MAX], col[16];
  const char *why = NULL;
  int n, i, bad = 0, *seen_col;
  bool ok = true;
  size_t s;

  do {
    if (!line_next(lr)) {
      shot_error(sf, lr->line + 1, "1", "no header line (the file is empty)");
      return false;
    }
  } while (!lr->too_long && (blank(lr->buf) || lr->buf[0] == '#'));
  if (!line_ok(sf, lr))
    return false;
  n = csv_split(lr->buf, fields, SHOT_COLS_MAX, &why, &bad);
  if (n < 0) {
    snprintf(col, sizeof col, "%d", bad);
    shot_error(sf, lr->line, col, "header: %s", why);
    return false;
  }
  seen_col = sl_calloc(sf->n_slots, sizeof *seen_col);
  for (i = 0; i < n; i++) {
    int slot = slot_of(sf, fields[i]);
    snprintf(col, sizeof col, "%d", i + 1);
    col_slot[i] = slot;
    if (!*fields[i]) {
      shot_error(sf, lr->line, col, "empty column name");
      ok = false;
    } else if (slot < 0) {
      shot_error(sf, lr->line, col, "unknown column '%s' (not an input or output of '%s', nor date, shot_number, "
                 "scan_number)", fields[i], sf->cfg->experiment);
      ok = false;
    } else if (seen_col[slot]) {
      shot_error(sf, lr->line, col, "duplicate column '%s' (also column %d)", fields[i], seen_col[slot]);
      ok = false;
    } else {
      seen_col[slot] = i + 1;
    }
  }
  for (s = 0; ok && s < sf->cfg->n_inputs; s++)
    if (!seen_col[s] && !sf->cfg->inputs[s].calibration) {
      shot_error(sf, lr->line, "1", "missing column '%s' (every input is required)", slot_name(sf, s));
      ok = false;
    }
  if (ok && sf->cfg->n_outputs > 0) {
    bool any = false;
    for (s = sf->cfg->n_inputs; s < sf->cfg->n_inputs + sf->cfg->n_outputs; s++)
      any = any || seen_col[s];
    if (!any) {
      shot_error(sf, lr->line, "1", "no output column (at least one of the outputs is required)");
      ok = false;
    }
  }
  free(seen_col);
  *n_cols = n;
  return ok;
}

static void shot_read_csv(sl_shot_file_t *sf, const char *data, size_t len)
{
  line_reader_t lr = {.p = data, .end = data + len, .buf = sl_malloc(SHOT_LINE_MAX + 1)};
  int col_slot[SHOT_COLS_MAX], n_cols = 0, n, i, bad;
  char *fields[SHOT_COLS_MAX], col[16];
  cell_t *cells = sl_calloc(sf->n_slots, sizeof *cells);
  const char *why;

  if (!csv_header(sf, &lr, col_slot, &n_cols)) {
    sf->fatal = true;
    goto out_free;
  }
  while (line_next(&lr)) {
    if (!lr.too_long && (blank(lr.buf) || lr.buf[0] == '#'))
      continue;
    if (!rows_limit(sf, lr.line))
      break;
    sf->n_read++;
    if (!line_ok(sf, &lr)) {
      sf->n_bad++;
      continue;
    }
    n = csv_split(lr.buf, fields, SHOT_COLS_MAX, &why, &bad);
    if (n < 0) {
      snprintf(col, sizeof col, "%d", bad);
      shot_error(sf, lr.line, col, "%s", why);
      sf->n_bad++;
      continue;
    }
    if (n != n_cols) {
      snprintf(col, sizeof col, "%d", (n < n_cols ? n : n_cols) + 1);
      shot_error(sf, lr.line, col, "ragged row: %d fields, the header has %d", n, n_cols);
      sf->n_bad++;
      continue;
    }
    for (i = 0; i < (int)sf->n_slots; i++) {
      cells[i].kind = CELL_ABSENT;
      snprintf(cells[i].label, sizeof cells[i].label, "1");
    }
    /* absent columns are named by the first column; present ones by their own */
    for (i = 0; i < n; i++) {
      cell_t *c = &cells[col_slot[i]];
      snprintf(c->label, sizeof c->label, "%d", i + 1);
      if (col_slot[i] == (int)(sf->cfg->n_inputs + sf->cfg->n_outputs + EXTRA_DATE)) {
        c->kind = *fields[i] ? CELL_STRING : CELL_ABSENT;
        c->str = fields[i];
      } else {
        c->kind = parse_number(fields[i], &c->num);
      }
    }
    shot_add_row(sf, lr.line, cells);
  }
out_free:
  free(cells);
  free(lr.buf);
}

/* ---- JSON lines ---- */

static void json_cell(cell_t *c, json_t *v, bool is_date)
{
  c->kind = CELL_BAD;
  if (json_is_null(v)) {
    c->kind = CELL_ABSENT;
  } else if (is_date) {
    if (json_is_string(v)) {
      c->kind = json_string_length(v) ? CELL_STRING : CELL_ABSENT;
      c->str = json_string_value(v);
    }
  } else if (json_is_number(v)) {
    c->num = json_number_value(v);
    c->kind = isfinite(c->num) ? CELL_NUMBER : CELL_NONFINITE;
  }
}

/* Why jansson refused a line, with NaN/Infinity (not JSON) and overflowing numbers
 * reported as non-finite numbers. */
static void json_refused(sl_shot_file_t *sf, int line, const char *text, const json_error_t *je)
{
  char col[64];
  const char *at;
  int c = je->column > 0 ? je->column : 1;

  snprintf(col, sizeof col, "%d", c);
  at = (size_t)(c - 1) < strlen(text) ? text + c - 1 : text + strlen(text);
  while (at > text && (isalnum((unsigned char)at[-1]) || at[-1] == '-' || at[-1] == '+' || at[-1] == '.'))
    at--;
  if (!strncasecmp(at, "nan", 3) || !strncasecmp(at, "inf", 3) || !strncasecmp(at, "-inf", 4) ||
      !strncasecmp(at, "-nan", 4) || strstr(je->text, "overflow")) {
    /* name the key whose value this is: the string before the last ':' before `at` */
    const char *p = at, *q;
    while (p > text && p[-1] != ':')
      p--;
    if (p > text) {
      for (q = p - 1; q > text && isspace((unsigned char)q[-1]); q--)
        ;
      if (q > text && q[-1] == '"') {
        const char *e = q - 1, *b = e;
        while (b > text && b[-1] != '"')
          b--;
        if (b > text && e - b < (long)sizeof col)
          snprintf(col, sizeof col, "%.*s", (int)(e - b), b);
      }
    }
    shot_error(sf, line, col, "not a finite number (NaN, Infinity and overflowing numbers are refused)");
  }
  else if (strstr(je->text, "duplicate object key") && (at = strchr(je->text, '"')) && strchr(at + 1, '"') &&
           strchr(at + 1, '"') - at - 1 < (long)sizeof col) {
    snprintf(col, sizeof col, "%.*s", (int)(strchr(at + 1, '"') - at - 1), at + 1);
    shot_error(sf, line, col, "duplicate key '%s'", col);
  } else
    shot_error(sf, line, col, "not JSON: %s", je->text);
}

static void shot_read_jsonl(sl_shot_file_t *sf, const char *data, size_t len)
{
  line_reader_t lr = {.p = data, .end = data + len, .buf = sl_malloc(SHOT_LINE_MAX + 1)};
  cell_t *cells = sl_calloc(sf->n_slots, sizeof *cells);
  const char *key;
  json_error_t je;
  json_t *root, *v;
  size_t d = sf->cfg->n_inputs, o = sf->cfg->n_outputs, i;

  while (line_next(&lr)) {
    bool ok = true;
    if (!lr.too_long && blank(lr.buf))
      continue;
    if (!rows_limit(sf, lr.line))
      break;
    sf->n_read++;
    if (!line_ok(sf, &lr)) {
      sf->n_bad++;
      continue;
    }
    root = json_loadb(lr.buf, lr.len, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
      json_refused(sf, lr.line, lr.buf, &je);
      sf->n_bad++;
      continue;
    }
    if (!json_is_object(root)) {
      shot_error(sf, lr.line, "1", "not a JSON object (one object per line is expected)");
      json_decref(root);
      sf->n_bad++;
      continue;
    }
    for (i = 0; i < sf->n_slots; i++) {
      cells[i].kind = CELL_ABSENT;
      snprintf(cells[i].label, sizeof cells[i].label, "%s", slot_name(sf, i));
    }
    json_object_foreach(root, key, v)
    {
      int slot = slot_of(sf, key);
      if (slot < 0) {
        shot_error(sf, lr.line, key, "unknown key '%s' (not an input or output of '%s', nor date, shot_number, "
                   "scan_number)", key, sf->cfg->experiment);
        ok = false;
        continue;
      }
      json_cell(&cells[slot], v, (size_t)slot == d + o + EXTRA_DATE);
    }
    if (ok) {
      shot_add_row(sf, lr.line, cells);
    } else {
      sf->n_bad++;
    }
    json_decref(root);
  }
  free(cells);
  free(lr.buf);
}


void sl_shot_point(const sl_config_t *cfg, const sl_shot_row_t *r, double now, sl_store_point_t *p)
{
  size_t i;

  memset(p, 0, sizeof *p);
  p->campaign = cfg->experiment;
  p->sample_id = (char *)r->id;
  p->experimental_flag = true;
  sl_values_init(&p->inputs);
  sl_values_init(&p->outputs);
  sl_values_init(&p->extra);
  for (i = 0; i < cfg->n_inputs; i++)
    if (!isnan(r->in[i]))
      sl_values_add(&p->inputs, cfg->inputs[i].name, r->in[i]);
  for (i = 0; i < cfg->n_outputs; i++)
    if (r->has_out[i])
      sl_values_add(&p->outputs, cfg->outputs[i].name, r->out[i]);
  if (r->has_shot)
    sl_values_add(&p->extra, "shot_number", r->shot);
  if (r->has_scan)
    sl_values_add(&p->extra, "scan_number", r->scan);
  p->status = SL_POINT_COMPLETE;
  p->worker = "specline-shot";
  p->produced_at = now;
  p->origin = "shot";
  p->date = r->date;
}

void sl_shot_point_release(sl_store_point_t *p)
{
  sl_values_release(&p->inputs);
  sl_values_release(&p->outputs);
  sl_values_release(&p->extra);
}

bool sl_shot_format_of(const char *path, sl_shot_format_t *fmt)
{
  const char *dot = strrchr(path, '.');

  if (!dot || strchr(dot, '/'))
    return false;
  if (!strcasecmp(dot, ".csv")) {
    *fmt = SL_SHOT_CSV;
    return true;
  }
  if (!strcasecmp(dot, ".jsonl") || !strcasecmp(dot, ".json") || !strcasecmp(dot, ".ndjson")) {
    *fmt = SL_SHOT_JSONL;
    return true;
  }
  return false;
}

bool sl_shot_config_check(const sl_config_t *cfg, sl_error_t *err)
{
  size_t i;

  for (i = 0; i < N_EXTRA; i++)
    if (sl_config_input_index(cfg, extra_names[i]) >= 0 || sl_config_output_index(cfg, extra_names[i]) >= 0) {
      sl_error_set(err, SL_ERR_CONFIG, SL_CONFIG_E_VALUE,
                   "'%s' is reserved for shots and cannot be an input or output name", extra_names[i]);
      return false;
    }
  return true;
}

void sl_shot_parse(sl_shot_file_t *sf, sl_shot_format_t fmt, const char *data, size_t len)
{
  if (fmt == SL_SHOT_CSV)
    shot_read_csv(sf, data, len);
  else
    shot_read_jsonl(sf, data, len);
}
