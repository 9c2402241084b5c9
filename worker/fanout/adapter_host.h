/*
 * adapter_host: what the cluster adapter (worker/cluster/adapter) may do to the sockets of this
 * worker, as a table of functions, and that table over sio and fanout. The adapter reaches
 * sockets only through it, so it never includes a socket's layer and its tests drive it with a
 * fake host (tests/unit/test_adapter.c). Rooms, requests and acks are the main namespace's;
 * broadcasts may name another namespace served (every socket of it: no rooms there).
 */
#ifndef STREAMIO_WORKER_FANOUT_ADAPTER_HOST_H
#define STREAMIO_WORKER_FANOUT_ADAPTER_HOST_H

#include <stdbool.h>
#include <stddef.h>

#include "common/buf.h"
#include "common/proto/adapter_msg.h"
#include "worker/fanout/fanout.h"
#include "worker/fanout/fanout_packet.h"
#include "worker/sio/sio.h"

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
    /* Queues pk once to every target socket (each takes its own reference to the message).
     * Returns how many sockets it was queued to. */
    size_t (*broadcast)(void *ctx, const adapter_target_t *t, const fanout_packet_t *pk);
    /* Calls fn(sock, arg) once per target socket. The set is fixed before the first call, so fn
     * may join, leave or disconnect the socket it is given. */
    void (*each)(void *ctx, const adapter_target_t *t, void (*fn)(void *sock, void *arg),
                 void *arg);
    /* The socket's 20-character Socket.IO id (NUL-terminated, owned by the host). */
    const char *(*id)(void *ctx, void *sock);
    /* Appends the socket as fetchSockets describes it: JSON {"id","handshake","rooms","data"}. */
    void (*describe)(void *ctx, void *sock, buf_t *out);
    /* Room membership changes made on behalf of the cluster. */
    void (*join)(void *ctx, void *sock, const char *room, size_t len);
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

/* The host over the fanout's sockets (f borrowed, as long as the adapter). */
void adapter_host_init(adapter_host_t *out, fanout_t *f);

#endif
