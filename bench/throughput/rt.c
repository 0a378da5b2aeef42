/* bench-rt: the raw broker round-trip ceiling with rabbitmq-c, no libspecline.
 *
 * One publisher connection (thread 1) publishes N persistent messages with publisher
 * confirms to a fresh durable queue (classic or quorum), keeping at most --window messages
 * published but not yet consumed; a second connection (thread 2) consumes them with
 * basic.qos prefetch P and manual acks, one basic.ack per message, as a worker does.
 *
 * Printed, one line:
 *   rate  = N / (last delivery - first publish)            round trips per second
 *   p50/p99 = delivery time - publish time per message, ms  (same monotonic clock)
 *   confirm p50/p99 = publish -> basic.ack from the broker, ms
 *
 * usage: bench-rt --url amqp://user:pass@127.0.0.1:5672/vhost [--type classic|quorum]
 *                 [--prefetch P] [--n N] [--window W] [--size BYTES]
 * The queue is named bench-rt.<type>.<pid> and deleted at the end. */
#define _GNU_SOURCE
#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

static char g_host[256] = "127.0.0.1", g_user[128] = "guest", g_pass[128] = "guest", g_vhost[128] = "/";
static int g_port = 5672;
static char g_queue[128];
static const char *g_type = "classic";
static int g_prefetch = 1, g_window = 1000, g_size = 200;
static long g_n = 5000;

static double *g_pub_t;      /* publish time of message i */
static double *g_lat;        /* delivery - publish */
static double *g_conf;       /* confirm - publish */
static atomic_long g_consumed;
static int g_efd;            /* consumer -> publisher: "one consumed" */
static double g_t_first_pub, g_t_last_deliv;

static double now(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void die(const char *what, amqp_rpc_reply_t r)
{
  if (r.reply_type == AMQP_RESPONSE_NORMAL)
    return;
  fprintf(stderr, "bench-rt: %s: ", what);
  if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION)
    fprintf(stderr, "%s\n", amqp_error_string2(r.library_error));
  else if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD || r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
    amqp_channel_close_t *m = r.reply.decoded;
    fprintf(stderr, "server: %.*s\n", (int)m->reply_text.len, (char *)m->reply_text.bytes);
  } else
    fprintf(stderr, "reply type %d\n", r.reply_type);
  exit(1);
}

static amqp_connection_state_t conn_open(void)
{
  amqp_connection_state_t c = amqp_new_connection();
  amqp_socket_t *s = amqp_tcp_socket_new(c);
  if (!s || amqp_socket_open(s, g_host, g_port) != AMQP_STATUS_OK) {
    fprintf(stderr, "bench-rt: cannot connect to %s:%d\n", g_host, g_port);
    exit(1);
  }
  die("login", amqp_login(c, g_vhost, 0, 131072, 0, AMQP_SASL_METHOD_PLAIN, g_user, g_pass));
  amqp_channel_open(c, 1);
  die("channel.open", amqp_get_rpc_reply(c));
  return c;
}

static void conn_close(amqp_connection_state_t c)
{
  amqp_channel_close(c, 1, AMQP_REPLY_SUCCESS);
  amqp_connection_close(c, AMQP_REPLY_SUCCESS);
  amqp_destroy_connection(c);
}

/* amqp://user:pass@host:port/vhost (vhost may be %2F-encoded or empty) */
static void parse_url(const char *url)
{
  struct amqp_connection_info ci;
  char *u = strdup(url);
  amqp_default_connection_info(&ci);
  if (amqp_parse_url(u, &ci) != AMQP_STATUS_OK) {
    fprintf(stderr, "bench-rt: bad url\n");
    exit(2);
  }
  snprintf(g_host, sizeof g_host, "%s", ci.host);
  snprintf(g_user, sizeof g_user, "%s", ci.user);
  snprintf(g_pass, sizeof g_pass, "%s", ci.password);
  snprintf(g_vhost, sizeof g_vhost, "%s", ci.vhost && *ci.vhost ? ci.vhost : "/");
  g_port = ci.port;
  free(u);
}

static void *consumer(void *arg)
{
  amqp_connection_state_t c = conn_open();
  uint64_t one = 1;
  long got = 0;
  (void)arg;

  amqp_basic_qos(c, 1, 0, (uint16_t)g_prefetch, 0);
  die("basic.qos", amqp_get_rpc_reply(c));
  amqp_basic_consume(c, 1, amqp_cstring_bytes(g_queue), amqp_empty_bytes, 0, 0, 0, amqp_empty_table);
  die("basic.consume", amqp_get_rpc_reply(c));
  while (got < g_n) {
    amqp_envelope_t env;
    struct timeval tv = {30, 0};
    amqp_rpc_reply_t r;
    long i;

    amqp_maybe_release_buffers(c);
    r = amqp_consume_message(c, &env, &tv, 0);
    if (r.reply_type != AMQP_RESPONSE_NORMAL) {
      fprintf(stderr, "bench-rt: consumer: no delivery in 30 s after %ld\n", got);
      exit(1);
    }
    double t = now();
    if (env.message.body.len >= sizeof(long)) {
      memcpy(&i, env.message.body.bytes, sizeof i);
      if (i >= 0 && i < g_n)
        g_lat[i] = t - g_pub_t[i];
    }
    if (amqp_basic_ack(c, 1, env.delivery_tag, 0) != AMQP_STATUS_OK) {
      fprintf(stderr, "bench-rt: ack failed\n");
      exit(1);
    }
    amqp_destroy_envelope(&env);
    got++;
    g_t_last_deliv = t;
    atomic_store(&g_consumed, got);
    if (write(g_efd, &one, sizeof one) < 0) {
      /* nothing: the publisher also polls with a timeout */
    }
  }
  conn_close(c);
  return NULL;
}

static int cmpd(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double pct(double *v, long n, double p)
{
  long k = (long)(p * (double)(n - 1) + 0.5);
  return v[k];
}

int main(int argc, char **argv)
{
  const char *url = getenv("SPECLINE_AMQP_URL");
  amqp_connection_state_t c;
  pthread_t th;
  long published = 0, confirmed = 0, i;
  char *body;
  amqp_basic_properties_t props;
  amqp_table_entry_t qarg;
  amqp_table_t qargs;

  for (i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--url") && i + 1 < argc) url = argv[++i];
    else if (!strcmp(argv[i], "--type") && i + 1 < argc) g_type = argv[++i];
    else if (!strcmp(argv[i], "--prefetch") && i + 1 < argc) g_prefetch = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--n") && i + 1 < argc) g_n = atol(argv[++i]);
    else if (!strcmp(argv[i], "--window") && i + 1 < argc) g_window = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--size") && i + 1 < argc) g_size = atoi(argv[++i]);
    else {
      fprintf(stderr, "usage: bench-rt [--url URL] [--type classic|quorum] [--prefetch P] [--n N] "
                      "[--window W] [--size BYTES]\n(url default: $SPECLINE_AMQP_URL)\n");
      return 2;
    }
  }
  if (!url) {
    fprintf(stderr, "bench-rt: no --url and no SPECLINE_AMQP_URL\n");
    return 2;
  }
  if (g_size < (int)sizeof(long))
    g_size = sizeof(long);
  parse_url(url);
  snprintf(g_queue, sizeof g_queue, "bench-rt.%s.%d", g_type, (int)getpid());
  g_pub_t = calloc((size_t)g_n, sizeof *g_pub_t);
  g_lat = calloc((size_t)g_n, sizeof *g_lat);
  g_conf = calloc((size_t)g_n, sizeof *g_conf);
  body = calloc(1, (size_t)g_size);
  memset(body, 'x', (size_t)g_size);
  g_efd = eventfd(0, EFD_NONBLOCK);

  c = conn_open();
  qarg.key = amqp_cstring_bytes("x-queue-type");
  qarg.value.kind = AMQP_FIELD_KIND_UTF8;
  qarg.value.value.bytes = amqp_cstring_bytes(g_type);
  qargs.num_entries = 1;
  qargs.entries = &qarg;
  amqp_queue_declare(c, 1, amqp_cstring_bytes(g_queue), 0, 1, 0, 0, qargs);
  die("queue.declare", amqp_get_rpc_reply(c));
  amqp_confirm_select(c, 1);
  die("confirm.select", amqp_get_rpc_reply(c));
  pthread_create(&th, NULL, consumer, NULL);
  usleep(200000); /* let the consumer attach */

  memset(&props, 0, sizeof props);
  props._flags = AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_CONTENT_TYPE_FLAG;
  props.delivery_mode = 2;
  props.content_type = amqp_cstring_bytes("application/octet-stream");

  while (confirmed < g_n) {
    long consumed = atomic_load(&g_consumed);
    bool can_pub = published < g_n && published - consumed < g_window;
    if (can_pub) {
      amqp_bytes_t b = {(size_t)g_size, body};
      memcpy(body, &published, sizeof published);
      g_pub_t[published] = now();
      if (published == 0)
        g_t_first_pub = g_pub_t[0];
      if (amqp_basic_publish(c, 1, amqp_empty_bytes, amqp_cstring_bytes(g_queue), 0, 0, &props, b) !=
          AMQP_STATUS_OK) {
        fprintf(stderr, "bench-rt: publish failed\n");
        return 1;
      }
      published++;
    }
    /* read confirms: without blocking while we can publish, else wait on socket or eventfd */
    for (;;) {
      amqp_frame_t f;
      struct timeval tv0 = {0, 0};
      int rc;
      if (!amqp_frames_enqueued(c) && !amqp_data_in_buffer(c)) {
        struct pollfd pf[2] = {{amqp_get_sockfd(c), POLLIN, 0}, {g_efd, POLLIN, 0}};
        bool want_wait = !(published < g_n && published - atomic_load(&g_consumed) < g_window);
        int pr = poll(pf, 2, want_wait ? 100 : 0);
        if (pf[1].revents & POLLIN) {
          uint64_t x;
          if (read(g_efd, &x, sizeof x) < 0) { /* drained */
          }
        }
        if (pr <= 0 || !(pf[0].revents & POLLIN))
          break;
      }
      rc = amqp_simple_wait_frame_noblock(c, &f, &tv0);
      if (rc == AMQP_STATUS_TIMEOUT)
        break;
      if (rc != AMQP_STATUS_OK) {
        fprintf(stderr, "bench-rt: publisher connection: %s\n", amqp_error_string2(rc));
        return 1;
      }
      if (f.frame_type == AMQP_FRAME_METHOD && f.payload.method.id == AMQP_BASIC_ACK_METHOD) {
        amqp_basic_ack_t *a = f.payload.method.decoded;
        double t = now();
        long upto = (long)a->delivery_tag; /* delivery tags start at 1 */
        long from = a->multiple ? confirmed + 1 : upto;
        for (long k = from; k <= upto; k++)
          if (k - 1 < g_n && g_conf[k - 1] == 0)
            g_conf[k - 1] = t - g_pub_t[k - 1];
        if (upto > confirmed)
          confirmed = a->multiple ? upto : confirmed + 1; /* broker acks in order here */
      } else if (f.frame_type == AMQP_FRAME_METHOD && f.payload.method.id == AMQP_BASIC_NACK_METHOD) {
        fprintf(stderr, "bench-rt: broker nacked a publish\n");
        return 1;
      } else if (f.frame_type == AMQP_FRAME_METHOD && (f.payload.method.id == AMQP_CHANNEL_CLOSE_METHOD ||
                                                        f.payload.method.id == AMQP_CONNECTION_CLOSE_METHOD)) {
        fprintf(stderr, "bench-rt: broker closed the channel\n");
        return 1;
      }
    }
    amqp_maybe_release_buffers(c);
  }
  pthread_join(th, NULL);
  double span = g_t_last_deliv - g_t_first_pub;
  qsort(g_lat, (size_t)g_n, sizeof *g_lat, cmpd);
  qsort(g_conf, (size_t)g_n, sizeof *g_conf, cmpd);
  printf("rt type=%s prefetch=%d window=%d n=%ld size=%d rate=%.1f p50_ms=%.3f p99_ms=%.3f confirm_p50_ms=%.3f "
         "confirm_p99_ms=%.3f\n",
         g_type, g_prefetch, g_window, g_n, g_size, (double)g_n / span, 1e3 * pct(g_lat, g_n, 0.5),
         1e3 * pct(g_lat, g_n, 0.99), 1e3 * pct(g_conf, g_n, 0.5), 1e3 * pct(g_conf, g_n, 0.99));
  amqp_queue_delete(c, 1, amqp_cstring_bytes(g_queue), 0, 0);
  amqp_get_rpc_reply(c);
  conn_close(c);
  return 0;
}
