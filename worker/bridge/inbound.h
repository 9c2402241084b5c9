/*
 * inbound: client events into a Redis stream (SOCKETIO_INBOUND_STREAM), so a back end reads
 * them with XREADGROUP like any other producer's entries. An event the seed's server does not
 * handle, whose name matches SOCKETIO_INBOUND_EVENTS, is appended with
 *   XADD <stream> [MAXLEN ~ SOCKETIO_INBOUND_MAXLEN] * event <name> data <[args...] as JSON>
 *        sid <socket id> [user <JWT sub>] server <writer id> ts <ms> [nsp <namespace>]
 * (nsp only outside "/"). The token's `publish` claim, when present, must match the event's name
 * or the room the event names (its first argument when that is a string, or that argument's
 * string `roomId`). Binary attachments are refused ("Binary attachments are not supported"): a
 * stream field is a string, and carrying them base64 would hide a size the limits bound.
 *
 * The result comes back once Redis answered: the entry id, or the reason it was not added. A
 * refusal or a failure is counted by reason in the worker's stats with one sampled log line, so
 * an event sent without an ack is never lost silently. Events of one socket reach the stream in
 * the order they were sent (one connection per node, and the stream is one key). At most
 * INBOUND_MAX_INFLIGHT XADDs wait for Redis per worker; past that an event is refused ("Server
 * busy") rather than queued without bound. Redis only through the bridge_redis seam.
 */
#ifndef STREAMIO_WORKER_BRIDGE_INBOUND_H
#define STREAMIO_WORKER_BRIDGE_INBOUND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/auth.h"
#include "common/bridge/bridge_redis.h"
#include "common/config.h"
#include "common/json.h"
#include "shm/stats.h"

#define INBOUND_MAX_INFLIGHT 4096

#define INBOUND_ERR_NOT_ACCEPTED "Event not accepted"
#define INBOUND_ERR_NOT_ALLOWED "Event not allowed"
#define INBOUND_ERR_BINARY "Binary attachments are not supported"
#define INBOUND_ERR_BUSY "Server busy"
#define INBOUND_ERR_REDIS "Event not stored"

typedef struct inbound inbound_t;

/* One client event; everything borrowed for the call. */
typedef struct inbound_event {
    const char *name; /* decoded event name */
    size_t name_len;
    const char *args; /* the arguments after the name, as the packet has them: ",a,b]" or "]" */
    size_t args_len;
    const json_span_t *first;  /* the first argument, or NULL */
    unsigned natt;             /* binary attachments */
    const char *sid;           /* the socket's id */
    const char *user;          /* the token's sub, or NULL */
    const char *nsp;           /* the namespace ("/" or another) */
    const auth_grant_t *grant; /* NULL without authentication */
    uint64_t ts_ms;            /* when it arrived, ms since the epoch */
} inbound_event_t;

/* id: the entry id (borrowed for the call), or NULL with error one of the INBOUND_ERR_*. */
typedef void (*inbound_done_fn)(void *arg, const char *id, size_t id_len, const char *error);

/* NULL when SOCKETIO_INBOUND_STREAM is unset. Copies *redis; borrows cfg, server and stats. */
inbound_t *inbound_new(const bridge_redis_t *redis, const cfg_t *cfg, const char *server,
                       stats_worker_t *stats);
/* After the Redis client its table sends through was closed (every result ran). NULL: no-op. */
void inbound_free(inbound_t *in);

/*
 * Adds the event. 0: done(arg, …) runs once Redis answered (never from this call). Otherwise
 * -EACCES, -EINVAL or -EBUSY with *error set (refused now, counted; done never runs):
 * INBOUND_ERR_NOT_ACCEPTED when the name is outside SOCKETIO_INBOUND_EVENTS (the event is not
 * for the back end: ignore it, as the seed's server ignores events it has no handler for).
 */
int inbound_add(inbound_t *in, const inbound_event_t *ev, inbound_done_fn done, void *arg,
                const char **error);
/* XADDs waiting for Redis. */
size_t inbound_inflight(const inbound_t *in);

#endif
