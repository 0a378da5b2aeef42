/* The explorer's store reads, off the loop thread: each read runs on the libuv thread pool
 * (uv_queue_work), one at a time and in the order asked, so the store handle is only ever
 * used by one thread at once; its answer comes back on the loop thread through the done
 * callback, which feeds it to the planner. The one write, the campaign's clock, goes the
 * same way. */
#ifndef SPECLINE_EXPLORE_READER_H
#define SPECLINE_EXPLORE_READER_H

#include <stdbool.h>
#include <uv.h>

#include "specline/ledger.h"
#include "specline/model.h"
#include "specline/planner.h"
#include "specline/store.h"

typedef enum explore_read_kind {
  EXPLORE_READ_POINT,  /* sample_id */
  EXPLORE_READ_AUDIT,  /* sample_id (the audit) and other_id (the stop) */
  EXPLORE_READ_MODEL,  /* the newest surrogate unless it is model_id */
  EXPLORE_READ_ALL,    /* startup: every stored point and the campaign's clock (the resume),
                        * then the newest model */
  EXPLORE_WRITE_CLOCK, /* puts the campaign's clock: running_s up to at */
} explore_read_kind_t;

typedef struct explore_read explore_read_t;
typedef struct explore_reader explore_reader_t;
typedef void (*explore_read_done_fn)(explore_read_t *r, void *ud);

/* One read: the question, then the answer (filled on the pool thread). */
struct explore_read {
  uv_work_t work;
  explore_reader_t *rd;
  explore_read_t *next;
  explore_read_kind_t kind;
  char sample_id[SL_SAMPLE_ID_MAX], other_id[SL_SAMPLE_ID_MAX], model_id[SL_PLANNER_MODEL_ID_MAX];
  bool ok;                      /* false: err says why */
  sl_error_t err;
  bool found, found2;           /* POINT, AUDIT: pt (and pt2) hold the points */
  sl_store_point_t pt, pt2;
  sl_model_t *model;            /* MODEL, ALL: a new model (owned until taken), or NULL */
  char *mid, *metrics;          /* its id and metrics JSON */
  sl_ledger_stored_t *stored;   /* ALL: the stored points */
  char **ids;                   /* ALL: the points' ids, origins and errors (owned) */
  char **origins, **errors;
  double *inputs;               /* ALL: n × d inputs in the config's order */
  size_t n, cap, d;
  double first_at;
  bool clock_found;             /* ALL: the store has the campaign's clock */
  double running_s, at;         /* ALL: the clock read; WRITE_CLOCK: the clock to put */
};

struct explore_reader {
  uv_loop_t *loop;
  sl_store_t *store;            /* borrowed; used by the pool thread of the read in flight */
  const sl_config_t *cfg;       /* borrowed: the campaign (input names of the resume) */
  explore_read_t *head, *tail;  /* queued, head in flight when busy */
  bool busy;
  explore_read_done_fn done;
  void *ud;
};

void explore_reader_init(explore_reader_t *rd, uv_loop_t *loop, sl_store_t *store, const sl_config_t *cfg,
                         explore_read_done_fn done,
                         void *ud);
/* Queues the read the planner's action a asks for (READ_POINT, READ_AUDIT, LOAD_MODEL);
 * a NULL: EXPLORE_READ_ALL, the startup read. */
void explore_reader_ask(explore_reader_t *rd, const sl_planner_action_t *a);
/* Queues a put of the campaign's clock (running_s seconds of running up to epoch time
 * at); a put still queued behind the read in flight is updated instead of queueing one more. */
void explore_reader_put_clock(explore_reader_t *rd, double running_s, double at);
/* Feeds an answered read into the planner (ALL: the resume, then the model); the planner's
 * actions go to out. Takes r->model. */
void explore_read_feed(explore_read_t *r, sl_planner_t *p, double now, sl_planner_actions_t *out);
/* Drops the reads queued behind the one in flight (the worker is finishing). */
void explore_reader_cancel(explore_reader_t *rd);
/* Frees the reads still queued (none may be in flight: call after the loop ended). */
void explore_reader_release(explore_reader_t *rd);
/* Frees one answered read (and its model, unless taken: set r->model NULL). */
void explore_read_free(explore_read_t *r);

#endif
