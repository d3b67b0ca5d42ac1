#ifndef JADUGAR_CRDKAFKA_SHIM_H
#define JADUGAR_CRDKAFKA_SHIM_H
#include <librdkafka/rdkafka.h>
#include <sys/prctl.h>

/*
 * Values that rdkafka.h defines as macros with casts or expressions, which Swift does not import.
 * The adapter uses only rd_kafka_produceva (an array of rd_kafka_vu_t), never the variadic
 * rd_kafka_producev.
 */

static inline int32_t jadugar_rd_kafka_partition_ua(void) { return RD_KAFKA_PARTITION_UA; }
static inline int64_t jadugar_rd_kafka_offset_beginning(void) { return RD_KAFKA_OFFSET_BEGINNING; }
static inline int64_t jadugar_rd_kafka_offset_end(void) { return RD_KAFKA_OFFSET_END; }
static inline int64_t jadugar_rd_kafka_offset_stored(void) { return RD_KAFKA_OFFSET_STORED; }
static inline int64_t jadugar_rd_kafka_offset_invalid(void) { return RD_KAFKA_OFFSET_INVALID; }
static inline int jadugar_rd_kafka_msg_f_copy(void) { return RD_KAFKA_MSG_F_COPY; }
static inline int jadugar_rd_kafka_purge_all(void) { return RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT; }
static inline int jadugar_rd_kafka_event_createtopics_result(void) { return RD_KAFKA_EVENT_CREATETOPICS_RESULT; }
static inline int jadugar_rd_kafka_event_deletetopics_result(void) { return RD_KAFKA_EVENT_DELETETOPICS_RESULT; }

/* Names the calling thread as `top -H`, perf and debuggers show it (15 bytes on Linux); prctl is variadic. */
static inline void jadugar_set_thread_name(const char *name) { prctl(PR_SET_NAME, name, 0, 0, 0); }

#endif
