/*
 * conn: states, output queue and close sequence.
 *
 * Output: a per-connection ring of (refbuf, offset) slots. Shared frames are referenced, owned
 * bytes (HTTP responses, per-socket frames, wslay's control frames) are refbufs of their own.
 * Queuing marks the connection dirty; the context's check handle flushes every dirty connection
 * once per loop iteration. An idle handle is active while the dirty list is non-empty so that
 * output queued outside the poll phase (timers, other check handles) does not wait for the next
 * I/O event: libuv polls with a zero timeout while an idle handle is active.
 *
 * Close: conn_close is immediate (uv_close). The graceful path drains the queue, shuts the write
 * side down, and waits for the peer's FIN, bounded by close_timeout_ms. The memory is released
 * once the handles are closed and no write or shutdown request is pending.
 */
#include "worker/net/conn.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <wslay/wslay.h>

#include "common/buf.h"
#include "common/proto/ws_feed.h"
#include "common/proto/ws_frame.h"
#include "common/xalloc.h"
#include "worker/net/timerq.h"

#define READ_BUF_SIZE 65536
#define FLUSH_IOV_MAX 64
/* uv_write_t stores up to 4 buffers inline (bufsml); more would make libuv malloc per write. */
#define WRITE_IOV_INLINE 4
/* A staging buffer that grew past this (a burst of pongs) is released instead of kept. */
#define STAGE_KEEP 4096
#define SLOTS_MIN 8

enum conn_state {
    ST_HTTP,       /* reading requests */
    ST_WS,         /* WebSocket open */
    ST_WS_CLOSING, /* our Close is queued; waiting for the peer's */
    ST_DRAINING,   /* flushing the queue, then shutdown */
    ST_LINGER,     /* write side shut down; waiting for the peer's FIN */
    ST_CLOSED,     /* uv_close called; waiting for the callbacks */
};

typedef struct oslot {
    refbuf_t *rb;
    size_t off;
} oslot_t;

struct conn {
    uv_tcp_t tcp;
    /* never both pending: the shutdown waits for the last write, and nothing is written after */
    union {
        uv_write_t wreq;
        uv_shutdown_t sreq;
    };
    timerq_node_t rq_node;    /* head or body deadline of the request being read (slowloris) */
    timerq_node_t close_node; /* close_timeout_ms deadline of a graceful close */
    conn_ctx_t *ctx;
    void *ud;
    conn_t *prev, *next;   /* ctx->conns */
    conn_t *dprev, *dnext; /* ctx->dirty */
    http_req_t *req;       /* until the upgrade */
    /* wslay: only while a message is in flight or a Close is under way; see ws_input */
    wslay_event_context_ptr ws;
    buf_t stage; /* wslay output collected during one wslay_event_send */
    oslot_t *slots;
    uint32_t cap; /* power of two */
    uint32_t head;
    uint32_t count;
    uint32_t inflight; /* slots at the head owned by the pending uv_write */
    size_t outq_bytes;
    ws_feed_t rd; /* bytes wslay may read (set only inside the read callback); frame scan */
    enum conn_state st;
    uint8_t handles; /* open libuv handles: tcp */
    bool announced;  /* accepted: on_close is owed */
    bool awaiting;   /* on_request running, not answered yet */
    bool deferred;   /* awaiting beyond on_request (conn_http_defer) */
    bool dirty;
    bool writing;
    bool shutting;
    bool peer_eof;
    bool close_armed; /* close_node was armed once (it is never re-armed) */
    bool ws_on;       /* conn_ws_accept succeeded */
    bool ws_dead;     /* wslay returned an error: never call it again */
    bool rq_body;     /* rq_node is in the body queue, not the head queue */
    bool served;      /* at least one request answered: an idle keep-alive is not a refusal */
    bool partial;     /* bytes of the next request arrived since the last dispatch */
    bool ws_told;     /* the first Close wslay sent was looked at (a 1009 is counted) */
};

struct conn_ctx {
    uv_loop_t *loop;
    conn_limits_t lim;
    conn_handlers_t h;
    uv_check_t check;
    uv_idle_t idle;
    timerq_t *headq, *bodyq; /* request deadlines (slowloris), one node per connection */
    timerq_t *closeq;        /* graceful close deadlines */
    int handles;
    bool freeing;
    conn_t *conns;
    conn_t *dirty;
    buf_t head; /* scratch for response heads */
    conn_stats_t stats;
    uv_buf_t iov[FLUSH_IOV_MAX];
    char *rbuf;
};

static void flush(conn_t *c);
static void ws_input(conn_t *c, const char *p, size_t n);
static void on_request_late(timerq_node_t *n, void *arg);
static void on_close_late(timerq_node_t *n, void *arg);

static void refused(conn_ctx_t *ctx, conn_refusal_t why)
{
    if (ctx->h.on_refused)
        ctx->h.on_refused(why, ctx->h.ud);
}

/* ==== Context ==== */

static void ctx_maybe_free(conn_ctx_t *ctx)
{
    if (!ctx->freeing || ctx->handles || ctx->conns)
        return;
    buf_free(&ctx->head);
    free(ctx->rbuf);
    free(ctx);
}

static void on_ctx_handle_closed(uv_handle_t *h)
{
    conn_ctx_t *ctx = h->data;
    ctx->handles--;
    ctx_maybe_free(ctx);
}

static void on_check(uv_check_t *h)
{
    conn_ctx_t *ctx = h->data;
    while (ctx->dirty) {
        conn_t *c = ctx->dirty;
        ctx->dirty = c->dnext;
        if (ctx->dirty)
            ctx->dirty->dprev = NULL;
        c->dirty = false;
        flush(c);
    }
    uv_check_stop(&ctx->check);
    uv_idle_stop(&ctx->idle);
}

static void on_idle(uv_idle_t *h)
{
    (void)h; /* only active to keep the next poll from blocking while output is pending */
}

int conn_ctx_new(conn_ctx_t **out, uv_loop_t *loop, const conn_limits_t *lim,
                 const conn_handlers_t *h)
{
    if (!out || !loop || !h || !h->on_request || !h->on_ws_text || !h->on_ws_binary || !h->on_close)
        return -EINVAL;
    conn_ctx_t *ctx = xcalloc(1, sizeof(*ctx));
    ctx->rbuf = xmalloc(READ_BUF_SIZE);
    ctx->loop = loop;
    ctx->h = *h;
    if (lim)
        ctx->lim = *lim;
    if (!ctx->lim.max_header_bytes)
        ctx->lim.max_header_bytes = CONN_DEFAULT_MAX_HEADER_BYTES;
    if (!ctx->lim.max_ws_message)
        ctx->lim.max_ws_message = CONN_DEFAULT_MAX_WS_MESSAGE;
    if (!ctx->lim.max_outq_bytes)
        ctx->lim.max_outq_bytes = CONN_DEFAULT_MAX_OUTQ_BYTES;
    if (!ctx->lim.close_timeout_ms)
        ctx->lim.close_timeout_ms = CONN_DEFAULT_CLOSE_TIMEOUT_MS;
    if (!ctx->lim.max_body)
        ctx->lim.max_body = CONN_DEFAULT_MAX_BODY;
    if (!ctx->lim.header_timeout_ms)
        ctx->lim.header_timeout_ms = CONN_DEFAULT_HEADER_TIMEOUT_MS;
    if (!ctx->lim.body_timeout_ms)
        ctx->lim.body_timeout_ms = CONN_DEFAULT_BODY_TIMEOUT_MS;
    buf_init(&ctx->head);
    int rc = uv_check_init(loop, &ctx->check);
    if (rc) {
        free(ctx->rbuf);
        free(ctx);
        return rc;
    }
    ctx->check.data = ctx;
    ctx->handles = 1;
    rc = uv_idle_init(loop, &ctx->idle);
    if (rc) {
        ctx->freeing = true;
        uv_close((uv_handle_t *)&ctx->check, on_ctx_handle_closed);
        return rc;
    }
    ctx->idle.data = ctx;
    ctx->handles = 2;
    rc = timerq_new(&ctx->headq, loop, ctx->lim.header_timeout_ms, on_request_late, ctx);
    if (rc == 0)
        rc = timerq_new(&ctx->bodyq, loop, ctx->lim.body_timeout_ms, on_request_late, ctx);
    if (rc == 0)
        rc = timerq_new(&ctx->closeq, loop, ctx->lim.close_timeout_ms, on_close_late, ctx);
    if (rc) {
        conn_ctx_free(ctx);
        return rc;
    }
    *out = ctx;
    return 0;
}

void conn_ctx_free(conn_ctx_t *ctx)
{
    if (!ctx)
        return;
    ctx->freeing = true;
    for (conn_t *c = ctx->conns, *next; c; c = next) {
        next = c->next;
        conn_close(c);
    }
    timerq_close(ctx->headq);
    timerq_close(ctx->bodyq);
    timerq_close(ctx->closeq);
    uv_close((uv_handle_t *)&ctx->check, on_ctx_handle_closed);
    uv_close((uv_handle_t *)&ctx->idle, on_ctx_handle_closed);
}

void conn_ctx_stats(const conn_ctx_t *ctx, conn_stats_t *out)
{
    *out = ctx->stats;
}

/* ==== Output queue ==== */

static void mark_dirty(conn_t *c)
{
    conn_ctx_t *ctx = c->ctx;
    if (c->dirty || c->st == ST_CLOSED)
        return;
    if (!ctx->dirty) {
        uv_check_start(&ctx->check, on_check);
        uv_idle_start(&ctx->idle, on_idle);
    }
    c->dirty = true;
    c->dprev = NULL;
    c->dnext = ctx->dirty;
    if (ctx->dirty)
        ctx->dirty->dprev = c;
    ctx->dirty = c;
}

static void unmark_dirty(conn_t *c)
{
    if (!c->dirty)
        return;
    if (c->dprev)
        c->dprev->dnext = c->dnext;
    else
        c->ctx->dirty = c->dnext;
    if (c->dnext)
        c->dnext->dprev = c->dprev;
    c->dirty = false;
}

static oslot_t *slot_at(const conn_t *c, uint32_t i)
{
    return &c->slots[(c->head + i) & (c->cap - 1)];
}

static size_t slot_left(const oslot_t *s)
{
    return refbuf_len(s->rb) - s->off;
}

/* Takes ownership of rb's reference. */
static void q_push(conn_t *c, refbuf_t *rb)
{
    if (c->count == c->cap) {
        uint32_t ncap = c->cap ? c->cap * 2 : SLOTS_MIN;
        oslot_t *ns = xmalloc(ncap * sizeof(*ns));
        for (uint32_t i = 0; i < c->count; i++)
            ns[i] = *slot_at(c, i);
        free(c->slots);
        c->slots = ns;
        c->cap = ncap;
        c->head = 0;
    }
    *slot_at(c, c->count) = (oslot_t){.rb = rb, .off = 0};
    c->count++;
    c->outq_bytes += refbuf_len(rb);
    mark_dirty(c);
}

static void q_pop(conn_t *c)
{
    oslot_t *s = slot_at(c, 0);
    c->outq_bytes -= slot_left(s);
    refbuf_unref(s->rb);
    c->head = (c->head + 1) & (c->cap - 1);
    c->count--;
}

static void q_consume(conn_t *c, size_t n)
{
    while (n > 0) {
        oslot_t *s = slot_at(c, 0);
        size_t left = slot_left(s);
        if (n < left) {
            s->off += n;
            c->outq_bytes -= n;
            return;
        }
        n -= left;
        q_pop(c);
    }
}

static uint32_t fill_iov(conn_t *c, uint32_t max, size_t *bytes)
{
    uint32_t n = c->count < max ? c->count : max;
    *bytes = 0;
    for (uint32_t i = 0; i < n; i++) {
        oslot_t *s = slot_at(c, i);
        c->ctx->iov[i] = uv_buf_init(refbuf_data(s->rb) + s->off, (unsigned int)slot_left(s));
        *bytes += slot_left(s);
    }
    return n;
}

/* ==== Request deadlines ==== */

static void rq_disarm(conn_t *c)
{
    timerq_remove(c->rq_body ? c->ctx->bodyq : c->ctx->headq, &c->rq_node);
}

/* Waiting for the head of the next request (after the accept or a keep-alive answer). */
static void rq_arm_head(conn_t *c)
{
    rq_disarm(c);
    c->rq_body = false;
    c->partial = false;
    timerq_add(c->ctx->headq, &c->rq_node);
}

static void rq_arm_body(conn_t *c)
{
    rq_disarm(c);
    c->rq_body = true;
    timerq_add(c->ctx->bodyq, &c->rq_node);
}

/* ==== Close sequence ==== */

static void maybe_release(conn_t *c)
{
    if (c->st != ST_CLOSED || c->handles || c->writing || c->shutting)
        return;
    conn_ctx_t *ctx = c->ctx;
    if (c->announced) {
        ctx->h.on_close(c, c->ud);
        ctx->stats.closed++;
    }
    while (c->count)
        q_pop(c);
    free(c->slots);
    buf_free(&c->stage);
    http_req_free(c->req);
    if (c->ws) {
        wslay_event_context_free(c->ws);
        ctx->stats.ws_contexts--;
    }
    if (c->prev)
        c->prev->next = c->next;
    else
        ctx->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    ctx->stats.live--;
    free(c);
    ctx_maybe_free(ctx);
}

static void on_handle_closed(uv_handle_t *h)
{
    conn_t *c = h->data;
    c->handles--;
    maybe_release(c);
}

void conn_close(conn_t *c)
{
    if (c->st == ST_CLOSED)
        return;
    c->st = ST_CLOSED;
    ws_feed_window(&c->rd, NULL, 0);
    unmark_dirty(c);
    rq_disarm(c);
    /* Slots owned by a pending uv_write are released by its (cancelled) callback. */
    while (c->count > c->inflight) {
        oslot_t *s = slot_at(c, c->count - 1);
        c->outq_bytes -= slot_left(s);
        refbuf_unref(s->rb);
        c->count--;
    }
    timerq_remove(c->ctx->closeq, &c->close_node);
    uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
}

static void slow_consumer(conn_t *c)
{
    c->ctx->stats.slow_consumers++;
    refused(c->ctx, CONN_REFUSED_OUTPUT);
    conn_close(c);
}

static void on_close_late(timerq_node_t *n, void *arg)
{
    (void)arg;
    conn_close((conn_t *)((char *)n - offsetof(conn_t, close_node)));
}

/* Once per connection: the first step of a graceful close bounds the whole sequence. */
static void arm_timer(conn_t *c)
{
    if (c->close_armed || c->st == ST_CLOSED)
        return;
    timerq_add(c->ctx->closeq, &c->close_node);
    c->close_armed = true;
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    conn_t *c = req->data;
    c->shutting = false;
    if (c->st == ST_CLOSED) {
        maybe_release(c);
        return;
    }
    if (status < 0 || c->peer_eof)
        conn_close(c);
}

/* DRAINING with an empty queue and no write pending. */
static void drained(conn_t *c)
{
    if (c->peer_eof) {
        conn_close(c);
        return;
    }
    /* A FIN first and a close after the peer's own FIN: closing with unread input would send
     * an RST that can destroy the response still in flight. */
    c->sreq.data = c;
    if (uv_shutdown(&c->sreq, (uv_stream_t *)&c->tcp, on_shutdown) != 0) {
        conn_close(c);
        return;
    }
    c->shutting = true;
    c->st = ST_LINGER;
}

static void begin_drain(conn_t *c)
{
    if (c->st >= ST_DRAINING)
        return;
    c->st = ST_DRAINING;
    arm_timer(c);
    if (c->writing)
        return;
    if (c->count)
        mark_dirty(c);
    else
        drained(c);
}

/* ==== Write path ==== */

static void on_write(uv_write_t *req, int status)
{
    conn_t *c = req->data;
    size_t wrote = 0;
    c->writing = false;
    while (c->inflight) {
        wrote += slot_left(slot_at(c, 0));
        q_pop(c);
        c->inflight--;
    }
    if (status == 0)
        c->ctx->stats.bytes_out += wrote;
    if (c->st == ST_CLOSED) {
        maybe_release(c);
        return;
    }
    if (status < 0) {
        conn_close(c);
        return;
    }
    if (c->count)
        mark_dirty(c);
    else if (c->st == ST_DRAINING)
        drained(c);
}

static void flush(conn_t *c)
{
    if (c->st == ST_CLOSED || c->writing)
        return;
    uv_stream_t *s = (uv_stream_t *)&c->tcp;
    while (c->count) {
        size_t want;
        uint32_t n = fill_iov(c, FLUSH_IOV_MAX, &want);
        int r = uv_try_write(s, c->ctx->iov, n);
        if (r == UV_EAGAIN)
            break;
        if (r < 0) {
            conn_close(c);
            return;
        }
        c->ctx->stats.bytes_out += (size_t)r;
        q_consume(c, (size_t)r);
        if ((size_t)r < want)
            break;
    }
    if (!c->count) {
        if (c->st == ST_DRAINING)
            drained(c);
        return;
    }
    size_t want;
    uint32_t n = fill_iov(c, WRITE_IOV_INLINE, &want);
    c->wreq.data = c;
    if (uv_write(&c->wreq, s, c->ctx->iov, n, on_write) != 0) {
        conn_close(c);
        return;
    }
    c->writing = true;
    c->inflight = n;
}

/* ==== HTTP ==== */

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

/* Head (built in the context's scratch buffer) and body in one refbuf. 0 or -ENOBUFS. */
static int queue_response(conn_t *c, int status, const char *ctype, const char *extra,
                          const void *body, size_t len, bool keep, bool send_body)
{
    buf_t *h = &c->ctx->head;
    buf_reset(h);
    buf_printf(h, "HTTP/1.1 %d %s\r\nConnection: %s\r\n", status, reason_phrase(status),
               keep ? "keep-alive" : "close");
    if (ctype)
        buf_printf(h, "Content-type: %s\r\n", ctype);
    buf_printf(h, "Content-Length: %zu\r\n", len);
    if (extra)
        buf_puts(h, extra);
    buf_puts(h, "\r\n");
    size_t blen = send_body ? len : 0;
    size_t max = c->ctx->lim.max_outq_bytes;
    if (blen > max || h->len > max - blen || c->outq_bytes > max - blen - h->len)
        return -ENOBUFS;
    refbuf_t *rb = refbuf_new(h->len + blen);
    memcpy(refbuf_data(rb), h->data, h->len);
    if (blen)
        memcpy(refbuf_data(rb) + h->len, body, blen);
    q_push(c, rb);
    return 0;
}

static void http_fail(conn_t *c, int err)
{
    rq_disarm(c);
    if (err == -ETIMEDOUT)
        c->ctx->stats.timeouts++;
    else
        c->ctx->stats.http_errors++;
    if (err == -E2BIG)
        refused(c->ctx, CONN_REFUSED_HEADER_SIZE);
    else if (err == -EMSGSIZE)
        refused(c->ctx, CONN_REFUSED_BODY_SIZE);
    int status = err == -E2BIG ? 431 : err == -EMSGSIZE ? 413 : err == -ETIMEDOUT ? 408 : 400;
    if (queue_response(c, status, NULL, NULL, NULL, 0, false, false) != 0) {
        conn_close(c);
        return;
    }
    begin_drain(c);
}

/* A head or body deadline passed (the node is already disarmed). */
static void on_request_late(timerq_node_t *n, void *arg)
{
    (void)arg;
    conn_t *c = (conn_t *)((char *)n - offsetof(conn_t, rq_node));
    if (c->st != ST_HTTP || c->awaiting)
        return;
    if (c->served && !c->partial && !c->rq_body) {
        conn_close(c); /* an idle keep-alive connection: nothing to answer */
        return;
    }
    refused(c->ctx, c->rq_body ? CONN_REFUSED_BODY_TIMEOUT : CONN_REFUSED_HEADER_TIMEOUT);
    http_fail(c, -ETIMEDOUT);
}

static void dispatch(conn_t *c)
{
    rq_disarm(c);
    c->awaiting = true;
    c->deferred = false;
    c->ctx->h.on_request(c, c->req, c->ud);
    if (c->awaiting && !c->deferred) {
        c->awaiting = false;
        conn_close(c); /* the handler broke its contract: nothing sensible to answer */
    }
}

static void http_input(conn_t *c, const char *p, size_t n)
{
    /* a held request keeps its parsed head: nothing more is parsed until it is answered */
    while (n > 0 && c->st == ST_HTTP && !c->awaiting) {
        size_t used = 0;
        int rc = http_req_feed(c->req, p, n, &used);
        if (rc < 0) {
            http_fail(c, rc);
            return;
        }
        c->partial = c->partial || used > 0;
        p += used;
        n -= used;
        if (!(rc & HTTP_REQ_DONE) && !((rc & HTTP_REQ_HEAD) && http_req_is_upgrade(c->req))) {
            if (rc & HTTP_REQ_HEAD)
                rq_arm_body(c);
            continue;
        }
        dispatch(c);
        if (c->ws_on) {
            http_req_free(c->req);
            c->req = NULL;
            if (n && (c->st == ST_WS || c->st == ST_WS_CLOSING))
                ws_input(c, p, n);
            return;
        }
    }
}

int conn_http_respond(conn_t *c, int status, const char *content_type, const char *extra_headers,
                      const void *body, size_t len)
{
    if (c->st == ST_CLOSED)
        return -EPIPE;
    if (!c->awaiting || c->st != ST_HTTP || status < 200 || status > 599 || (!body && len))
        return -EINVAL;
    bool keep = http_req_keep_alive(c->req) && !http_req_is_upgrade(c->req);
    bool send_body = strcmp(http_req_method(c->req), "HEAD") != 0;
    if (queue_response(c, status, content_type, extra_headers, body, len, keep, send_body)) {
        slow_consumer(c);
        return -ENOBUFS;
    }
    c->awaiting = false;
    c->deferred = false;
    c->served = true;
    if (!keep)
        begin_drain(c);
    else
        rq_arm_head(c);
    return 0;
}

int conn_http_defer(conn_t *c)
{
    if (!c->awaiting || c->st != ST_HTTP)
        return -EINVAL;
    c->deferred = true;
    return 0;
}

bool conn_http_pending(const conn_t *c)
{
    return c->awaiting && c->st == ST_HTTP;
}

const http_req_t *conn_request(const conn_t *c)
{
    return conn_http_pending(c) ? c->req : NULL;
}

/* ==== WebSocket ==== */

static ssize_t ws_recv_cb(wslay_event_context_ptr ws, uint8_t *buf, size_t len, int flags,
                          void *user_data)
{
    (void)flags;
    return ws_feed_read(ws, &((conn_t *)user_data)->rd, buf, len);
}

static ssize_t ws_send_cb(wslay_event_context_ptr ws, const uint8_t *data, size_t len, int flags,
                          void *user_data)
{
    (void)flags;
    return ws_feed_write(ws, &((conn_t *)user_data)->stage, data, len);
}

static void ws_msg_cb(wslay_event_context_ptr ws, const struct wslay_event_on_msg_recv_arg *arg,
                      void *user_data)
{
    (void)ws;
    conn_t *c = user_data;
    if (c->st != ST_WS)
        return;
    /* wslay passes NULL for an empty message */
    const uint8_t *msg = arg->msg ? arg->msg : (const uint8_t *)"";
    if (arg->opcode == WSLAY_TEXT_FRAME)
        c->ctx->h.on_ws_text(c, (const char *)msg, arg->msg_length, c->ud);
    else if (arg->opcode == WSLAY_BINARY_FRAME)
        c->ctx->h.on_ws_binary(c, msg, arg->msg_length, c->ud);
}

/* Moves whatever wslay has queued (pongs, Close) into the output queue. */
static int ws_pump(conn_t *c)
{
    if (c->ws_dead)
        return -EPIPE;
    if (!c->ws || !wslay_event_want_write(c->ws))
        return 0;
    int rc = 0;
    if (wslay_event_send(c->ws) != 0) {
        c->ws_dead = true;
        rc = -EPIPE;
    } else if (c->stage.len) {
        q_push(c, refbuf_from(c->stage.data, c->stage.len));
    }
    if (c->stage.cap > STAGE_KEEP)
        buf_free(&c->stage);
    else
        buf_reset(&c->stage);
    return rc;
}

/* After wslay ran: flush its output and follow the closing handshake. */
static void ws_after_io(conn_t *c)
{
    if (c->st == ST_CLOSED)
        return;
    if (ws_pump(c) != 0) {
        conn_close(c);
        return;
    }
    if (c->outq_bytes > c->ctx->lim.max_outq_bytes) {
        slow_consumer(c);
        return;
    }
    if (wslay_event_get_close_sent(c->ws)) {
        if (wslay_event_get_close_received(c->ws) || !wslay_event_get_read_enabled(c->ws))
            begin_drain(c);
        else if (c->st == ST_WS) {
            c->st = ST_WS_CLOSING;
            arm_timer(c);
        }
    } else if (!wslay_event_get_read_enabled(c->ws)) {
        conn_close(c);
    }
}

/* Creates the wslay context unless one is held. */
static void ws_hold(conn_t *c)
{
    static const struct wslay_event_callbacks cb = {
        .recv_callback = ws_recv_cb,
        .send_callback = ws_send_cb,
        .on_msg_recv_callback = ws_msg_cb,
    };
    if (c->ws)
        return;
    c->ws = ws_feed_context_new(&cb, c, c->ctx->lim.max_ws_message);
    c->ctx->stats.ws_contexts++;
}

/* Frees the wslay context between messages (ws_feed_at_rest): an idle WebSocket then costs no
 * more than its conn_t. */
static void ws_release_if_idle(conn_t *c)
{
    if (c->st != ST_WS || !c->ws || c->ws_dead || !ws_feed_at_rest(&c->rd, c->ws))
        return;
    wslay_event_context_free(c->ws);
    c->ws = NULL;
    c->ctx->stats.ws_contexts--;
    buf_free(&c->stage);
}

static void ws_input(conn_t *c, const char *p, size_t n)
{
    if (c->ws_dead)
        return;
    ws_hold(c);
    ws_feed_window(&c->rd, p, n);
    int r = wslay_event_recv(c->ws);
    ws_feed_window(&c->rd, NULL, 0);
    if (r != 0) {
        /* e.g. a fragmented or oversized control frame: wslay queued a Close it can no longer
         * send, since it must not be called again */
        c->ws_dead = true;
        conn_close(c);
        return;
    }
    ws_after_io(c);
    /* wslay answers an oversized message with Close 1009 on its own; count it once sent */
    if (!c->ws_told && wslay_event_get_close_sent(c->ws)) {
        c->ws_told = true;
        if (wslay_event_get_status_code_sent(c->ws) == WSLAY_CODE_MESSAGE_TOO_BIG)
            refused(c->ctx, CONN_REFUSED_WS_MESSAGE);
    }
    ws_release_if_idle(c);
}

int conn_ws_accept(conn_t *c)
{
    if (c->st == ST_CLOSED)
        return -EPIPE;
    if (!c->awaiting || c->st != ST_HTTP || !http_req_is_websocket(c->req))
        return -EINVAL;
    const char *key = http_req_header(c->req, HTTP_REQ_WS_KEY);
    char accept[WS_ACCEPT_KEY_SIZE];
    int rc = ws_accept_key(key, strlen(key), accept);
    if (rc)
        return rc;
    buf_t *h = &c->ctx->head;
    buf_reset(h);
    buf_printf(h,
               "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
               "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
               accept);
    q_push(c, refbuf_from(h->data, h->len));
    c->awaiting = false;
    c->st = ST_WS;
    c->ws_on = true;
    return 0;
}

/* Common checks before a data frame is appended; leaves wslay at a frame boundary. */
static int ws_send_prepare(conn_t *c, size_t len)
{
    if (!c->ws_on)
        return c->st == ST_CLOSED ? -EPIPE : -EINVAL;
    if (c->st != ST_WS || c->ws_dead)
        return -EPIPE;
    size_t max = c->ctx->lim.max_outq_bytes;
    if (len > max || c->outq_bytes > max - len) {
        slow_consumer(c);
        return -ENOBUFS;
    }
    /* wslay's pending control frames go first, so our frame cannot land inside one of them */
    int rc = ws_pump(c);
    if (rc)
        conn_close(c);
    return rc;
}

int conn_ws_send_text(conn_t *c, const char *p, size_t len)
{
    uint8_t hdr[WS_FRAME_HEADER_MAX];
    size_t hlen = ws_frame_header(hdr, WS_FRAME_TEXT, len);
    if (len > SIZE_MAX - hlen)
        return -EINVAL;
    int rc = ws_send_prepare(c, hlen + len);
    if (rc)
        return rc;
    refbuf_t *rb = refbuf_new(hlen + len);
    memcpy(refbuf_data(rb), hdr, hlen);
    if (len)
        memcpy(refbuf_data(rb) + hlen, p, len);
    q_push(c, rb);
    return 0;
}

int conn_ws_send_frame(conn_t *c, refbuf_t *frame)
{
    if (!frame)
        return -EINVAL;
    int rc = ws_send_prepare(c, refbuf_len(frame));
    if (rc)
        return rc;
    if (refbuf_len(frame) != 0)
        q_push(c, refbuf_ref(frame));
    return 0;
}

static bool close_code_valid(uint16_t code)
{
    return code == 0 ||
           (code >= 1000 && code <= 1011 && code != 1004 && code != 1005 && code != 1006) ||
           (code >= 3000 && code <= 4999);
}

int conn_ws_close(conn_t *c, uint16_t code)
{
    if (!c->ws_on || !close_code_valid(code))
        return -EINVAL;
    if (c->st != ST_WS)
        return 0;
    if (c->ws_dead) {
        conn_close(c);
        return 0;
    }
    ws_hold(c);
    int r = wslay_event_queue_close(c->ws, code, NULL, 0);
    if (r != 0 && r != WSLAY_ERR_NO_MORE_MSG) {
        conn_close(c);
        return 0;
    }
    ws_after_io(c);
    return 0;
}

/* ==== Accept, read ==== */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    conn_t *c = h->data;
    *buf = uv_buf_init(c->ctx->rbuf, READ_BUF_SIZE);
}

static void on_read_end(conn_t *c, ssize_t err)
{
    if (err != UV_EOF || c->st == ST_LINGER) {
        conn_close(c);
        return;
    }
    c->peer_eof = true;
    if (c->st == ST_DRAINING)
        return;
    if (c->count == 0 && !c->writing) {
        conn_close(c);
        return;
    }
    begin_drain(c); /* e.g. a response queued just before the client's FIN */
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    conn_t *c = s->data;
    if (nread == 0 || c->st == ST_CLOSED)
        return;
    if (nread < 0) {
        on_read_end(c, nread);
        return;
    }
    c->ctx->stats.bytes_in += (uint64_t)nread;
    switch (c->st) {
    case ST_HTTP:
        http_input(c, buf->base, (size_t)nread);
        break;
    case ST_WS:
    case ST_WS_CLOSING:
        ws_input(c, buf->base, (size_t)nread);
        break;
    default:
        break; /* draining or lingering: the peer's bytes are no longer wanted */
    }
}

/* Allocates a connection and its TCP handle; the handle still has no socket. */
static int conn_alloc(conn_ctx_t *ctx, conn_t **out)
{
    conn_t *c = xcalloc(1, sizeof(*c));
    c->ctx = ctx;
    c->ud = ctx->h.ud;
    buf_init(&c->stage);
    c->req = http_req_new(ctx->lim.max_header_bytes);
    http_req_set_max_body(c->req, ctx->lim.max_body);
    int rc = uv_tcp_init(ctx->loop, &c->tcp);
    if (rc) {
        http_req_free(c->req);
        free(c);
        return rc;
    }
    c->tcp.data = c;
    c->handles = 1;
    c->next = ctx->conns;
    if (ctx->conns)
        ctx->conns->prev = c;
    ctx->conns = c;
    ctx->stats.live++;
    *out = c;
    return 0;
}

static int conn_start(conn_t *c, conn_t **out)
{
    int rc = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    if (rc) {
        conn_close(c); /* not announced: released without on_close */
        return rc;
    }
    (void)uv_tcp_nodelay(&c->tcp, 1); /* latency only: frames are already batched per turn */
    c->announced = true;
    c->ctx->stats.accepted++;
    rq_arm_head(c);
    if (out)
        *out = c;
    return 0;
}

int conn_accept(conn_ctx_t *ctx, uv_stream_t *server, conn_t **out)
{
    conn_t *c;
    int rc = conn_alloc(ctx, &c);
    if (rc)
        return rc;
    rc = uv_accept(server, (uv_stream_t *)&c->tcp);
    if (rc) {
        conn_close(c);
        return rc;
    }
    return conn_start(c, out);
}

int conn_adopt(conn_ctx_t *ctx, int fd, const char *pre, size_t len, conn_t **out)
{
    conn_t *c;
    int rc = conn_alloc(ctx, &c);
    if (rc) {
        close(fd);
        return rc;
    }
    rc = uv_tcp_open(&c->tcp, fd);
    if (rc) {
        close(fd);
        conn_close(c);
        return rc;
    }
    rc = conn_start(c, out);
    if (rc == 0 && len)
        http_input(c, pre, len);
    return rc;
}

int conn_fileno(const conn_t *c)
{
    uv_os_fd_t fd;
    if (c->st == ST_CLOSED || uv_fileno((const uv_handle_t *)&c->tcp, &fd) != 0)
        return -EBADF;
    return fd;
}

void conn_set_data(conn_t *c, void *ud)
{
    c->ud = ud;
}

void *conn_data(const conn_t *c)
{
    return c->ud;
}

size_t conn_outq_bytes(const conn_t *c)
{
    return c->outq_bytes;
}

bool conn_is_ws(const conn_t *c)
{
    return c->ws_on;
}

int conn_peer(const conn_t *c, struct sockaddr_storage *out)
{
    int len = sizeof(*out);
    return uv_tcp_getpeername(&c->tcp, (struct sockaddr *)out, &len);
}
