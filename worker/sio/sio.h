/*
 * sio: the Socket.IO v5 side of every Engine.IO session of this worker (protocol.md §2): the
 * namespaces served (SOCKETIO_NAMESPACES), CONNECT with authentication (AUTH_JWT_*: the token,
 * its rooms claim, its expiry), DISCONNECT, the per-socket rate limits and connection admission
 * (limits), binary attachments collected before their packet is handled, client ACKs, and the
 * registry of rooms (rooms) with the walk that finds the sockets a target names (rooms, socket
 * ids, except, namespaces). It is the eio_handlers_t of the /socket.io/ endpoint.
 *
 * What happens with events, rooms and connections beyond the protocol is told to observers
 * (sio_observer_t), registered by the layers above: the seed's events (seed_events), the
 * conformance suite's handlers, the cluster adapter (rooms created and deleted, client acks)
 * and connection state recovery (connect, joins, a lost transport). An observer keeps its own
 * per-socket state in the socket's slot for it (sio_socket_ext). One loop only.
 */
#ifndef STREAMIO_WORKER_SIO_SIO_H
#define STREAMIO_WORKER_SIO_SIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "common/auth.h"
#include "common/buf.h"
#include "common/config.h"
#include "common/json.h"
#include "common/proto/adapter_msg.h"
#include "common/proto/sio_packet.h"
#include "shm/stats.h"
#include "worker/eio/eio_msg.h"
#include "worker/eio/eio_session.h"
#include "worker/sio/limits.h"
#include "worker/sio/rooms.h"

#define SIO_ID_LEN 20
#define SIO_NSP_MAX 32      /* namespaces served, "/" included (one bit each per socket) */
#define SIO_OBSERVERS_MAX 6 /* observers */
#define SIO_SLOTS_MAX 3     /* observers keeping per-socket state (those with a `freed` hook) */

typedef struct sio sio_t;
typedef struct sio_socket sio_socket_t; /* one Engine.IO session's Socket.IO side */

/* An EVENT (or BINARY_EVENT, attachments collected) for a connected namespace. */
typedef struct sio_event {
    unsigned nsp;            /* index in the namespaces served: 0 is "/" */
    const sio_packet_t *pk;  /* the packet (pk->has_id: an ack is asked) */
    const json_span_t *args; /* [0] the event name (a JSON string), then up to 2 arguments */
    size_t nargs;
    const char *rest; /* the JSON after the event name: ",a,b]" or "]" */
    size_t rest_len;
    const char *atts; /* the attachments: u32 length (host order) + bytes each; empty unless an
                         observer has reads_attachments (natt still counts them) */
    size_t atts_len;
    unsigned natt;
} sio_event_t;

/* What sio tells the layers above; every member is optional. */
typedef struct sio_observer {
    void *arg;
    /* A room got its first member / lost its last one. */
    void (*room_created)(void *arg, const char *room, size_t len);
    void (*room_deleted)(void *arg, const char *room, size_t len);
    /* Socket s's ACK to the server (ids this server never asked are the observer's to ignore). */
    void (*client_ack)(void *arg, sio_socket_t *s, uint64_t id, const char *json, size_t len);
    /* A namespace connected: its CONNECT reply was sent. */
    void (*connected)(void *arg, sio_socket_t *s, unsigned nsp);
    /* An event from the client. */
    void (*event)(void *arg, sio_socket_t *s, const sio_event_t *ev);
    /* event reads the attachments' bytes (sio_event_t.atts): only then are they kept while a
     * binary packet is collected. */
    bool reads_attachments;
    /*
     * An authorised CONNECT of the main namespace: 1 lets the next observer (then sio) go on; 0
     * means this observer answers later (sio_connect_resume, sio_connect_refuse or
     * sio_connect_reply; another CONNECT meanwhile closes the session); negative closes the
     * session. Observers run in the order they were added.
     */
    int (*connecting)(void *arg, sio_socket_t *s, const sio_packet_t *pk);
    /* The main namespace's CONNECT reply is being built: members to add after "sid" (",..."). */
    void (*reply)(void *arg, sio_socket_t *s, buf_t *json);
    /* s joined a room (mark: its membership's bookkeeping, the observer's). */
    void (*joined)(void *arg, sio_socket_t *s, const char *room, size_t len, rooms_mark_t *m);
    /* s left a room (leave-room, a disconnect, the end of its session: every room, one by one). */
    void (*left)(void *arg, sio_socket_t *s, const char *room, size_t len);
    /* The session ended while the main namespace was connected (rooms still joined). */
    void (*lost)(void *arg, sio_socket_t *s);
    /* s is about to be freed: release the observer's slot. An observer with this hook gets a
     * per-socket slot (sio_socket_ext); the others get none. */
    void (*freed)(void *arg, sio_socket_t *s);
} sio_observer_t;

/* Which sockets a broadcast or a cluster request is for: connected to namespace nsp, in any of
 * rooms (every such socket when nrooms is 0) and in none of except. The id of a socket connected
 * here names that socket alone, never the members of a room a client joined under that name (a
 * socket's own id is its room, as in Node; joining it is a no-op). Namespaces other than "/"
 * have no rooms here. */
typedef struct sio_target {
    const adapter_str_t *rooms;
    size_t nrooms;
    const adapter_str_t *except;
    size_t nexcept;
    unsigned nsp;
} sio_target_t;

/*
 * Creates the Socket.IO side of the worker's sessions from cfg (borrowed): namespaces (plus
 * "/custom" when extra_custom_nsp: the conformance suite's), limits, authentication. stats
 * borrowed. 0, -EINVAL (logged: the key file), or the error of getrandom or of libuv setting up
 * the token-expiry timers.
 */
int sio_new(sio_t **out, uv_loop_t *loop, const cfg_t *cfg, bool extra_custom_nsp,
            stats_worker_t *stats);
/* The handlers of the /socket.io/ endpoint (valid until sio_free). */
const eio_handlers_t *sio_handlers(sio_t *sio);
/* Adds an observer (copied); returns its slot for sio_socket_ext (with a `freed` hook), 0 (without
 * one), or -ENOSPC. */
int sio_observe(sio_t *sio, const sio_observer_t *o);
/* The namespaces served, "/" first (borrowed, valid until sio_free). */
const adapter_str_t *sio_namespaces(const sio_t *sio, size_t *n);
/* Some session is open at the Engine.IO level but in no namespace yet: its CONNECT is on its way
 * (or waits for an observer's reply). A session whose main CONNECT was refused is not counted:
 * it may never send another. */
bool sio_connecting(const sio_t *sio);
/* After every session ended and every hold was released. NULL: no-op. */
void sio_free(sio_t *sio);

/* ---- sockets ---- */

/* The main namespace's Socket.IO id ("" before its CONNECT). */
const char *sio_socket_id(const sio_socket_t *s);
/* Connected to namespace nsp and its session not over. */
bool sio_socket_connected(const sio_socket_t *s, unsigned nsp);
bool sio_socket_closed(const sio_socket_t *s);
/* The CONNECT payload of a connected namespace ("{}" when absent), or NULL. */
const char *sio_socket_auth(const sio_socket_t *s, unsigned nsp);
/* The token's grant (its sub and publish claim), or NULL without authentication. */
const auth_grant_t *sio_socket_grant(const sio_socket_t *s);
/* The memberships, for observers walking them with their marks (rooms_sock_foreach_mark). */
const rooms_sock_t *sio_socket_rooms(const sio_socket_t *s);
void *sio_socket_ext(const sio_socket_t *s, int slot);
void sio_socket_set_ext(sio_socket_t *s, int slot, void *p);
/* Keeps s in memory across an asynchronous operation (its session may end meanwhile). */
void sio_socket_hold(sio_socket_t *s);
void sio_socket_release(sio_socket_t *s);

/* Output (nothing once the session ended). A complete Engine.IO text packet. */
void sio_socket_send_text(sio_socket_t *s, const char *p, size_t len);
/* A shared message (see eio_session_send_msg); true when queued. */
bool sio_socket_send_msg(sio_socket_t *s, eio_msg_t *m);
size_t sio_socket_backlog(const sio_socket_t *s);
/* EVENT `event` with args_json (comma-separated, no brackets) on namespace nsp. */
void sio_socket_emit(sio_socket_t *s, unsigned nsp, const char *event, const char *args_json,
                     size_t len);
/* The `error` event {message}: how the seed's server reports a refusal. */
void sio_socket_emit_error(sio_socket_t *s, const char *message);
/* ACK `id` on namespace nsp with json (a JSON array). */
void sio_socket_ack(sio_socket_t *s, unsigned nsp, uint64_t id, const char *json, size_t len);
/* Ends the session (protocol error, abuse). */
void sio_socket_close(sio_socket_t *s);

/* Rooms. A join tells the observers (room_created, joined). 0 joined, 1 already a member. */
int sio_socket_join(sio_socket_t *s, const char *room, size_t len);
/* 0 left (room_deleted when it emptied), -ENOENT when not a member. */
int sio_socket_leave(sio_socket_t *s, const char *room, size_t len);
/* The token's rooms claim allows room (true without authentication). */
bool sio_socket_room_allowed(const sio_socket_t *s, const char *room, size_t len);
/* Joining room would pass MAX_ROOMS_PER_SOCKET (a room already joined never does). */
bool sio_socket_rooms_full(const sio_socket_t *s, const char *room, size_t len);
/* One join-room against the socket's joins bucket (counted when refused). */
limits_verdict_t sio_socket_rate_join(sio_socket_t *s);

/* The cluster: Socket.IO DISCONNECT of the main namespace; with close, the session ends too. */
void sio_socket_disconnect(sio_socket_t *s, bool close);
/* Appends the socket as fetchSockets describes it: {"id","handshake","rooms","data"}. */
void sio_socket_describe(const sio_socket_t *s, buf_t *out);

/* Recovery: completes a deferred main CONNECT (sid: the id to reply with, NULL: a new one).
 * 0, or -EIO when no random id can be drawn. */
int sio_connect_reply(sio_socket_t *s, unsigned nsp, const char *sid);
/* An observer that deferred the main CONNECT lets it go on: the next observers, then the
 * reply. Nothing when the session ended meanwhile; a failure closes the session. */
void sio_connect_resume(sio_socket_t *s);
/* An observer that deferred the main CONNECT refuses it: CONNECT_ERROR {message}, as a Node
 * middleware refusal (the session stays open and may CONNECT again). */
void sio_connect_refuse(sio_socket_t *s, const char *message);
/* Recovery: s takes the id sid and counts as connected to "/" (broadcasts reach it) before its
 * CONNECT reply, which follows with sio_connect_reply(s, 0, sid). */
void sio_socket_restore(sio_socket_t *s, const char *sid);

/* ---- the sockets a target names ---- */

/* Calls fn once per socket t names; mark is its membership of the room that named it (NULL when
 * named otherwise). fn must not join, leave or close anything (see sio_each_fixed). */
void sio_each(sio_t *sio, const sio_target_t *t,
              void (*fn)(sio_socket_t *s, rooms_mark_t *mark, void *arg), void *arg);
/* As sio_each over a set fixed first, so fn may join, leave or close the socket it is given. */
void sio_each_fixed(sio_t *sio, const sio_target_t *t, void (*fn)(sio_socket_t *s, void *arg),
                    void *arg);
/* Calls fn once per local room, the connected sockets' ids included (Node lists them too). */
void sio_each_room(sio_t *sio, void (*fn)(const char *room, size_t len, void *arg), void *arg);
/* Whether a local socket is in room (or has that id). */
bool sio_has_room(const sio_t *sio, const char *room, size_t len);
/* The connected socket whose id is id, or NULL: one hash lookup (an index by id), never a scan. */
sio_socket_t *sio_socket_by_id(const sio_t *sio, const char *id, size_t len);
/* Whether p is a socket id or pid as socket.io and this server make them (SIO_ID_LEN characters
 * of base64url): safe to put in a CONNECT reply unescaped. */
bool sio_id_ok(const char *p, size_t len);

#endif
