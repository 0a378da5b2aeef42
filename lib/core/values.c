/* Named values and series: growable arrays of (name, number) and (name, numbers). */
#include <stdlib.h>
#include <string.h>

#include "specline/util.h"
#include "specline/values.h"

/* Arrays of values and series grow by doubling: the capacity is the next power of two of
 * n (at least 4), so a reallocation is due exactly when n is 0 or a power of two >= 4. */
static bool grow_due(size_t n)
{
  return n == 0 || (n >= 4 && (n & (n - 1)) == 0);
}

static size_t grown(size_t n)
{
  return n == 0 ? 4 : 2 * n;
}

void sl_values_init(sl_values_t *v)
{
  memset(v, 0, sizeof *v);
}

void sl_values_release(sl_values_t *v)
{
  size_t i;

  if (!v)
    return;
  for (i = 0; i < v->n; i++)
    free(v->names[i]);
  free(v->names);
  free(v->vals);
  sl_values_init(v);
}

void sl_values_add(sl_values_t *v, const char *name, double val)
{
  if (grow_due(v->n)) {
    v->names = sl_realloc(v->names, grown(v->n) * sizeof *v->names);
    v->vals = sl_realloc(v->vals, grown(v->n) * sizeof *v->vals);
  }
  v->names[v->n] = sl_strdup(name ? name : "");
  v->vals[v->n] = val;
  v->n++;
}

const double *sl_values_get(const sl_values_t *v, const char *name)
{
  size_t i;

  for (i = 0; i < v->n; i++) {
    if (strcmp(v->names[i], name) == 0)
      return &v->vals[i];
  }
  return NULL;
}

void sl_series_init(sl_series_t *s)
{
  memset(s, 0, sizeof *s);
}

void sl_series_release(sl_series_t *s)
{
  size_t i;

  if (!s)
    return;
  for (i = 0; i < s->n; i++) {
    free(s->names[i]);
    free(s->data[i]);
  }
  free(s->names);
  free(s->data);
  free(s->lens);
  sl_series_init(s);
}

void sl_series_add(sl_series_t *s, const char *name, const double *data, size_t len)
{
  if (grow_due(s->n)) {
    s->names = sl_realloc(s->names, grown(s->n) * sizeof *s->names);
    s->data = sl_realloc(s->data, grown(s->n) * sizeof *s->data);
    s->lens = sl_realloc(s->lens, grown(s->n) * sizeof *s->lens);
  }
  s->names[s->n] = sl_strdup(name ? name : "");
  s->data[s->n] = sl_malloc((len ? len : 1) * sizeof(double));
  if (len)
    memcpy(s->data[s->n], data, len * sizeof(double));
  s->lens[s->n] = len;
  s->n++;
}

int sl_series_find(const sl_series_t *s, const char *name)
{
  size_t i;

  for (i = 0; i < s->n; i++) {
    if (strcmp(s->names[i], name) == 0)
      return (int)i;
  }
  return -1;
}

