/*
 * redis_cluster: a process's view of a Redis Cluster's slot map, kept current. It owns one
 * control connection (redis_conn) that asks CLUSTER SLOTS of any reachable node (the seeds of
 * REDIS_CLUSTER_NODES first, then every node it learnt), and refreshes the map at start, on
 * request (a MOVED, a lost connection, CLUSTERDOWN), and on a timer. MOVED answers patch the map
 * at once, ahead of the refresh that confirms them. At most one CLUSTER SLOTS is in flight; a
 * request meanwhile runs one more after it. It never routes a command (redis_client does) and
 * logs one line per outage of the whole control path.
 */
#ifndef STREAMIO_COMMON_REDIS_CLUSTER_H
#define STREAMIO_COMMON_REDIS_CLUSTER_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "common/redis/redis_conn.h"
#include "common/redis/redis_reply.h"
#include "common/redis/redis_slotmap.h"

typedef struct redis_cluster redis_cluster_t;

/* The map changed (a refresh that differs, or a MOVED patch). */
typedef void (*redis_cluster_fn)(void *arg);

/*
 * Starts with seeds[0..n) (copied, n >= 1), connecting with `opts` (copied like redis_conn's),
 * refreshing every refresh_ms (0 = 10000). Borrows loop. Aborts on out-of-memory.
 */
redis_cluster_t *redis_cluster_new(uv_loop_t *loop, const redis_addr_t *seeds, size_t n,
                                   const redis_conn_opts_t *opts, uint32_t refresh_ms,
                                   redis_cluster_fn changed, void *arg);
/* The current map, NULL before the first CLUSTER SLOTS answer. Borrowed until the next change. */
const redis_slotmap_t *redis_cluster_map(const redis_cluster_t *cl);
/* Asks for a fresh map soon. */
void redis_cluster_refresh(redis_cluster_t *cl);
/* A MOVED answer from `from`: the map is patched now (changed runs) and refreshed. */
void redis_cluster_moved(redis_cluster_t *cl, const redis_redirect_t *r, const char *from_host);
/* Map changes so far (refreshes that differed, MOVED patches). */
uint64_t redis_cluster_changes(const redis_cluster_t *cl);
/* done(arg) once released (never from this call); no callback after. */
void redis_cluster_close(redis_cluster_t *cl, void (*done)(void *arg), void *arg);

#endif
