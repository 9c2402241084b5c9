/*
 * http_server: HTTP/1.1 on the connections of one worker. It accepts connections (and adopts the
 * ones another worker hands over), parses one request at a time per connection (http_req), bounds
 * how long a head and a body may take (slowloris: 408), answers parser errors itself (400, 413,
 * 431), routes every complete request through the router (404 when nothing matches), writes the
 * answers, keeps connections alive between requests, and on a WebSocket upgrade queues the 101
 * and hands the connection to worker/ws. It owns the transport context (worker/net/conn) and the
 * WebSocket context. It never interprets Engine.IO and never logs.
 */
#ifndef STREAMIO_WORKER_HTTP_HTTP_SERVER_H
#define STREAMIO_WORKER_HTTP_HTTP_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "common/proto/http_req.h"
#include "common/proto/relay_hello.h"
#include "shm/stats.h"
#include "worker/http/router.h"
#include "worker/net/conn.h"
#include "worker/ws/ws_conn.h"

typedef struct http_server http_server_t;

/* Limits; a 0 field takes the default below (or the transport's and WebSocket's defaults). */
typedef struct http_limits {
    size_t max_header_bytes; /* request head; over it: 431 and close */
    size_t max_body;         /* request body kept for the route; over it: 413 and close */
    /* Slowloris: a request head must complete within header_timeout_ms of the accept or, on a
     * keep-alive connection, of its first bytes; its body within body_timeout_ms of the head;
     * over it: 408 and close. After a keep-alive answer, a connection silent for
     * keepalive_timeout_ms (nothing of a next request, or a next head stopped half way) is
     * closed without an answer, as Node's keepAliveTimeout does. */
    uint64_t header_timeout_ms;
    uint64_t body_timeout_ms;
    uint64_t keepalive_timeout_ms;
    size_t max_ws_message;     /* one received WebSocket message; over it: Close 1009 */
    size_t max_outq_bytes;     /* queued output per connection; over it: close */
    uint64_t close_timeout_ms; /* graceful close: wait for the peer's Close / FIN */
    /* accept RFC 7692 permessage-deflate offers (SOCKETIO_PER_MESSAGE_DEFLATE; see ws_deflate) */
    bool per_message_deflate;
} http_limits_t;

/* Node's http server defaults (maxHeaderSize, maxHttpBufferSize, headersTimeout, requestTimeout,
 * keepAliveTimeout), so a request the seed's server takes is taken here too */
#define HTTP_DEFAULT_MAX_HEADER_BYTES 16384
#define HTTP_DEFAULT_MAX_BODY 1000000
#define HTTP_DEFAULT_HEADER_TIMEOUT_MS 60000
#define HTTP_DEFAULT_BODY_TIMEOUT_MS 300000
#define HTTP_DEFAULT_KEEPALIVE_TIMEOUT_MS 5000

typedef struct http_stats {
    conn_stats_t conn;
    uint64_t http_errors; /* answered 400/413/431 by the parser */
    uint64_t timeouts;    /* request head or body too slow: answered 408 and closed */
    size_t ws_contexts;   /* wslay contexts held: WebSockets inside a message or closing */
} http_stats_t;

/*
 * Creates the server on `loop`: lim copied (NULL: defaults); relay_tag copied, this server's tag
 * (RELAY_HELLO_TAG_LEN characters): a connection that opens with a relay hello naming it (another
 * server relaying a request here, common/proto/relay_hello) gets the answer, then speaks HTTP, one
 * naming another server is closed; router borrowed (it must outlive the server), stats borrowed
 * (may be NULL) for the limit counters (header and body size and time, WebSocket message size,
 * output overflow). 0, -EINVAL (no router, or a tag of another length), or a libuv error.
 */
int http_server_new(http_server_t **out, uv_loop_t *loop, const http_limits_t *lim,
                    const char *relay_tag, const router_t *router, stats_worker_t *stats);
/* Accepts one pending connection from the listening stream. 0 or a libuv error. */
int http_server_accept(http_server_t *hs, uv_stream_t *server, conn_t **out);
/*
 * Adopts a connected socket handed over by another worker (takes fd) and processes pre[0..len),
 * the bytes already read from it: a route may run before this returns, and *out (optional) may
 * be closed already. 0 or a libuv error.
 */
int http_server_adopt(http_server_t *hs, int fd, const char *pre, size_t len, conn_t **out);
void http_server_stats(const http_server_t *hs, http_stats_t *out);
/*
 * Closes every connection (their owners' close callbacks run from the loop) and frees the server
 * once they are released; the loop must run again before uv_loop_close(). NULL is a no-op.
 */
void http_server_free(http_server_t *hs);

/*
 * The answers a route gives, inside its handler or later (http_defer). Before returning, a route
 * must answer with http_respond*() or http_ws_accept(), hold the request with http_defer(), or
 * call conn_close(); otherwise the connection is closed.
 *
 * http_respond writes: status line, "Connection: keep-alive" or "close", "Content-type" (if
 * content_type is not NULL), "Content-Length", extra_headers (NULL or "Name: value\r\n" lines,
 * copied verbatim), blank line, body (omitted for HEAD); headers and body are copied into one
 * allocation. It keeps the connection for the next request when the request allows keep-alive
 * and is not an upgrade; otherwise it closes after flushing. 0, -EINVAL (no request awaiting an
 * answer, status outside 200..599, NULL body with len), -EPIPE (already closed), -ENOBUFS (would
 * exceed the output limit: the connection is closed).
 */
int http_respond(conn_t *c, int status, const char *content_type, const char *extra_headers,
                 const void *body, size_t len);
/* As http_respond, gzip-compressed (Content-Encoding: gzip) when the body has at least
 * HTTP_GZIP_THRESHOLD bytes and the request accepts gzip. */
int http_respond_gzip(conn_t *c, int status, const char *content_type, const char *extra_headers,
                      const void *body, size_t len);
/*
 * Holds the request: the answer comes later (a long-polling GET). Input that arrives meanwhile
 * is not parsed (the client must wait for the answer). 0, or -EINVAL when no request awaits.
 */
int http_defer(conn_t *c);
/* True while a request awaits its answer (inside its route or held). */
bool http_pending(const conn_t *c);
/* The request awaiting its answer (borrowed, valid until answered), or NULL. */
const http_req_t *http_request(const conn_t *c);
/*
 * Accepts the WebSocket handshake: queues the 101 with Sec-WebSocket-Accept (and, with
 * per_message_deflate, the permessage-deflate response to an offer ws_deflate_accept takes) and
 * hands the connection to worker/ws, whose messages go to h (borrowed for the connection's
 * lifetime).
 * Bytes that followed the head are processed as frames once the route returns. 0, -EINVAL (no
 * request awaiting an answer, or not a valid handshake: see http_req_is_websocket; answer 400),
 * -EPIPE (already closed).
 */
int http_ws_accept(conn_t *c, const ws_handlers_t *h);

#endif
