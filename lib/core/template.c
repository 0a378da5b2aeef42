/* `{{name}}` substitution for run-directory input templates (see specline/template.h). */
#include <ctype.h>
#include <string.h>

#include "specline/json.h"
#include "specline/template.h"

/* Line and column (1-based) of offset off in text. */
static void position(const char *text, size_t off, unsigned *line, unsigned *col)
{
  size_t i;

  *line = 1;
  *col = 1;
  for (i = 0; i < off; i++) {
    if (text[i] == '\n') {
      (*line)++;
      *col = 1;
    } else {
      (*col)++;
    }
  }
}

/* Parses the placeholder whose `{{` is at text[at]: on success its name is copied into
 * name (at most size-1 chars) and the offset just past `}}` is returned; 0 otherwise. */
static size_t placeholder(const char *text, size_t len, size_t at, char *name, size_t size)
{
  size_t i = at + 2, start, n;

  while (i < len && (text[i] == ' ' || text[i] == '\t'))
    i++;
  start = i;
  if (i >= len || !(isalpha((unsigned char)text[i]) || text[i] == '_'))
    return 0;
  while (i < len && (isalnum((unsigned char)text[i]) || text[i] == '_'))
    i++;
  n = i - start;
  while (i < len && (text[i] == ' ' || text[i] == '\t'))
    i++;
  if (n >= size || i + 1 >= len || text[i] != '}' || text[i + 1] != '}')
    return 0;
  memcpy(name, text + start, n);
  name[n] = '\0';
  return i + 2;
}

bool sl_template_render(const char *text, size_t len, const char *where, sl_template_lookup_fn lookup,
                        void *ud, sl_buf_t *out, sl_error_t *err)
{
  size_t i = 0, lit = 0, next;
  unsigned line, col;
  char name[64];

  while (i + 1 < len) {
    if (text[i] == '\\' && i + 2 < len && text[i + 1] == '{' && text[i + 2] == '{') {
      sl_buf_append(out, text + lit, i - lit);
      sl_buf_append(out, "{{", 2);
      i += 3;
      lit = i;
      continue;
    }
    if (text[i] != '{' || text[i + 1] != '{') {
      i++;
      continue;
    }
    sl_buf_append(out, text + lit, i - lit);
    position(text, i, &line, &col);
    if ((next = placeholder(text, len, i, name, sizeof name)) == 0) {
      sl_error_set(err, SL_ERR_TEMPLATE, SL_TEMPLATE_E_SYNTAX,
                   "%s:%u:%u: '{{' must start a placeholder '{{name}}' (write '\\{{' for a literal '{{')",
                   where, line, col);
      return false;
    }
    if (!lookup(ud, name, out)) {
      sl_error_set(err, SL_ERR_TEMPLATE, SL_TEMPLATE_E_UNKNOWN,
                   "%s:%u:%u: unknown placeholder '{{%s}}' (not an input, sample_id, campaign, run_dir or "
                   "max_steps)",
                   where, line, col, name);
      return false;
    }
    i = lit = next;
  }
  sl_buf_append(out, text + lit, len - lit);
  return true;
}

void sl_template_put_number(sl_buf_t *out, double d)
{
  char buf[SL_JSON_NUMBER_MAX];
  size_t n = sl_json_number(buf, d);

  if (n > 2 && buf[n - 2] == '.' && buf[n - 1] == '0')
    n -= 2;
  sl_buf_append(out, buf, n);
}
