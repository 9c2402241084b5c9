/*
 * reader_dlq: the entries the reader must not deliver (STREAM_DEAD_LETTER). An entry larger than
 * STREAM_MAX_ENTRY_BYTES, or handed out by Redis more than STREAM_MAX_DELIVERIES times (a poison
 * entry: one that made a worker crash every time, or that consumers keep failing on), is XADDed
 * to the dead-letter stream (common/proto/dead_letter's format) and only then acknowledged (and
 * deleted under the delete policy), on the connection it was read on. A failed XADD leaves it
 * pending: the claim sweep hands it out again and it is moved then. Never silent: a counter per
 * reason in the worker's stats and one sampled log line.
 *
 * Delivery counts come from XPENDING, which the reader sends just before each read that can
 * return an entry for the second time (its history read, XREADGROUP … 0, and its XAUTOCLAIM) on
 * the same connection: Redis answers in order, so the marks are in place when the entries come.
 * Everything goes through the reader's reader_redis_ops_t, so test_reader drives it with fakes.
 */
#ifndef STREAMIO_WORKER_STREAM_READER_DLQ_H
#define STREAMIO_WORKER_STREAM_READER_DLQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/config.h"
#include "common/proto/payload.h"
#include "shm/stats.h"
#include "worker/stream/reader.h"

typedef struct reader_dlq reader_dlq_t;
/* Entries an XPENDING found over the limit, until the read that returns them. */
typedef struct reader_dlq_marks reader_dlq_marks_t;

/* NULL when STREAM_DEAD_LETTER is unset. Copies *redis and *clock; borrows cfg and stats. */
reader_dlq_t *reader_dlq_new(const reader_redis_ops_t *redis, const reader_clock_ops_t *clock,
                             const cfg_t *cfg, stats_worker_t *stats);
/* Callbacks still to come keep what they need; NULL is a no-op. */
void reader_dlq_free(reader_dlq_t *q);

reader_dlq_marks_t *reader_dlq_marks_new(void);
void reader_dlq_marks_clear(reader_dlq_marks_t *m);
/* Deferred while an XPENDING reply is still to fill it; NULL is a no-op. */
void reader_dlq_marks_free(reader_dlq_marks_t *m);

/*
 * Sends `XPENDING <stream> <group> [IDLE min_idle] - + <count> [consumer]` on c; its reply marks
 * in m the entries handed out STREAM_MAX_DELIVERIES times or more. 0 or -ENOTCONN.
 */
int reader_dlq_pending(reader_dlq_t *q, reader_conn_t *c, const char *stream, size_t len,
                       const char *count, const char *consumer, const char *min_idle,
                       reader_dlq_marks_t *m);

/*
 * An entry read or claimed on c: true when it is a dead letter (marked in m, which may be NULL,
 * or too large), in which case its move is under way and the reader neither delivers nor
 * acknowledges it. Borrows everything for the call.
 */
bool reader_dlq_divert(reader_dlq_t *q, reader_conn_t *c, reader_dlq_marks_t *m, const char *stream,
                       size_t len, const char *id, size_t id_len, const payload_field_t *fields,
                       size_t nfields);

#endif
