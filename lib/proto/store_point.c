/* Codec of store.point (simulate, shot submitters → store): one finished, terminated or
 * failed simulation, or one experimental shot, with inputs, outputs and the observed
 * history; the store upserts it by sample_id. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "proto-private.h"
#include "specline/util.h"

static const sl__field_t fields[] = {
    SL__FIELD(sl_store_point_t, campaign, "campaign", SL__F_ID, true),
    SL__FIELD(sl_store_point_t, sample_id, "sample_id", SL__F_ID, true),
    SL__FIELD(sl_store_point_t, experimental_flag, "experimental_flag", SL__F_BOOL, true),
    SL__FIELD(sl_store_point_t, inputs, "inputs", SL__F_VALUES, true),
    SL__FIELD(sl_store_point_t, outputs, "outputs", SL__F_VALUES, true),
    SL__FIELD(sl_store_point_t, running, "running", SL__F_VALUES, false),
    SL__FIELD(sl_store_point_t, history, "history", SL__F_SERIES, false),
    SL__FIELD(sl_store_point_t, status, "status", SL__F_STATUS, true, .words = sl__status_words),
    SL__FIELD(sl_store_point_t, steps, "steps", SL__F_INT, true, .has_min = true, .imin = 0),
    SL__FIELD(sl_store_point_t, wall_s, "wall_s", SL__F_NUM, true, .has_min = true, .dmin = 0),
    SL__FIELD(sl_store_point_t, worker, "worker", SL__F_ID, false),
    SL__FIELD(sl_store_point_t, produced_at, "produced_at", SL__F_NUM, true),
    SL__FIELD(sl_store_point_t, origin, "origin", SL__F_ID, false),
    SL__FIELD(sl_store_point_t, error, "error", SL__F_TEXT, false, .max_len = 4096),
    SL__FIELD(sl_store_point_t, predicted, "predicted", SL__F_VALUES, false),
    SL__FIELD(sl_store_point_t, extra, "extra", SL__F_VALUES, false),
    SL__FIELD(sl_store_point_t, date, "date", SL__F_TEXT, false),
    SL__FIELD(sl_store_point_t, file_names, "files", SL__F_TEXTMAP, false, .off2 = offsetof(sl_store_point_t, file_texts),
              .off3 = offsetof(sl_store_point_t, n_files)),
};

static const sl__kind_t kind = SL__KIND(sl_store_point_t, "store.point", fields);

char *sl_store_point_encode(const sl_store_point_t *m)
{
  return sl__encode(&kind, m);
}

bool sl_store_point_decode(const char *buf, size_t len, const sl_proto_limits_t *lim,
                           sl_store_point_t *out, sl_error_t *err)
{
  return sl__decode(&kind, buf, len, lim, out, err);
}

void sl_store_point_init(sl_store_point_t *m, const char *campaign)
{
  memset(m, 0, sizeof *m);
  sl_values_init(&m->inputs);
  sl_values_init(&m->outputs);
  sl_series_init(&m->history);
  sl_values_init(&m->predicted);
  sl_values_init(&m->extra);
  m->campaign = campaign ? sl_strdup(campaign) : NULL;
}

void sl_store_point_release(sl_store_point_t *m)
{
  char *doc = m ? m->doc : NULL;

  sl__release(&kind, m);
  free(doc);
  if (m)
    m->doc = NULL;
}
