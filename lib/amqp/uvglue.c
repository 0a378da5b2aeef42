/* libuv mode: the session driven from a uv loop. uv_poll watches the socket (readable,
 * plus writable while publishes wait), a prepare handle pumps frames already buffered in
 * rabbitmq-c before the loop sleeps, a timer sends heartbeats and watches for a silent
 * peer, another reconnects with the blocking part of the connect on the thread pool.
 * Also the socket checks both modes use: writable now, peer gone silent. */
#include <poll.h>
#include <stdlib.h>

#include <amqp.h>

#include "amqp-private.h"
#include "specline/error.h"
#include "specline/log.h"
#include "specline/util.h"

static void on_poll(uv_poll_t *h, int status, int events);
static void on_reconnect(uv_timer_t *h);
static void uv_handle_gone(sl_amqp_t *s);

/* True when the socket can take more bytes now. rabbitmq-c waits for writability with no
 * deadline inside amqp_basic_publish, so writing to a broker that stopped reading (frozen,
 * overloaded, a dead link with no RST) would block the whole worker, timers included; the
 * heartbeat watchdog (on_heartbeat) then declares it dead instead. */
bool sl__sock_writable(sl_amqp_t *s)
{
  struct pollfd pfd;

  if (!s->conn)
    return false;
  pfd.fd = amqp_get_sockfd(s->conn);
  pfd.events = POLLOUT;
  pfd.revents = 0;
  return poll(&pfd, 1, 0) > 0 && (pfd.revents & POLLOUT);
}

/* libuv mode: polls the socket for writability too while publishes wait in the ring
 * (s->unsent), so they go out as soon as the broker reads again; readable only otherwise. */
void sl__uv_want_writable(sl_amqp_t *s)
{
  int want;

  if (!s->poll || !s->conn)
    return;
  want = UV_READABLE | (s->unsent && s->ch1_ready && s->state == SL__UP ? UV_WRITABLE : 0);
  if (want != s->poll->events) {
    s->poll->events = want;
    uv_poll_start(&s->poll->h, want, on_poll);
  }
}

/* libuv mode: true (and the session is taken down) when the broker has sent nothing for
 * 1.5 heartbeat intervals. RabbitMQ sends a heartbeat every half interval, so that is
 * three missed in a row; it must fire before rabbitmq-c's own 2-interval deadline, past
 * which amqp_basic_publish waits for the peer with no timeout. */
bool sl__peer_gone(sl_amqp_t *s)
{
  struct pollfd pfd;
  double silent;
  int hb;

  if (!s->loop || !s->conn || s->last_recv <= 0 || (hb = amqp_get_heartbeat(s->conn)) <= 0)
    return false;
  /* bytes waiting that the loop has not polled yet (a loop busy for a while) count */
  pfd.fd = amqp_get_sockfd(s->conn);
  pfd.events = POLLIN;
  pfd.revents = 0;
  if (poll(&pfd, 1, 0) > 0)
    s->last_recv = sl_mono();
  silent = sl_mono() - s->last_recv;
  if (silent <= 1.5 * hb)
    return false;
  sl_error_t e;
  sl_error_set(&e, SL_ERR_AMQP, AMQP_STATUS_HEARTBEAT_TIMEOUT,
               "no data from the broker for %.0f s (%d s heartbeats): connection presumed dead", silent, hb);
  sl__go_down(s, &e);
  return true;
}

static void uv_pump(sl_amqp_t *s)
{
  int rounds;

  for (rounds = 0; rounds < 16 && s->conn; rounds++) {
    if (!amqp_frames_enqueued(s->conn) && !amqp_data_in_buffer(s->conn) && !s->deferred)
      break;
    sl__drain(s);
  }
  sl__acks_flush(s);
}

static void on_poll(uv_poll_t *h, int status, int events)
{
  sl__uvpoll_t *p = h->data;
  sl_amqp_t *s = p->s;

  if (p != s->poll || !s->conn)
    return;
  if (status < 0) {
    sl_error_t e;
    /* libuv's negative code (EBADF once the socket is gone, ECONNRESET, ...): what it
     * means to an operator is that the connection is gone, not a bug in a descriptor */
    sl_error_set(&e, SL_ERR_UV, status, "connection to the broker lost (%s: %s)", uv_err_name(status),
                 uv_strerror(status));
    sl__go_down(s, &e);
    return;
  }
  if (events & UV_READABLE)
    s->last_recv = sl_mono();
  sl__drain(s);
  if ((events & UV_WRITABLE) && s->conn && s->ch1_ready && s->state == SL__UP) {
    sl_error_t e;
    if (!sl__republish(s, &e)) {
      sl__go_down(s, &e);
      return;
    }
  }
  sl__uv_want_writable(s);
  sl__acks_flush(s);
}

static void on_idle(uv_idle_t *h)
{
  (void)h;
}

/* Before the loop sleeps: frames buffered inside rabbitmq-c (read by a publish or by an
 * RPC made from a callback) never make the socket readable again, so pump them now, and
 * keep the loop from blocking (idle handle) while some remain. */
static void on_prepare(uv_prepare_t *h)
{
  sl_amqp_t *s = h->data;

  uv_pump(s);
  if (s->conn && (amqp_frames_enqueued(s->conn) || amqp_data_in_buffer(s->conn) || s->deferred))
    uv_idle_start(&s->idle, on_idle);
  else
    uv_idle_stop(&s->idle);
}

static void on_heartbeat(uv_timer_t *h)
{
  sl_amqp_t *s = h->data;

  if (!s->conn)
    return;
  sl__heartbeat_maybe(s);
  if (s->conn)
    sl__drain(s);
  /* a non-blocking read never reports rabbitmq-c's heartbeat timeout, so watch the
   * socket ourselves: a peer silent for two heartbeat intervals (it sends one every
   * interval) is gone, even when no RST ever comes (a frozen broker, a cut cable) */
  if (s->conn) {
    if (sl__peer_gone(s))
      return;
    if (s->ch1_ready && s->state == SL__UP && sl__sock_writable(s)) {
      sl_error_t e;
      if (!sl__republish(s, &e)) {
        sl__go_down(s, &e);
        return;
      }
    }
  }
  sl__acks_flush(s);
}

/* On the thread pool: the blocking part of a connect (TCP, TLS, login). */
static void rc_work(uv_work_t *w)
{
  sl_amqp_t *s = w->data;

  sl_error_clear(&s->work_err);
  s->work_conn = sl__conn_open(s, &s->work_err, &s->work_fatal);
}

/* Back on the loop: channels, setup, consumers, or the next attempt. */
static void rc_work_done(uv_work_t *w, int status)
{
  sl_amqp_t *s = w->data;
  amqp_connection_state_t conn = s->work_conn;
  sl_error_t e = s->work_err;
  bool fatal = s->work_fatal, ok;

  s->work_conn = NULL;
  s->work_busy = false;
  if (status == UV_ECANCELED || s->detaching || s->conn) {
    if (conn)
      amqp_destroy_connection(conn);
  } else {
    const sl__node_t *nd = SL__NODE(s);
    ok = conn && sl__conn_setup(s, conn, &e, &fatal);
    if (!sl__connect_finish(s, ok, &e, NULL) && fatal)
      SL_ERROR("cannot connect to %s and retrying will not help; still retrying", nd->redacted);
  }
  uv_handle_gone(s); /* last: a detach may complete here */
}

static void on_reconnect(uv_timer_t *h)
{
  sl_amqp_t *s = h->data;

  if (s->conn || s->work_busy || s->detaching)
    return;
  s->work.data = s;
  if (uv_queue_work(s->loop, &s->work, rc_work, rc_work_done) != 0) {
    bool fatal;
    sl__connect_once(s, NULL, &fatal);
    return;
  }
  s->work_busy = true;
  s->uv_open++;
}

void sl__uv_reconnect_in(sl_amqp_t *s, double delay)
{
  if (s->loop && !s->detaching)
    uv_timer_start(&s->rc_timer, on_reconnect, (uint64_t)(delay * 1000.0), 0);
}

/* One of our handles is closed; after the last one a detach completes. */
static void uv_handle_gone(sl_amqp_t *s)
{
  void (*done)(sl_amqp_t *, void *) = s->detach_done;

  if (--s->uv_open > 0 || !s->detaching)
    return;
  s->detaching = false;
  s->detach_done = NULL;
  s->loop = NULL;
  if (done)
    done(s, s->detach_ud);
}

static void poll_closed(uv_handle_t *h)
{
  sl__uvpoll_t *p = h->data;
  sl_amqp_t *s = p->s;

  free(p);
  uv_handle_gone(s);
}

void sl__uv_conn_started(sl_amqp_t *s)
{
  int hb;

  if (!s->loop || !s->conn || s->detaching)
    return;
  s->poll = sl_calloc(1, sizeof *s->poll);
  s->poll->s = s;
  uv_poll_init(s->loop, &s->poll->h, amqp_get_sockfd(s->conn));
  s->poll->h.data = s->poll;
  s->uv_open++;
  s->poll->events = UV_READABLE;
  uv_poll_start(&s->poll->h, UV_READABLE, on_poll);
  sl__uv_want_writable(s);
  hb = amqp_get_heartbeat(s->conn);
  if (hb > 0) {
    uint64_t ms = (uint64_t)hb * 1000 / 4;
    uv_timer_start(&s->hb_timer, on_heartbeat, ms, ms);
  }
  uv_timer_stop(&s->rc_timer);
}

void sl__uv_conn_stopped(sl_amqp_t *s)
{
  if (!s->loop)
    return;
  if (s->poll) {
    uv_poll_stop(&s->poll->h);
    uv_close((uv_handle_t *)&s->poll->h, poll_closed);
    s->poll = NULL;
  }
  uv_timer_stop(&s->hb_timer);
}

bool sl_amqp_attach(sl_amqp_t *s, uv_loop_t *loop, sl_error_t *err)
{
  if (s->loop) {
    sl_error_set(err, SL_ERR_AMQP, AMQP_STATUS_INVALID_PARAMETER, "session already attached to a loop");
    return false;
  }
  s->loop = loop;
  s->detaching = false;
  s->detach_done = NULL;
  uv_timer_init(loop, &s->hb_timer);
  uv_timer_init(loop, &s->rc_timer);
  uv_prepare_init(loop, &s->prepare);
  uv_idle_init(loop, &s->idle);
  s->hb_timer.data = s->rc_timer.data = s->prepare.data = s->idle.data = s;
  s->uv_open = 4;
  uv_prepare_start(&s->prepare, on_prepare);
  /* the reconnect timer's callback is fixed; sl__uv_reconnect_in only re-arms it */
  uv_timer_start(&s->rc_timer, on_reconnect, 0, 0);
  if (s->conn && s->state == SL__UP) {
    uv_timer_stop(&s->rc_timer);
    sl__uv_conn_started(s);
  } else if (s->next_attempt > sl_mono()) {
    uv_timer_start(&s->rc_timer, on_reconnect, (uint64_t)((s->next_attempt - sl_mono()) * 1000), 0);
  }
  return true;
}

static void handle_closed(uv_handle_t *h)
{
  uv_handle_gone(h->data);
}

void sl_amqp_detach(sl_amqp_t *s, void (*done)(sl_amqp_t *s, void *ud), void *ud)
{
  if (!s->loop || s->detaching) {
    if (done)
      done(s, ud);
    return;
  }
  sl__acks_flush(s);
  s->detaching = true;
  s->detach_done = done;
  s->detach_ud = ud;
  if (s->work_busy)
    uv_cancel((uv_req_t *)&s->work); /* its completion still runs, and counts */
  if (s->poll) {
    uv_poll_stop(&s->poll->h);
    uv_close((uv_handle_t *)&s->poll->h, poll_closed);
    s->poll = NULL;
  }
  uv_close((uv_handle_t *)&s->hb_timer, handle_closed);
  uv_close((uv_handle_t *)&s->rc_timer, handle_closed);
  uv_close((uv_handle_t *)&s->prepare, handle_closed);
  uv_close((uv_handle_t *)&s->idle, handle_closed);
}
