/*
 * conn: the transport of one accepted TCP connection in a worker's libuv loop. It owns the
 * socket, the HTTP request parser (until an upgrade), the wslay context (after one, while a
 * message is in flight), the output queue and the close sequence. It reads into one buffer
 * shared by every connection of the worker (bytes are consumed inside the read callback), and
 * writes each connection's queue once per loop iteration: a uv_check_t flushes every connection
 * with pending output, first with uv_try_write (writev), then with one uv_write of at most 4
 * buffers (libuv keeps those inline, so it allocates nothing) for what the kernel did not take; the
 * rest follows its callback. It never interprets Engine.IO/Socket.IO, never logs, and never frees a
 * connection inside a caller's callback: memory goes only after uv_close and every pending write
 * callback completed, right after on_close returns. Everything here runs on the owning loop's
 * thread, and the process must ignore SIGPIPE (libuv writes to TCP with plain writev).
 */
#ifndef STREAMIO_WORKER_NET_CONN_H
#define STREAMIO_WORKER_NET_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "common/proto/http_req.h"
#include "common/refbuf.h"

typedef struct conn_ctx conn_ctx_t; /* per worker: loop, read buffer, flush list, limits, stats */
typedef struct conn conn_t;

/* Limits; a 0 field takes the default below. */
typedef struct conn_limits {
    size_t max_header_bytes;   /* request head; over it: 431 and close */
    size_t max_ws_message;     /* one received message; over it: Close 1009 */
    size_t max_outq_bytes;     /* queued output; over it: close (slow consumer) */
    uint64_t close_timeout_ms; /* graceful close: wait for the peer's Close / FIN */
    size_t max_body;           /* request body kept for on_request; over it: 413 and close */
    /* Slowloris: a request head must complete within header_timeout_ms of the accept or of the
     * previous answer (keep-alive), its body within body_timeout_ms of the head; over it: 408
     * and close (an idle keep-alive connection that sent nothing is just closed). */
    uint64_t header_timeout_ms;
    uint64_t body_timeout_ms;
} conn_limits_t;

#define CONN_DEFAULT_MAX_HEADER_BYTES 8192
#define CONN_DEFAULT_MAX_WS_MESSAGE 1000000 /* Engine.IO maxPayload default */
#define CONN_DEFAULT_MAX_OUTQ_BYTES (4u << 20)
#define CONN_DEFAULT_CLOSE_TIMEOUT_MS 5000
#define CONN_DEFAULT_MAX_BODY 1000000
#define CONN_DEFAULT_HEADER_TIMEOUT_MS 10000
#define CONN_DEFAULT_BODY_TIMEOUT_MS 30000

/* What made conn refuse or cut a connection on its own, for the limit counters. */
typedef enum conn_refusal {
    CONN_REFUSED_HEADER_SIZE,    /* 431 */
    CONN_REFUSED_BODY_SIZE,      /* 413 */
    CONN_REFUSED_WS_MESSAGE,     /* Close 1009: a message over max_ws_message */
    CONN_REFUSED_OUTPUT,         /* closed: queued output over max_outq_bytes */
    CONN_REFUSED_HEADER_TIMEOUT, /* 408: the head did not complete in time */
    CONN_REFUSED_BODY_TIMEOUT,   /* 408: the body did not complete in time */
} conn_refusal_t;

/*
 * Callbacks; `ud` is conn_data(c), which starts as conn_handlers_t.ud for every new connection.
 * Pointers passed in are borrowed for the duration of the call.
 */
typedef struct conn_handlers {
    /* Request complete (body included; a WebSocket upgrade as soon as its head is). Before
     * returning, the handler must answer with conn_http_respond() or conn_ws_accept(), hold it
     * with conn_http_defer(), or call conn_close(); otherwise the connection is closed. */
    void (*on_request)(conn_t *c, const http_req_t *req, void *ud);
    /* One complete text message, UTF-8 already validated by wslay. */
    void (*on_ws_text)(conn_t *c, const char *msg, size_t len, void *ud);
    void (*on_ws_binary)(conn_t *c, const uint8_t *msg, size_t len, void *ud);
    /* Exactly once per accepted connection, after the socket is fully closed; the conn memory is
     * freed right after it returns. */
    void (*on_close)(conn_t *c, void *ud);
    void *ud;
    /* Optional: one call per refusal listed in conn_refusal_t, with conn_handlers_t.ud (not the
     * connection's data), before the answer or the close. It must not close anything. */
    void (*on_refused)(conn_refusal_t why, void *ud);
} conn_handlers_t;

typedef struct conn_stats {
    uint64_t accepted;
    uint64_t closed;         /* connections fully released */
    uint64_t slow_consumers; /* closed for exceeding max_outq_bytes */
    uint64_t http_errors;    /* answered 400/431 by the parser */
    uint64_t timeouts;       /* request head or body too slow: answered 408 and closed */
    uint64_t bytes_in;
    uint64_t bytes_out;
    size_t live;        /* accepted and not yet released, closing ones included */
    size_t ws_contexts; /* wslay contexts held: WebSockets inside a message or closing */
} conn_stats_t;

/*
 * Creates the per-worker context on `loop` (lim and h are copied; lim may be NULL for all
 * defaults). Allocates the shared 64 KiB read buffer. 0, -EINVAL (h or a callback NULL), or a
 * libuv error.
 */
int conn_ctx_new(conn_ctx_t **out, uv_loop_t *loop, const conn_limits_t *lim,
                 const conn_handlers_t *h);
/*
 * Closes any connection still open (their on_close runs), then the context's own handles; the
 * memory is released from close callbacks, so the loop must run again before uv_loop_close().
 * NULL is a no-op. Call it once; the context must not be used afterwards.
 */
void conn_ctx_free(conn_ctx_t *ctx);
void conn_ctx_stats(const conn_ctx_t *ctx, conn_stats_t *out);

/*
 * Accepts one pending connection from `server` (call it from the listener's connection
 * callback), disables Nagle and starts reading. On success *out is the new connection (optional:
 * out may be NULL). On failure nothing is left to close and on_close is never called for it.
 * 0 or a libuv error (-EAGAIN, -EMFILE, ...).
 */
int conn_accept(conn_ctx_t *ctx, uv_stream_t *server, conn_t **out);

/*
 * Adopts a connected TCP socket handed over by another process (see handoff): takes ownership
 * of fd (closed on any failure), then processes pre[0..len), the
 * bytes already read from it, as if just received: on_request may run before this returns, so
 * the caller must count the connection first. *out (optional) may be closed already on return.
 * 0 or a libuv error (then on_close is never called).
 */
int conn_adopt(conn_ctx_t *ctx, int fd, const char *pre, size_t len, conn_t **out);
/* The socket's descriptor (borrowed; the connection keeps it), or -EBADF once closing. */
int conn_fileno(const conn_t *c);

void conn_set_data(conn_t *c, void *ud);
void *conn_data(const conn_t *c);

/*
 * Answers the request being handled in on_request: status line, "Connection: keep-alive" or
 * "close", "Content-type" (if content_type is not NULL), "Content-Length", extra_headers (NULL or
 * "Name: value\r\n" lines, copied verbatim), blank line, body (omitted for HEAD). Copies headers
 * and body into one allocation. Keeps the connection for the next request when the request
 * allows keep-alive and is not an upgrade; otherwise closes after flushing.
 * 0, -EINVAL (no request awaiting an answer, status outside 200..599, NULL body with len),
 * -EPIPE (already closed), -ENOBUFS (would exceed max_outq_bytes: the connection is closed).
 */
int conn_http_respond(conn_t *c, int status, const char *content_type, const char *extra_headers,
                      const void *body, size_t len);

/*
 * Holds the request being handled in on_request: the answer comes later with
 * conn_http_respond() (a long-polling GET). Input that arrives meanwhile is not parsed (the
 * client must wait for the answer). 0, or -EINVAL when no request awaits an answer.
 */
int conn_http_defer(conn_t *c);
/* True while a request awaits its answer (inside on_request or held). */
bool conn_http_pending(const conn_t *c);
/* The request awaiting its answer (borrowed, valid until answered), or NULL. */
const http_req_t *conn_request(const conn_t *c);

/*
 * Accepts the WebSocket handshake being handled in on_request: queues the 101 with
 * Sec-WebSocket-Accept and switches to WebSocket framing. Received frames go through a wslay
 * server context (about 8.8 KiB, max_recv_msg_length = max_ws_message) that exists only from the
 * first byte of a message to its end, or from a Close to the end of the connection. Bytes that
 * followed the head in the same read are processed as frames once on_request returns. Messages
 * may be sent right away.
 * 0, -EINVAL (no request awaiting an answer, or not a valid handshake: see
 * http_req_is_websocket; the caller should answer 400), -EPIPE (already closed).
 */
int conn_ws_accept(conn_t *c);

/*
 * Frames a copy of p[0..len) as one TEXT message (one allocation; per-socket messages). p must be
 * valid UTF-8. 0, -EINVAL (not a WebSocket), -EPIPE (closing or closed), -ENOBUFS (would exceed
 * max_outq_bytes: the connection is closed).
 */
int conn_ws_send_text(conn_t *c, const char *p, size_t len);

/*
 * Queues pre-framed bytes (ws_frame_new) shared between recipients: takes a new reference,
 * released once written or when the connection closes. No copy; no allocation except when this
 * connection's queue grows past its largest size so far. Same returns as conn_ws_send_text.
 */
int conn_ws_send_frame(conn_t *c, refbuf_t *frame);

/*
 * Starts the closing handshake: queues a Close frame (code 0 = no status code; otherwise
 * 1000..1003, 1007..1011 or 3000..4999), stops delivering messages, and closes the TCP
 * connection once the peer's Close arrives and the queue is flushed, or after close_timeout_ms.
 * 0 (also when already closing), -EINVAL (not a WebSocket, or a bad code).
 */
int conn_ws_close(conn_t *c, uint16_t code);

/* Closes the socket now, dropping queued output. Idempotent; safe inside any callback. */
void conn_close(conn_t *c);

/* The peer's address (for per-address limits). 0 or a libuv error. */
int conn_peer(const conn_t *c, struct sockaddr_storage *out);
/* Bytes queued and not yet taken by the kernel (in-flight writes included). */
size_t conn_outq_bytes(const conn_t *c);
/* True once conn_ws_accept succeeded (also while closing). */
bool conn_is_ws(const conn_t *c);

#endif
