/*
 * reader: reads the streams the master assigned to this worker with XREADGROUP, as consumer
 * `<host>:<port>:<slot>` of the consumer group STREAM_CONSUMER_GROUP (created at id 0 when
 * missing, so entries already in a stream are delivered, as the Node server does).
 * Streams are spread over at most MAX_CONCURRENT_POOLS lanes (one Redis connection each, a pool
 * always in one lane). A lane whose streams fit in one read blocks in Redis (BLOCK READ_BLOCK_MS);
 * a larger lane sweeps its streams MAX_STREAMS_PER_READ at a time and, when a whole sweep found
 * nothing, blocks on all of them at once: a quiet lane costs one idle connection, never a loop.
 * PRIORITY_STREAMS are read by one more lane of their own (its own connection, never shared with
 * ordinary pools, never parked), so a busy ordinary lane cannot delay them.
 * Every entry is handed to the entry callback, which may queue commands (PUBLISH) on the lane's
 * connection; the reader then queues XACK and XDEL behind them on the same connection, so an
 * entry is acknowledged only after what the callback sent. Entries this consumer had read but
 * not acknowledged (a crash, a lost connection) are read again first (XREADGROUP ... 0).
 *
 * Scale and recovery, on one more "service" connection per worker:
 * - a new stream is first probed (XINFO STREAM): if its last entry is older than
 *   STREAM_INACTIVE_TTL it is parked instead of joining its lane. A stream of a lane that sees no
 *   entry for STREAM_INACTIVE_TTL is parked too. Parked streams are never in a blocking read:
 *   they are polled with non-blocking XREAD from their last id, WAKE_BATCH per 100 ms, and go
 *   back to their lane (group check and history first) as soon as one has a new entry.
 * - STREAM_KEYSPACE_EVENTS=true: one more connection subscribes to `__keyevent@<db>__:xadd`
 *   (Redis must have notify-keyspace-events with E and t); a parked stream wakes up on its
 *   event, and polling runs WAKE_SLOWDOWN times slower, as a safety net.
 * - every STREAM_CLAIM_IDLE_MS / 2 the active streams are swept with XAUTOCLAIM (min idle
 *   STREAM_CLAIM_IDLE_MS): entries another consumer (a dead server, a slot that no longer exists)
 *   read but never acknowledged are delivered and acknowledged by this worker.
 * - STREAM_DELETE_POLICY=retain: entries are acknowledged but not deleted, and each stream is
 *   trimmed with XTRIM MINID (now - STREAM_RETAIN_MS) at most once a second, after a delivery.
 */
#ifndef STREAMIO_WORKER_STREAM_READER_H
#define STREAMIO_WORKER_STREAM_READER_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "common/config.h"
#include "common/proto/payload.h"
#include "common/redis/rds.h"
#include "shm/stats.h"

typedef struct reader reader_t;

/* One stream entry. Everything is borrowed for the duration of the call. */
typedef void (*reader_entry_fn)(rds_t *conn, const char *stream, size_t stream_len, const char *id,
                                size_t id_len, const payload_field_t *fields, size_t nfields,
                                void *arg);

/* True when entries may be read now. */
typedef bool (*reader_gate_fn)(void *arg);

/* Borrows loop, cfg and stats; copies consumer. Never NULL. */
reader_t *reader_new(uv_loop_t *loop, const cfg_t *cfg, const char *consumer, stats_worker_t *stats,
                     reader_entry_fn fn, void *arg);
/* Starts reading `name` as part of `pool` (nothing to do when it is already read). */
void reader_add(reader_t *r, uint32_t pool, const char *name, size_t len);
/* Stops reading `name` (a blocking read holding it is cut short). Entries already read are
 * still delivered and acknowledged. */
void reader_remove(reader_t *r, const char *name, size_t len);
/* Stops reading every stream of `pool`. */
void reader_remove_pool(reader_t *r, uint32_t pool);
/*
 * Lanes read only while gate(arg) is true (checked before every read, retried every 100 ms): an
 * entry that could not reach every socket now is better left in Redis and read a moment later.
 * They never read in the first 300 ms after their connection came back, so other servers' pub/sub
 * connections, cut by the same Redis restart, are likely back. NULL: always.
 */
void reader_set_gate(reader_t *r, reader_gate_fn fn, void *arg);
size_t reader_streams(const reader_t *r);
/* Streams currently read by a lane (neither parked nor waiting for their probe). */
size_t reader_active(const reader_t *r);
/* True when every lane's connection is up. */
bool reader_connected(const reader_t *r);
/*
 * Drain: no new reads; reads in flight finish (at most READ_BLOCK_MS), their entries are
 * delivered and acknowledged, the connections close, then done(arg) runs and the reader is freed.
 */
void reader_stop(reader_t *r, void (*done)(void *arg), void *arg);

#endif
