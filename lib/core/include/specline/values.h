/* Named numbers and named series: the containers every layer passes values in (message
 * fields, store records, datasets). Plain data, no I/O. */
#ifndef SPECLINE_VALUES_H
#define SPECLINE_VALUES_H

#include <stddef.h>

/* Named numbers, in order of appearance ({"zeta": 0.1, "omega0": 1.0}). */
typedef struct sl_values {
  char **names;
  double *vals;
  size_t n;
} sl_values_t;
void sl_values_init(sl_values_t *v);
void sl_values_release(sl_values_t *v);
void sl_values_add(sl_values_t *v, const char *name, double val); /* copies name */
/* Pointer to the value named `name`, or NULL. */
const double *sl_values_get(const sl_values_t *v, const char *name);

/* Named series of numbers ({"x": [0.1, 0.2, ...]}). */
typedef struct sl_series {
  char **names;
  double **data;
  size_t *lens;
  size_t n;
} sl_series_t;
void sl_series_init(sl_series_t *s);
void sl_series_release(sl_series_t *s);
/* Adds a series (copies name and data). */
void sl_series_add(sl_series_t *s, const char *name, const double *data, size_t len);
/* Index of a series or -1. */
int sl_series_find(const sl_series_t *s, const char *name);

#endif
