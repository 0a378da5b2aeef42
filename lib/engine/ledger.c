/* The explorer's ledger of samples (see ledger.h): chunked records with stable addresses, an
 * open-addressing index keyed by sample_id (linear probing, backward-shift deletion), an
 * in-flight set with O(1) removal so lease expiry costs O(in flight) rather than O(samples),
 * a FIFO of finished samples whose oldest records are retired (index entry deleted, chunk
 * freed once all its records are gone) so memory follows the live samples, not the
 * campaign's length, interned worker and control queue names, and the counters the budget
 * and the issue rate use. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "specline/ledger.h"
#include "specline/util.h"

#define CHUNK_BITS 9
#define CHUNK_SIZE (1u << CHUNK_BITS)
#define HASH_SEED 0x5eed1ed6e5ull
#define INDEX_HINT_MAX 4096 /* live samples the index is sized for at first; it grows */

struct sl_ledger {
  size_t d, K;
  sl_sample_t **chunks; /* CHUNK_SIZE records each; NULL once all its records are retired */
  double **in_chunks;   /* CHUNK_SIZE × d inputs each */
  uint16_t *chunk_live; /* records of each chunk not retired */
  size_t n_chunks, chunks_cap, chunks_live;
  size_t count;  /* samples ever added (indices 0 .. count - 1) */
  size_t n_live; /* samples not retired (in the index) */

  uint32_t *fin;      /* FIFO ring of finished indices, oldest first, retire + 1 entries */
  size_t fin_head, fin_n, retain;
  int64_t retired;

  uint64_t *slots; /* hash tag << 32 | (index + 1) of a sample; 0 = empty */
  size_t slots_cap; /* power of two */

  uint32_t *active; /* indices of samples in flight */
  size_t n_active, active_cap;

  char **names; /* interned worker/control names; id = position + 1 */
  size_t n_names, names_cap;

  size_t planned_cursor;
  size_t n_histories; /* histories allocated now */
  sl_ledger_stats_t st;
};

/* ---- names ---- */

static const char *state_names[] = {"planned", "issued", "running", "done", "failed", "terminated"};
static const char *origin_names[] = {"initial", "explore", "audit", "unknown"};

const char *sl_sample_state_name(sl_sample_state_t s)
{
  return (unsigned)s < sizeof state_names / sizeof *state_names ? state_names[s] : "invalid";
}

const char *sl_sample_origin_name(sl_sample_origin_t o)
{
  return (unsigned)o < sizeof origin_names / sizeof *origin_names ? origin_names[o] : "invalid";
}

bool sl_sample_state_finished(sl_sample_state_t s)
{
  return s == SL_SAMPLE_DONE || s == SL_SAMPLE_FAILED || s == SL_SAMPLE_TERMINATED;
}

/* Interns a name (few distinct workers, so a linear scan); NULL or "" → 0. */
static uint32_t name_intern(sl_ledger_t *l, const char *name)
{
  size_t i;

  if (!name || !*name)
    return 0;
  for (i = l->n_names; i-- > 0;)
    if (strcmp(l->names[i], name) == 0)
      return (uint32_t)(i + 1);
  if (l->n_names == l->names_cap) {
    l->names_cap = l->names_cap ? 2 * l->names_cap : 16;
    l->names = sl_realloc(l->names, l->names_cap * sizeof *l->names);
  }
  l->names[l->n_names++] = sl_strdup(name);
  return (uint32_t)l->n_names;
}

const char *sl_ledger_name(const sl_ledger_t *l, uint32_t id)
{
  return id >= 1 && id <= l->n_names ? l->names[id - 1] : NULL;
}

/* ---- lifetime ---- */

static size_t pow2_at_least(size_t n)
{
  size_t c = 16;

  while (c < n)
    c <<= 1;
  return c;
}

sl_ledger_t *sl_ledger_new(size_t n_inputs, size_t checkpoints, double started_at, size_t capacity_hint)
{
  sl_ledger_t *l = sl_calloc(1, sizeof *l);

  l->d = n_inputs;
  l->K = checkpoints;
  if (capacity_hint > INDEX_HINT_MAX)
    capacity_hint = INDEX_HINT_MAX; /* finished samples are retired: the live set is small */
  l->slots_cap = pow2_at_least(capacity_hint + capacity_hint / 2 + 1);
  l->slots = sl_calloc(l->slots_cap, sizeof *l->slots);
  l->st.started_at = started_at;
  l->retain = SL_LEDGER_RETAIN_DEFAULT;
  l->fin = sl_calloc(l->retain + 1, sizeof *l->fin);
  return l;
}

void sl_ledger_destroy(sl_ledger_t *l)
{
  size_t i;

  if (!l)
    return;
  for (i = 0; i < l->count; i++) {
    sl_sample_t *s = sl_ledger_at(l, i);
    if (s)
      free(s->history);
  }
  for (i = 0; i < l->n_chunks; i++) {
    free(l->chunks[i]);
    free(l->in_chunks[i]);
  }
  free(l->chunk_live);
  free(l->fin);
  for (i = 0; i < l->n_names; i++)
    free(l->names[i]);
  free(l->names);
  free(l->chunks);
  free(l->in_chunks);
  free(l->slots);
  free(l->active);
  free(l);
}

size_t sl_ledger_n_inputs(const sl_ledger_t *l)
{
  return l->d;
}

size_t sl_ledger_checkpoints(const sl_ledger_t *l)
{
  return l->K;
}

void sl_ledger_set_started_at(sl_ledger_t *l, double started_at)
{
  l->st.started_at = started_at;
}

size_t sl_ledger_count(const sl_ledger_t *l)
{
  return l->count;
}

sl_sample_t *sl_ledger_at(const sl_ledger_t *l, size_t index)
{
  sl_sample_t *s;

  if (index >= l->count || !l->chunks[index >> CHUNK_BITS])
    return NULL;
  s = &l->chunks[index >> CHUNK_BITS][index & (CHUNK_SIZE - 1)];
  return s->id[0] ? s : NULL; /* "" = retired */
}

/* The record at index, retired or not (index < count, its chunk not freed). */
static sl_sample_t *record_at(const sl_ledger_t *l, size_t index)
{
  return &l->chunks[index >> CHUNK_BITS][index & (CHUNK_SIZE - 1)];
}

const double *sl_ledger_inputs(const sl_ledger_t *l, const sl_sample_t *s)
{
  return l->in_chunks[s->index >> CHUNK_BITS] + (size_t)(s->index & (CHUNK_SIZE - 1)) * l->d;
}

/* ---- index ---- */

static uint64_t id_hash(const char *id)
{
  return sl_hash64(id, strlen(id), HASH_SEED);
}

#define SLOT_TAG(h) ((h) >> 32 << 32)
#define SLOT_INDEX(v) ((uint32_t)(v)) /* index + 1 */

/* Slot position holding id, or the empty slot where it would go. The high hash bits kept in
 * the slot spare most probes a visit to the record. */
static size_t index_probe(const sl_ledger_t *l, const char *id, uint64_t h)
{
  size_t mask = l->slots_cap - 1, pos = (size_t)h & mask;
  uint64_t tag = SLOT_TAG(h);

  for (;;) {
    uint64_t v = l->slots[pos];
    if (v == 0 || (SLOT_TAG(v) == tag && strcmp(record_at(l, SLOT_INDEX(v) - 1)->id, id) == 0))
      return pos;
    pos = (pos + 1) & mask;
  }
}

static void index_grow(sl_ledger_t *l)
{
  size_t old_cap = l->slots_cap, i;
  uint64_t *old = l->slots;

  l->slots_cap = old_cap * 2;
  l->slots = sl_calloc(l->slots_cap, sizeof *l->slots);
  for (i = 0; i < old_cap; i++) {
    if (old[i]) {
      size_t mask = l->slots_cap - 1;
      size_t pos = (size_t)id_hash(record_at(l, SLOT_INDEX(old[i]) - 1)->id) & mask;
      while (l->slots[pos])
        pos = (pos + 1) & mask;
      l->slots[pos] = old[i];
    }
  }
  free(old);
}

static bool id_valid(const char *id, sl_error_t *err)
{
  size_t n = id ? strnlen(id, SL_SAMPLE_ID_MAX) : 0;

  if (n == 0 || n >= SL_SAMPLE_ID_MAX) {
    sl_error_set(err, SL_ERR_USAGE, SL_USAGE_E_INVALID, "invalid sample id '%.40s'", id ? id : "(null)");
    return false;
  }
  return true;
}

sl_sample_t *sl_ledger_find(const sl_ledger_t *l, const char *sample_id)
{
  size_t pos;

  if (!id_valid(sample_id, NULL))
    return NULL;
  pos = index_probe(l, sample_id, id_hash(sample_id));
  return l->slots[pos] ? record_at(l, SLOT_INDEX(l->slots[pos]) - 1) : NULL;
}

/* Deletes the index entry at pos, shifting later entries of the probe run back so no
 * lookup needs a tombstone (Knuth 6.4, algorithm R). */
static void index_delete(sl_ledger_t *l, size_t pos)
{
  size_t mask = l->slots_cap - 1, i = pos, j = pos;

  for (;;) {
    size_t home;
    l->slots[i] = 0;
    for (;;) {
      j = (j + 1) & mask;
      if (l->slots[j] == 0)
        return;
      home = (size_t)id_hash(record_at(l, SLOT_INDEX(l->slots[j]) - 1)->id) & mask;
      /* the entry at j may move to i unless its home lies cyclically in (i, j] */
      if (i <= j ? (i < home && home <= j) : (i < home || home <= j))
        continue;
      break;
    }
    l->slots[i] = l->slots[j];
    i = j;
  }
}

/* ---- in-flight set ---- */

static bool in_flight(const sl_sample_t *s)
{
  return s->state == SL_SAMPLE_ISSUED || s->state == SL_SAMPLE_RUNNING;
}

static void active_add(sl_ledger_t *l, sl_sample_t *s)
{
  if (l->n_active == l->active_cap) {
    l->active_cap = l->active_cap ? 2 * l->active_cap : 64;
    l->active = sl_realloc(l->active, l->active_cap * sizeof *l->active);
  }
  s->active_pos = (uint32_t)l->n_active;
  l->active[l->n_active++] = s->index;
}

static void active_remove(sl_ledger_t *l, sl_sample_t *s)
{
  uint32_t last = l->active[--l->n_active];

  if (s->active_pos < l->n_active) {
    l->active[s->active_pos] = last;
    record_at(l, last)->active_pos = s->active_pos;
  }
}

static void history_free(sl_ledger_t *l, sl_sample_t *s)
{
  if (s->history) {
    free(s->history);
    s->history = NULL;
    l->n_histories--;
  }
  s->k_obs = 0;
}

/* Moves a sample to a new state, keeping the in-flight set and the gauges right. */
static void set_state(sl_ledger_t *l, sl_sample_t *s, sl_sample_state_t to)
{
  bool was = in_flight(s);
  sl_sample_state_t from = (sl_sample_state_t)s->state;

  if (from == SL_SAMPLE_PLANNED)
    l->st.planned--;
  if (from == SL_SAMPLE_RUNNING)
    l->st.running--;
  s->state = (uint8_t)to;
  if (to == SL_SAMPLE_PLANNED)
    l->st.planned++;
  if (to == SL_SAMPLE_RUNNING)
    l->st.running++;
  if (was && !in_flight(s)) {
    active_remove(l, s);
    l->st.steps_in_flight -= s->steps;
  } else if (!was && in_flight(s)) {
    active_add(l, s);
    l->st.steps_in_flight += s->steps;
  }
  if (!in_flight(s))
    history_free(l, s);
}

/* ---- retiring finished samples ---- */

/* Whether a finished sample's record may go: not an audit or a stop with an audit (the
 * audit check reads both by index and id), not one given up on (a late store of it must
 * still be counted once). */
static bool retirable(const sl_sample_t *s)
{
  return sl_sample_state_finished((sl_sample_state_t)s->state) && s->origin != SL_ORIGIN_AUDIT &&
         !(s->flags & (SL_SAMPLE_F_AUDITED | SL_SAMPLE_F_GAVE_UP));
}

/* Drops a finished sample's record: its index entry, and its chunk once the chunk is full
 * and every record in it is gone. */
static void retire(sl_ledger_t *l, sl_sample_t *s)
{
  size_t c = s->index >> CHUNK_BITS;

  index_delete(l, index_probe(l, s->id, id_hash(s->id)));
  history_free(l, s);
  s->id[0] = '\0';
  l->n_live--;
  l->retired++;
  if (--l->chunk_live[c] == 0 && (c + 1) * CHUNK_SIZE <= l->count) {
    free(l->chunks[c]);
    free(l->in_chunks[c]);
    l->chunks[c] = NULL;
    l->in_chunks[c] = NULL;
    l->chunks_live--;
  }
}

/* Appends a newly finished sample to the FIFO and retires the oldest beyond the window. */
static void finished_push(sl_ledger_t *l, sl_sample_t *s)
{
  size_t cap = l->retain + 1;
  sl_sample_t *old;

  if (l->retain == SIZE_MAX)
    return; /* keep everything */
  l->fin[(l->fin_head + l->fin_n++) % cap] = s->index;
  if (l->fin_n <= l->retain)
    return;
  old = sl_ledger_at(l, l->fin[l->fin_head]);
  l->fin_head = (l->fin_head + 1) % cap;
  l->fin_n--;
  if (old && retirable(old))
    retire(l, old);
}

void sl_ledger_set_retain(sl_ledger_t *l, size_t retain)
{
  size_t i;

  while (l->fin_n > retain) { /* the oldest go now */
    sl_sample_t *old = sl_ledger_at(l, l->fin[l->fin_head]);
    l->fin_head = (l->fin_head + 1) % (l->retain + 1);
    l->fin_n--;
    if (old && retirable(old))
      retire(l, old);
  }
  if (retain == SIZE_MAX) {
    l->fin_n = l->fin_head = 0;
  } else {
    uint32_t *ring = sl_calloc(retain + 1, sizeof *ring);
    for (i = 0; i < l->fin_n; i++)
      ring[i] = l->fin[(l->fin_head + i) % (l->retain + 1)];
    free(l->fin);
    l->fin = ring;
    l->fin_head = 0;
  }
  l->retain = retain;
}

size_t sl_ledger_live(const sl_ledger_t *l)
{
  return l->n_live;
}

/* ---- operations ---- */

static sl_sample_t *sample_add(sl_ledger_t *l, const char *id, const double *inputs,
                               sl_sample_origin_t origin, uint32_t replica, size_t pos, uint64_t h)
{
  size_t idx = l->count, c = idx >> CHUNK_BITS, j;
  sl_sample_t *s;
  double *in;

  if (c == l->n_chunks) {
    if (l->n_chunks == l->chunks_cap) {
      l->chunks_cap = l->chunks_cap ? 2 * l->chunks_cap : 8;
      l->chunks = sl_realloc(l->chunks, l->chunks_cap * sizeof *l->chunks);
      l->in_chunks = sl_realloc(l->in_chunks, l->chunks_cap * sizeof *l->in_chunks);
      l->chunk_live = sl_realloc(l->chunk_live, l->chunks_cap * sizeof *l->chunk_live);
    }
    l->chunks[c] = sl_malloc(CHUNK_SIZE * sizeof(sl_sample_t));
    l->in_chunks[c] = sl_malloc(CHUNK_SIZE * (l->d ? l->d : 1) * sizeof(double));
    l->chunk_live[c] = 0;
    l->n_chunks++;
    l->chunks_live++;
  }
  l->count++;
  s = record_at(l, idx);
  memset(s, 0, sizeof *s);
  sl_strlcpy(s->id, id, sizeof s->id);
  s->index = (uint32_t)idx;
  s->origin = (uint8_t)origin;
  s->replica = replica;
  s->state = SL_SAMPLE_PLANNED;
  in = (double *)sl_ledger_inputs(l, s);
  for (j = 0; j < l->d; j++)
    in[j] = inputs ? inputs[j] : NAN;
  if (!inputs)
    s->flags |= SL_SAMPLE_F_NO_INPUTS;
  l->st.planned++;
  l->st.samples++;

  l->slots[pos] = SLOT_TAG(h) | ((uint64_t)idx + 1);
  l->n_live++;
  l->chunk_live[c]++;
  if ((l->n_live + 1) * 10 > l->slots_cap * 7)
    index_grow(l);
  return s;
}

sl_sample_t *sl_ledger_plan(sl_ledger_t *l, const char *sample_id, const double *inputs,
                            sl_sample_origin_t origin, uint32_t replica, bool *created, sl_error_t *err)
{
  size_t pos;
  uint64_t h;

  if (created)
    *created = false;
  if (!id_valid(sample_id, err))
    return NULL;
  h = id_hash(sample_id);
  pos = index_probe(l, sample_id, h);
  if (l->slots[pos])
    return record_at(l, SLOT_INDEX(l->slots[pos]) - 1);
  if (created)
    *created = true;
  return sample_add(l, sample_id, inputs, origin, replica, pos, h);
}

/* Finds or adopts (unknown inputs, origin UNKNOWN) the sample named in a message. */
static sl_sample_t *find_or_adopt(sl_ledger_t *l, const char *id)
{
  return sl_ledger_plan(l, id, NULL, SL_ORIGIN_UNKNOWN, 0, NULL, NULL);
}

sl_sample_t *sl_ledger_next_planned(sl_ledger_t *l)
{
  while (l->planned_cursor < l->count) {
    sl_sample_t *s = sl_ledger_at(l, l->planned_cursor);
    if (s && s->state == SL_SAMPLE_PLANNED)
      return s;
    l->planned_cursor++;
  }
  return NULL;
}

bool sl_ledger_issue(sl_ledger_t *l, sl_sample_t *s, double now)
{
  if (sl_sample_state_finished((sl_sample_state_t)s->state) || (s->flags & SL_SAMPLE_F_NO_INPUTS))
    return false;
  if (s->attempts > 0)
    l->st.reissues++;
  if (in_flight(s)) {
    /* the lapsed attempt's steps were spent; keep them out of the new attempt */
    l->st.steps_lost += s->steps;
    l->st.steps_in_flight -= s->steps;
    if (s->state == SL_SAMPLE_RUNNING) {
      s->state = SL_SAMPLE_ISSUED;
      l->st.running--;
    }
  } else {
    set_state(l, s, SL_SAMPLE_ISSUED);
  }
  s->steps = 0;
  history_free(l, s);
  if (s->attempts < UINT16_MAX)
    s->attempts++;
  s->issued_at = now;
  s->last_seen = 0;
  s->worker = 0;
  s->control = 0;
  l->st.issues++;
  return true;
}

/* Marks a sample RUNNING on a worker, seen now. */
static void touch(sl_ledger_t *l, sl_sample_t *s, const char *worker, const char *control, double now)
{
  /* a worker reporting it is proof it was issued (by us or by a previous explorer) */
  if (s->attempts == 0)
    s->attempts = 1;
  if (s->state != SL_SAMPLE_RUNNING)
    set_state(l, s, SL_SAMPLE_RUNNING);
  if (s->issued_at == 0)
    s->issued_at = now;
  s->last_seen = now;
  if (worker && *worker)
    s->worker = name_intern(l, worker);
  if (control && *control)
    s->control = name_intern(l, control);
}

sl_sample_t *sl_ledger_on_progress(sl_ledger_t *l, const char *sample_id, const char *worker,
                                   const char *control, int64_t step, double now)
{
  sl_sample_t *s = find_or_adopt(l, sample_id);

  if (!s || sl_sample_state_finished((sl_sample_state_t)s->state))
    return s;
  touch(l, s, worker, control, now);
  if (in_flight(s) && step > s->steps) {
    l->st.steps_in_flight += step - s->steps;
    s->steps = step;
  }
  return s;
}

bool sl_ledger_observe(sl_ledger_t *l, sl_sample_t *s, size_t k, double value)
{
  size_t i;

  if (k >= l->K || !in_flight(s))
    return false;
  if (!s->history) {
    s->history = sl_malloc(l->K * sizeof *s->history);
    for (i = 0; i < l->K; i++)
      s->history[i] = NAN;
    l->n_histories++;
  }
  s->history[k] = value;
  while (s->k_obs < l->K && !isnan(s->history[s->k_obs]))
    s->k_obs++;
  return true;
}

/* A stored point; fifo: the sample may be retired later (not for a rebuild's points). */
static sl_sample_t *on_stored(sl_ledger_t *l, const char *sample_id, sl_point_status_t status, int64_t steps,
                              double now, bool fifo)
{
  sl_sample_t *s = find_or_adopt(l, sample_id);
  sl_sample_state_t to;

  if (!s)
    return NULL;
  if (sl_sample_state_finished((sl_sample_state_t)s->state)) {
    if (!(s->flags & SL_SAMPLE_F_GAVE_UP))
      return s; /* a redelivery: counted already */
    /* given up on, but the run did land after all: count the stored result */
    s->flags &= (uint8_t)~SL_SAMPLE_F_GAVE_UP;
    l->st.gave_up--;
  }
  to = status == SL_POINT_COMPLETE ? SL_SAMPLE_DONE
       : status == SL_POINT_TERMINATED ? SL_SAMPLE_TERMINATED
                                       : SL_SAMPLE_FAILED;
  set_state(l, s, to);
  s->steps = steps > 0 ? steps : 0;
  s->last_seen = now;
  if (s->attempts == 0)
    s->attempts = 1;
  l->st.stored++;
  l->st.steps_stored += s->steps;
  if (to == SL_SAMPLE_DONE)
    l->st.done++;
  else if (to == SL_SAMPLE_TERMINATED)
    l->st.terminated++;
  else
    l->st.failed++;
  if (fifo)
    finished_push(l, s);
  return s;
}

sl_sample_t *sl_ledger_on_stored(sl_ledger_t *l, const char *sample_id, sl_point_status_t status,
                                 int64_t steps, double now)
{
  return on_stored(l, sample_id, status, steps, now, true);
}

size_t sl_ledger_on_worker_status(sl_ledger_t *l, const char *worker, const char *control,
                                  const char *const *running, size_t n_running, double now)
{
  size_t i, n = 0;

  for (i = 0; i < n_running; i++) {
    sl_sample_t *s = find_or_adopt(l, running[i]);
    if (!s || sl_sample_state_finished((sl_sample_state_t)s->state))
      continue;
    touch(l, s, worker, control, now);
    if (in_flight(s))
      n++;
  }
  return n;
}

void sl_ledger_expire(sl_ledger_t *l, double now, double lease_s, int64_t sim_queue_ready,
                      unsigned max_attempts, sl_sample_t **reissue, size_t cap, size_t *n_reissue,
                      sl_sample_t **gave_up, size_t gave_up_cap, size_t *n_gave_up)
{
  size_t i = l->n_active, nr = 0, ng = 0;

  /* backwards: giving up swap-removes from the set, moving an already visited entry here */
  while (i-- > 0) {
    sl_sample_t *s = record_at(l, l->active[i]);
    bool lapsed;

    if (s->state == SL_SAMPLE_RUNNING)
      lapsed = now - s->last_seen > lease_s;
    else
      lapsed = s->worker == 0 && sim_queue_ready == 0 &&
               now - (s->last_seen > s->issued_at ? s->last_seen : s->issued_at) > lease_s;
    if (!lapsed)
      continue;
    if ((s->flags & SL_SAMPLE_F_NO_INPUTS) || (max_attempts && s->attempts >= max_attempts)) {
      if (ng >= gave_up_cap)
        continue; /* found again next time */
      set_state(l, s, SL_SAMPLE_FAILED);
      s->flags |= SL_SAMPLE_F_GAVE_UP;
      l->st.gave_up++;
      gave_up[ng++] = s;
    } else if (nr < cap) {
      reissue[nr++] = s;
    }
  }
  if (n_reissue)
    *n_reissue = nr;
  if (n_gave_up)
    *n_gave_up = ng;
}

size_t sl_ledger_renew_leases(sl_ledger_t *l, double now)
{
  size_t i;

  for (i = 0; i < l->n_active; i++)
    sl_ledger_at(l, l->active[i])->last_seen = now;
  return l->n_active;
}

void sl_ledger_rebuild(sl_ledger_t *l, const sl_ledger_stored_t *stored, size_t n_stored,
                       size_t n_issued_plan, double now)
{
  size_t i, n_plan = l->count;

  for (i = 0; i < n_stored; i++) /* kept, never retired: the plan's replay skips them */
    on_stored(l, stored[i].sample_id, stored[i].status, stored[i].steps, now, false);
  if (n_issued_plan < n_plan)
    n_plan = n_issued_plan;
  for (i = 0; i < n_plan; i++) {
    sl_sample_t *s = sl_ledger_at(l, i);
    if (s && s->state == SL_SAMPLE_PLANNED && !(s->flags & SL_SAMPLE_F_NO_INPUTS)) {
      sl_ledger_issue(l, s, now);
      l->st.issues--; /* issued by the previous run, not by us */
    }
  }
}

bool sl_ledger_set_inputs(sl_ledger_t *l, sl_sample_t *s, const double *inputs, sl_sample_origin_t origin)
{
  if (!(s->flags & SL_SAMPLE_F_NO_INPUTS))
    return false;
  memcpy((double *)sl_ledger_inputs(l, s), inputs, l->d * sizeof *inputs);
  s->flags &= (uint8_t)~SL_SAMPLE_F_NO_INPUTS;
  s->origin = (uint8_t)origin;
  return true;
}

void sl_ledger_link_audit(sl_ledger_t *l, sl_sample_t *audit, sl_sample_t *stopped)
{
  audit->parent = stopped->index + 1;
  stopped->flags |= SL_SAMPLE_F_AUDITED;
}

void sl_ledger_flag(sl_ledger_t *l, sl_sample_t *s, unsigned flags)
{
  s->flags |= (uint8_t)(flags & (SL_SAMPLE_F_STOP_SENT | SL_SAMPLE_F_SURPRISED | SL_SAMPLE_F_AUDITED));
}

/* ---- budget ---- */

void sl_ledger_stats(const sl_ledger_t *l, sl_ledger_stats_t *out)
{
  *out = l->st;
  out->in_flight = (int64_t)l->n_active;
}

bool sl_ledger_budget_exhausted(const sl_ledger_t *l, const sl_ledger_budget_t *b, double now,
                                char *reason, size_t reason_size)
{
  int64_t steps = l->st.steps_stored + l->st.steps_in_flight + l->st.steps_lost;
  char tmp[1];

  if (!reason || reason_size == 0) {
    reason = tmp;
    reason_size = sizeof tmp;
  }
  reason[0] = '\0';
  if (!b)
    return false;
  if (b->max_sims > 0 && l->st.stored >= b->max_sims) {
    snprintf(reason, reason_size, "max_sims %lld reached (%lld stored)", (long long)b->max_sims,
             (long long)l->st.stored);
    return true;
  }
  if (b->max_steps > 0 && steps >= b->max_steps) {
    snprintf(reason, reason_size, "max_steps %lld reached (%lld steps)", (long long)b->max_steps,
             (long long)steps);
    return true;
  }
  if (b->wall_s > 0 && now - l->st.started_at >= b->wall_s) {
    snprintf(reason, reason_size, "wall_s %g reached (%.1f s elapsed)", b->wall_s, now - l->st.started_at);
    return true;
  }
  return false;
}

size_t sl_ledger_to_issue(const sl_ledger_t *l, size_t slots, double oversubscribe,
                          const sl_ledger_budget_t *b, double now)
{
  double t = ceil((double)slots * (oversubscribe > 0 ? oversubscribe : 1.0) - 1e-9);
  int64_t target = (int64_t)t, n = target - (int64_t)l->n_active;

  if (b) {
    if (sl_ledger_budget_exhausted(l, b, now, NULL, 0))
      return 0;
    if (b->max_sims > 0) {
      int64_t room = b->max_sims - l->st.stored - (int64_t)l->n_active;
      if (n > room)
        n = room;
    }
  }
  return n > 0 ? (size_t)n : 0;
}

size_t sl_ledger_in_flight(const sl_ledger_t *l, sl_sample_t **out, size_t cap)
{
  size_t i;

  for (i = 0; i < l->n_active && i < cap; i++)
    out[i] = record_at(l, l->active[i]);
  return l->n_active;
}

size_t sl_ledger_memory(const sl_ledger_t *l)
{
  size_t m = sizeof *l, i;

  m += l->chunks_live * CHUNK_SIZE * (sizeof(sl_sample_t) + (l->d ? l->d : 1) * sizeof(double));
  m += l->chunks_cap * (2 * sizeof(void *) + sizeof *l->chunk_live);
  m += l->retain == SIZE_MAX ? 0 : (l->retain + 1) * sizeof *l->fin;
  m += l->slots_cap * sizeof *l->slots;
  m += l->active_cap * sizeof *l->active;
  m += l->names_cap * sizeof *l->names;
  for (i = 0; i < l->n_names; i++)
    m += strlen(l->names[i]) + 1;
  m += l->n_histories * l->K * sizeof(double);
  return m;
}
