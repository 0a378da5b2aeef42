/* The MongoDB store backend ("mongodb://..."), for production: mongo-c-driver 1.23, the
 * Synapse-compatible layout described in store-mongo-private.h and docs/store.md. The
 * pure builders (documents, selectors, index commands, filters, write concern, error
 * classification, URI resolution) come first and are unit-tested without a server; the
 * backend below them only sends what they build. Writes use write concern
 * {w: "majority", j: true}; each point is one conditional upsert (the selector carries the
 * never-downgrade rule, the unique sample_id index turns a lost race or a downgrade into
 * 11000 = already stored). Driver errors are translated here into SL_ERR_STORE codes. */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "specline/log.h"
#include "specline/util.h"
#include "store-mongo-private.h"

/* Optional fields a point may lack; absent ones are $unset so a replaced document keeps
 * nothing of the old point. */
static const char *const optional_fields[] = {
    "worker", "origin", "error", "history", "predicted", "extra", "date", "shot_number", "scan_number", "files",
    "running",
};

static bool is_top_extra(const char *name)
{
  return !strcmp(name, "shot_number") || !strcmp(name, "scan_number");
}

/* Integral values (shot and scan numbers) are stored as int64, others as double. */
static void append_number(bson_t *b, const char *key, double v)
{
  if (v == floor(v) && fabs(v) < 9007199254740992.0)
    BSON_APPEND_INT64(b, key, (int64_t)v);
  else
    BSON_APPEND_DOUBLE(b, key, v);
}

static void append_values_doc(bson_t *b, const char *key, const sl_values_t *v, bool skip_top_extras)
{
  bson_t child;
  size_t i;

  BSON_APPEND_DOCUMENT_BEGIN(b, key, &child);
  for (i = 0; i < v->n; i++)
    if (!skip_top_extras || !is_top_extra(v->names[i]))
      BSON_APPEND_DOUBLE(&child, v->names[i], v->vals[i]);
  bson_append_document_end(b, &child);
}

/* ---- the `predicted` subdocument ----
 * The flat names of a stop's prediction ("log_env.8", "log_env.8.std", "amplitude",
 * "amplitude.std", "z2") are stored without dots in field names (MongoDB paths use them):
 * the name's dot-separated parts nest, a value with its ".std" becomes {mean, std}, a
 * lone value stays a number: {"log_env": {"8": {"mean": m, "std": s}}, "amplitude":
 * {"mean": m, "std": s}, "z2": 1.4} (docs/store.md). Reading flattens it back, and
 * still reads the flat, dotted keys of older documents. */

typedef struct pnode {
  char *key;
  double mean, std;
  bool has_mean, has_std;
  struct pnode *kids;
  size_t n;
} pnode_t;

static pnode_t *pnode_kid(pnode_t *n, const char *key, size_t len)
{
  size_t i;

  for (i = 0; i < n->n; i++)
    if (strlen(n->kids[i].key) == len && !strncmp(n->kids[i].key, key, len))
      return &n->kids[i];
  n->kids = sl_realloc(n->kids, (n->n + 1) * sizeof *n->kids);
  memset(&n->kids[n->n], 0, sizeof *n->kids);
  n->kids[n->n].key = sl_strndup(key, len);
  return &n->kids[n->n++];
}

static void pnode_add(pnode_t *root, const char *name, double v)
{
  size_t len = strlen(name);
  bool is_std = len > 4 && !strcmp(name + len - 4, ".std");
  const char *p = name, *end = name + (is_std ? len - 4 : len), *dot;
  pnode_t *n = root;

  while (p < end) {
    dot = memchr(p, '.', (size_t)(end - p));
    n = pnode_kid(n, p, dot ? (size_t)(dot - p) : (size_t)(end - p));
    p = dot ? dot + 1 : end;
  }
  if (is_std) {
    n->std = v;
    n->has_std = true;
  } else {
    n->mean = v;
    n->has_mean = true;
  }
}

static void pnode_append(bson_t *b, const pnode_t *n)
{
  size_t i;

  for (i = 0; i < n->n; i++) {
    const pnode_t *k = &n->kids[i];
    bson_t child;
    if (!k->n && k->has_mean && !k->has_std) {
      BSON_APPEND_DOUBLE(b, k->key, k->mean);
      continue;
    }
    BSON_APPEND_DOCUMENT_BEGIN(b, k->key, &child);
    if (k->has_mean)
      BSON_APPEND_DOUBLE(&child, "mean", k->mean);
    if (k->has_std)
      BSON_APPEND_DOUBLE(&child, "std", k->std);
    pnode_append(&child, k);
    bson_append_document_end(b, &child);
  }
}

static void pnode_free(pnode_t *n)
{
  size_t i;

  for (i = 0; i < n->n; i++) {
    pnode_free(&n->kids[i]);
    free(n->kids[i].key);
  }
  free(n->kids);
}

static void append_predicted_doc(bson_t *b, const sl_values_t *v)
{
  pnode_t root;
  bson_t child;
  size_t i;

  memset(&root, 0, sizeof root);
  for (i = 0; i < v->n; i++)
    pnode_add(&root, v->names[i], v->vals[i]);
  BSON_APPEND_DOCUMENT_BEGIN(b, "predicted", &child);
  pnode_append(&child, &root);
  bson_append_document_end(b, &child);
  pnode_free(&root);
}

void sl__mongo_point_doc(const sl__store_schema_t *s, const sl_store_point_t *p, bson_t *out)
{
  const double *v;
  size_t i, n_other = 0;

  BSON_APPEND_UTF8(out, "sample_id", p->sample_id);
  for (i = 0; i < s->n_inputs; i++)
    if ((v = sl_values_get(&p->inputs, s->inputs[i])))
      BSON_APPEND_DOUBLE(out, s->inputs[i], *v);
  for (i = 0; i < s->n_outputs; i++)
    if ((v = sl_values_get(&p->outputs, s->outputs[i])))
      BSON_APPEND_DOUBLE(out, s->outputs[i], *v);
  BSON_APPEND_BOOL(out, "experimental_flag", p->experimental_flag);
  if (p->date)
    BSON_APPEND_UTF8(out, "date", p->date);
  for (i = 0; i < p->extra.n; i++) {
    if (is_top_extra(p->extra.names[i]))
      append_number(out, p->extra.names[i], p->extra.vals[i]);
    else
      n_other++;
  }
  BSON_APPEND_UTF8(out, "status", sl_point_status_name(p->status));
  BSON_APPEND_INT64(out, "steps", p->steps);
  BSON_APPEND_DOUBLE(out, "wall_s", p->wall_s);
  if (p->worker)
    BSON_APPEND_UTF8(out, "worker", p->worker);
  BSON_APPEND_DOUBLE(out, "produced_at", p->produced_at);
  if (p->origin)
    BSON_APPEND_UTF8(out, "origin", p->origin);
  if (p->error)
    BSON_APPEND_UTF8(out, "error", p->error);
  if (p->history.n) {
    bson_t h;
    BSON_APPEND_DOCUMENT_BEGIN(out, "history", &h);
    for (i = 0; i < p->history.n; i++) {
      bson_t arr;
      size_t j;
      BSON_APPEND_ARRAY_BEGIN(&h, p->history.names[i], &arr);
      for (j = 0; j < p->history.lens[i]; j++) {
        char buf[16];
        const char *key;
        bson_uint32_to_string((uint32_t)j, &key, buf, sizeof buf);
        bson_append_double(&arr, key, -1, p->history.data[i][j]);
      }
      bson_append_array_end(&h, &arr);
    }
    bson_append_document_end(out, &h);
  }
  if (p->predicted.n)
    append_predicted_doc(out, &p->predicted);
  if (p->running.n) /* a stopped run's running finals, apart from the outputs */
    append_values_doc(out, "running", &p->running, false);
  if (n_other)
    append_values_doc(out, "extra", &p->extra, true);
  if (p->n_files) {
    bson_t f;
    BSON_APPEND_DOCUMENT_BEGIN(out, "files", &f);
    for (i = 0; i < p->n_files; i++)
      bson_append_utf8(&f, p->file_names[i], -1, p->file_texts[i], -1);
    bson_append_document_end(out, &f);
  }
}

/* Whether the point sets an optional field (so it must not be $unset). */
static bool point_has(const sl_store_point_t *p, const char *field)
{
  size_t i;

  if (!strcmp(field, "worker"))
    return p->worker != NULL;
  if (!strcmp(field, "origin"))
    return p->origin != NULL;
  if (!strcmp(field, "error"))
    return p->error != NULL;
  if (!strcmp(field, "history"))
    return p->history.n > 0;
  if (!strcmp(field, "predicted"))
    return p->predicted.n > 0;
  if (!strcmp(field, "date"))
    return p->date != NULL;
  if (!strcmp(field, "files"))
    return p->n_files > 0;
  if (!strcmp(field, "running"))
    return p->running.n > 0;
  if (!strcmp(field, "extra")) {
    for (i = 0; i < p->extra.n; i++)
      if (!is_top_extra(p->extra.names[i]))
        return true;
    return false;
  }
  return sl_values_get(&p->extra, field) != NULL; /* shot_number, scan_number */
}

void sl__mongo_update_doc(const sl__store_schema_t *s, const sl_store_point_t *p, double now, bson_t *out)
{
  bson_t set, unset, inc;
  size_t i;

  BSON_APPEND_DOCUMENT_BEGIN(out, "$set", &set);
  sl__mongo_point_doc(s, p, &set);
  BSON_APPEND_DOUBLE(&set, "stored_at", now);
  bson_append_document_end(out, &set);

  BSON_APPEND_DOCUMENT_BEGIN(out, "$unset", &unset);
  BSON_APPEND_UTF8(&unset, "experiment_flag", "");
  for (i = 0; i < sizeof optional_fields / sizeof optional_fields[0]; i++)
    if (!point_has(p, optional_fields[i]))
      BSON_APPEND_UTF8(&unset, optional_fields[i], "");
  for (i = 0; i < s->n_inputs; i++)
    if (!sl_values_get(&p->inputs, s->inputs[i]))
      BSON_APPEND_UTF8(&unset, s->inputs[i], "");
  for (i = 0; i < s->n_outputs; i++)
    if (!sl_values_get(&p->outputs, s->outputs[i]))
      BSON_APPEND_UTF8(&unset, s->outputs[i], "");
  bson_append_document_end(out, &unset);

  BSON_APPEND_DOCUMENT_BEGIN(out, "$inc", &inc);
  BSON_APPEND_INT64(&inc, "writes", 1);
  bson_append_document_end(out, &inc);
}

void sl__mongo_upsert_selector(const sl_store_point_t *p, bson_t *out)
{
  static const sl_point_status_t all[] = {SL_POINT_COMPLETE, SL_POINT_TERMINATED, SL_POINT_FAILED};
  bson_t st, in;
  size_t i;
  uint32_t k = 0;

  BSON_APPEND_UTF8(out, "sample_id", p->sample_id);
  if (p->status == SL_POINT_COMPLETE)
    return;
  BSON_APPEND_DOCUMENT_BEGIN(out, "status", &st);
  BSON_APPEND_ARRAY_BEGIN(&st, "$in", &in);
  for (i = 0; i < sizeof all / sizeof all[0]; i++) {
    if (sl__store_should_replace(all[i], p->status)) {
      char buf[16];
      const char *key;
      bson_uint32_to_string(k++, &key, buf, sizeof buf);
      bson_append_utf8(&in, key, -1, sl_point_status_name(all[i]), -1);
    }
  }
  bson_append_array_end(&st, &in);
  bson_append_document_end(out, &st);
}

void sl__mongo_id_selector(const char *sample_id, bson_t *out)
{
  BSON_APPEND_UTF8(out, "sample_id", sample_id);
}

void sl__mongo_bump_doc(bson_t *out)
{
  bson_t inc;

  BSON_APPEND_DOCUMENT_BEGIN(out, "$inc", &inc);
  BSON_APPEND_INT64(&inc, "writes", 1);
  bson_append_document_end(out, &inc);
}

/* The key of an index: a field and its direction (1 ascending, -1 descending). */
typedef struct index_key {
  const char *field;
  int dir;
} index_key_t;

/* Appends {key: {field: dir, ...}, name, unique: true (when unique), sparse: true (when
 * sparse)} at position pos of the indexes array arr. */
static void append_index(bson_t *arr, const char *pos, const index_key_t *keys, size_t n, const char *name,
                         bool unique, bool sparse)
{
  bson_t idx, key;
  size_t i;

  BSON_APPEND_DOCUMENT_BEGIN(arr, pos, &idx);
  BSON_APPEND_DOCUMENT_BEGIN(&idx, "key", &key);
  for (i = 0; i < n; i++)
    BSON_APPEND_INT32(&key, keys[i].field, keys[i].dir);
  bson_append_document_end(&idx, &key);
  BSON_APPEND_UTF8(&idx, "name", name);
  if (unique)
    BSON_APPEND_BOOL(&idx, "unique", true);
  if (sparse)
    BSON_APPEND_BOOL(&idx, "sparse", true);
  bson_append_document_end(arr, &idx);
}

void sl__mongo_index_cmd(const char *collection, bson_t *out)
{
  static const index_key_t id[] = {{"sample_id", 1}};
  bson_t arr;

  BSON_APPEND_UTF8(out, "createIndexes", collection);
  BSON_APPEND_ARRAY_BEGIN(out, "indexes", &arr);
  append_index(&arr, "0", id, 1, "sample_id_1", true, true);
  bson_append_array_end(out, &arr);
}

void sl__mongo_models_index_cmd(bson_t *out)
{
  static const index_key_t id[] = {{"model_id", 1}};
  static const index_key_t newest[] = {{"campaign", 1}, {"kind", 1}, {"created_at", -1}};
  bson_t arr;

  BSON_APPEND_UTF8(out, "createIndexes", SL__MONGO_MODELS);
  BSON_APPEND_ARRAY_BEGIN(out, "indexes", &arr);
  append_index(&arr, "0", id, 1, "model_id_1", true, false);
  append_index(&arr, "1", newest, 3, "campaign_1_kind_1_created_at_-1", false, false);
  bson_append_array_end(out, &arr);
}

void sl__mongo_write_concern(bson_t *out)
{
  BSON_APPEND_UTF8(out, "w", "majority");
  BSON_APPEND_BOOL(out, "j", true);
  BSON_APPEND_INT32(out, "wtimeout", SL__MONGO_WTIMEOUT_MS);
}

void sl__mongo_write_opts(bool upsert, bson_t *out)
{
  bson_t wc;

  BSON_APPEND_DOCUMENT_BEGIN(out, "writeConcern", &wc);
  sl__mongo_write_concern(&wc);
  bson_append_document_end(out, &wc);
  if (upsert)
    BSON_APPEND_BOOL(out, "upsert", true);
}

/* {field: {op: [true, 1]}} */
static void append_flag_clause(bson_t *b, const char *key, const char *field, const char *op)
{
  bson_t c, f, arr;

  BSON_APPEND_DOCUMENT_BEGIN(b, key, &c);
  BSON_APPEND_DOCUMENT_BEGIN(&c, field, &f);
  BSON_APPEND_ARRAY_BEGIN(&f, op, &arr);
  BSON_APPEND_BOOL(&arr, "0", true);
  BSON_APPEND_INT32(&arr, "1", 1);
  bson_append_array_end(&f, &arr);
  bson_append_document_end(&c, &f);
  bson_append_document_end(b, &c);
}

void sl__mongo_exp_filter(bson_t *out)
{
  bson_t or;

  BSON_APPEND_ARRAY_BEGIN(out, "$or", &or);
  append_flag_clause(&or, "0", "experimental_flag", "$in");
  append_flag_clause(&or, "1", "experiment_flag", "$in");
  bson_append_array_end(out, &or);
}

void sl__mongo_scan_filter(const sl_store_query_t *q, bson_t *filter, bson_t *opts)
{
  bson_t and, c, sort, proj;
  uint32_t k = 0;
  char buf[16];
  const char *key;

  if (q->experimental >= 0 || q->status_mask) {
    BSON_APPEND_ARRAY_BEGIN(filter, "$and", &and);
    if (q->experimental > 0) {
      bson_uint32_to_string(k++, &key, buf, sizeof buf);
      bson_append_document_begin(&and, key, -1, &c);
      sl__mongo_exp_filter(&c);
      bson_append_document_end(&and, &c);
    } else if (q->experimental == 0) {
      bson_uint32_to_string(k++, &key, buf, sizeof buf);
      append_flag_clause(&and, key, "experimental_flag", "$nin");
      bson_uint32_to_string(k++, &key, buf, sizeof buf);
      append_flag_clause(&and, key, "experiment_flag", "$nin");
    }
    if (q->status_mask) {
      bson_t or, one, st, in;
      uint32_t n = 0;
      int s;

      bson_uint32_to_string(k++, &key, buf, sizeof buf);
      bson_append_document_begin(&and, key, -1, &c);
      BSON_APPEND_ARRAY_BEGIN(&c, "$or", &or);
      BSON_APPEND_DOCUMENT_BEGIN(&or, "0", &one);
      BSON_APPEND_DOCUMENT_BEGIN(&one, "status", &st);
      BSON_APPEND_ARRAY_BEGIN(&st, "$in", &in);
      for (s = SL_POINT_COMPLETE; s <= SL_POINT_FAILED; s++) {
        if (q->status_mask & (1u << s)) {
          char b2[16];
          const char *k2;
          bson_uint32_to_string(n++, &k2, b2, sizeof b2);
          bson_append_utf8(&in, k2, -1, sl_point_status_name((sl_point_status_t)s), -1);
        }
      }
      bson_append_array_end(&st, &in);
      bson_append_document_end(&one, &st);
      bson_append_document_end(&or, &one);
      if (q->status_mask & (1u << SL_POINT_COMPLETE)) {
        bson_t ex;
        BSON_APPEND_DOCUMENT_BEGIN(&or, "1", &one);
        BSON_APPEND_DOCUMENT_BEGIN(&one, "status", &ex);
        BSON_APPEND_BOOL(&ex, "$exists", false);
        bson_append_document_end(&one, &ex);
        bson_append_document_end(&or, &one);
      }
      bson_append_array_end(&c, &or);
      bson_append_document_end(&and, &c);
    }
    bson_append_array_end(filter, &and);
  }
  BSON_APPEND_DOCUMENT_BEGIN(opts, "sort", &sort);
  BSON_APPEND_INT32(&sort, "_id", 1);
  bson_append_document_end(opts, &sort);
  if (!q->with_history) {
    BSON_APPEND_DOCUMENT_BEGIN(opts, "projection", &proj);
    BSON_APPEND_INT32(&proj, "history", 0);
    bson_append_document_end(opts, &proj);
  }
}

static bool iter_number(const bson_iter_t *it, double *out)
{
  if (!BSON_ITER_HOLDS_NUMBER(it) && !BSON_ITER_HOLDS_BOOL(it))
    return false;
  *out = bson_iter_as_double(it);
  return true;
}

static void values_from_subdoc(const bson_iter_t *it, sl_values_t *out)
{
  bson_iter_t c;
  double v;

  if (!BSON_ITER_HOLDS_DOCUMENT(it) || !bson_iter_recurse(it, &c))
    return;
  while (bson_iter_next(&c))
    if (BSON_ITER_HOLDS_NUMBER(&c) && iter_number(&c, &v))
      sl_values_add(out, bson_iter_key(&c), v);
}

/* The `files` subdocument (declared output files of a run directory): name -> text. */
static void files_from_subdoc(const bson_iter_t *it, sl_store_point_t *p)
{
  bson_iter_t c;
  size_t n = 0;

  if (!BSON_ITER_HOLDS_DOCUMENT(it) || !bson_iter_recurse(it, &c))
    return;
  while (bson_iter_next(&c))
    n++;
  if (!n || !bson_iter_recurse(it, &c))
    return;
  p->file_names = sl_calloc(n, sizeof *p->file_names);
  p->file_texts = sl_calloc(n, sizeof *p->file_texts);
  while (bson_iter_next(&c) && p->n_files < n) {
    if (!BSON_ITER_HOLDS_UTF8(&c))
      continue;
    p->file_names[p->n_files] = sl_strdup(bson_iter_key(&c));
    p->file_texts[p->n_files++] = sl_strdup(bson_iter_utf8(&c, NULL));
  }
}

/* Flattens a `predicted` (sub)document under prefix (see append_predicted_doc). */
static void predicted_from_subdoc(const bson_iter_t *it, const char *prefix, sl_values_t *out)
{
  bson_iter_t c;
  double v;
  char name[256];

  if (!BSON_ITER_HOLDS_DOCUMENT(it) || !bson_iter_recurse(it, &c))
    return;
  while (bson_iter_next(&c)) {
    const char *key = bson_iter_key(&c);
    if (*prefix && !strcmp(key, "mean"))
      snprintf(name, sizeof name, "%s", prefix);
    else if (*prefix && !strcmp(key, "std"))
      snprintf(name, sizeof name, "%s.std", prefix);
    else
      snprintf(name, sizeof name, "%s%s%s", prefix, *prefix ? "." : "", key);
    if (BSON_ITER_HOLDS_DOCUMENT(&c))
      predicted_from_subdoc(&c, name, out);
    else if (BSON_ITER_HOLDS_NUMBER(&c) && iter_number(&c, &v))
      sl_values_add(out, name, v);
  }
}

static void series_from_subdoc(const bson_iter_t *it, sl_series_t *out)
{
  bson_iter_t c;

  if (!BSON_ITER_HOLDS_DOCUMENT(it) || !bson_iter_recurse(it, &c))
    return;
  while (bson_iter_next(&c)) {
    bson_iter_t a;
    double *d = NULL;
    size_t n = 0, cap = 0;

    if (!BSON_ITER_HOLDS_ARRAY(&c) || !bson_iter_recurse(&c, &a))
      continue;
    while (bson_iter_next(&a)) {
      double v = NAN;
      if (n == cap) {
        cap = cap ? 2 * cap : 16;
        d = sl_realloc(d, cap * sizeof *d);
      }
      iter_number(&a, &v);
      d[n++] = v;
    }
    sl_series_add(out, bson_iter_key(&c), d, n);
    free(d);
  }
}

static char *iter_strdup(const bson_iter_t *it)
{
  return BSON_ITER_HOLDS_UTF8(it) ? sl_strdup(bson_iter_utf8(it, NULL)) : NULL;
}

bool sl__mongo_point_from_doc(const sl__store_schema_t *s, const bson_t *doc, bool with_history,
                              sl_store_point_t *p, sl_error_t *err)
{
  bson_iter_t it;
  double v;
  size_t i;

  sl_store_point_init(p, s->campaign);
  p->status = SL_POINT_COMPLETE;

  if (bson_iter_init_find(&it, doc, "sample_id") && BSON_ITER_HOLDS_UTF8(&it)) {
    p->sample_id = iter_strdup(&it);
  } else if (bson_iter_init_find(&it, doc, "_id")) {
    if (BSON_ITER_HOLDS_OID(&it)) {
      char hex[25];
      bson_oid_to_string(bson_iter_oid(&it), hex);
      p->sample_id = sl_strdup(hex);
    } else {
      p->sample_id = iter_strdup(&it);
    }
  }
  if (!p->sample_id) {
    SL__STORE_FAIL(err, SL_STORE_E_SCHEMA, "campaign '%s': document without sample_id or usable _id", s->campaign);
    sl_store_point_release(p);
    return false;
  }
  for (i = 0; i < s->n_inputs; i++)
    if (bson_iter_init_find(&it, doc, s->inputs[i]) && BSON_ITER_HOLDS_NUMBER(&it) && iter_number(&it, &v))
      sl_values_add(&p->inputs, s->inputs[i], v);
  for (i = 0; i < s->n_outputs; i++)
    if (bson_iter_init_find(&it, doc, s->outputs[i]) && BSON_ITER_HOLDS_NUMBER(&it) && iter_number(&it, &v))
      sl_values_add(&p->outputs, s->outputs[i], v);
  if ((bson_iter_init_find(&it, doc, "experimental_flag") || bson_iter_init_find(&it, doc, "experiment_flag")) &&
      iter_number(&it, &v))
    p->experimental_flag = v != 0;
  if (bson_iter_init_find(&it, doc, "status") && BSON_ITER_HOLDS_UTF8(&it) &&
      !sl_point_status_parse(bson_iter_utf8(&it, NULL), &p->status))
    p->status = SL_POINT_COMPLETE;
  if (bson_iter_init_find(&it, doc, "steps") && iter_number(&it, &v))
    p->steps = (int64_t)v;
  if (bson_iter_init_find(&it, doc, "wall_s") && iter_number(&it, &v))
    p->wall_s = v;
  if (bson_iter_init_find(&it, doc, "produced_at")) {
    if (BSON_ITER_HOLDS_DATE_TIME(&it))
      p->produced_at = (double)bson_iter_date_time(&it) / 1000.0;
    else if (iter_number(&it, &v))
      p->produced_at = v;
  }
  if (bson_iter_init_find(&it, doc, "worker"))
    p->worker = iter_strdup(&it);
  if (bson_iter_init_find(&it, doc, "origin"))
    p->origin = iter_strdup(&it);
  if (bson_iter_init_find(&it, doc, "error"))
    p->error = iter_strdup(&it);
  if (with_history && bson_iter_init_find(&it, doc, "history"))
    series_from_subdoc(&it, &p->history);
  if (bson_iter_init_find(&it, doc, "predicted"))
    predicted_from_subdoc(&it, "", &p->predicted);
  if (bson_iter_init_find(&it, doc, "running"))
    values_from_subdoc(&it, &p->running);
  if (bson_iter_init_find(&it, doc, "shot_number") && BSON_ITER_HOLDS_NUMBER(&it) && iter_number(&it, &v))
    sl_values_add(&p->extra, "shot_number", v);
  if (bson_iter_init_find(&it, doc, "scan_number") && BSON_ITER_HOLDS_NUMBER(&it) && iter_number(&it, &v))
    sl_values_add(&p->extra, "scan_number", v);
  if (bson_iter_init_find(&it, doc, "extra"))
    values_from_subdoc(&it, &p->extra);
  if (with_history && bson_iter_init_find(&it, doc, "files"))
    files_from_subdoc(&it, p);
  if (bson_iter_init_find(&it, doc, "date")) {
    if (BSON_ITER_HOLDS_UTF8(&it)) {
      p->date = iter_strdup(&it);
    } else if (BSON_ITER_HOLDS_DATE_TIME(&it)) {
      time_t t = (time_t)(bson_iter_date_time(&it) / 1000);
      struct tm tm;
      char buf[32];
      gmtime_r(&t, &tm);
      strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
      p->date = sl_strdup(buf);
    }
  }
  return true;
}

void sl__mongo_model_update(const char *model_id, const char *campaign, const char *kind, double now,
                            const bson_t *metrics, const void *blob, size_t len, const bson_value_t *gridfs_id,
                            bson_t *selector, bson_t *update)
{
  bson_t set, ins, unset;

  BSON_APPEND_UTF8(selector, "model_id", model_id);
  BSON_APPEND_DOCUMENT_BEGIN(update, "$set", &set);
  BSON_APPEND_UTF8(&set, "model_id", model_id);
  BSON_APPEND_UTF8(&set, "campaign", campaign);
  BSON_APPEND_UTF8(&set, "kind", kind);
  if (metrics)
    BSON_APPEND_DOCUMENT(&set, "metrics", metrics);
  BSON_APPEND_INT64(&set, "length", (int64_t)len);
  if (gridfs_id)
    BSON_APPEND_VALUE(&set, "gridfs_id", gridfs_id);
  else
    BSON_APPEND_BINARY(&set, "blob", BSON_SUBTYPE_BINARY, blob ? (const uint8_t *)blob : (const uint8_t *)"", (uint32_t)len);
  bson_append_document_end(update, &set);
  BSON_APPEND_DOCUMENT_BEGIN(update, "$setOnInsert", &ins);
  BSON_APPEND_DOUBLE(&ins, "created_at", now);
  bson_append_document_end(update, &ins);
  BSON_APPEND_DOCUMENT_BEGIN(update, "$unset", &unset);
  BSON_APPEND_UTF8(&unset, gridfs_id ? "blob" : "gridfs_id", "");
  if (!metrics)
    BSON_APPEND_UTF8(&unset, "metrics", "");
  bson_append_document_end(update, &unset);
}

void sl__mongo_model_filter(const char *campaign, const char *kind, bson_t *filter, bson_t *opts)
{
  bson_t sort;

  BSON_APPEND_UTF8(filter, "campaign", campaign);
  BSON_APPEND_UTF8(filter, "kind", kind);
  BSON_APPEND_DOCUMENT_BEGIN(opts, "sort", &sort);
  BSON_APPEND_INT32(&sort, "created_at", -1);
  BSON_APPEND_INT32(&sort, "_id", -1);
  bson_append_document_end(opts, &sort);
  BSON_APPEND_INT64(opts, "limit", 1);
}

void sl__mongo_clock_update(const char *campaign, double running_s, double at, bson_t *selector, bson_t *update)
{
  bson_t set;

  BSON_APPEND_UTF8(selector, "_id", campaign);
  BSON_APPEND_DOCUMENT_BEGIN(update, "$set", &set);
  BSON_APPEND_DOUBLE(&set, "running_s", running_s);
  BSON_APPEND_DOUBLE(&set, "at", at);
  bson_append_document_end(update, &set);
}

bool sl__mongo_clock_from_doc(const bson_t *doc, double *running_s, double *at)
{
  bson_iter_t it;

  if (!bson_iter_init_find(&it, doc, "running_s") || !BSON_ITER_HOLDS_NUMBER(&it))
    return false;
  *running_s = bson_iter_as_double(&it);
  if (!bson_iter_init_find(&it, doc, "at") || !BSON_ITER_HOLDS_NUMBER(&it))
    return false;
  *at = bson_iter_as_double(&it);
  return true;
}

void sl__mongo_models_list_filter(const char *campaign, const char *kind, bson_t *filter, bson_t *opts)
{
  bson_t sort, proj;

  BSON_APPEND_UTF8(filter, "campaign", campaign);
  if (kind)
    BSON_APPEND_UTF8(filter, "kind", kind);
  BSON_APPEND_DOCUMENT_BEGIN(opts, "sort", &sort);
  BSON_APPEND_INT32(&sort, "created_at", 1);
  BSON_APPEND_INT32(&sort, "_id", 1);
  bson_append_document_end(opts, &sort);
  BSON_APPEND_DOCUMENT_BEGIN(opts, "projection", &proj);
  BSON_APPEND_INT32(&proj, "model_id", 1);
  BSON_APPEND_INT32(&proj, "kind", 1);
  BSON_APPEND_INT32(&proj, "created_at", 1);
  BSON_APPEND_INT32(&proj, "metrics", 1);
  bson_append_document_end(opts, &proj);
}

/* The metrics subdocument of a model document as relaxed extended JSON (malloc'd), "{}"
 * when it has none. */
static char *model_metrics_json(const bson_t *doc)
{
  const uint8_t *d;
  uint32_t dl;
  bson_iter_t it;
  bson_t sub;
  char *j, *out;

  if (!bson_iter_init_find(&it, doc, "metrics") || !BSON_ITER_HOLDS_DOCUMENT(&it))
    return sl_strdup("{}");
  bson_iter_document(&it, &dl, &d);
  bson_init_static(&sub, d, dl);
  j = bson_as_relaxed_extended_json(&sub, NULL);
  out = sl_strdup(j);
  bson_free(j);
  return out;
}

void sl__mongo_model_info_push(const bson_t *doc, sl_store_model_list_t *out)
{
  const char *id = NULL, *kind = NULL;
  double created_at = 0;
  bson_iter_t it;
  char *metrics = model_metrics_json(doc);

  if (bson_iter_init_find(&it, doc, "model_id") && BSON_ITER_HOLDS_UTF8(&it))
    id = bson_iter_utf8(&it, NULL);
  if (bson_iter_init_find(&it, doc, "kind") && BSON_ITER_HOLDS_UTF8(&it))
    kind = bson_iter_utf8(&it, NULL);
  if (bson_iter_init_find(&it, doc, "created_at")) {
    if (BSON_ITER_HOLDS_DATE_TIME(&it))
      created_at = (double)bson_iter_date_time(&it) / 1000.0;
    else
      iter_number(&it, &created_at);
  }
  sl__store_model_list_push(out, id, kind, created_at, metrics);
  free(metrics);
}

sl_store_code_t sl__mongo_error_class(const bson_error_t *e, const bson_t *reply)
{
  /* Server codes worth a retry: network, not primary, shutdown, timeouts, write concern. */
  static const uint32_t transient_codes[] = {
      6, 7, 50, 64, 89, 91, 112, 189, 262, 9001, 10107, 11600, 11602, 13435, 13436, 100,
  };
  size_t i;

  if (reply && (mongoc_error_has_label(reply, "RetryableWriteError") ||
                mongoc_error_has_label(reply, "TransientTransactionError")))
    return SL_STORE_E_TRANSIENT;
  switch (e->domain) {
  case MONGOC_ERROR_STREAM:
  case MONGOC_ERROR_SERVER_SELECTION:
  case MONGOC_ERROR_WRITE_CONCERN:
  case MONGOC_ERROR_PROTOCOL:
    return SL_STORE_E_TRANSIENT;
  case MONGOC_ERROR_CLIENT:
    if (e->code == MONGOC_ERROR_CLIENT_AUTHENTICATE)
      return SL_STORE_E_AUTH;
    return SL_STORE_E_BACKEND;
  case MONGOC_ERROR_SERVER:
  case MONGOC_ERROR_COLLECTION:
  case MONGOC_ERROR_QUERY:
  case MONGOC_ERROR_COMMAND:
    if (e->code == 18 || e->code == 13)
      return SL_STORE_E_AUTH;
    if (e->code == MONGOC_ERROR_DUPLICATE_KEY)
      return SL_STORE_E_INVALID;
    for (i = 0; i < sizeof transient_codes / sizeof transient_codes[0]; i++)
      if (e->code == transient_codes[i])
        return SL_STORE_E_TRANSIENT;
    return SL_STORE_E_BACKEND;
  default:
    return SL_STORE_E_BACKEND;
  }
}

bool sl__mongo_error_is_dup(const bson_error_t *e)
{
  return e->code == MONGOC_ERROR_DUPLICATE_KEY;
}

static pthread_once_t mongo_once = PTHREAD_ONCE_INIT;

/* The driver's own log goes through ours: its errors are also returned to us, and
 * translated, so they are debug records here. */
static void mongo_log(mongoc_log_level_t level, const char *domain, const char *message, void *ud)
{
  (void)ud;
  if (level <= MONGOC_LOG_LEVEL_WARNING)
    SL_DEBUG("mongoc %s: %s", domain, message);
}

static void mongo_init_once(void)
{
  mongoc_log_set_handler(mongo_log, NULL);
  mongoc_init();
}

void sl__mongo_init(void)
{
  pthread_once(&mongo_once, mongo_init_once);
}

mongoc_uri_t *sl__mongo_uri_new(const char *uri, sl_error_t *err)
{
  const char *env = getenv("SPECLINE_MONGO_URI");
  const char *cred_file = getenv("SPECLINE_MONGO_CREDENTIALS");
  bson_error_t berr;
  mongoc_uri_t *u;

  sl__mongo_init();
  if (env && *env)
    uri = env;
  u = mongoc_uri_new_with_error(uri, &berr);
  if (!u) {
    /* the message may quote the URI: never echo credentials, name only the problem */
    SL__STORE_FAIL(err, SL_STORE_E_URI, "bad mongodb uri%s", env && *env ? " in SPECLINE_MONGO_URI" : "");
    return NULL;
  }
  if (!mongoc_uri_get_username(u) && cred_file && *cred_file) {
    size_t len = 0;
    char *text = sl_read_file(cred_file, 4096, &len);
    char *colon, *nl;

    if (!text) {
      SL__STORE_FAIL(err, SL_STORE_E_AUTH, "cannot read mongodb credentials file '%s'", cred_file);
      goto fail;
    }
    if ((nl = strpbrk(text, "\r\n")))
      *nl = '\0';
    colon = strchr(text, ':');
    if (!colon || colon == text) {
      SL__STORE_FAIL(err, SL_STORE_E_AUTH, "credentials file '%s': want one line 'user:password'", cred_file);
      free(text);
      goto fail;
    }
    *colon = '\0';
    if (!mongoc_uri_set_username(u, text) || !mongoc_uri_set_password(u, colon + 1)) {
      SL__STORE_FAIL(err, SL_STORE_E_AUTH, "credentials file '%s': user or password not valid UTF-8", cred_file);
      free(text);
      goto fail;
    }
    free(text);
  }
  return u;
fail:
  mongoc_uri_destroy(u);
  return NULL;
}

const char *sl__mongo_db_name(const mongoc_uri_t *uri)
{
  const char *db = mongoc_uri_get_database(uri);

  return db && *db ? db : SL__MONGO_DEFAULT_DB;
}

/* ---- the backend ---- */

typedef struct mongo_store {
  sl_store_t base;
  mongoc_uri_t *uri;
  mongoc_client_t *client;
  mongoc_database_t *db;
  mongoc_collection_t *coll;
  mongoc_collection_t *models;
  mongoc_collection_t *clock;
  mongoc_gridfs_bucket_t *bucket; /* opened on first need */
  char *db_name;
} mongo_store_t;

static void fail_bson(mongo_store_t *m, const bson_error_t *e, const bson_t *reply, const char *what, sl_error_t *err)
{
  SL__STORE_FAIL(err, sl__mongo_error_class(e, reply), "mongodb '%s.%s': %s: %s (domain %u, code %u)", m->db_name,
                 m->base.schema.campaign, what, e->message, e->domain, e->code);
}

/* True, with *err set, when the cursor ended on an error (what: "reading a point"). */
static bool cursor_failed(mongo_store_t *m, mongoc_cursor_t *cur, const char *what, sl_error_t *err)
{
  const bson_t *reply = NULL;
  bson_error_t berr;

  if (!mongoc_cursor_error_document(cur, &berr, &reply))
    return false;
  fail_bson(m, &berr, reply, what, err);
  return true;
}

/* Upserts the document sel selects in coll with upd, with the majority write concern. */
static bool upsert_one(mongo_store_t *m, mongoc_collection_t *coll, const bson_t *sel, const bson_t *upd,
                       const char *what, sl_error_t *err)
{
  bson_t opts, reply;
  bson_error_t berr;
  bool ok;

  bson_init(&opts);
  sl__mongo_write_opts(true, &opts);
  ok = mongoc_collection_update_one(coll, sel, upd, &opts, &reply, &berr);
  if (!ok)
    fail_bson(m, &berr, &reply, what, err);
  bson_destroy(&reply);
  bson_destroy(&opts);
  return ok;
}

static void mongo_destroy(sl_store_t *st)
{
  mongo_store_t *m = (mongo_store_t *)st;

  if (m->bucket)
    mongoc_gridfs_bucket_destroy(m->bucket);
  if (m->coll)
    mongoc_collection_destroy(m->coll);
  if (m->models)
    mongoc_collection_destroy(m->models);
  if (m->clock)
    mongoc_collection_destroy(m->clock);
  if (m->db)
    mongoc_database_destroy(m->db);
  if (m->client)
    mongoc_client_destroy(m->client);
  if (m->uri)
    mongoc_uri_destroy(m->uri);
  sl__store_schema_release(&m->base.schema);
  free(m->db_name);
  free(m);
}

static bool reply_upserted(const bson_t *reply)
{
  bson_iter_t it;

  if (bson_iter_init_find(&it, reply, "upsertedCount") && bson_iter_as_int64(&it) > 0)
    return true;
  return bson_iter_init_find(&it, reply, "upsertedId");
}

static int64_t reply_matched(const bson_t *reply)
{
  bson_iter_t it;

  return bson_iter_init_find(&it, reply, "matchedCount") ? bson_iter_as_int64(&it) : 0;
}

/* One conditional upsert; on 11000 (stored with a better status, or a concurrent insert)
 * retries once without upsert, and when that matches nothing only counts the write. */
static bool put_one(mongo_store_t *m, const sl_store_point_t *p, double now, bool *is_new, sl_error_t *err)
{
  bson_t sel, upd, opts, reply, opts_plain, idsel, bump;
  bson_error_t berr;
  bool ok = false;

  bson_init(&sel);
  bson_init(&upd);
  bson_init(&opts);
  bson_init(&opts_plain);
  bson_init(&idsel);
  bson_init(&bump);
  sl__mongo_upsert_selector(p, &sel);
  sl__mongo_update_doc(&m->base.schema, p, now, &upd);
  sl__mongo_write_opts(true, &opts);
  sl__mongo_write_opts(false, &opts_plain);
  *is_new = false;
  if (mongoc_collection_update_one(m->coll, &sel, &upd, &opts, &reply, &berr)) {
    *is_new = reply_upserted(&reply);
    ok = true;
    goto out_reply;
  }
  if (!sl__mongo_error_is_dup(&berr)) {
    fail_bson(m, &berr, &reply, "upserting a point", err);
    goto out_reply;
  }
  bson_destroy(&reply);
  if (!mongoc_collection_update_one(m->coll, &sel, &upd, &opts_plain, &reply, &berr)) {
    fail_bson(m, &berr, &reply, "updating a point", err);
    goto out_reply;
  }
  if (reply_matched(&reply) > 0) {
    ok = true;
    goto out_reply;
  }
  bson_destroy(&reply);
  sl__mongo_id_selector(p->sample_id, &idsel);
  sl__mongo_bump_doc(&bump);
  if (!mongoc_collection_update_one(m->coll, &idsel, &bump, &opts_plain, &reply, &berr)) {
    fail_bson(m, &berr, &reply, "counting a duplicate write", err);
    goto out_reply;
  }
  ok = true;
out_reply:
  bson_destroy(&reply);
  bson_destroy(&sel);
  bson_destroy(&upd);
  bson_destroy(&opts);
  bson_destroy(&opts_plain);
  bson_destroy(&idsel);
  bson_destroy(&bump);
  return ok;
}

static bool mongo_put(sl_store_t *st, const sl_store_point_t *const *points, size_t n, bool *is_new, sl_error_t *err)
{
  mongo_store_t *m = (mongo_store_t *)st;
  double now = sl_now();
  size_t i;

  for (i = 0; i < n; i++) {
    bool fresh = false;
    if (!put_one(m, points[i], now, &fresh, err))
      return false;
    if (is_new)
      is_new[i] = fresh;
  }
  return true;
}

static bool count_docs(mongo_store_t *m, const bson_t *filter, int64_t *out, sl_error_t *err)
{
  bson_error_t berr;
  bson_t reply;
  int64_t n = mongoc_collection_count_documents(m->coll, filter, NULL, NULL, &reply, &berr);
  bool ok = n >= 0;

  if (!ok)
    fail_bson(m, &berr, &reply, "counting points", err);
  else
    *out = n;
  bson_destroy(&reply);
  return ok;
}

static bool mongo_count(sl_store_t *st, int64_t *n_sim, int64_t *n_exp, sl_error_t *err)
{
  mongo_store_t *m = (mongo_store_t *)st;
  bson_t all, exp;
  int64_t total = 0, e = 0;
  bool ok;

  bson_init(&all);
  bson_init(&exp);
  sl__mongo_exp_filter(&exp);
  ok = count_docs(m, &all, &total, err) && count_docs(m, &exp, &e, err);
  bson_destroy(&all);
  bson_destroy(&exp);
  if (ok) {
    *n_sim = total - e;
    *n_exp = e;
  }
  return ok;
}

static bool mongo_scan(sl_store_t *st, const sl_store_query_t *q, sl_store_visit_fn visit, void *ud, sl_error_t *err)
{
  mongo_store_t *m = (mongo_store_t *)st;
  bson_t filter, opts;
  const bson_t *doc;
  mongoc_cursor_t *cur;
  bool ok = false;

  bson_init(&filter);
  bson_init(&opts);
  sl__mongo_scan_filter(q, &filter, &opts);
  cur = mongoc_collection_find_with_opts(m->coll, &filter, &opts, NULL);
  while (mongoc_cursor_next(cur, &doc)) {
    sl_store_point_t p;
    bool go;
    if (!sl__mongo_point_from_doc(&m->base.schema, doc, q->with_history, &p, NULL))
      continue; /* a foreign document with no id at all: not ours to show */
    go = visit(&p, ud);
    sl_store_point_release(&p);
    if (!go)
      break;
  }
  if (cursor_failed(m, cur, "scanning points", err))
    goto out;
  ok = true;
out:
  mongoc_cursor_destroy(cur);
  bson_destroy(&filter);
  bson_destroy(&opts);
  return ok;
}

static bool mongo_get(sl_store_t *st, const char *sample_id, sl_store_point_t *out, bool *found, sl_error_t *err)
{
  mongo_store_t *m = (mongo_store_t *)st;
  bson_t filter, opts;
  const bson_t *doc;
  mongoc_cursor_t *cur;
  bool ok = false;

  bson_init(&filter);
  bson_init(&opts);
  sl__mongo_id_selector(sample_id, &filter);
  BSON_APPEND_INT64(&opts, "limit", 1);
  cur = mongoc_collection_find_with_opts(m->coll, &filter, &opts, NULL);
  if (mongoc_cursor_next(cur, &doc)) {
    if (!sl__mongo_point_from_doc(&m->base.schema, doc, true, out, err))
      goto out;
    *found = true;
  }
  if (cursor_failed(m, cur, "reading a point", err)) {
    if (*found)
      sl_store_point_release(out);
    *found = false;
    goto out;
  }
  ok = true;
out:
  mongoc_cursor_destroy(cur);
  bson_destroy(&filter);
  bson_destroy(&opts);
  return ok;
}

static bool open_bucket(mongo_store_t *m, sl_error_t *err)
{
  bson_t opts;
  bson_error_t berr;

  if (m->bucket)
    return true;
  bson_init(&opts);
  BSON_APPEND_UTF8(&opts, "bucketName", SL__MONGO_MODELS);
  m->bucket = mongoc_gridfs_bucket_new(m->db, &opts, NULL, &berr);
  bson_destroy(&opts);
  if (!m->bucket) {
    fail_bson(m, &berr, NULL, "opening the gridfs bucket", err);
    return false;
  }
  return true;
}

static bool upload_blob(mongo_store_t *m, const char *model_id, const void *blob, size_t len, bson_value_t *id,
                        sl_error_t *err)
{
  mongoc_stream_t *s;
  bson_error_t berr;
  size_t off = 0;
  bool ok = false;
  char *name;

  if (!open_bucket(m, err))
    return false;
  name = sl_asprintf("%s/%s", m->base.schema.campaign, model_id);
  s = mongoc_gridfs_bucket_open_upload_stream(m->bucket, name, NULL, id, &berr);
  free(name);
  if (!s) {
    fail_bson(m, &berr, NULL, "opening a gridfs upload", err);
    return false;
  }
  while (off < len) {
    size_t chunk = len - off < (1u << 20) ? len - off : (1u << 20);
    ssize_t w = mongoc_stream_write(s, (char *)blob + off, chunk, 0);
    if (w <= 0) {
      if (!mongoc_gridfs_bucket_stream_error(s, &berr))
        bson_set_error(&berr, MONGOC_ERROR_STREAM, 0, "short write");
      fail_bson(m, &berr, NULL, "uploading a model", err);
      mongoc_gridfs_bucket_abort_upload(s);
      goto out;
    }
    off += (size_t)w;
  }
  if (mongoc_stream_close(s) != 0 || mongoc_gridfs_bucket_stream_error(s, &berr)) {
    fail_bson(m, &berr, NULL, "finishing a gridfs upload", err);
    goto out;
  }
  ok = true;
out:
  mongoc_stream_destroy(s);
  if (!ok)
    bson_value_destroy(id);
  return ok;
}

static bool mongo_put_model(sl_store_t *st, const char *model_id, const char *kind, const void *blob, size_t len,
                            const char *metrics_json, sl_error_t *err)
{
  mongo_store_t *m = (mongo_store_t *)st;
  bson_t *metrics = NULL;
  bson_t sel, upd;
  bson_value_t gid;
  bson_error_t berr;
  bool big = len > SL__MONGO_GRIDFS_THRESHOLD, ok;

  if (metrics_json) {
    metrics = bson_new_from_json((const uint8_t *)metrics_json, -1, &berr);
    if (!metrics) {
      SL__STORE_FAIL(err, SL_STORE_E_INVALID, "model '%s': metrics are not a JSON object: %s", model_id, berr.message);
      return false;
    }
  }
  if (big && !upload_blob(m, model_id, blob, len, &gid, err)) {
    if (metrics)
      bson_destroy(metrics);
    return false;
  }
  bson_init(&sel);
  bson_init(&upd);
  sl__mongo_model_update(model_id, m->base.schema.campaign, kind, sl_now(), metrics, blob,
                         len, big ? &gid : NULL, &sel, &upd);
  ok = upsert_one(m, m->models, &sel, &upd, "writing a model", err);
  bson_destroy(&sel);
  bson_destroy(&upd);
  if (metrics)
    bson_destroy(metrics);
  if (big)
    bson_value_destroy(&gid);
  return ok;
}

static bool download_blob(mongo_store_t *m, const bson_value_t *id, size_t len, void **out, sl_error_t *err)
{
  mongoc_stream_t *s;
  bson_error_t berr;
  char *buf;
  size_t off = 0;

  if (!open_bucket(m, err))
    return false;
  s = mongoc_gridfs_bucket_open_download_stream(m->bucket, id, &berr);
  if (!s) {
    fail_bson(m, &berr, NULL, "opening a gridfs download", err);
    return false;
  }
  buf = sl_malloc(len ? len : 1);
  while (off < len) {
    ssize_t r = mongoc_stream_read(s, buf + off, len - off, 1, 0);
    if (r <= 0) {
      if (!mongoc_gridfs_bucket_stream_error(s, &berr))
        bson_set_error(&berr, MONGOC_ERROR_STREAM, 0, "model file shorter than its recorded length");
      fail_bson(m, &berr, NULL, "downloading a model", err);
      free(buf);
      mongoc_stream_destroy(s);
      return false;
    }
    off += (size_t)r;
  }
  mongoc_stream_destroy(s);
  *out = buf;
  return true;
}

static bool mongo_get_model(sl_store_t *st, const char *kind, char **model_id, void **blob, size_t *len,
                            char **metrics_json, bool *found, sl_error_t *err)
{
  mongo_store_t *m = (mongo_store_t *)st;
  bson_t filter, opts;
  const bson_t *doc;
  mongoc_cursor_t *cur;
  bson_iter_t it;
  void *data = NULL;
  size_t n = 0;
  bool ok = false;

  bson_init(&filter);
  bson_init(&opts);
  sl__mongo_model_filter(m->base.schema.campaign, kind, &filter, &opts);
  cur = mongoc_collection_find_with_opts(m->models, &filter, &opts, NULL);
  if (mongoc_cursor_next(cur, &doc)) {
    if (bson_iter_init_find(&it, doc, "blob") && BSON_ITER_HOLDS_BINARY(&it)) {
      const uint8_t *b;
      uint32_t bl;
      bson_subtype_t sub;
      bson_iter_binary(&it, &sub, &bl, &b);
      n = bl;
      data = sl_malloc(n ? n : 1);
      if (n)
        memcpy(data, b, n);
    } else if (bson_iter_init_find(&it, doc, "gridfs_id")) {
      const bson_value_t *gid = bson_iter_value(&it);
      bson_iter_t li;
      n = bson_iter_init_find(&li, doc, "length") ? (size_t)bson_iter_as_int64(&li) : 0;
      if (!download_blob(m, gid, n, &data, err))
        goto out;
    } else {
      SL__STORE_FAIL(err, SL_STORE_E_SCHEMA, "models: document without blob or gridfs_id");
      goto out;
    }
    if (model_id)
      *model_id = bson_iter_init_find(&it, doc, "model_id") && BSON_ITER_HOLDS_UTF8(&it) ? iter_strdup(&it)
                                                                                         : sl_strdup("");
    if (metrics_json)
      *metrics_json = model_metrics_json(doc);
    if (blob) {
      *blob = data;
      data = NULL;
    }
    if (len)
      *len = n;
    *found = true;
  }
  if (cursor_failed(m, cur, "reading a model", err))
    goto out;
  ok = true;
out:
  free(data);
  mongoc_cursor_destroy(cur);
  bson_destroy(&filter);
  bson_destroy(&opts);
  return ok;
}

static bool mongo_list_models(sl_store_t *st, const char *kind, sl_store_model_list_t *out, sl_error_t *err)
{
  mongo_store_t *m = (mongo_store_t *)st;
  bson_t filter, opts;
  const bson_t *doc;
  mongoc_cursor_t *cur;
  bool ok = true;

  bson_init(&filter);
  bson_init(&opts);
  sl__mongo_models_list_filter(m->base.schema.campaign, kind, &filter, &opts);
  cur = mongoc_collection_find_with_opts(m->models, &filter, &opts, NULL);
  while (mongoc_cursor_next(cur, &doc))
    sl__mongo_model_info_push(doc, out);
  if (cursor_failed(m, cur, "listing models", err))
    ok = false;
  mongoc_cursor_destroy(cur);
  bson_destroy(&filter);
  bson_destroy(&opts);
  return ok;
}

static bool mongo_put_clock(sl_store_t *st, double running_s, double at, sl_error_t *err)
{
  mongo_store_t *m = (mongo_store_t *)st;
  bson_t sel, upd;
  bool ok;

  bson_init(&sel);
  bson_init(&upd);
  sl__mongo_clock_update(m->base.schema.campaign, running_s, at, &sel, &upd);
  ok = upsert_one(m, m->clock, &sel, &upd, "writing the campaign's clock", err);
  bson_destroy(&sel);
  bson_destroy(&upd);
  return ok;
}

static bool mongo_get_clock(sl_store_t *st, double *running_s, double *at, bool *found, sl_error_t *err)
{
  mongo_store_t *m = (mongo_store_t *)st;
  const bson_t *doc;
  mongoc_cursor_t *cur;
  bson_t filter;
  bool ok = true;

  bson_init(&filter);
  BSON_APPEND_UTF8(&filter, "_id", m->base.schema.campaign);
  cur = mongoc_collection_find_with_opts(m->clock, &filter, NULL, NULL);
  if (mongoc_cursor_next(cur, &doc))
    *found = sl__mongo_clock_from_doc(doc, running_s, at);
  if (cursor_failed(m, cur, "reading the campaign's clock", err))
    ok = false;
  mongoc_cursor_destroy(cur);
  bson_destroy(&filter);
  return ok;
}

static const sl__store_ops_t mongo_ops = {
    .name = "mongodb",
    .destroy = mongo_destroy,
    .put = mongo_put,
    .count = mongo_count,
    .scan = mongo_scan,
    .get = mongo_get,
    .put_model = mongo_put_model,
    .get_model = mongo_get_model,
    .list_models = mongo_list_models,
    .put_clock = mongo_put_clock,
    .get_clock = mongo_get_clock,
};

static bool run_write_cmd(mongo_store_t *m, const bson_t *cmd, const char *what, sl_error_t *err)
{
  bson_t opts, reply;
  bson_error_t berr;
  bool ok;

  bson_init(&opts);
  sl__mongo_write_opts(false, &opts);
  ok = mongoc_client_write_command_with_opts(m->client, m->db_name, cmd, &opts, &reply, &berr);
  if (!ok) {
    fail_bson(m, &berr, &reply, what, err);
    /* an index that exists with other options, or duplicates in old data */
    if (err && !sl_store_error_is_transient(err) && err->code != SL_STORE_E_AUTH)
      err->code = SL_STORE_E_SCHEMA;
  }
  bson_destroy(&reply);
  bson_destroy(&opts);
  return ok;
}

sl_store_t *sl__store_mongo_open(const char *uri, const sl_config_t *cfg, sl_error_t *err)
{
  mongo_store_t *m = sl_calloc(1, sizeof *m);
  bson_t ping, reply, cmd;
  bson_error_t berr;
  bool ok;

  m->base.ops = &mongo_ops;
  if (!sl__store_schema_init(&m->base.schema, cfg, err))
    goto fail;
  if (!(m->uri = sl__mongo_uri_new(uri, err)))
    goto fail;
  m->db_name = sl_strdup(sl__mongo_db_name(m->uri));
  m->client = mongoc_client_new_from_uri_with_error(m->uri, &berr);
  if (!m->client) {
    SL__STORE_FAIL(err, SL_STORE_E_URI, "mongodb: cannot create a client: %s", berr.message);
    goto fail;
  }
  mongoc_client_set_error_api(m->client, MONGOC_ERROR_API_VERSION_2);
  mongoc_client_set_appname(m->client, "specline");
  m->db = mongoc_client_get_database(m->client, m->db_name);
  m->coll = mongoc_client_get_collection(m->client, m->db_name, m->base.schema.campaign);
  m->models = mongoc_client_get_collection(m->client, m->db_name, SL__MONGO_MODELS);
  m->clock = mongoc_client_get_collection(m->client, m->db_name, SL__STORE_CLOCK);

  bson_init(&ping);
  BSON_APPEND_INT32(&ping, "ping", 1);
  ok = mongoc_client_command_simple(m->client, "admin", &ping, NULL, &reply, &berr);
  bson_destroy(&ping);
  if (!ok)
    fail_bson(m, &berr, &reply, "connecting", err);
  bson_destroy(&reply);
  if (!ok)
    goto fail;

  bson_init(&cmd);
  sl__mongo_index_cmd(m->base.schema.campaign, &cmd);
  ok = run_write_cmd(m, &cmd, "creating the sample_id index", err);
  bson_destroy(&cmd);
  if (!ok)
    goto fail;
  bson_init(&cmd);
  sl__mongo_models_index_cmd(&cmd);
  ok = run_write_cmd(m, &cmd, "creating the models indexes", err);
  bson_destroy(&cmd);
  if (!ok)
    goto fail;
  return &m->base;
fail:
  mongo_destroy(&m->base);
  return NULL;
}

/* The plugin's one export (store-private.h); the rest of the plugin is hidden. */
__attribute__((visibility("default"))) const sl__store_plugin_t sl_store_plugin_mongo = {
  .version = SPECLINE_VERSION,
  .abi = SL__STORE_PLUGIN_ABI,
  .sizes = SL__STORE_PLUGIN_SIZES,
  .open = sl__store_mongo_open,
};
