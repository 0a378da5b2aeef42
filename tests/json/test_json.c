/* One JSON number format for the whole project: the shortest text that reads back to the
 * same double, and the same text from every writer (proto's encoder, the store's JSON
 * columns, the simulator's input line, sl_json_dump). */
#include <float.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sltest.h"
#include "specline/json.h"
#include "specline/proto.h"
#include "specline/simline.h"
#include "store-private.h"

static const double values[] = {
    0.1,     1e-7, 1.0 / 3, 2.0 / 3, 0.30000000000000004, 100.0, -2.5, 1e20, 123456789012345678.0, 5e-324,
    DBL_MAX, -0.0, 0.0,     1.0 / 7, 6.02214076e23};
#define N_VALUES (sizeof values / sizeof values[0])

static void check_number(double d, const char *want)
{
  char buf[SL_JSON_NUMBER_MAX];
  size_t n = sl_json_number(buf, d);

  SL_CHECK_INT((int)n, (int)strlen(buf));
  SL_CHECK_STR(buf, want);
}

static void test_shortest(void)
{
  check_number(0.1, "0.1");
  check_number(1e-7, "1e-07");
  check_number(1.0 / 3, "0.3333333333333333");
  check_number(0.30000000000000004, "0.30000000000000004");
  check_number(100.0, "100.0");
  check_number(-0.0, "-0.0");
  check_number(1e20, "1e+20");
  check_number(5e-324, "5e-324");
  check_number(NAN, "null");
  check_number(INFINITY, "null");
}

static void check_plain(double d, const char *want)
{
  char buf[SL_JSON_NUMBER_MAX];
  size_t n = sl_json_number_plain(buf, d);

  SL_CHECK_INT((int)n, (int)strlen(buf));
  SL_CHECK_STR(buf, want);
}

/* The plain form (CSV): the same text, without the ".0" that keeps a whole number a JSON
 * real; both forms read back to the same double. */
static void test_plain(void)
{
  char a[SL_JSON_NUMBER_MAX], b[SL_JSON_NUMBER_MAX];
  size_t i;

  check_plain(100.0, "100");
  check_plain(-0.0, "-0");
  check_plain(0.0, "0");
  check_plain(1.0, "1");
  check_plain(-2.5, "-2.5");
  check_plain(0.1, "0.1");
  check_plain(1e20, "1e+20");
  check_plain(123456789012345678.0, "1.2345678901234568e+17");
  check_plain(5e-324, "5e-324");
  check_plain(NAN, "null");
  check_plain(-INFINITY, "null");
  check_number(1.0, "1.0");
  for (i = 0; i < N_VALUES; i++) {
    double x, y;
    size_t na = sl_json_number(a, values[i]), nb = sl_json_number_plain(b, values[i]);
    x = strtod(a, NULL);
    y = strtod(b, NULL);
    SL_CHECKF(memcmp(&x, &y, sizeof x) == 0 && memcmp(&x, &values[i], sizeof x) == 0, "%s / %s", a, b);
    /* the JSON form is the plain one, or the plain one and ".0" */
    SL_CHECKF(!strcmp(a, b) || (na == nb + 2 && !strncmp(a, b, nb) && !strcmp(a + nb, ".0")), "%s / %s", a, b);
  }
}

/* Significant digits of a number's text: its mantissa without leading or trailing zeros. */
static int significant(const char *s)
{
  char d[SL_JSON_NUMBER_MAX];
  int n = 0, start = 0;

  for (; *s && *s != 'e'; s++)
    if (*s >= '0' && *s <= '9')
      d[n++] = *s;
  while (start < n && d[start] == '0')
    start++;
  while (n > start && d[n - 1] == '0')
    n--;
  return n - start;
}

static void test_round_trip(void)
{
  char buf[SL_JSON_NUMBER_MAX], t[SL_JSON_NUMBER_MAX];
  size_t i;
  int k;

  for (i = 0; i < N_VALUES; i++) {
    double back;
    sl_json_number(buf, values[i]);
    back = strtod(buf, NULL);
    SL_CHECKF(memcmp(&back, &values[i], sizeof back) == 0, "%s does not read back", buf);
    /* shortest: one significant digit fewer does not read back */
    k = significant(buf);
    snprintf(t, sizeof t, "%.*g", k - 1, values[i]);
    SL_CHECKF(k <= 1 || strtod(t, NULL) != values[i], "%s is not the shortest (%s)", buf, t);
  }
}

/* The reference: "%.15g", else "%.16g", else "%.17g", the first that reads back ("%.1g"
 * upward for subnormals), ".0" added to an integer's text. */
static void reference_number(char t[SL_JSON_NUMBER_MAX], double d)
{
  int prec;

  for (prec = fabs(d) < DBL_MIN ? 1 : 15; prec <= 17; prec++) {
    snprintf(t, SL_JSON_NUMBER_MAX, "%.*g", prec, d);
    if (prec == 17 || strtod(t, NULL) == d)
      break;
  }
  if (!strpbrk(t, ".eE"))
    strcat(t, ".0");
}

/* The writer's fast path (m / 10^k for short decimals) writes exactly the reference text:
 * grids of decimals and of binary fractions, integers, timestamps, random doubles, and
 * the edges 1e-4 and 1e15, with both signs. */
static void test_fast_path_agrees(void)
{
  char buf[SL_JSON_NUMBER_MAX], t[SL_JSON_NUMBER_MAX];
  unsigned long long x = 88172645463325252ULL;
  int i, bad = 0, sign;

  for (i = 0; i < 400000; i++) {
    double d;
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    switch (i % 8) {
    case 0: d = (double)(i / 8) / 1000.0; break;
    case 1: d = (double)(x % 1000000) / 32768.0; break;
    case 2: d = (double)(x % 100000000000000000ULL); break;
    case 3: d = 1.7e9 + (double)(x % 1000000) / 1e6; break;
    case 4: d = (double)(x >> 11) / 9007199254740992.0; break;
    case 5: d = (double)(x % 1000) * pow(10.0, (double)((int)(x >> 20) % 24 - 8)); break;
    case 6: d = nextafter(i % 16 < 8 ? 1e-4 : 1e15, (i % 4 < 2) ? 0 : INFINITY); break;
    default: memcpy(&d, &x, sizeof d); break;
    }
    for (sign = 0; sign < 2; sign++, d = -d) {
      if (!isfinite(d))
        continue;
      sl_json_number(buf, d);
      reference_number(t, d);
      if (strcmp(buf, t) != 0 && bad++ < 5)
        SL_CHECKF(false, "%.17g: wrote %s, the reference is %s", d, buf, t);
    }
  }
  SL_CHECK_INT(bad, 0);
}

/* A copy of the text between the first `open` in s and the next `close` after it. */
static char *between(const char *s, const char *open, const char *close)
{
  const char *a = strstr(s, open), *b = a ? strstr(a + strlen(open), close) : NULL;

  if (!b)
    return strdup("(missing)");
  a += strlen(open);
  return strndup(a, (size_t)(b - a));
}

static void test_writers_agree(void)
{
  sl_predict_request_t rq = {.campaign = "c", .n_rows = 1, .n_cols = N_VALUES, .inputs = (double *)values};
  json_t *row = json_array(), *outer = json_array();
  char *proto, *store, *dump, *line, *a, *b, *c;
  sl_values_t in;
  sl_buf_t want;
  size_t i;

  sl_values_init(&in);
  sl_buf_init(&want);
  for (i = 0; i < N_VALUES; i++) {
    char name[8];
    json_array_append_new(row, json_real(values[i]));
    snprintf(name, sizeof name, "x%zu", i);
    sl_values_add(&in, name, values[i]);
    sl_buf_printf(&want, "%s\"%s\":", i ? "," : "", name);
    sl_json_put_double(&want, values[i]);
  }
  json_array_append_new(outer, row);
  proto = sl_predict_request_encode(&rq);
  dump = sl_json_dump(outer, 0);
  store = sl__store_json_dump_take(outer);
  line = sl_simline_input(&in, 10, NULL);
  a = between(proto, "\"inputs\":[[", "]]");
  b = between(store, "[[", "]]");
  c = between(line, "\"inputs\":{", "}");
  SL_CHECK_STR(store, dump);
  SL_CHECK_STR(a, b);
  SL_CHECK_STR(c, want.data);
  SL_CHECK(strstr(a, "0.1,1e-07,0.3333333333333333,") != NULL);
  free(a);
  free(b);
  free(c);
  free(proto);
  free(store);
  free(dump);
  free(line);
  sl_buf_release(&want);
  sl_values_release(&in);
}

static void test_dump_tree(void)
{
  json_t *o =
      json_pack("{s:f, s:[i, f, b, n], s:{}, s:[], s:s}", "x", 0.1, "a", 3, 1e-7, 1, "e", "l", "s", "q\"\n");
  char *compact = sl_json_dump(o, 0), *indented = sl_json_dump(o, 2);
  json_t *back = json_loads(indented, 0, NULL);

  SL_CHECK_STR(compact, "{\"x\":0.1,\"a\":[3,1e-07,true,null],\"e\":{},\"l\":[],\"s\":\"q\\\"\\n\"}");
  SL_CHECK_STR(indented, "{\n  \"x\": 0.1,\n  \"a\": [\n    3,\n    1e-07,\n    true,\n    null\n  ],\n"
                         "  \"e\": {},\n  \"l\": [],\n  \"s\": \"q\\\"\\n\"\n}");
  SL_CHECK(back && json_equal(back, o));
  SL_CHECK(sl_json_dump(NULL, 0) == NULL);
  json_decref(back);
  json_decref(o);
  free(compact);
  free(indented);
}

SL_TEST_MAIN(SL_T(test_shortest), SL_T(test_plain), SL_T(test_round_trip), SL_T(test_fast_path_agrees), SL_T(test_writers_agree), SL_T(test_dump_tree))
