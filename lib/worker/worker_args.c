/* Command-line parsing shared by the workers: CONFIG, the common options and each
 * worker's own, with every number checked (a typo is an error, never a silent 0). */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "specline/util.h"
#include "specline/worker.h"

enum { COMMON_ID = 1000, COMMON_BROKER_DIR, COMMON_STATUS_S, COMMON_HELP };

/* Parses a number of the given kind within [lo, hi]; false if it is not one. */
static bool parse_number(const char *s, sl_opt_kind_t kind, double lo, double hi, double *out)
{
  char *end;
  double v;

  errno = 0;
  if (kind == SL_OPT_INTEGER) {
    long l = strtol(s, &end, 10);
    v = (double)l;
  } else {
    v = strtod(s, &end);
  }
  if (end == s || *end != '\0' || errno == ERANGE || !isfinite(v) || v < lo || v > hi)
    return false;
  *out = v;
  return true;
}

static int usage_error(const char *prog, void (*usage)(FILE *), const char *fmt, const char *a, const char *b)
{
  fprintf(stderr, "%s: ", prog);
  fprintf(stderr, fmt, a, b);
  fputc('\n', stderr);
  usage(stderr);
  return 2;
}

static const char *bounds_text(const sl_worker_opt_t *o, char *buf, size_t size)
{
  if (o->kind == SL_OPT_INTEGER)
    snprintf(buf, size, "an integer in [%.0f, %.0f]", o->lo, o->hi);
  else
    snprintf(buf, size, "a number in [%g, %g]", o->lo, o->hi);
  return buf;
}

int sl_worker_parse_args(int argc, char **argv, const char *prog, const sl_worker_opt_t *opts,
                         void (*usage)(FILE *out), sl_worker_args_t *wa)
{
  static const sl_worker_opt_t status_opt = {"status-s", SL_OPT_NUMBER, 0.05, 3600, NULL};
  size_t n = 0, i;
  struct option *lo;
  char bounds[96];
  int c, rc = -1;

  while (opts && opts[n].name)
    n++;
  lo = sl_calloc(n + 5, sizeof *lo);
  for (i = 0; i < n; i++)
    lo[i] = (struct option){opts[i].name, required_argument, NULL, (int)i};
  lo[n++] = (struct option){"id", required_argument, NULL, COMMON_ID};
  lo[n++] = (struct option){"broker-dir", required_argument, NULL, COMMON_BROKER_DIR};
  lo[n++] = (struct option){"status-s", required_argument, NULL, COMMON_STATUS_S};
  lo[n++] = (struct option){"help", no_argument, NULL, COMMON_HELP};

  optind = 1;
  opterr = 0;
  while (rc < 0 && (c = getopt_long(argc, argv, ":h", lo, NULL)) != -1) {
    double v;
    switch (c) {
    case COMMON_ID: wa->id = optarg; break;
    case COMMON_BROKER_DIR: wa->broker_dir = optarg; break;
    case COMMON_STATUS_S:
      if (!parse_number(optarg, SL_OPT_NUMBER, status_opt.lo, status_opt.hi, &wa->status_s))
        rc = usage_error(prog, usage, "--status-s wants %s, not '%s'",
                         bounds_text(&status_opt, bounds, sizeof bounds), optarg);
      break;
    case 'h':
    case COMMON_HELP: usage(stdout); rc = 0; break;
    case ':': rc = usage_error(prog, usage, "%s needs a value%s", argv[optind - 1], ""); break;
    case '?':
      rc = usage_error(prog, usage, "unknown option '%s'%s", argv[optind - 1], "");
      break;
    default: {
      const sl_worker_opt_t *o = &opts[c];
      if (o->kind == SL_OPT_STRING) {
        *(const char **)o->dst = optarg;
      } else if (!parse_number(optarg, o->kind, o->lo, o->hi, &v)) {
        char what[64];
        snprintf(what, sizeof what, "--%s wants %%s, not '%%s'", o->name);
        rc = usage_error(prog, usage, what, bounds_text(o, bounds, sizeof bounds), optarg);
      } else if (o->kind == SL_OPT_INTEGER) {
        *(long *)o->dst = (long)v;
      } else {
        *(double *)o->dst = v;
      }
    }
    }
  }
  if (rc < 0 && optind >= argc)
    rc = usage_error(prog, usage, "a CONFIG file is needed%s%s", "", "");
  else if (rc < 0 && argc - optind > 1)
    rc = usage_error(prog, usage, "one CONFIG only; '%s' is extra%s", argv[optind + 1], "");
  if (rc < 0)
    wa->config = argv[optind];
  free(lo);
  return rc;
}
