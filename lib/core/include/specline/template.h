/* Input templates of a run directory (docs/simulator-protocol.md, "Run directories"): a
 * small substitution with no shell and no evaluation. `{{name}}` (spaces allowed inside
 * the braces: `{{ name }}`) is replaced by the value of `name`, a word of
 * [A-Za-z_][A-Za-z0-9_]*; `\{{` writes a literal `{{`; any other `{{` (an unclosed one, or
 * one around something that is not a name) is an error naming its line and column. What
 * a name's value is, is the caller's business (a lookup callback), so the same function
 * renders a template for a run and checks it at config time.
 *
 * Thread-safety: reentrant. */
#ifndef SPECLINE_TEMPLATE_H
#define SPECLINE_TEMPLATE_H

#include <stdbool.h>
#include <stddef.h>

#include "specline/error.h"
#include "specline/util.h"

/* Codes of domain SL_ERR_TEMPLATE. */
typedef enum sl_template_code {
  SL_TEMPLATE_E_SYNTAX = 1, /* `{{` not followed by a name and `}}` */
  SL_TEMPLATE_E_UNKNOWN,    /* a placeholder names nothing the lookup knows */
} sl_template_code_t;

/* Appends the value of placeholder `name` (NUL-terminated) to out; false when the name is
 * unknown. */
typedef bool (*sl_template_lookup_fn)(void *ud, const char *name, sl_buf_t *out);

/* Renders text (len bytes, NUL bytes allowed) into out (appended). `where` names the
 * template in errors ("input.nml.tmpl"). Returns false with err set (SL_ERR_TEMPLATE,
 * "WHERE:LINE:COL: ...") at the first bad or unknown placeholder; out then holds a partial
 * rendering the caller discards. */
bool sl_template_render(const char *text, size_t len, const char *where, sl_template_lookup_fn lookup,
                        void *ud, sl_buf_t *out, sl_error_t *err);

/* Appends d the way templates write numbers: the shortest text that reads back exactly
 * (0.1, 1e-05, -2.5), and whole numbers without a fraction (3, not 3.0), so a code that
 * reads an integer parameter reads it. */
void sl_template_put_number(sl_buf_t *out, double d);

#endif
