/*
 * ws_conn: WebSocket framing (RFC 6455) on a connection the HTTP layer has upgraded. It takes the
 * connection over once the 101 is queued (as h2o's websocket layer takes a finished HTTP/1
 * socket over), and from then on owns its protocol state: the wslay context (only while a
 * message is in flight or a Close is under way), wslay's pending control frames, and the
 * closing handshake. It delivers whole messages to a handler table, queues text messages,
 * shared pre-framed broadcasts (ws_frame) and Close frames, and knows nothing of HTTP, Engine.IO
 * or who owns the connection (conn_data). One loop only; it never logs.
 */
#ifndef STREAMIO_WORKER_WS_WS_CONN_H
#define STREAMIO_WORKER_WS_WS_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/proto/ws_deflate.h"
#include "common/refbuf.h"
#include "shm/stats.h"
#include "worker/net/conn.h"

/* Default largest message received (Engine.IO's maxPayload default). */
#define WS_CONN_DEFAULT_MAX_MESSAGE 1000000

typedef struct ws_ctx ws_ctx_t; /* per worker: limits and counters */

/* Where received messages go; ud is conn_data(c). Pointers are borrowed for the call. */
typedef struct ws_handlers {
    /* One complete text message, UTF-8 already validated by wslay. */
    void (*on_text)(conn_t *c, const char *msg, size_t len, void *ud);
    void (*on_binary)(conn_t *c, const uint8_t *msg, size_t len, void *ud);
} ws_handlers_t;

/*
 * A context whose connections accept messages up to max_message bytes (0: the default; longer
 * ones get Close 1009, counted as STATS_LIMIT_WS_MESSAGE in `stats`, borrowed, may be NULL).
 * Never NULL.
 */
ws_ctx_t *ws_ctx_new(size_t max_message, stats_worker_t *stats);
/* Frees the context once its last connection is released (now when it has none). NULL: no-op. */
void ws_ctx_free(ws_ctx_t *w);
/* wslay contexts held now: WebSockets inside a message or closing. */
size_t ws_ctx_contexts(const ws_ctx_t *w);

/*
 * Switches c to WebSocket framing; the caller has queued the 101. Messages go to h (borrowed for
 * the connection's lifetime). Bytes that followed the request are fed with conn_feed. Messages
 * may be sent right away. `deflate`: the 101 accepted permessage-deflate (ws_deflate's terms):
 * compressed messages (RSV1) are inflated before h sees them (over the context's largest message:
 * Close 1009; not deflate data, or a text that is not UTF-8: Close 1007), and text messages of
 * WS_DEFLATE_THRESHOLD bytes or more that ws_conn_send_text sends are compressed.
 */
void ws_conn_start(ws_ctx_t *w, conn_t *c, const ws_handlers_t *h, bool deflate);
/* True once ws_conn_start ran on c (also while closing). */
bool ws_conn_is(const conn_t *c);
/*
 * The context's shared compressor when c negotiated permessage-deflate, else NULL: a broadcast
 * compressed with it once (ws_deflate_compress, frames with RSV1) may go to every such recipient.
 */
ws_deflate_t *ws_conn_deflater(const conn_t *c);

/*
 * Frames a copy of p[0..len) as one TEXT message (one allocation; per-socket messages). p must be
 * valid UTF-8. 0, -EINVAL (not a WebSocket), -EPIPE (closing or closed), -ENOBUFS (would exceed
 * the connection's output limit: it is closed).
 */
int ws_conn_send_text(conn_t *c, const char *p, size_t len);
/*
 * Queues pre-framed bytes (ws_frame_new) shared between recipients: takes a new reference. No
 * copy. Same returns as ws_conn_send_text.
 */
int ws_conn_send_frame(conn_t *c, refbuf_t *frame);
/*
 * Starts the closing handshake: queues a Close frame (code 0 = no status code; otherwise
 * 1000..1003, 1007..1011 or 3000..4999), stops delivering messages, and closes the connection
 * once the peer's Close arrives and the queue is flushed, or after the transport's close timeout.
 * 0 (also when already closing), -EINVAL (not a WebSocket, or a bad code).
 */
int ws_conn_close(conn_t *c, uint16_t code);

#endif
