/* The one JSON writer of specline: every JSON text the project writes (messages, stored
 * documents, the simulator's input line, config and status dumps) formats its numbers here,
 * as the shortest text that reads back to the same double. Reading JSON is jansson's job
 * (proto/ for messages); this writes into an sl_buf_t, or walks a jansson tree. */
#ifndef SPECLINE_JSON_H
#define SPECLINE_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "specline/util.h"

struct json_t;

/* Room for any number sl_json_number writes, with its terminating NUL. */
#define SL_JSON_NUMBER_MAX 32

/* Writes d into buf (NUL-terminated) and returns its length: the shortest "%.*g" text that
 * strtod reads back to the same double (0.1, 0.3333333333333333, 1e-07, 5e-324), with ".0"
 * added when the text would read as an integer (1.0, -0.0); "null" for NaN and infinities. */
size_t sl_json_number(char buf[SL_JSON_NUMBER_MAX], double d);
/* The same shortest round-trip text without the ".0" JSON needs to keep a whole number a
 * real (100, -0, 1e+20): for text that is not JSON, such as `specline results`' CSV. NaN
 * and infinities are still "null". */
size_t sl_json_number_plain(char buf[SL_JSON_NUMBER_MAX], double d);

/* Appends a JSON string: quoted, '"', '\\' and control bytes escaped, each byte that is not
 * part of valid UTF-8 replaced by U+FFFD. NULL writes "". */
void sl_json_put_string(sl_buf_t *b, const char *s);
/* Appends a number as sl_json_number writes it. */
void sl_json_put_double(sl_buf_t *b, double d);
/* Appends an integer in decimal. */
void sl_json_put_int(sl_buf_t *b, int64_t i);

/* The JSON text of a jansson tree (any value at the root), object members in their
 * insertion order, reals as sl_json_number writes them. indent 0 is compact ({"a":1,"b":[]}),
 * indent n > 0 puts each member and element on its own line, n spaces deeper per level
 * ("key": value), as jansson's JSON_INDENT(n). Returns a malloc'd string (sl_ allocation:
 * aborts on out-of-memory); NULL when root is NULL. Borrows root. */
char *sl_json_dump(const struct json_t *root, int indent);

#endif
