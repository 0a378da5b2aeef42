/* Parsing the lines a simulator writes and building the line it reads (jansson). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "specline/json.h"
#include "specline/simline.h"
#include "specline/util.h"

#define MAX_VALUES 1024

/* Copies at most max bytes of untrusted text for an error message: printable ASCII kept,
 * anything else (control bytes, UTF-8 sequences that might be cut) becomes '?'. */
static const char *clean(char *dst, size_t size, const char *src, size_t max)
{
  size_t i;

  for (i = 0; src[i] && i < max && i + 1 < size; i++)
    dst[i] = (src[i] >= 0x20 && src[i] < 0x7f) ? src[i] : '?';
  dst[i] = '\0';
  return dst;
}

static bool parse_values(json_t *obj, const char *what, int64_t lineno, sl_values_t *out, sl_error_t *err)
{
  const char *key;
  json_t *v;

  if (!json_is_object(obj)) {
    sl_error_set(err, SL_ERR_SIM, SL_SIM_E_LINE, "line %lld: '%s' is not an object", (long long)lineno, what);
    return false;
  }
  if (json_object_size(obj) > MAX_VALUES) {
    sl_error_set(err, SL_ERR_SIM, SL_SIM_E_LINE, "line %lld: '%s' has more than %d entries",
                 (long long)lineno, what, MAX_VALUES);
    return false;
  }
  json_object_foreach(obj, key, v)
  {
    char nm[72];
    double d;
    if (!json_is_number(v)) {
      sl_error_set(err, SL_ERR_SIM, SL_SIM_E_LINE, "line %lld: '%s.%s' is not a number", (long long)lineno,
                   what, clean(nm, sizeof nm, key, 64));
      return false;
    }
    d = json_number_value(v);
    if (!isfinite(d)) {
      sl_error_set(err, SL_ERR_SIM, SL_SIM_E_LINE, "line %lld: '%s.%s' is not finite", (long long)lineno,
                   what, clean(nm, sizeof nm, key, 64));
      return false;
    }
    if (strlen(key) == 0 || strlen(key) > 63) {
      sl_error_set(err, SL_ERR_SIM, SL_SIM_E_LINE, "line %lld: bad value name in '%s'", (long long)lineno,
                   what);
      return false;
    }
    sl_values_add(out, key, d);
  }
  return true;
}

bool sl_simline_parse(const char *line, size_t len, int64_t lineno, sl_simline_t *out, sl_error_t *err)
{
  json_error_t jerr;
  json_t *root, *final, *values, *step, *t, *running;
  bool ok = false;

  memset(out, 0, sizeof *out);
  sl_values_init(&out->values);
  sl_values_init(&out->running);
  if (len > SL_SIMLINE_MAX) {
    sl_error_set(err, SL_ERR_SIM, SL_SIM_E_LINE, "line %lld: longer than %u bytes", (long long)lineno,
                 SL_SIMLINE_MAX);
    return false;
  }
  root = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
  if (!root) {
    char txt[sizeof jerr.text];
    sl_error_set(err, SL_ERR_SIM, SL_SIM_E_LINE, "line %lld: not JSON (column %d: %s)", (long long)lineno,
                 jerr.column, clean(txt, sizeof txt, jerr.text, sizeof txt - 1));
    return false;
  }
  if (!json_is_object(root)) {
    sl_error_set(err, SL_ERR_SIM, SL_SIM_E_LINE, "line %lld: not a JSON object", (long long)lineno);
    goto out_free_root;
  }
  final = json_object_get(root, "final");
  if (final) {
    out->kind = SL_SIMLINE_FINAL;
    ok = parse_values(final, "final", lineno, &out->values, err);
    goto out_free_root;
  }
  out->kind = SL_SIMLINE_STEP;
  values = json_object_get(root, "values");
  step = json_object_get(root, "step");
  t = json_object_get(root, "t");
  running = json_object_get(root, "running");
  if (!values) {
    sl_error_set(err, SL_ERR_SIM, SL_SIM_E_LINE, "line %lld: neither 'values' nor 'final'",
                 (long long)lineno);
    goto out_free_root;
  }
  if (step && (!json_is_integer(step) || json_integer_value(step) < 0)) {
    sl_error_set(err, SL_ERR_SIM, SL_SIM_E_LINE, "line %lld: 'step' is not a non-negative integer",
                 (long long)lineno);
    goto out_free_root;
  }
  if (t && (!json_is_number(t) || !isfinite(json_number_value(t)))) {
    sl_error_set(err, SL_ERR_SIM, SL_SIM_E_LINE, "line %lld: 't' is not a finite number", (long long)lineno);
    goto out_free_root;
  }
  out->step = step ? json_integer_value(step) : 0;
  out->t = t ? json_number_value(t) : NAN;
  ok = parse_values(values, "values", lineno, &out->values, err) &&
       (!running || parse_values(running, "running", lineno, &out->running, err));

out_free_root:
  json_decref(root);
  if (!ok) {
    sl_values_release(&out->values);
    sl_values_release(&out->running);
  }
  return ok;
}

void sl_simline_release(sl_simline_t *l)
{
  if (l) {
    sl_values_release(&l->values);
    sl_values_release(&l->running);
  }
}

char *sl_simline_input(const sl_values_t *inputs, int64_t max_steps, const char *sample_id)
{
  json_t *root = json_object(), *in = json_object();
  char *s, *line;
  size_t i;

  for (i = 0; i < inputs->n; i++)
    json_object_set_new(in, inputs->names[i], json_real(inputs->vals[i]));
  json_object_set_new(root, "inputs", in);
  json_object_set_new(root, "max_steps", json_integer(max_steps));
  if (sample_id)
    json_object_set_new(root, "sample_id", json_string(sample_id));
  s = sl_json_dump(root, 0);
  json_decref(root);
  line = sl_asprintf("%s\n", s);
  free(s);
  return line;
}

int64_t sl_checkpoint_step(int64_t k, int64_t checkpoints, int64_t max_steps)
{
  if (checkpoints <= 0 || max_steps <= 0)
    return -1;
  return ((k + 1) * max_steps + checkpoints - 1) / checkpoints;
}

int64_t sl_checkpoint_of_step(int64_t step, int64_t checkpoints, int64_t max_steps)
{
  int64_t k;

  if (checkpoints <= 0 || max_steps <= 0 || step <= 0 || step > max_steps)
    return -1;
  /* the smallest k with ceil((k+1)·M/K) >= step */
  k = (step * checkpoints) / max_steps - 1;
  if (k < 0)
    k = 0;
  while (k < checkpoints && sl_checkpoint_step(k, checkpoints, max_steps) < step)
    k++;
  return k < checkpoints && sl_checkpoint_step(k, checkpoints, max_steps) == step ? k : -1;
}
