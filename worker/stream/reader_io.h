/*
 * reader_io: the reader's production seams (see reader.h). Redis goes through the process's
 * Redis layer (common/redis/redis_client.h): each reader connection is one redis_client on the
 * worker's topology, so commands are routed by the stream they name (Cluster), follow a Sentinel
 * failover and speak TLS/AUTH/SELECT as configured; a blocking read is cut short with CLIENT
 * UNBLOCK through another client (redis_client_unblock), and the key-event subscription lives
 * on every primary. Time comes from the libuv loop (uv_now, uv_hrtime, uv_timer_t) and
 * CLOCK_REALTIME. Loop thread only.
 */
#ifndef STREAMIO_WORKER_STREAM_READER_IO_H
#define STREAMIO_WORKER_STREAM_READER_IO_H

#include "common/config.h"
#include "common/redis/redis_topology.h"
#include "shm/stats.h"
#include "worker/stream/reader.h"

typedef struct reader_io reader_io_t;

/* Borrows topo (which must outlive it) and stats (every connection's reconnects are counted in
 * stats->redis_reconnects). Never NULL. */
reader_io_t *reader_io_new(redis_topology_t *topo, stats_worker_t *stats);
/* The two tables for reader_new; valid while e lives. */
const reader_redis_ops_t *reader_io_redis(const reader_io_t *e);
const reader_clock_ops_t *reader_io_clock(const reader_io_t *e);
/* Once the reader that used it is stopped (from its done callback, too). NULL is a no-op. */
void reader_io_free(reader_io_t *e);

#endif
