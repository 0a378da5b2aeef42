/* `specline shot submit CONFIG FILE [--skip-bad] [--dry-run] [--print] [--broker-dir DIR]`:
 * feeds experimental shots into the campaign's store queue (DESIGN.md §1, §5 store). FILE
 * is CSV (.csv) or JSON lines (.jsonl, .json, .ndjson: one object per line); its columns
 * (keys) are the config's input and output names plus the optional `date` (a string),
 * `shot_number` and `scan_number` (integers). Every row is validated against the config
 * and every problem is reported as `file:line:column: why` (column = the 1-based CSV
 * column or the JSON key). With any bad row nothing is published unless --skip-bad,
 * which publishes the good rows and reports the others. Each good row becomes one
 * store.point (experimental_flag true, status complete, origin "shot", extra {shot_number,
 * scan_number}, date) published persistent and mandatory to `<c>.store` with publisher
 * confirms. Parsing, validation and the shot-id rule are the engine's (specline/shot.h);
 * this file reads the file, prints the errors and publishes. Resubmitting a file gives the
 * same ids: the store (upsert by sample_id) keeps one record per shot, and a corrected row
 * with the same shot_number replaces the old one. Exit 0 ok, 1 failure, 2 usage. */
#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "specline/amqp.h"
#include "specline/broker.h"
#include "specline/config.h"
#include "specline/proto.h"
#include "specline/shot.h"
#include "specline/util.h"
#include "specline/worker.h"

#define SHOT_WINDOW 1000        /* publishes in flight before waiting for confirms */
/* largest file read: every row at the line limit would be more; the row limit stops it */
#define SHOT_FILE_MAX (SIZE_MAX / 4 < ((size_t)4 << 30) ? SIZE_MAX / 4 : ((size_t)4 << 30))

static void shot_usage(FILE *f)
{
  fprintf(f,
          "usage: specline shot submit CONFIG FILE [--skip-bad] [--dry-run] [--print]\n"
          "                            [--broker-dir DIR] [--format csv|jsonl] [--timeout S]\n\n"
          "Validates the experimental shots in FILE against the campaign's config and publishes\n"
          "them to the store queue '<experiment>.store' (experimental_flag true).\n\n"
          "FILE: CSV (.csv; header line = column names; lines starting with '#' are comments) or\n"
          "JSON lines (.jsonl, .json, .ndjson; one object per line). Columns/keys: the config's\n"
          "inputs (all required, within their value_range) and outputs (optional, at least one\n"
          "per row), and optionally date (string), shot_number and scan_number (integers).\n"
          "Errors read FILE:LINE:COLUMN: why (COLUMN = CSV column number or JSON key).\n\n"
          "  --skip-bad        publish the good rows and report the bad ones (default: any bad\n"
          "                    row and nothing is published)\n"
          "  --dry-run         validate only; publish nothing\n"
          "  --print           print each store.point message (one JSON line per row) on stdout\n"
          "  --broker-dir DIR  use the local broker described by DIR/broker.env\n"
          "  --format F        csv or jsonl, when the file name does not tell\n"
          "  --timeout S       seconds to wait for the broker and its confirms (default 30)\n"
          "  --help            this text\n\n"
          "The broker is --broker-dir, else SPECLINE_AMQP_URL, else the config's `broker:`.\n"
          "Shot ids are deterministic: resubmitting a file stores nothing twice.\n"
          "Inputs marked `calibration: true` in the config may be left out (not known for a shot).\n\n"
          "       specline shot suggest CONFIG [-n N] [--model FILE] [--shots FILE]\n"
          "where the next N shots would reduce the elevated model's uncertainty most (CSV;\n"
          "`specline shot suggest --help`).\n");
}

/* ---- publishing ---- */

typedef struct shot_pub {
  const char *campaign;
  size_t acked, refused;
} shot_pub_t;

static void on_confirm(sl_amqp_t *s, uint64_t token, bool acked, void *ud)
{
  shot_pub_t *sp = ud;
  if (acked)
    sp->acked++;
  else
    sp->refused++;
}

static bool shot_setup(sl_amqp_t *s, void *ud, sl_error_t *err)
{
  shot_pub_t *sp = ud;
  return sl_topology_declare(s, sp->campaign, NULL, err);
}

/* Publishes every good row with confirms. Returns the number confirmed in *published. */
static bool shot_publish(const sl_config_t *cfg, const sl_shot_file_t *sf, const char *broker_dir, double timeout_s,
                         size_t *published, sl_error_t *err)
{
  shot_pub_t sp = {.campaign = cfg->experiment};
  sl_amqp_props_t props = {.persistent = true, .mandatory = true, .type = "store.point"};
  sl_amqp_opts_t o;
  sl_amqp_t *s = NULL;
  char rk[SL_NAME_MAX], *url, name[64];
  double now = sl_now();
  bool ok = false;
  size_t i;

  *published = 0;
  url = sl_worker_broker_url(cfg, broker_dir, err);
  if (!url)
    return false;
  snprintf(name, sizeof name, "specline-shot-%ld", (long)getpid());
  memset(&o, 0, sizeof o);
  o.url = url;
  o.credentials_file = cfg->credentials_file;
  o.name = name;
  o.setup = shot_setup;
  o.setup_ud = &sp;
  s = sl_amqp_new(&o, err);
  free(url);
  if (!s)
    return false;
  if (!sl_amqp_connect(s, timeout_s, err))
    goto out_destroy;
  sl_name(rk, cfg->experiment, "store");
  for (i = 0; i < sf->n_rows; i++) {
    sl_store_point_t p;
    char *body;
    uint64_t tok;

    sl_shot_point(cfg, &sf->rows[i], now, &p);
    body = sl_store_point_encode(&p);
    props.message_id = sf->rows[i].id;
    tok = sl_amqp_publish(s, SL_EXCHANGE, rk, body, strlen(body), &props, on_confirm, &sp, err);
    free(body);
    sl_shot_point_release(&p);
    if (!tok)
      goto out_destroy;
    if (sl_amqp_unconfirmed(s) >= SHOT_WINDOW && !sl_amqp_wait_confirms(s, timeout_s, err))
      goto out_destroy;
  }
  if (!sl_amqp_wait_confirms(s, timeout_s, err))
    goto out_destroy;
  if (sp.refused) {
    sl_error_set(err, SL_ERR_AMQP, SL_AMQP_E_REFUSED, "the broker refused %zu of %zu shots (nacked or unroutable to '%s')",
                 sp.refused, sf->n_rows, rk);
    goto out_destroy;
  }
  ok = true;
out_destroy:
  *published = sp.acked;
  sl_amqp_destroy(s);
  return ok;
}

/* ---- the command ---- */

typedef struct shot_args {
  const char *config, *file, *broker_dir, *format;
  bool skip_bad, dry_run, print;
  double timeout_s;
} shot_args_t;

/* Parses `submit` arguments (argv[0] = "submit"). Returns 0 ok, 1 help shown, 2 usage. */
static int shot_parse_args(int argc, char **argv, shot_args_t *a)
{
  static const struct option longopts[] = {
      {"skip-bad", no_argument, NULL, 's'}, {"dry-run", no_argument, NULL, 'n'},
      {"print", no_argument, NULL, 'p'},    {"broker-dir", required_argument, NULL, 'b'},
      {"format", required_argument, NULL, 'f'}, {"timeout", required_argument, NULL, 't'},
      {"help", no_argument, NULL, 'h'},     {NULL, 0, NULL, 0}};
  char *end;
  int c;

  memset(a, 0, sizeof *a);
  a->timeout_s = 30;
  optind = 0; /* full re-initialisation: the command may run more than once per process */
  opterr = 0;
  while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
    switch (c) {
    case 's': a->skip_bad = true; break;
    case 'n': a->dry_run = true; break;
    case 'p': a->print = true; break;
    case 'b': a->broker_dir = optarg; break;
    case 'f':
      if (strcmp(optarg, "csv") && strcmp(optarg, "jsonl")) {
        fprintf(stderr, "specline shot: --format must be csv or jsonl, not '%s'\n", optarg);
        return 2;
      }
      a->format = optarg;
      break;
    case 't':
      a->timeout_s = strtod(optarg, &end);
      if (end == optarg || *end || !(a->timeout_s >= 0 && a->timeout_s <= 3600)) {
        fprintf(stderr, "specline shot: --timeout must be seconds in [0, 3600], not '%s'\n", optarg);
        return 2;
      }
      break;
    case 'h': shot_usage(stdout); return 1;
    default:
      fprintf(stderr, "specline shot: unknown or incomplete option '%s'\n", argv[optind - 1]);
      shot_usage(stderr);
      return 2;
    }
  }
  if (argc - optind != 2) {
    fprintf(stderr, "specline shot submit: expected CONFIG FILE\n");
    shot_usage(stderr);
    return 2;
  }
  a->config = argv[optind];
  a->file = argv[optind + 1];
  return 0;
}

/* Reads and validates the file into *sf (initialised here); prints every error kept.
 * Returns 0, or the exit code of a failure to read it. */
static int shot_read(const shot_args_t *a, const sl_config_t *cfg, sl_shot_format_t fmt, sl_shot_file_t *sf)
{
  size_t len = 0, i;
  char *data = sl_read_file(a->file, SHOT_FILE_MAX, &len);

  if (!data) {
    fprintf(stderr, "specline shot: cannot open '%s': %s\n", a->file, strerror(errno));
    return 1;
  }
  sl_shot_file_init(sf, cfg, a->file);
  sl_shot_parse(sf, fmt, data, len);
  free(data);
  for (i = 0; i < sf->n_kept; i++)
    fprintf(stderr, "%s\n", sf->errors[i]);
  if (sf->n_errors > sf->n_kept)
    fprintf(stderr, "%s: ... and %zu more errors\n", a->file, sf->n_errors - sf->n_kept);
  return 0;
}

static int shot_submit(int argc, char **argv)
{
  shot_args_t a;
  sl_config_t *cfg;
  sl_error_t err;
  sl_shot_file_t sf;
  sl_shot_format_t fmt;
  size_t published = 0, i, skipped;
  int rc;

  rc = shot_parse_args(argc, argv, &a);
  if (rc)
    return rc == 1 ? 0 : 2;
  if (a.format)
    fmt = !strcmp(a.format, "csv") ? SL_SHOT_CSV : SL_SHOT_JSONL;
  else if (!sl_shot_format_of(a.file, &fmt)) {
    fprintf(stderr, "specline shot: cannot tell the format of '%s' (.csv, .jsonl, .json); use --format\n", a.file);
    return 2;
  }
  cfg = sl_config_load(a.config, &err);
  if (!cfg) {
    fprintf(stderr, "specline shot: %s\n", err.message);
    return 1;
  }
  if (!sl_shot_config_check(cfg, &err)) {
    fprintf(stderr, "specline shot: %s: %s\n", a.config, err.message);
    sl_config_destroy(cfg);
    return 1;
  }
  if ((rc = shot_read(&a, cfg, fmt, &sf)) != 0) {
    sl_config_destroy(cfg);
    return rc;
  }
  skipped = sf.n_bad;
  rc = 0;
  if (sf.fatal || (sf.n_bad && !a.skip_bad)) {
    fprintf(stderr, "specline shot: nothing published: %s%s\n", sf.fatal ? "the file cannot be read as shots" : "",
            sf.fatal ? "" : (sf.n_bad == 1 ? "1 bad row (--skip-bad publishes the others)"
                                           : "bad rows (--skip-bad publishes the others)"));
    printf("%s: %zu rows read, %zu bad, 0 published\n", a.file, sf.n_read, sf.n_bad);
    rc = 1;
    goto out_release;
  }
  if (a.print)
    for (i = 0; i < sf.n_rows; i++) {
      sl_store_point_t p;
      char *body;
      sl_shot_point(cfg, &sf.rows[i], 0, &p);
      body = sl_store_point_encode(&p);
      printf("%s\n", body);
      free(body);
      sl_shot_point_release(&p);
    }
  if (a.dry_run) {
    printf("%s: %zu rows read, %zu valid, %zu skipped, 0 published (dry run)\n", a.file, sf.n_read, sf.n_rows,
           skipped);
    goto out_release;
  }
  if (sf.n_rows && !shot_publish(cfg, &sf, a.broker_dir, a.timeout_s, &published, &err)) {
    fprintf(stderr, "specline shot: %s (%zu of %zu confirmed; resubmitting the file is safe)\n", err.message,
            published, sf.n_rows);
    rc = 1;
  }
  printf("%s: %zu rows read, %zu published, %zu skipped\n", a.file, sf.n_read, published, skipped);
  if (published)
    printf("the shots are queued in '%s.store' until a store worker (specline-store, or specline run) stores "
           "them; `specline results %s --experimental` shows them then\n",
           cfg->experiment, a.config);
out_release:
  fflush(stdout);
  sl_shot_file_release(&sf);
  sl_config_destroy(cfg);
  return rc;
}

int sl_cmd_shot(int argc, char **argv)
{
  if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
    shot_usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  if (!strcmp(argv[1], "submit"))
    return shot_submit(argc - 1, argv + 1);
  if (!strcmp(argv[1], "suggest"))
    return sl__cmd_shot_suggest(argc - 1, argv + 1);
  fprintf(stderr, "specline shot: unknown subcommand '%s' (expected submit or suggest)\n", argv[1]);
  return 2;
}
