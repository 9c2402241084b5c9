/*
 * adapter: makes this worker one member of a cluster of socket.io servers that share rooms
 * through Redis: the other workers of this server, other streamio servers, Node servers using
 * @socket.io/redis-adapter 8.x (classic or sharded) and the @socket.io/redis-emitter 5.x.
 *
 * Classic mode (docs/protocol.md §4): broadcasts are msgpack [uid, packet, opts] PUBLISHed on
 * `<prefix>#/#<room>#` and received through `PSUBSCRIBE <prefix>#/#*`; requests arrive on
 * `<prefix>-request#/#` (SUBSCRIBE) and are answered on `<prefix>-response#/#`. Sharded mode (§5):
 * ClusterAdapter JSON messages, SSUBSCRIBE to `<prefix>#/#`, to `<prefix>#/#<uid>#` and, dynamic
 * subscription, to `<prefix>#/#<room>#` for every local room whose name is not 20 characters
 * long; responses are SPUBLISHed on the requester's uid channel. Private mode (adapter off, several
 * workers): classic broadcasts on a per-server prefix, no requests.
 *
 * The adapter owns its two Redis connections (pub/sub, and one for responses), the requests'
 * bookkeeping (broadcasts waiting for client acks) and the wire formats. It never touches a socket
 * itself: every socket-level operation goes through the adapter_host_t the worker provides, so the
 * session layer can change underneath. Rooms, requests and acks live in the main namespace "/";
 * broadcasts for the other namespaces the host serves travel on their own channels
 * (`<prefix>#/admin#...`, subscribed like the main ones) and reach all sockets of that namespace
 * (there are no rooms there); sharded requests arriving on such a channel are answered empty so
 * no Node caller waits, and classic ones are not subscribed to (so not counted). Requests of
 * types it cannot serve (server-side events: streamio has no server-side handlers) are still
 * answered so that no Node caller waits for its timeout.
 */
#ifndef STREAMIO_WORKER_ADAPTER_H
#define STREAMIO_WORKER_ADAPTER_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "common/buf.h"
#include "common/config.h"
#include "common/refbuf.h"
#include "shm/stats.h"
#include "worker/adapter_msg.h"
#include "worker/rds.h"

typedef struct adapter adapter_t;

/* Which sockets an operation is for: in any of rooms (every socket when nrooms is 0) and in none
 * of except. Room names equal to a socket's id name that socket. */
typedef struct adapter_target {
    const adapter_str_t *rooms;
    size_t nrooms;
    const adapter_str_t *except;
    size_t nexcept;
    bool skip_busy; /* volatile: skip sockets whose transport has a backlog of unsent bytes */
    unsigned nsp;   /* index in adapter_host_t.nsps: 0 is "/"; other namespaces have no rooms
                     * here, so only nrooms == 0 (all their sockets) reaches anyone there */
} adapter_target_t;

/*
 * What the adapter needs from the sockets of this worker (main namespace, connected sockets only).
 * `sock` values are opaque to the adapter and only valid during the call that produced them.
 */
typedef struct adapter_host {
    void *ctx;
    /* Queues `frame` (a pre-framed WebSocket message; the host takes its own references) once to
     * every target socket. Returns how many sockets it was queued to. */
    size_t (*broadcast)(void *ctx, const adapter_target_t *t, refbuf_t *frame);
    /* Calls fn(sock, arg) once per target socket. The set is fixed before the first call, so fn
     * may join, leave or disconnect the socket it is given. */
    void (*each)(void *ctx, const adapter_target_t *t, void (*fn)(void *sock, void *arg),
                 void *arg);
    /* The socket's 20-character Socket.IO id (NUL-terminated, owned by the host). */
    const char *(*id)(void *ctx, void *sock);
    /* Appends the socket as fetchSockets describes it: JSON {"id","handshake","rooms","data"}.
     * 0 or -ENOMEM. */
    int (*describe)(void *ctx, void *sock, buf_t *out);
    /* Room membership changes made on behalf of the cluster. join: 0 or -ENOMEM. */
    int (*join)(void *ctx, void *sock, const char *room, size_t len);
    void (*leave)(void *ctx, void *sock, const char *room, size_t len);
    /* Socket.IO disconnect of the namespace; with `close`, the transport is closed too. */
    void (*disconnect)(void *ctx, void *sock, bool close);
    /* Calls fn once per local room, socket ids included (Node lists them too). */
    void (*rooms)(void *ctx, void (*fn)(const char *room, size_t len, void *arg), void *arg);
    /* Whether a local socket is in `room` (or has that id): the cheap channel filter. */
    bool (*has_room)(void *ctx, const char *room, size_t len);
    /* The namespaces served, "/" first (borrowed for the adapter's lifetime; none: "/" only):
     * broadcasts for each are shared on its channels; requests are served for "/" only. */
    const adapter_str_t *nsps;
    size_t nnsp;
} adapter_host_t;

typedef enum adapter_mode {
    ADAPTER_MODE_PRIVATE, /* classic broadcasts between this server's workers only */
    ADAPTER_MODE_CLASSIC, /* PUBLISH/PSUBSCRIBE + request/response channels */
    ADAPTER_MODE_SHARDED  /* SPUBLISH/SSUBSCRIBE, dynamic per-room subscriptions */
} adapter_mode_t;

/*
 * Connects and subscribes at once (and again after every reconnect, rooms included). Borrows
 * loop, cfg, stats; copies prefix and *host. 0 or -ENOMEM.
 */
int adapter_new(adapter_t **out, uv_loop_t *loop, const cfg_t *cfg, adapter_mode_t mode,
                const char *prefix, const adapter_host_t *host, stats_worker_t *stats);
/*
 * Publishes an EVENT with `data_json` (the JSON array [event, ...args]) to one room, on `conn`
 * so it is ordered before the caller's later commands on that connection (classic: PUBLISH of
 * the msgpack message; sharded: SPUBLISH of the JSON message on the room's channel, or the main
 * channel for a 20-character room). 0, -ENOTCONN, -EINVAL (data not convertible), -ENOMEM.
 */
int adapter_publish(adapter_t *a, rds_t *conn, const char *room, size_t room_len,
                    const char *data_json, size_t data_len);
/*
 * Hooks for the host. A local room was created (first member) or deleted (last member left):
 * sharded mode SSUBSCRIBEs / SUNSUBSCRIBEs its channel; other modes ignore it. Never fails
 * (a subscription that cannot be sent now is restored on the next reconnect).
 */
void adapter_room_created(adapter_t *a, const char *room, size_t len);
void adapter_room_deleted(adapter_t *a, const char *room, size_t len);
typedef enum adapter_ack {
    ADAPTER_ACK_HOST,      /* not a cluster broadcast's id: the host's own */
    ADAPTER_ACK_FORWARDED, /* sent on to the broadcast's requester */
    ADAPTER_ACK_DROPPED    /* a broadcast's id, but that socket was not sent it, already
                            * answered, or answered too late */
} adapter_ack_t;
/*
 * The socket whose Socket.IO id is `sock_id` (NUL-terminated, borrowed) answered ack `ack_id`
 * with the JSON array `args_json` (borrowed). Each socket a broadcast with acks reached may
 * answer it once; only that is forwarded to the requester.
 */
adapter_ack_t adapter_client_ack(adapter_t *a, const char *sock_id, uint64_t ack_id,
                                 const char *args_json, size_t args_len);
/* Ack ids the adapter hands out are >= this, so a host's own ids below it never collide. */
#define ADAPTER_ACK_ID_BASE 1000000000ull
/*
 * Handles one pub/sub message as if it had been received on `chan` ("pmessage"/"message" in
 * classic and private modes, "smessage" in sharded mode). Exposed for tests; never fails: a
 * malformed message is dropped with a log line.
 */
void adapter_receive(adapter_t *a, const char *chan, size_t chan_len, const uint8_t *msg,
                     size_t msg_len);
/*
 * Broadcasts whose uid is_sibling(uid, len, arg) accepts are dropped on arrival: the other workers
 * of this server hand their stream entries over local IPC (see siblings.h) and still PUBLISH them
 * for other servers, so the pub/sub copy would be a duplicate. Requests are not filtered. NULL
 * (the default): only this adapter's own uid is dropped.
 */
typedef bool (*adapter_uid_fn)(const char *uid, size_t len, void *arg);
void adapter_set_sibling_filter(adapter_t *a, adapter_uid_fn is_sibling, void *arg);
/* Both connections up and subscribed (the /health "redisConnected" of this worker). */
bool adapter_connected(const adapter_t *a);
/* The random uid this adapter publishes with (16 characters, NUL-terminated). */
const char *adapter_uid(const adapter_t *a);
/* Unsubscribes and closes; done(arg) runs once closed and the adapter is freed after it. */
void adapter_close(adapter_t *a, void (*done)(void *arg), void *arg);

#endif
