/*
 * redis_topology: where a process's Redis is, one per process (create it after fork): a single
 * server (REDIS_HOST/REDIS_PORT or REDIS_URL), a Sentinel-managed primary (REDIS_SENTINELS +
 * REDIS_SENTINEL_NAME), or a Redis Cluster (REDIS_CLUSTER_NODES). It owns the TLS context, the
 * connection options every data connection starts from (AUTH, SELECT, timeouts), and the one
 * watcher of its mode (redis_sentinel or redis_cluster), so that a process asks the sentinels
 * and refreshes the slot map once, for all of its clients. Clients (redis_client) listen for
 * changes; the topology never calls into them otherwise, never sends a data command, and never
 * logs a password.
 */
#ifndef STREAMIO_COMMON_REDIS_TOPOLOGY_H
#define STREAMIO_COMMON_REDIS_TOPOLOGY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "common/buf.h"
#include "common/config.h"
#include "common/redis/redis_conn.h"
#include "common/redis/redis_reply.h"
#include "common/redis/redis_slotmap.h"
#include "common/redis/redis_tls.h"
#include "common/redis_url.h"

typedef struct redis_topology redis_topology_t;

typedef enum redis_mode {
    REDIS_MODE_SINGLE = 0, /* one server */
    REDIS_MODE_SENTINEL,
    REDIS_MODE_CLUSTER,
} redis_mode_t;

typedef struct redis_topology_opts {
    redis_mode_t mode;
    redis_addr_t addr;         /* SINGLE */
    const redis_addr_t *nodes; /* SENTINEL: the sentinels; CLUSTER: the seeds; copied */
    size_t nnodes;
    const char *sentinel_name;     /* SENTINEL; copied */
    const char *sentinel_password; /* SENTINEL: AUTH to the sentinels, NULL or "" = none */
    bool tls;
    redis_tls_opts_t tls_opts;
    redis_conn_opts_t conn; /* base of every data connection: AUTH, db, timeouts, server
                               name; tls and require_primary are set by the topology */
    uint32_t refresh_ms;    /* CLUSTER map refresh, SENTINEL check; 0 = the watcher's default */
} redis_topology_opts_t;

/* Fills *o from the configuration (borrowing its strings: cfg must outlive the topology). */
void redis_topology_opts_from_cfg(redis_topology_opts_t *o, const cfg_t *cfg);

/*
 * Builds the topology and starts its watcher. Borrows loop; copies what opts points to. 0, or
 * -EINVAL with one line in err naming the variable (a TLS file that cannot be loaded). Aborts
 * on out-of-memory.
 */
int redis_topology_new(redis_topology_t **out, uv_loop_t *loop, const redis_topology_opts_t *o,
                       buf_t *err);
/* Closes the watcher; done(arg) once everything is released (never from this call). Every
 * client of the topology must be closed first. */
void redis_topology_close(redis_topology_t *t, void (*done)(void *arg), void *arg);

redis_mode_t redis_topology_mode(const redis_topology_t *t);
uv_loop_t *redis_topology_loop(const redis_topology_t *t);
/* The options a data connection named `name` starts from (tls and require_primary set). */
void redis_topology_conn_opts(const redis_topology_t *t, const char *name, redis_conn_opts_t *o);
/* SINGLE: the server; SENTINEL: the current primary (NULL until known); CLUSTER: NULL. */
const redis_addr_t *redis_topology_primary(const redis_topology_t *t);
/* CLUSTER: the slot map (NULL until known); others: NULL. Borrowed until the next change. */
const redis_slotmap_t *redis_topology_slotmap(const redis_topology_t *t);

/* Something looks stale (a lost connection, CLUSTERDOWN, a replica where the primary was): the
 * watcher checks soon. SINGLE: no-op. */
void redis_topology_refresh(redis_topology_t *t);
/* CLUSTER: a MOVED answer from from_host; patches the map and refreshes. */
void redis_topology_moved(redis_topology_t *t, const redis_redirect_t *r, const char *from_host);
/* Failovers (SENTINEL) or slot map changes (CLUSTER) followed so far. */
uint64_t redis_topology_changes(const redis_topology_t *t);

/* Listener of changes (the primary moved, the slot map changed); runs from the loop, never from
 * the call that caused it. A listener may close its client from the callback. */
typedef void (*redis_topology_fn)(void *arg);
void redis_topology_listen(redis_topology_t *t, redis_topology_fn fn, void *arg);
void redis_topology_unlisten(redis_topology_t *t, redis_topology_fn fn, void *arg);

#endif
