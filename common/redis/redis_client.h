/*
 * redis_client: what master and worker code talks to Redis through, whatever the topology: a
 * named set of connections (one command connection per primary, one pub/sub connection per
 * primary that has subscriptions) on a redis_topology, that routes each command and keeps each
 * subscription where it belongs.
 *  - SINGLE and SENTINEL: one primary. Commands go straight to its connection; after a Sentinel
 *    failover every connection moves to the new primary (and checks ROLE before being used).
 *  - CLUSTER: commands are routed by the CRC16 slot of the key the caller names (hash tags
 *    honoured); MOVED updates the slot map and resends, ASK resends once after ASKING,
 *    TRYAGAIN / CLUSTERDOWN / LOADING / MASTERDOWN are retried with backoff for up to 10 s
 *    (failovers and reshards are followed without a restart). A connection lost with commands
 *    in flight makes their callbacks run with NULL (they may have run: never replayed).
 *  - Subscriptions: wanted channels are re-subscribed after every reconnect or move; shard
 *    channels (SSUBSCRIBE) live on the owner of their slot and follow it when it moves (Redis'
 *    sunsubscribe push or a MOVED answer); classic channels and patterns live on one primary
 *    (PUBLISH reaches every node of a cluster); `_masters` subscriptions (key events) live on
 *    every primary, including ones that appear later.
 * It never interprets user replies, never logs a message's content, and allocates one copy of
 * the formatted command per CLUSTER command (kept for redirects); SINGLE/SENTINEL commands
 * allocate nothing here.
 *
 * Loop thread only. No callback runs from inside the call that caused it, and a command
 * refused with an error code never gets its reply callback (libuv's rule).
 */
#ifndef STREAMIO_COMMON_REDIS_CLIENT_H
#define STREAMIO_COMMON_REDIS_CLIENT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/redis/redis_conn.h"
#include "common/redis/redis_reply.h"
#include "common/redis/redis_topology.h"

typedef struct redis_client redis_client_t;
/* A primary (CLUSTER: a master; others: the one server). Valid until the master callback says it
 * left (or the client is closed). */
typedef struct redis_node redis_node_t;

typedef struct redis_client_cbs {
    /* Every route usable (all primaries' connections up, the slot map complete) or not. */
    void (*state)(redis_client_t *c, bool up, void *arg);
    /* A primary joined (up) or left the set of primaries: SCAN it, or stop. SINGLE/SENTINEL:
     * one primary, announced once; a failover keeps it (same data, new address). */
    void (*master)(redis_client_t *c, redis_node_t *n, bool up, void *arg);
    /* A node's command connection came up (after a reconnect too: redo per-connection state,
     * e.g. CLIENT ID) or went down. */
    void (*node_event)(redis_client_t *c, redis_node_t *n, redis_conn_event_t ev, void *arg);
    /* A pub/sub message; borrowed for the call. */
    void (*message)(redis_client_t *c, const redis_push_t *m, void *arg);
    /* A subscription was confirmed by the node it lives on (again after every reconnect or
     * move; `_masters` ones once per primary): its messages arrive from now on. */
    void (*subscribed)(redis_client_t *c, redis_sub_kind_t kind, const char *ch, size_t len,
                       void *arg);
    /* A subscription is no longer in effect where it was confirmed: the pub/sub connection that
     * held it was lost, its primary left, the server ended it, or it moves with its slot. Still
     * wanted: `subscribed` says when it is confirmed again. Only the pub/sub connection counts:
     * a subscription outlives the loss of the command connection (the `state` callback's down).
     * Runs while the client walks its subscriptions: it must not subscribe or unsubscribe. */
    void (*unconfirmed)(redis_client_t *c, redis_sub_kind_t kind, const char *ch, size_t len,
                        void *arg);
} redis_client_cbs_t;

/*
 * A client named `name` (log label and CLIENT SETNAME; copied). Borrows t (which must outlive
 * it) and cbs (may be NULL). Connects at once. Aborts on out-of-memory.
 */
redis_client_t *redis_client_new(redis_topology_t *t, const char *name,
                                 const redis_client_cbs_t *cbs, void *arg);

/*
 * Sends one command (binary-safe argv; lens NULL = strlen) to the primary serving `key` (any
 * primary when key is NULL; the key is only used for routing). cb may be NULL. 0, or
 * -ENOTCONN when that primary is not reachable now (cb not called), -ENOBUFS past the
 * connection's bounds, -ESHUTDOWN after close.
 */
int redis_client_command(redis_client_t *c, const char *key, size_t key_len, redis_reply_fn cb,
                         void *arg, int argc, const char **argv, const size_t *lens);
/* The same for a command that may block block_ms (XREADGROUP BLOCK): deadlines grow by it. */
int redis_client_command_blocking(redis_client_t *c, const char *key, size_t key_len,
                                  uint32_t block_ms, redis_reply_fn cb, void *arg, int argc,
                                  const char **argv, const size_t *lens);
/* The same to one given primary (SCAN, CONFIG), redirects not followed. */
int redis_client_command_node(redis_client_t *c, redis_node_t *n, redis_reply_fn cb, void *arg,
                              int argc, const char **argv, const size_t *lens);
/*
 * Ends a blocking command of `blocked` on the primary serving key (CLIENT UNBLOCK through the
 * other client `via`, on the same node). 0, -ENOTCONN (a connection is down or its CLIENT ID is
 * unknown), -ENOBUFS.
 */
int redis_client_unblock(redis_client_t *via, redis_client_t *blocked, const char *key,
                         size_t key_len);

/* Wants a subscription of the given kind (routing above); kept across reconnects and moves.
 * 0, -EINVAL (bad kind), -ESHUTDOWN. */
int redis_client_subscribe(redis_client_t *c, redis_sub_kind_t kind, const char *ch, size_t len);
int redis_client_unsubscribe(redis_client_t *c, redis_sub_kind_t kind, const char *ch, size_t len);
/* The same on every primary (key-event channels, which are local to each node). */
int redis_client_subscribe_masters(redis_client_t *c, redis_sub_kind_t kind, const char *ch,
                                   size_t len);
int redis_client_unsubscribe_masters(redis_client_t *c, redis_sub_kind_t kind, const char *ch,
                                     size_t len);

bool redis_client_up(const redis_client_t *c);
/* Stops or resumes reading every subscription connection (redis_conn_hold_reads): a busy
 * subscription's messages then come in one read per resume instead of a wake-up each. */
void redis_client_hold_messages(redis_client_t *c, bool hold);
/* Calls fn for every current primary. fn must not close the client. */
void redis_client_each_master(redis_client_t *c, void (*fn)(redis_node_t *n, void *arg), void *arg);
/* Counts the changes of c's primaries: one announced or gone, or moved to another address (a
 * Sentinel failover), each at the moment c's commands start going there. Unchanged: the walk
 * of redis_client_each_master would give the same addresses. */
uint64_t redis_client_primaries_changed(const redis_client_t *c);
/* The primary serving key now (NULL: unknown). */
redis_node_t *redis_client_node_for_key(redis_client_t *c, const char *key, size_t key_len);
/* "host:port" (borrowed; changes after a Sentinel failover). */
const char *redis_node_addr(const redis_node_t *n);
bool redis_node_up(const redis_node_t *n);

typedef struct redis_client_stats {
    uint64_t moved;     /* MOVED answers followed */
    uint64_t asked;     /* ASK answers followed */
    uint64_t retried;   /* TRYAGAIN / CLUSTERDOWN / LOADING / MASTERDOWN retries */
    uint64_t expired;   /* commands given up (deadline) with a NULL reply */
    uint64_t sub_moves; /* subscriptions moved to another node */
} redis_client_stats_t;
void redis_client_stats(const redis_client_t *c, redis_client_stats_t *out);
/* Counts each later time a connection of this client comes up into *counter (borrowed). */
void redis_client_count_reconnects(redis_client_t *c, _Atomic uint64_t *counter);

/*
 * Closes every connection (replies to commands already sent are awaited, bounded by the command
 * timeout; waiting redirects get NULL); done(arg) runs once everything is released, never from
 * this call. No state, master, node_event or message callback after this call.
 */
void redis_client_close(redis_client_t *c, void (*done)(void *arg), void *arg);

#endif
