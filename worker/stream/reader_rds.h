/*
 * reader_rds: the reader's production seams (see reader.h). Redis goes through rds connections
 * (common/redis/rds.h): every command connection asks CLIENT ID on each connect, before the
 * reader hears that it is up, so its blocking read can be cut short with CLIENT UNBLOCK sent on
 * another connection; the subscription connection sends SUBSCRIBE on each connect. Time comes
 * from the libuv loop (uv_now, uv_hrtime, uv_timer_t) and CLOCK_REALTIME. Thin and mechanical
 * on purpose, so the unified Redis layer can replace the Redis half by filling the same table;
 * keys are not used for routing here (rds speaks to one server). Loop thread only.
 */
#ifndef STREAMIO_WORKER_STREAM_READER_RDS_H
#define STREAMIO_WORKER_STREAM_READER_RDS_H

#include <uv.h>

#include "common/config.h"
#include "shm/stats.h"
#include "worker/stream/reader.h"

typedef struct reader_rds reader_rds_t;

/* Borrows loop, cfg and stats (every connection's reconnects are counted in
 * stats->redis_reconnects). Never NULL. */
reader_rds_t *reader_rds_new(uv_loop_t *loop, const cfg_t *cfg, stats_worker_t *stats);
/* The two tables for reader_new; valid while e lives. */
const reader_redis_ops_t *reader_rds_redis(const reader_rds_t *e);
const reader_clock_ops_t *reader_rds_clock(const reader_rds_t *e);
/* Once the reader that used it is stopped (from its done callback, too). NULL is a no-op. */
void reader_rds_free(reader_rds_t *e);

#endif
