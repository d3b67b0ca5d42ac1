/* The native RabbitMQ baseline of `jadugar bench` and scripts/bench-rabbitmq: publish with confirms
   (a window of WINDOW in flight), then consume with one ack per message, on one connection.
   Usage: amqp-confirm-loop URL MESSAGES SIZE WINDOW PREFETCH */
#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void die_reply(amqp_rpc_reply_t r, const char *what) {
  if (r.reply_type == AMQP_RESPONSE_NORMAL) return;
  fprintf(stderr, "native: %s failed (reply type %d, library error %s)\n", what, r.reply_type, amqp_error_string2(r.library_error));
  exit(1);
}
static void die_status(int status, const char *what) {
  if (status == AMQP_STATUS_OK) return;
  fprintf(stderr, "native: %s failed: %s\n", what, amqp_error_string2(status));
  exit(1);
}
static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
  if (argc != 6) { fprintf(stderr, "usage: native URL MESSAGES SIZE WINDOW PREFETCH\n"); return 2; }
  char *url = strdup(argv[1]);
  long total = atol(argv[2]), size = atol(argv[3]), window = atol(argv[4]), prefetch = atol(argv[5]);
  struct amqp_connection_info info;
  die_status(amqp_parse_url(url, &info), "parsing the URL");
  amqp_connection_state_t conn = amqp_new_connection();
  amqp_socket_t *socket = amqp_tcp_socket_new(conn);
  die_status(amqp_socket_open(socket, info.host, info.port), "opening the socket");
  die_reply(amqp_login(conn, info.vhost, 0, 131072, 10, AMQP_SASL_METHOD_PLAIN, info.user, info.password), "login");
  amqp_channel_open(conn, 1);
  die_reply(amqp_get_rpc_reply(conn), "channel.open");
  char queue_name[64];
  snprintf(queue_name, sizeof queue_name, "jadugar-bench-native-%ld", (long)time(NULL) ^ (long)getpid());
  amqp_bytes_t queue = amqp_cstring_bytes(queue_name);
  amqp_queue_declare(conn, 1, queue, 0, 0, 0, 0, amqp_empty_table);
  die_reply(amqp_get_rpc_reply(conn), "queue.declare");
  amqp_confirm_select(conn, 1);
  die_reply(amqp_get_rpc_reply(conn), "confirm.select");

  char *payload = malloc(size);
  memset(payload, 'a', size);
  amqp_bytes_t body = { .len = (size_t)size, .bytes = payload };
  amqp_basic_properties_t props;
  props._flags = AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_MESSAGE_ID_FLAG;
  props.delivery_mode = 1;
  char id[32];

  /* Warm-up, then purge, as the Swift side does. Delivery tags run on across both passes. */
  uint64_t base = 0;
  for (int pass = 0; pass < 2; pass++) {
    long count = pass == 0 ? 1000 : total;
    uint64_t published = 0, confirmed = 0, nacked = 0;
    double start = now();
    while (confirmed < count) {
      while (published < (uint64_t)count && published - confirmed < (uint64_t)window) {
        snprintf(id, sizeof id, "%016llx", (unsigned long long)published);
        props.message_id = amqp_cstring_bytes(id);
        die_status(amqp_basic_publish(conn, 1, amqp_empty_bytes, queue, 0, 0, &props, body), "basic.publish");
        published++;
      }
      do {
        amqp_frame_t frame;
        die_status(amqp_simple_wait_frame(conn, &frame), "reading confirms");
        if (frame.frame_type != AMQP_FRAME_METHOD) continue;
        if (frame.payload.method.id == AMQP_BASIC_ACK_METHOD) {
          amqp_basic_ack_t *ack = frame.payload.method.decoded;
          confirmed = ack->delivery_tag - base;
        } else if (frame.payload.method.id == AMQP_BASIC_NACK_METHOD) {
          amqp_basic_nack_t *nack = frame.payload.method.decoded;
          nacked += nack->delivery_tag - base - confirmed;
          confirmed = nack->delivery_tag - base;
        }
      } while (amqp_frames_enqueued(conn) || amqp_data_in_buffer(conn));
      amqp_maybe_release_buffers(conn);
    }
    double seconds = now() - start;
    base += published;
    if (nacked) { fprintf(stderr, "native: %llu messages were nacked\n", (unsigned long long)nacked); return 1; }
    if (pass == 0) {
      amqp_queue_purge(conn, 1, queue);
      die_reply(amqp_get_rpc_reply(conn), "queue.purge");
      continue;
    }
    printf("BENCH native publish-confirm messages=%ld size=%ld window=%ld seconds=%.3f rate=%.0f\n", total, size, window, seconds, total / seconds);
  }

  amqp_basic_qos(conn, 1, 0, (uint16_t)prefetch, 0);
  die_reply(amqp_get_rpc_reply(conn), "basic.qos");
  amqp_basic_consume(conn, 1, queue, amqp_empty_bytes, 0, 0, 0, amqp_empty_table);
  die_reply(amqp_get_rpc_reply(conn), "basic.consume");
  double start = now();
  for (long i = 0; i < total; i++) {
    amqp_envelope_t envelope;
    amqp_maybe_release_buffers(conn);
    die_reply(amqp_consume_message(conn, &envelope, NULL, 0), "consuming");
    die_status(amqp_basic_ack(conn, 1, envelope.delivery_tag, 0), "basic.ack");
    amqp_destroy_envelope(&envelope);
  }
  double seconds = now() - start;
  printf("BENCH native consume-ack messages=%ld size=%ld prefetch=%ld seconds=%.3f rate=%.0f\n", total, size, prefetch, seconds, total / seconds);
  amqp_queue_delete(conn, 1, queue, 0, 0);
  amqp_channel_close(conn, 1, AMQP_REPLY_SUCCESS);
  amqp_connection_close(conn, AMQP_REPLY_SUCCESS);
  amqp_destroy_connection(conn);
  return 0;
}
