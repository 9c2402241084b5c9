/*
 * eio_session: the Engine.IO v4 sessions of one worker (protocol.md §1) as a state machine: a
 * session opens on a handshake, talks over long-polling (a held GET answered with every queued
 * packet, POSTs of batched records) or over a WebSocket, may move from polling to a WebSocket
 * (the probe: `2probe`/`3probe`, the held GET answered `6`, then `5`), is kept alive by the
 * server's heartbeat (ping every pingInterval, pong within pingTimeout, one timer queue per
 * duration) and ends from either side. It owns the sid map, the sessions' transports and
 * polling queues, and its timers.
 *
 * It reaches the layers above only through a handler table (eio_handlers_t: open, text and
 * binary messages, close), and the connections only through a transport table
 * (eio_transport_t), so tests drive it with fake connections and a fake clock. The HTTP side of
 * the endpoint (query checks, handshakes, handoff) is eio_endpoint. One loop only; never logs.
 */
#ifndef STREAMIO_WORKER_EIO_EIO_SESSION_H
#define STREAMIO_WORKER_EIO_EIO_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "common/buf.h"
#include "common/proto/http_req.h"
#include "shm/stats.h"
#include "worker/eio/eio_msg.h"
#include "worker/net/conn.h"
#include "worker/net/timerq.h"

#define EIO_SID_LEN 20
#define EIO_SID_TAG_LEN 4 /* sid characters 2-5: the server (see eio_config_t.tag) */
#define EIO_SID_DIGITS                                                                             \
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_" /* base64url */

typedef struct eio eio_t;
typedef struct eio_session eio_session_t;

/*
 * What an application (Socket.IO, or the conformance suite's echo) does with its sessions. `app`
 * is what on_open returned for the session.
 */
typedef struct eio_handlers {
    void *arg;
    /* Optional admission (Engine.IO's allowRequest): 0 lets a session from peer open; a negative
     * errno refuses it with 503 and *why as its message. An admitted peer is the application's to
     * release; when the session cannot open after all, release(arg, peer) runs instead. */
    int (*admit)(void *arg, const struct sockaddr_storage *peer, const char **why);
    void (*release)(void *arg, const struct sockaddr_storage *peer);
    /* A session opened; req is its handshake (borrowed for the call), peer its address. */
    void *(*on_open)(void *arg, eio_session_t *s, const http_req_t *req,
                     const struct sockaddr_storage *peer);
    /* A message from the client: the text after the `4`, or the bytes of a binary message.
     * Negative: a protocol error, the session is closed. */
    int (*on_text)(void *app, const char *p, size_t len);
    int (*on_binary)(void *app, const uint8_t *p, size_t len);
    /* The session ended, for any reason: the application must not use s once this returns. */
    void (*on_close)(void *app);
} eio_handlers_t;

/*
 * The connections as the sessions use them (production: worker/http and worker/ws, see
 * eio_endpoint). A WebSocket is an upgraded conn; an HTTP request is the one a conn holds.
 */
typedef struct eio_transport {
    void *arg;
    int (*ws_text)(void *arg, conn_t *c, const char *p, size_t len);
    /* Sends m's WebSocket form (eio_msg_frames, or eio_msg_frames_deflated where c negotiated
     * permessage-deflate), taking its own reference to it. */
    int (*ws_msg)(void *arg, conn_t *c, eio_msg_t *m);
    int (*ws_close)(void *arg, conn_t *c, uint16_t code);
    size_t (*backlog)(void *arg, conn_t *c); /* bytes queued and not yet written */
    /* False once c stopped reading: closing after a refusal that was already counted. */
    bool (*open)(void *arg, conn_t *c);
    /* Answers the request c holds; with `cors`, the CORS headers its Origin earns and gzip when
     * worthwhile (Engine.IO's answers), else plain. */
    void (*respond)(void *arg, conn_t *c, int status, const char *ctype, const char *body,
                    size_t len, bool cors);
    int (*hold)(void *arg, conn_t *c); /* answer later; 0 or an error */
    void (*close)(void *arg, conn_t *c);
    /* s (or NULL) is told when c closes (eio_conn_closed) and gets its messages (eio_ws_*). */
    void (*own)(void *arg, conn_t *c, eio_session_t *s);
} eio_transport_t;

typedef struct eio_config {
    uint64_t ping_interval_ms;
    uint64_t ping_timeout_ms;
    uint64_t upgrade_timeout_ms; /* a probing WebSocket must send `5` within it */
    /* An application that has not called eio_session_ready within it closes the session (counted
     * as STATS_LIMIT_FIRST_PACKET_TIMEOUT): Socket.IO's connectTimeout. */
    uint64_t ready_timeout_ms;
    int max_payload; /* announced in the open packet */
    uint32_t slot;   /* this worker's: the first two sid characters name it */
    /* this server's tag (EIO_SID_TAG_LEN characters of EIO_SID_DIGITS), the next four sid
     * characters, so another server can relay a request for the sid here; "": random ones */
    char tag[EIO_SID_TAG_LEN + 1];
    size_t max_poll_queue; /* bytes waiting for a GET; past it more packets are dropped */
} eio_config_t;

/*
 * Creates the sessions of a worker. clk (borrowed; NULL: libuv's `loop`) drives the timers;
 * tr is copied; stats (borrowed) counts connections, held polling GETs, handshakes and
 * disconnects. 0 or a libuv error.
 */
int eio_new(eio_t **out, uv_loop_t *loop, const timerq_clock_t *clk, const eio_config_t *cfg,
            const eio_transport_t *tr, stats_worker_t *stats);
/*
 * Ends every session (WebSocket close 1001, held GETs answered `1`) and refuses new ones
 * (eio_closing); done(arg) runs once every session is gone from memory.
 */
void eio_close_all(eio_t *e, void (*done)(void *arg), void *arg);
bool eio_closing(const eio_t *e);
/* Sessions in memory (ended ones whose connections are still closing included). */
size_t eio_sessions(const eio_t *e);
/* Ends what is left and frees the sessions; the memory goes once the last connection a session
 * holds has closed (eio_conn_closed). NULL: no-op. */
void eio_free(eio_t *e);

/* ---- the endpoint's side ---- */

/*
 * Opens a session for application h on the handshake request c holds: a new sid, the heartbeat
 * and ready deadlines, h->on_open. With `websocket`, c is the upgraded WebSocket and carries the
 * session from now on; otherwise c's request is answered with the open packet (upgrades
 * ["websocket"] when `upgrades`). 0, or -EIO when no random sid can be drawn (nothing is sent).
 */
int eio_session_open(eio_t *e, const eio_handlers_t *h, conn_t *c, const http_req_t *req,
                     const struct sockaddr_storage *peer, bool websocket, bool upgrades,
                     eio_session_t **out);
/*
 * The session named sid, or NULL when there is none or its heartbeat (or ready) deadline passed
 * on the current time: such a session is closed here, before its timer fires.
 */
eio_session_t *eio_find(eio_t *e, const char *sid, size_t len);
const eio_handlers_t *eio_session_handlers(const eio_session_t *s);
/* The client completed an upgrade: polling requests are over for it. */
bool eio_session_upgraded(const eio_session_t *s);
/* A polling GET: answered now with what is queued (or `6` while probed), else held. A second
 * GET while one is held fails with 400, the held one gets `1` and the session ends. */
void eio_session_poll_get(eio_session_t *s, conn_t *c);
/* A polling POST: every record of body in order, then `ok` (or 400: the session ends). */
void eio_session_poll_post(eio_session_t *s, conn_t *c, const char *body, size_t len);
/* A WebSocket (already accepted) carrying the session's sid: the probe of an upgrade, or closed
 * at once when the session has a WebSocket or a probe already. */
void eio_session_probe(eio_session_t *s, conn_t *c);

/* ---- the transport's side (s: the session that owns c, see eio_transport_t.own) ---- */

void eio_conn_closed(conn_t *c, eio_session_t *s);
void eio_ws_text(conn_t *c, eio_session_t *s, const char *msg, size_t len);
void eio_ws_binary(conn_t *c, eio_session_t *s, const uint8_t *msg, size_t len);

/* ---- the application's side ---- */

/*
 * Sends one complete Engine.IO text packet (`4...`, or any type) to the client: over the
 * WebSocket, or queued for the next GET (a held GET is answered at once).
 */
void eio_session_send_text(eio_session_t *s, const char *p, size_t len);
/* Sends a shared message (takes its own reference for the polling queue; a WebSocket queues
 * a reference to its frames). True when queued. */
bool eio_session_send_msg(eio_session_t *s, eio_msg_t *m);
/* Bytes waiting for the client (the WebSocket's unsent output, or the polling queue). */
size_t eio_session_backlog(const eio_session_t *s);
/* The application accepted the session: its ready deadline is disarmed. */
void eio_session_ready(eio_session_t *s);
/* Ends the session from the server's side (WebSocket close without status, held GET `1`). */
void eio_session_close(eio_session_t *s);
bool eio_session_closed(const eio_session_t *s);
/* The Engine.IO sid (NUL-terminated). */
const char *eio_session_sid(const eio_session_t *s);

/* The worker slot a sid names, or -1 when it names none (see eio_config_t.slot). */
int eio_sid_slot(const char *sid, size_t len);
/* The server tag a sid carries (EIO_SID_TAG_LEN characters, borrowed), or NULL when it has none
 * (see eio_config_t.tag). */
const char *eio_sid_tag(const char *sid, size_t len);

#endif
