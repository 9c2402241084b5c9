/*
 * discovery: which streams exist, and which worker reads each. It runs SCAN passes over the
 * keyspace (master/discovery/scan), one step per reply so the master's loop never waits on Redis;
 * a pass starts DISCOVERY_INTERVAL after the last one, or four times the last pass's duration
 * when that is longer, so SCAN keeps Redis busy at most a fifth of the time. PRIORITY_STREAMS are
 * looked up first, so they get the first (dedicated) pools. With STREAM_KEYSPACE_EVENTS, key
 * events (master/discovery/keyevents) add and remove streams between passes. Streams are grouped
 * into pools (master/discovery/pools); each pool belongs to one worker number, and its streams
 * are sent to the process serving that worker (master/discovery/dispatch). A stream that a whole
 * pass no longer returns is gone. It publishes the streams, pools, SCAN passes and each worker's
 * pools in the shared stats.
 */
#ifndef STREAMIO_MASTER_DISCOVERY_DISCOVERY_H
#define STREAMIO_MASTER_DISCOVERY_DISCOVERY_H

#include <stdint.h>
#include <uv.h>

#include "common/config.h"
#include "common/redis/redis_client.h"
#include "shm/region.h"

typedef struct discovery discovery_t;

/*
 * For cfg's CLUSTER_WORKERS worker numbers, up to `capacity` after a reload. Borrows topo (its
 * loop; key events open a client on it), redis (the master's command client), cfg (its discovery
 * settings are kept for the discovery's life) and region (its global stats block is a
 * stats_global_t). The first pass starts at once. With an adapter shared with other servers
 * (SOCKETIO_REDIS_ADAPTER not false), only the streams this server holds
 * (master/discovery/ownership, as `server_id`) are sent to its workers.
 */
discovery_t *discovery_new(redis_topology_t *topo, redis_client_t *redis, const cfg_t *cfg,
                           shm_region_t *region, uint32_t capacity, const char *server_id);

/* The process in `block` serves `worker` from now on: it is sent every stream of its pools. */
void discovery_attach(discovery_t *d, uint32_t worker, uint32_t block);
/* `worker` has no serving process: nothing is sent to it until the next attach. */
void discovery_detach(discovery_t *d, uint32_t worker);
/* Sends the process serving `worker` every stream of its pools again. */
void discovery_resend(discovery_t *d, uint32_t worker);

/*
 * A reload: POOL_SIZE, MAX_POOLS (for streams found from now on) and PRIORITY_STREAMS from cfg
 * (borrowed until the next reload), and cfg's CLUSTER_WORKERS worker numbers; the discovery
 * settings (STREAM_PATTERN, SCAN_COUNT, DISCOVERY_INTERVAL, the Redis connections) stay those of
 * the start. Shrinking moves the removed workers' pools to the others, and the removed workers
 * are told to stop reading their streams first, so no stream is read twice. 0, or -EINVAL (a
 * zero limit) with nothing changed.
 */
int discovery_reload(discovery_t *d, const cfg_t *cfg);

/* Stops the passes and the key events (the master is stopping). */
void discovery_stop(discovery_t *d);
/* Stops, then frees; done(arg) runs once everything is released. */
void discovery_close(discovery_t *d, void (*done)(void *arg), void *arg);

#endif
