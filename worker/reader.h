/*
 * reader: reads the streams the master assigned to this worker with XREADGROUP, as consumer
 * `<host>:<port>:<slot>` of the consumer group STREAM_CONSUMER_GROUP (created at id 0 when
 * missing, so entries already in a stream are delivered, as the Node server does).
 * Streams are spread over at most MAX_CONCURRENT_POOLS lanes (one Redis connection each, a pool
 * always in one lane). A lane whose streams fit in one read blocks in Redis (BLOCK READ_BLOCK_MS);
 * a larger lane sweeps its streams MAX_STREAMS_PER_READ at a time and, when a whole sweep found
 * nothing, blocks on all of them at once: a quiet lane costs one idle connection, never a loop.
 * Every entry is handed to the entry callback, which may queue commands (PUBLISH) on the lane's
 * connection; the reader then queues XACK and XDEL behind them on the same connection, so an
 * entry is acknowledged only after what the callback sent. Entries this consumer had read but
 * not acknowledged (a crash, a lost connection) are read again first (XREADGROUP ... 0).
 */
#ifndef STREAMIO_WORKER_READER_H
#define STREAMIO_WORKER_READER_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "common/config.h"
#include "shm/stats.h"
#include "worker/payload.h"
#include "worker/rds.h"

typedef struct reader reader_t;

/* One stream entry. Everything is borrowed for the duration of the call. */
typedef void (*reader_entry_fn)(rds_t *conn, const char *stream, size_t stream_len, const char *id,
                                size_t id_len, const payload_field_t *fields, size_t nfields,
                                void *arg);

/* Borrows loop, cfg and stats; copies consumer. 0 or -ENOMEM. */
int reader_new(reader_t **out, uv_loop_t *loop, const cfg_t *cfg, const char *consumer,
               stats_worker_t *stats, reader_entry_fn fn, void *arg);
/* Starts reading `name` as part of `pool`. 0 (also when already read), -ENOMEM. */
int reader_add(reader_t *r, uint32_t pool, const char *name, size_t len);
/* Stops reading `name`. Entries already read are still delivered and acknowledged. */
void reader_remove(reader_t *r, const char *name, size_t len);
/* Stops reading every stream of `pool`. */
void reader_remove_pool(reader_t *r, uint32_t pool);
size_t reader_streams(const reader_t *r);
/* True when every lane's connection is up. */
bool reader_connected(const reader_t *r);
/*
 * Drain: no new reads; reads in flight finish (at most READ_BLOCK_MS), their entries are
 * delivered and acknowledged, the connections close, then done(arg) runs and the reader is freed.
 */
void reader_stop(reader_t *r, void (*done)(void *arg), void *arg);

#endif
