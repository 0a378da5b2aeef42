/* Private to proto/: the table-driven engine every message kind uses. A kind is described
 * by a table of its fields (JSON name, type, required or not, where the member lives in the
 * C struct, bounds); one generic decoder validates a body against that table, one generic
 * encoder writes the fields in table order (so encoding is deterministic) and one generic
 * release frees what the decoder allocated. The kind modules (sim_task.c, ...) hold only
 * their table and the public wrappers. The JSON writer the encoder uses is core's
 * (specline/json.h); UTF-8 is checked by jansson when decoding. */
#ifndef SPECLINE_PROTO_PRIVATE_H
#define SPECLINE_PROTO_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "specline/error.h"
#include "specline/json.h"
#include "specline/proto.h"
#include "specline/util.h"

/* Field types of the engine. */
typedef enum sl__ftype {
  SL__F_ID,     /* char *: identifier [A-Za-z0-9_.:-]+, <= max_string bytes */
  SL__F_TEXT,   /* char *: free UTF-8 text, <= max_len bytes (0: max_string) */
  SL__F_ENUM,   /* char *: one of words[] */
  SL__F_INT,    /* int64_t, >= imin when has_min */
  SL__F_NUM,    /* double, finite, >= dmin when has_min */
  SL__F_BOOL,   /* bool */
  SL__F_VALUES, /* sl_values_t: {name: number} */
  SL__F_SERIES, /* sl_series_t: {name: [number...]} */
  SL__F_STATUS, /* sl_point_status_t */
  SL__F_IDLIST, /* char ** at off, size_t count at off2: [identifier...] */
  SL__F_MATRIX, /* double * at off, size_t rows at off2, size_t cols at off3: [[number...]...];
                   all matrices of one message share rows and cols */
  SL__F_TEXTMAP, /* char **names at off, char **texts at off2, size_t count at off3:
                    {identifier: text}, each text <= max_len bytes (0: max_bytes) */
  SL__F_OBJLIST, /* an array of sub->size structs at off, size_t count at off2: [{...}...],
                    each object checked against the table of sub (no "v"/"kind" inside) */
} sl__ftype_t;

struct sl__kind;

typedef struct sl__field {
  const char *name;
  sl__ftype_t type;
  bool required;
  size_t off;
  size_t off2;
  size_t off3;
  bool has_min;
  int64_t imin;
  double dmin;
  size_t max_len;
  const char *const *words;
  const struct sl__kind *sub; /* SL__F_OBJLIST: the elements' table */
} sl__field_t;

/* One table row: struct type T, member, JSON name, type, required, then extra
 * designated initializers (.has_min = true, .imin = 1, .words = ..., .off2 = ...). */
#define SL__FIELD(T, member, jname, ftype, req, ...)                                         \
  {.name = (jname), .type = (ftype), .required = (req), .off = offsetof(T, member), __VA_ARGS__}

/* A kind descriptor from a field table. */
#define SL__KIND(T, kname, table)                                                          \
  {.name = (kname), .fields = (table), .n_fields = sizeof(table) / sizeof((table)[0]),     \
   .size = sizeof(T)}

typedef struct sl__kind {
  const char *name; /* "sim.task" */
  const sl__field_t *fields;
  size_t n_fields;  /* <= 64 */
  size_t size;      /* sizeof the C struct */
} sl__kind_t;

/* Decodes buf into *out (a struct of k->size bytes) with every check of proto.h. On failure
 * sets err (SL_ERR_PROTO) and leaves *out zeroed. */
bool sl__decode(const sl__kind_t *k, const char *buf, size_t len, const sl_proto_limits_t *lim,
                void *out, sl_error_t *err);

/* The checks every body gets before its fields (size, empty, nesting, non-finite numbers,
 * JSON, one object), then the parsed object (a new reference), or NULL with err set. */
struct json_t *sl__load(const char *buf, size_t len, const sl_proto_limits_t *lim, sl_error_t *err);

/* Encodes m: {"v":1,"kind":...} then the fields in table order; optional fields that are
 * absent (NULL, zero, false, empty) are omitted. Returns a malloc'd string. */
char *sl__encode(const sl__kind_t *k, const void *m);

/* Frees every member the table names and zeroes the struct; NULL is a no-op. */
void sl__release(const sl__kind_t *k, void *m);

/* The point status words, indexed by sl_point_status_t, NULL-terminated. */
extern const char *const sl__status_words[];

/* True when s[0..n) is a valid identifier of at most max bytes. */
bool sl__is_ident(const char *s, size_t n, size_t max);

/* Writes a hostile key into dst (size bytes) for an error message: printable ASCII only
 * (others, backslashes and single quotes as '?'), cut at 48 bytes with "...". */
void sl__readable_key(char *dst, size_t size, const char *key);

/* Outcome of the pre-scan of a body. */
typedef enum sl__scan_result {
  SL__SCAN_OK = 0,
  SL__SCAN_DEPTH,     /* brackets nested deeper than max_depth */
  SL__SCAN_NONFINITE, /* a NaN / Infinity literal outside strings */
  SL__SCAN_STOPPED,   /* reached the stop offset (path lookup) */
} sl__scan_result_t;

/* Walks the bytes once, outside strings counting brackets and tracking the field path.
 * Stops at the first problem or at byte offset `stop`; *at gets the byte offset and path
 * (path_size > 0) the dotted field path there ("inputs.zeta", "history.x[3]"). */
sl__scan_result_t sl__prescan(const char *buf, size_t len, int max_depth, size_t stop,
                              size_t *at, char *path, size_t path_size);

#endif
