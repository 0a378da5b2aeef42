/* Experimental shots (DESIGN.md §1, §5 store): parsing and validating a shot file against
 * the campaign's config, and the identity and store.point of each good row. Pure: the
 * file's bytes in, validated rows and errors out; no file system, broker or clock (the
 * caller reads the file and publishes; `specline shot submit` in cli/cmd_shot.c).
 *
 * Formats: CSV (header line = column names; lines starting with '#' and blank lines
 * skipped; RFC 4180 quotes; unquoted fields trimmed) or JSON lines (one object per line;
 * blank lines skipped). A UTF-8 BOM and CRLF line ends are accepted. Columns (keys) are the
 * config's inputs (all required, within their value_range, except the inputs marked
 * `calibration: true`: a physics parameter the experiment does not know may be left out,
 * as a missing column or an empty cell) and outputs (optional, at least one per row), and optionally `date` (a string), `shot_number` and `scan_number`
 * (integers). Every problem is one error "path:line:column: why" (column = the 1-based CSV
 * column or the JSON key).
 *
 * Identity of a shot (sl_shot_id): sample_id = sl_sample_id(campaign, key, 0) where key is
 * the inputs in config order (a missing calibration input left out) followed by "@experimental" = 1 and, when the row has them,
 * "@shot_number" and "@scan_number"; a row without a shot_number adds its outputs
 * ("@output.<name>") instead, so repeated shots at the same settings do not collide. "@"
 * cannot start a config name, so a shot never takes the id of a simulation at the same
 * inputs, and resubmitting a file gives the same ids. Two rows of one file with the same
 * identity are an error (the second is bad). */
#ifndef SPECLINE_SHOT_H
#define SPECLINE_SHOT_H

#include <stdbool.h>
#include <stddef.h>

#include "specline/config.h"
#include "specline/error.h"
#include "specline/proto.h"

#define SL_SHOT_LINE_MAX 65536    /* longest accepted line, bytes (newline excluded) */
#define SL_SHOT_ROWS_MAX 1000000  /* data rows per file */
#define SL_SHOT_ERRORS_KEPT 100   /* error texts kept (every error is counted) */

typedef enum sl_shot_format {
  SL_SHOT_CSV = 0,
  SL_SHOT_JSONL,
} sl_shot_format_t;

/* One good row. Arrays are owned by the file that holds the row. */
typedef struct sl_shot_row {
  int line;        /* 1-based line in the file */
  double *in;      /* the config's inputs, in config order; NaN = a calibration input the
                    * row leaves out (then absent from the store.point's inputs) */
  double *out;     /* the config's outputs (valid where has_out) */
  bool *has_out;
  bool has_shot, has_scan;
  double shot, scan;
  char *date;      /* NULL when absent */
  char id[24];     /* sample_id (sl_shot_id) */
} sl_shot_row_t;

/* A parsed file (caller storage; fields read-only to the caller). */
typedef struct sl_shot_file {
  const sl_config_t *cfg; /* borrowed; outlives the file */
  char *path;             /* how errors name the file (copied) */
  sl_shot_row_t *rows;    /* good rows, file order */
  size_t n_rows;
  size_t n_read;          /* data rows read */
  size_t n_bad;           /* bad data rows */
  bool fatal;             /* file-level error (header, limits): nothing can be published */
  size_t n_errors;        /* errors found */
  char **errors;          /* the first SL_SHOT_ERRORS_KEPT, "path:line:column: why" */
  size_t n_kept;
  /* private */
  size_t n_slots, cap;
  size_t *ids; /* sample_id -> row index (open addressing), for duplicates inside the file */
  size_t ids_cap;
} sl_shot_file_t;

/* Prepares an empty file for cfg; path names it in errors. */
void sl_shot_file_init(sl_shot_file_t *sf, const sl_config_t *cfg, const char *path);
void sl_shot_file_release(sl_shot_file_t *sf);

/* The format a file name tells (.csv; .jsonl, .json, .ndjson; case-insensitive): false
 * when it tells none. */
bool sl_shot_format_of(const char *path, sl_shot_format_t *fmt);

/* Checks that cfg can take shots: no input or output is named date, shot_number or
 * scan_number (SL_ERR_CONFIG, SL_CONFIG_E_VALUE). */
bool sl_shot_config_check(const sl_config_t *cfg, sl_error_t *err);

/* Parses and validates the len bytes of data (need not be NUL-terminated) as `fmt` into
 * sf (fresh from sl_shot_file_init): good rows appended, bad ones counted and reported. */
void sl_shot_parse(sl_shot_file_t *sf, sl_shot_format_t fmt, const char *data, size_t len);

/* The sample_id of a row (the identity rule above) into out. */
void sl_shot_id(const sl_config_t *cfg, const sl_shot_row_t *r, char out[24]);

/* Fills *p with the store.point of row r (experimental_flag true, status complete, origin
 * "shot", worker "specline-shot", extra {shot_number, scan_number}, date, produced_at
 * now). Strings are borrowed from cfg and r; release with sl_shot_point_release. */
void sl_shot_point(const sl_config_t *cfg, const sl_shot_row_t *r, double now, sl_store_point_t *p);
/* Releases what sl_shot_point allocated (not the borrowed strings). */
void sl_shot_point_release(sl_store_point_t *p);

#endif
