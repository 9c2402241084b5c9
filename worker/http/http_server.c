/*
 * http_server: per-connection HTTP state (the parser, the request deadline, whether an answer is
 * awaited or held) as the protocol of a conn, until an upgrade replaces it with ws_conn's.
 */
#include "worker/http/http_server.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/proto/http_gzip.h"
#include "common/proto/ws_deflate.h"
#include "common/proto/ws_frame.h"
#include "common/xalloc.h"
#include "worker/net/timerq.h"

/* The deadline a connection's request node waits on: the head of a connection's first request
 * (from the accept), a request's body (from its head), or, on a keep-alive connection, silence
 * (from the last answer or the last bytes of a next head). Each has its own duration, so each its
 * own queue. */
enum rq_phase { RQ_HEAD, RQ_BODY, RQ_IDLE, RQ_PHASES };

struct http_server {
    http_limits_t lim;
    char relay_tag[RELAY_HELLO_TAG_LEN + 1];
    uv_loop_t *loop;
    const router_t *router;
    stats_worker_t *limit_stats;
    conn_ctx_t *conns;
    ws_ctx_t *ws;
    timerq_t *rq[RQ_PHASES]; /* request deadlines, one node per connection */
    size_t live;             /* connections still holding an http_conn state */
    bool freeing;
    uint64_t http_errors;
    uint64_t timeouts;
    buf_t head; /* scratch for response heads */
    buf_t gz;   /* scratch for a compressed body */
    /* states of closed or upgraded connections, parsers included, for the next accepts: a
     * handshake then allocates neither (FREE_STATES_MAX at most) */
    struct http_conn *free_states;
    unsigned nfree_states;
};

#define FREE_STATES_MAX 256

typedef struct http_conn {
    http_server_t *hs;
    conn_t *c;
    http_req_t *req;
    timerq_node_t rq_node; /* deadline of the request being read or awaited (keep-alive) */
    enum rq_phase phase;   /* the queue rq_node is (or was last) in */
    bool awaiting;         /* a route is running or holds the request: no answer yet */
    bool deferred;         /* awaiting beyond the route (http_defer) */
    bool upgraded;         /* http_ws_accept ran: the connection speaks WebSocket now */
    bool opened;           /* its first bytes arrived (a relay hello can only come first) */
    uint8_t hello_got;     /* bytes of a relay hello in hello_part so far */
    char *hello_part;      /* a relay hello cut short (RELAY_HELLO_LEN bytes), or NULL */
    bool next_begun;       /* bytes of a next request arrived on keep-alive, from next_since */
    uint64_t next_since;   /* loop time (ms) of those first bytes */
    struct http_conn *next_free; /* in hs->free_states */
} http_conn_t;

static void on_data(conn_t *c, void *state, const char *p, size_t n);
static void on_release(conn_t *c, void *state);

static const conn_proto_t proto = {on_data, on_release};

static http_conn_t *state_of(const conn_t *c)
{
    return conn_proto_state(c, &proto);
}

static void count_limit(http_server_t *hs, enum stats_limit l)
{
    if (hs->limit_stats)
        STATS_ADD(hs->limit_stats->limit_rejections[l], 1);
}

static void server_maybe_free(http_server_t *hs)
{
    if (!hs->freeing || hs->live)
        return;
    while (hs->free_states) {
        http_conn_t *h = hs->free_states;
        hs->free_states = h->next_free;
        http_req_free(h->req);
        free(h);
    }
    buf_free(&hs->head);
    buf_free(&hs->gz);
    free(hs);
}

/* ==== Request deadlines ==== */

static void rq_disarm(http_conn_t *h)
{
    timerq_remove(h->hs->rq[h->phase], &h->rq_node);
}

static void rq_arm(http_conn_t *h, enum rq_phase phase)
{
    rq_disarm(h);
    h->phase = phase;
    timerq_add(h->hs->rq[phase], &h->rq_node);
}

/* ==== Answers ==== */

static const struct {
    int status;
    const char *text;
} reasons[] = {
    {101, "Switching Protocols"},
    {200, "OK"},
    {201, "Created"},
    {204, "No Content"},
    {301, "Moved Permanently"},
    {302, "Found"},
    {304, "Not Modified"},
    {400, "Bad Request"},
    {401, "Unauthorized"},
    {403, "Forbidden"},
    {404, "Not Found"},
    {405, "Method Not Allowed"},
    {408, "Request Timeout"},
    {413, "Payload Too Large"},
    {426, "Upgrade Required"},
    {429, "Too Many Requests"},
    {431, "Request Header Fields Too Large"},
    {500, "Internal Server Error"},
    {501, "Not Implemented"},
    {503, "Service Unavailable"},
};

static const char *reason_phrase(int status)
{
    for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++) {
        if (reasons[i].status == status)
            return reasons[i].text;
    }
    return ""; /* RFC 9112 §4: the reason phrase may be empty */
}

/* Head (built in the server's scratch buffer) and body in one refbuf. 0 or -ENOBUFS. */
static int queue_response(http_conn_t *h, int status, const char *ctype, const char *extra,
                          const char *extra2, const void *body, size_t len, bool keep,
                          bool send_body)
{
    buf_t *b = &h->hs->head;
    buf_reset(b);
    buf_printf(b, "HTTP/1.1 %d %s\r\nConnection: %s\r\n", status, reason_phrase(status),
               keep ? "keep-alive" : "close");
    /* A client that knows when an idle connection is closed stops reusing it a second before,
     * instead of racing the close with its next request (Node's agent honours this hint). */
    if (keep && h->hs->lim.keepalive_timeout_ms >= 2000)
        buf_printf(b, "Keep-Alive: timeout=%u\r\n",
                   (unsigned)(h->hs->lim.keepalive_timeout_ms / 1000 - 1));
    if (ctype)
        buf_printf(b, "Content-type: %s\r\n", ctype);
    buf_printf(b, "Content-Length: %zu\r\n", len);
    if (extra)
        buf_puts(b, extra);
    if (extra2)
        buf_puts(b, extra2);
    buf_puts(b, "\r\n");
    size_t blen = send_body ? len : 0;
    if (blen > SIZE_MAX - b->len || !conn_fits(h->c, b->len + blen))
        return -ENOBUFS;
    refbuf_t *rb = refbuf_new(b->len + blen);
    memcpy(refbuf_data(rb), b->data, b->len);
    if (blen)
        memcpy(refbuf_data(rb) + b->len, body, blen);
    conn_push(h->c, rb);
    return 0;
}

static void http_fail(http_conn_t *h, int err)
{
    http_server_t *hs = h->hs;
    rq_disarm(h);
    if (err == -ETIMEDOUT)
        hs->timeouts++;
    else
        hs->http_errors++;
    if (err == -E2BIG)
        count_limit(hs, STATS_LIMIT_HEADER_SIZE);
    else if (err == -EMSGSIZE)
        count_limit(hs, STATS_LIMIT_BODY_SIZE);
    int status = err == -E2BIG ? 431 : err == -EMSGSIZE ? 413 : err == -ETIMEDOUT ? 408 : 400;
    if (queue_response(h, status, NULL, NULL, NULL, NULL, 0, false, false) != 0) {
        conn_close(h->c);
        return;
    }
    conn_drain(h->c);
}

static int respond(conn_t *c, int status, const char *ctype, const char *extra, const char *extra2,
                   const void *body, size_t len)
{
    if (conn_is_closed(c))
        return -EPIPE;
    http_conn_t *h = state_of(c);
    if (!h || !h->awaiting || !conn_is_open(c) || status < 200 || status > 599 || (!body && len))
        return -EINVAL;
    bool keep = http_req_keep_alive(h->req) && !http_req_is_upgrade(h->req);
    bool send_body = strcmp(http_req_method(h->req), "HEAD") != 0;
    if (queue_response(h, status, ctype, extra, extra2, body, len, keep, send_body)) {
        conn_overflow(c);
        return -ENOBUFS;
    }
    h->awaiting = false;
    h->deferred = false;
    if (!keep) {
        conn_drain(c);
    } else {
        h->next_begun = false;
        rq_arm(h, RQ_IDLE);
    }
    return 0;
}

int http_respond(conn_t *c, int status, const char *content_type, const char *extra_headers,
                 const void *body, size_t len)
{
    return respond(c, status, content_type, extra_headers, NULL, body, len);
}

int http_respond_gzip(conn_t *c, int status, const char *content_type, const char *extra_headers,
                      const void *body, size_t len)
{
    http_conn_t *h = state_of(c);
    if (h && h->awaiting && len >= HTTP_GZIP_THRESHOLD &&
        http_gzip_accepted(http_req_header(h->req, HTTP_REQ_ACCEPT_ENCODING)) &&
        http_gzip_compress(&h->hs->gz, body, len) == 0)
        return respond(c, status, content_type, extra_headers, "Content-Encoding: gzip\r\n",
                       h->hs->gz.data, h->hs->gz.len);
    return respond(c, status, content_type, extra_headers, NULL, body, len);
}

int http_defer(conn_t *c)
{
    http_conn_t *h = state_of(c);
    if (!h || !h->awaiting || !conn_is_open(c))
        return -EINVAL;
    h->deferred = true;
    return 0;
}

bool http_pending(const conn_t *c)
{
    http_conn_t *h = state_of(c);
    return h && h->awaiting && conn_is_open(c);
}

const http_req_t *http_request(const conn_t *c)
{
    return http_pending(c) ? state_of(c)->req : NULL;
}

int http_ws_accept(conn_t *c, const ws_handlers_t *wh)
{
    if (conn_is_closed(c))
        return -EPIPE;
    http_conn_t *h = state_of(c);
    if (!h || !h->awaiting || !conn_is_open(c) || !http_req_is_websocket(h->req))
        return -EINVAL;
    const char *key = http_req_header(h->req, HTTP_REQ_WS_KEY);
    char accept[WS_ACCEPT_KEY_SIZE];
    int rc = ws_accept_key(key, strlen(key), accept);
    if (rc)
        return rc;
    const char *ext = http_req_header(h->req, HTTP_REQ_WS_EXTENSIONS);
    bool deflate = h->hs->lim.per_message_deflate && ext && ws_deflate_accept(ext, strlen(ext));
    buf_t *b = &h->hs->head;
    buf_reset(b);
    buf_puts(b, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                "Connection: Upgrade\r\nSec-WebSocket-Accept: ");
    buf_append(b, accept, WS_ACCEPT_KEY_SIZE - 1);
    buf_puts(b, deflate ? "\r\nSec-WebSocket-Extensions: " WS_DEFLATE_RESPONSE "\r\n\r\n"
                        : "\r\n\r\n");
    conn_push(c, refbuf_from(b->data, b->len));
    h->awaiting = false;
    h->upgraded = true;
    ws_conn_start(h->hs->ws, c, wh, deflate);
    return 0;
}

/* ==== Input ==== */

/* A head or body deadline passed (the node is already disarmed). */
static void on_request_late(timerq_node_t *n, void *arg)
{
    (void)arg;
    http_conn_t *h = (http_conn_t *)((char *)n - offsetof(http_conn_t, rq_node));
    if (!conn_is_open(h->c) || h->awaiting)
        return;
    if (h->phase == RQ_IDLE) {
        /* a silent keep-alive connection (nothing of a next request, or a head stopped half
         * way): closed without an answer, as Node does. An answer its peer is still taking (a
         * large polling payload) is finished first, bounded by the close timeout's progress
         * rule; closing now would cut it off. */
        if (conn_outq_bytes(h->c))
            conn_drain(h->c);
        else
            conn_close(h->c);
        return;
    }
    count_limit(h->hs, h->phase == RQ_BODY ? STATS_LIMIT_BODY_TIMEOUT : STATS_LIMIT_HEADER_TIMEOUT);
    http_fail(h, -ETIMEDOUT);
}

/*
 * Bytes of a next request's head on a keep-alive connection. As with Node's keepAliveTimeout, the
 * idle deadline runs from the last bytes until the head is complete, so a peer that stops half
 * way is closed as idle; the head deadline bounds the whole head from its first bytes, checked
 * as more arrive. false: too slow, answered 408.
 */
static bool next_head_progress(http_conn_t *h)
{
    uint64_t now = uv_now(h->hs->loop);
    if (!h->next_begun) {
        h->next_begun = true;
        h->next_since = now;
    } else if (now - h->next_since >= h->hs->lim.header_timeout_ms) {
        count_limit(h->hs, STATS_LIMIT_HEADER_TIMEOUT);
        http_fail(h, -ETIMEDOUT);
        return false;
    }
    rq_arm(h, RQ_IDLE);
    return true;
}

static void dispatch(http_conn_t *h)
{
    conn_t *c = h->c;
    rq_disarm(h);
    h->awaiting = true;
    h->deferred = false;
    if (!router_dispatch(h->hs->router, c, h->req))
        http_respond(c, 404, "text/plain", NULL, "Not found", 9);
    if (h->awaiting && !h->deferred) {
        h->awaiting = false;
        conn_close(c); /* the route broke its contract: nothing sensible to answer */
    }
}

/*
 * The first bytes of a connection: a relay hello is answered and consumed here, and may come in
 * pieces (kept in hello_part, at most RELAY_HELLO_LEN bytes: the head deadline bounds the wait).
 * Returns the bytes of *p that are HTTP, after *held (bytes kept earlier that turned out to be
 * HTTP, *nheld of them; a strict prefix of the hello's first 15 bytes, so never a whole request).
 * false: nothing to parse yet, or the connection is closed (a hello for another server).
 */
static bool take_relay_hello(http_conn_t *h, const char **p, size_t *n, const char **held,
                             size_t *nheld)
{
    char answer[RELAY_ANSWER_LEN];
    const char *at = *p;
    size_t len = *n, got = h->hello_got, take = 0;
    if (got) { /* continue the piece kept: at most up to a whole hello from the new bytes */
        take = RELAY_HELLO_LEN - got < len ? RELAY_HELLO_LEN - got : len;
        memcpy(h->hello_part + got, *p, take);
        at = h->hello_part;
        len = got + take;
    }
    int rc = relay_hello_parse(at, len, h->hs->relay_tag, answer);
    if (rc == -EAGAIN) {
        if (!h->hello_part) {
            h->hello_part = xmalloc(RELAY_HELLO_LEN);
            memcpy(h->hello_part, at, len);
        }
        h->hello_got = (uint8_t)len;
        return false;
    }
    h->opened = true;
    *held = h->hello_part; /* freed with the state once parsed (see hello_done) */
    *nheld = 0;
    if (rc < 0) {
        conn_close(h->c);
        return false;
    }
    if (rc > 0) {
        conn_push(h->c, refbuf_from(answer, sizeof(answer)));
        *p += (size_t)rc - got;
        *n -= (size_t)rc - got;
    } else {
        *nheld = got; /* not a hello: what was kept is the start of the request */
    }
    return true;
}

static void hello_done(http_conn_t *h)
{
    free(h->hello_part);
    h->hello_part = NULL;
    h->hello_got = 0;
}

/* Parses and dispatches requests from p[0..n). false: the connection state may be gone. */
static bool feed(http_conn_t *h, conn_t *c, const char *p, size_t n);

static void on_data(conn_t *c, void *state, const char *p, size_t n)
{
    http_conn_t *h = state;
    if (!h->opened && n > 0) {
        const char *held = NULL;
        size_t nheld = 0;
        bool go = take_relay_hello(h, &p, &n, &held, &nheld);
        if (!h->opened)
            return;
        /* the kept bytes are a strict prefix of "STREAMIO-RELAY ": no request ends in them */
        go = go && (!nheld || feed(h, c, held, nheld));
        if (held)
            hello_done(h); /* h lives on until on_release, which the feed may have queued */
        if (!go)
            return;
    }
    feed(h, c, p, n);
}

static bool feed(http_conn_t *h, conn_t *c, const char *p, size_t n)
{
    /* a held request keeps its parsed head: nothing more is parsed until it is answered */
    while (n > 0 && conn_is_open(c) && !h->awaiting) {
        size_t used = 0;
        int rc = http_req_feed(h->req, p, n, &used);
        if (rc < 0) {
            http_fail(h, rc);
            return false;
        }
        p += used;
        n -= used;
        if (!(rc & HTTP_REQ_DONE) && !((rc & HTTP_REQ_HEAD) && http_req_is_upgrade(h->req))) {
            if (rc & HTTP_REQ_HEAD)
                rq_arm(h, RQ_BODY);
            else if (used && h->phase == RQ_IDLE && !next_head_progress(h))
                return false;
            continue;
        }
        dispatch(h);
        if (h->upgraded) {
            /* the connection is ws_conn's now: this state goes, the rest are frames */
            on_release(c, h);
            conn_feed(c, p, n);
            return false;
        }
    }
    return true;
}

static void on_release(conn_t *c, void *state)
{
    (void)c;
    http_conn_t *h = state;
    http_server_t *hs = h->hs;
    rq_disarm(h);
    hello_done(h);
    if (hs->nfree_states < FREE_STATES_MAX && !hs->freeing) {
        h->next_free = hs->free_states;
        hs->free_states = h;
        hs->nfree_states++;
    } else {
        http_req_free(h->req);
        free(h);
    }
    hs->live--;
    server_maybe_free(hs);
}

/* ==== Server ==== */

static http_conn_t *conn_state_new(http_server_t *hs)
{
    http_conn_t *h = hs->free_states;
    if (h) {
        hs->free_states = h->next_free;
        hs->nfree_states--;
        http_req_t *req = h->req;
        http_req_reuse(req);
        *h = (http_conn_t){.req = req};
    } else {
        h = xcalloc(1, sizeof(*h));
        h->req = http_req_new(hs->lim.max_header_bytes);
        http_req_set_max_body(h->req, hs->lim.max_body);
    }
    h->hs = hs;
    hs->live++;
    return h;
}

int http_server_new(http_server_t **out, uv_loop_t *loop, const http_limits_t *lim,
                    const char *relay_tag, const router_t *router, stats_worker_t *stats)
{
    if (!out || !loop || !router || !relay_tag || strlen(relay_tag) != RELAY_HELLO_TAG_LEN)
        return -EINVAL;
    http_server_t *hs = xcalloc(1, sizeof(*hs));
    memcpy(hs->relay_tag, relay_tag, RELAY_HELLO_TAG_LEN + 1);
    if (lim)
        hs->lim = *lim;
    if (!hs->lim.max_header_bytes)
        hs->lim.max_header_bytes = HTTP_DEFAULT_MAX_HEADER_BYTES;
    if (!hs->lim.max_body)
        hs->lim.max_body = HTTP_DEFAULT_MAX_BODY;
    if (!hs->lim.header_timeout_ms)
        hs->lim.header_timeout_ms = HTTP_DEFAULT_HEADER_TIMEOUT_MS;
    if (!hs->lim.body_timeout_ms)
        hs->lim.body_timeout_ms = HTTP_DEFAULT_BODY_TIMEOUT_MS;
    if (!hs->lim.keepalive_timeout_ms)
        hs->lim.keepalive_timeout_ms = HTTP_DEFAULT_KEEPALIVE_TIMEOUT_MS;
    hs->loop = loop;
    hs->router = router;
    hs->limit_stats = stats;
    buf_init(&hs->head);
    buf_init(&hs->gz);
    hs->ws = ws_ctx_new(hs->lim.max_ws_message, stats);
    conn_limits_t cl = {.max_outq_bytes = hs->lim.max_outq_bytes,
                        .close_timeout_ms = hs->lim.close_timeout_ms,
                        .no_io_uring = hs->lim.no_io_uring};
    int rc = conn_ctx_new(&hs->conns, loop, &cl, stats);
    const uint64_t rq_ms[RQ_PHASES] = {[RQ_HEAD] = hs->lim.header_timeout_ms,
                                       [RQ_BODY] = hs->lim.body_timeout_ms,
                                       [RQ_IDLE] = hs->lim.keepalive_timeout_ms};
    for (int i = 0; i < RQ_PHASES && !rc; i++)
        rc = timerq_new(&hs->rq[i], loop, rq_ms[i], on_request_late, hs);
    if (rc) {
        http_server_free(hs);
        return rc;
    }
    *out = hs;
    return 0;
}

int http_server_accept(http_server_t *hs, uv_stream_t *server, conn_t **out)
{
    http_conn_t *h = conn_state_new(hs);
    int rc = conn_accept(hs->conns, server, &proto, h, &h->c);
    if (rc)
        return rc;
    rq_arm(h, RQ_HEAD);
    if (out)
        *out = h->c;
    return 0;
}

int http_server_adopt(http_server_t *hs, int fd, const char *pre, size_t len, conn_t **out)
{
    http_conn_t *h = conn_state_new(hs);
    int rc = conn_adopt(hs->conns, fd, &proto, h, &h->c);
    if (rc)
        return rc;
    conn_t *c = h->c;
    h->opened = true; /* a sibling's rebuilt request: any hello was answered there */
    rq_arm(h, RQ_HEAD);
    conn_feed(c, pre, len);
    if (out)
        *out = c;
    return 0;
}

void http_server_stats(const http_server_t *hs, http_stats_t *out)
{
    conn_ctx_stats(hs->conns, &out->conn);
    out->http_errors = hs->http_errors;
    out->timeouts = hs->timeouts;
    out->ws_contexts = ws_ctx_contexts(hs->ws);
}

void http_server_free(http_server_t *hs)
{
    if (!hs)
        return;
    hs->freeing = true;
    conn_ctx_free(hs->conns);
    for (int i = 0; i < RQ_PHASES; i++)
        timerq_close(hs->rq[i]);
    ws_ctx_free(hs->ws);
    server_maybe_free(hs);
}
