/*
 * session: the Engine.IO v4 / Socket.IO v5 server side of every client of this worker. It routes
 * HTTP requests (the Engine.IO endpoint, /health, 404), runs Engine.IO sessions over WebSocket
 * and over HTTP long-polling (held GETs, batched POSTs, the probe/upgrade to WebSocket), hands
 * requests for another worker's sid to that worker (handoff), runs the server-driven heartbeat
 * (one timer queue per duration, not a timer per client), connects the configured namespaces
 * (SOCKETIO_NAMESPACES), collects binary attachments, and handles the seed's events on `/`:
 * `join-room` and `leave-room` with their optional acks, `error` for an invalid room id or
 * MAX_ROOMS_PER_SOCKET. STREAMIO_CONFORMANCE=1 adds the official suites' test handlers.
 * Broadcast frames are shared, never copied per WebSocket client (polling clients get the
 * payload appended to their pending response).
 */
#ifndef STREAMIO_WORKER_SESSION_H
#define STREAMIO_WORKER_SESSION_H

#include <stdint.h>
#include <uv.h>

#include "common/config.h"
#include "common/refbuf.h"
#include "shm/region.h"
#include "shm/stats.h"
#include "worker/adapter.h"
#include "worker/adapter_msg.h"
#include "worker/conn.h"
#include "worker/local_sock.h"
#include "worker/rooms.h"

typedef struct sessions sessions_t;

/* Borrows everything. The sessions own the conn context they create on `loop`. Serves cfg's
 * namespaces, transports and CORS origins (validated by config_load); reads STREAMIO_CONFORMANCE
 * and STREAMIO_DEBUG_PAGE from the environment. 0, -EINVAL (logged: the key file), -ENOMEM. */
int sessions_new(sessions_t **out, uv_loop_t *loop, const cfg_t *cfg, shm_region_t *region,
                 const local_sock_t *socks, uint32_t slot);
/* Accepts one pending connection from the listening stream. */
int sessions_accept(sessions_t *ss, uv_stream_t *server);
/*
 * Queues `frame` (a pre-framed WebSocket message, see ws_frame_new) to every connected socket
 * in any of `rooms` (every connected socket when nrooms is 0) and in none of `except`, once per
 * socket. Takes its own references to the frame. Returns how many sockets it was queued to.
 */
size_t sessions_broadcast(sessions_t *ss, const adapter_str_t *rooms, size_t nrooms,
                          const adapter_str_t *except, size_t nexcept, refbuf_t *frame);
/* True when at least one local socket is in `room` (the adapter's cheap channel filter). */
bool sessions_has_room(const sessions_t *ss, const char *room, size_t len);
/*
 * The adapter host over these sessions (main namespace, connected sockets): see adapter.h.
 * Borrows ss; valid until sessions_free.
 */
void sessions_adapter_host(sessions_t *ss, adapter_host_t *out);
/* Hooks the adapter in: room creations/deletions and client acks are reported to it. NULL (the
 * default) reports nothing. Borrows a; call again with NULL before the adapter is closed. */
void sessions_set_adapter(sessions_t *ss, adapter_t *a);
/* Shutdown: ends every session (WebSocket close 1001, held polling GETs answered `1`) and
 * refuses new ones; done(arg) runs once every session is gone (or close_timeout later). */
void sessions_close_all(sessions_t *ss, void (*done)(void *arg), void *arg);
/* The transport counters of these sessions' connections (bytes, slow consumers), see conn.h. */
void sessions_conn_stats(const sessions_t *ss, conn_stats_t *out);
/* After sessions_close_all's done: frees everything. */
void sessions_free(sessions_t *ss);

#endif
