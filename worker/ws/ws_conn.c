/*
 * ws_conn: wslay glue. wslay reads from the window of the current read (ws_feed) and writes into
 * a staging buffer that becomes one refbuf on the connection's queue, so its control frames
 * never interleave with a queued data frame. Data frames bypass wslay (built by ws_frame): wslay
 * 1.1.1 would copy every message per connection. So do the small whole messages a client sends
 * between others (ws_feed_small): a context is created only for what needs one.
 */
#include "worker/ws/ws_conn.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <wslay/wslay.h>

#include "common/buf.h"
#include "common/json.h"
#include "common/proto/ws_feed.h"
#include "common/proto/ws_frame.h"
#include "common/xalloc.h"

/* A staging buffer that grew past this (a burst of pongs) is released instead of kept. */
#define STAGE_KEEP 4096
/* Likewise the buffer of inflated messages, shared by the worker's connections. */
#define INFLATED_KEEP 65536

struct ws_ctx {
    size_t max_message;
    stats_worker_t *stats;
    size_t contexts;
    size_t live; /* connections still holding a ws_conn state */
    bool freeing;
    ws_deflate_t *deflate; /* for every permessage-deflate connection; NULL until one comes */
    buf_t inflated;        /* one received message, inflated */
};

typedef struct ws_conn {
    ws_ctx_t *w;
    const ws_handlers_t *h;
    /* wslay: only while a message is in flight or a Close is under way; see input */
    wslay_event_context_ptr ws;
    buf_t stage;   /* wslay output collected during one wslay_event_send */
    ws_feed_t rd;  /* bytes wslay may read (set only inside the read callback); frame scan */
    bool closing;  /* our Close is queued; waiting for the peer's */
    bool dead;     /* wslay returned an error: never call it again */
    bool told;     /* the first Close wslay sent was looked at (a 1009 is counted) */
    bool deflate;  /* permessage-deflate was negotiated */
    uint16_t fail; /* a message could not be inflated: the Close code to send after wslay returns */
} ws_conn_t;

static void on_data(conn_t *c, void *state, const char *p, size_t n);
static void on_release(conn_t *c, void *state);

static const conn_proto_t proto = {on_data, on_release};

ws_ctx_t *ws_ctx_new(size_t max_message, stats_worker_t *stats)
{
    ws_ctx_t *w = xcalloc(1, sizeof(*w));
    w->max_message = max_message ? max_message : WS_CONN_DEFAULT_MAX_MESSAGE;
    w->stats = stats;
    buf_init(&w->inflated);
    return w;
}

static void ctx_destroy(ws_ctx_t *w)
{
    ws_deflate_free(w->deflate);
    buf_free(&w->inflated);
    free(w);
}

void ws_ctx_free(ws_ctx_t *w)
{
    if (!w)
        return;
    w->freeing = true;
    if (w->live == 0)
        ctx_destroy(w);
}

size_t ws_ctx_contexts(const ws_ctx_t *w)
{
    return w->contexts;
}

static ws_conn_t *state_of(const conn_t *c)
{
    return conn_proto_state(c, &proto);
}

bool ws_conn_is(const conn_t *c)
{
    return state_of(c) != NULL;
}

ws_deflate_t *ws_conn_deflater(const conn_t *c)
{
    ws_conn_t *s = state_of(c);
    return s && s->deflate ? s->w->deflate : NULL;
}

/* Open: messages flow both ways (not closing, not draining, not closed). */
static bool is_open(const conn_t *c, const ws_conn_t *s)
{
    return conn_is_open(c) && !s->closing;
}

/* ==== wslay callbacks ==== */

static ssize_t recv_cb(wslay_event_context_ptr ws, uint8_t *buf, size_t len, int flags, void *ud)
{
    (void)flags;
    return ws_feed_read(ws, &state_of(ud)->rd, buf, len);
}

static ssize_t send_cb(wslay_event_context_ptr ws, const uint8_t *data, size_t len, int flags,
                       void *ud)
{
    (void)flags;
    return ws_feed_write(ws, &state_of(ud)->stage, data, len);
}

/*
 * A compressed message (wslay allows RSV1 only on the first frame of a data message, and checks
 * UTF-8 only on uncompressed text): inflated into the context's buffer, which *msg then points
 * to. False with s->fail set when it cannot be delivered.
 */
static bool inflate_message(ws_conn_t *s, bool text, const uint8_t **msg, size_t *len)
{
    ws_ctx_t *w = s->w;
    buf_reset(&w->inflated);
    int rc = ws_deflate_inflate(w->deflate, *msg, *len, w->max_message, &w->inflated);
    if (rc == -EMSGSIZE)
        s->fail = WSLAY_CODE_MESSAGE_TOO_BIG; /* counted as wslay's own 1009 is, once sent */
    else if (rc || (text && !json_utf8_valid(w->inflated.data, w->inflated.len)))
        s->fail = WSLAY_CODE_INVALID_FRAME_PAYLOAD_DATA;
    if (s->fail) {
        ws_feed_window(&s->rd, NULL, 0); /* nothing after it is read */
        return false;
    }
    *msg = (const uint8_t *)(w->inflated.len ? w->inflated.data : "");
    *len = w->inflated.len;
    return true;
}

static void deliver(conn_t *c, ws_conn_t *s, uint8_t opcode, const uint8_t *msg, size_t len)
{
    if (opcode == WSLAY_TEXT_FRAME)
        s->h->on_text(c, (const char *)msg, len, conn_data(c));
    else if (opcode == WSLAY_BINARY_FRAME)
        s->h->on_binary(c, msg, len, conn_data(c));
}

static void msg_cb(wslay_event_context_ptr ws, const struct wslay_event_on_msg_recv_arg *arg,
                   void *ud)
{
    (void)ws;
    conn_t *c = ud;
    ws_conn_t *s = state_of(c);
    if (!is_open(c, s))
        return;
    if (s->fail)
        return;
    /* wslay passes NULL for an empty message */
    const uint8_t *msg = arg->msg ? arg->msg : (const uint8_t *)"";
    size_t len = arg->msg_length;
    if (wslay_get_rsv1(arg->rsv)) {
        if (!inflate_message(s, arg->opcode == WSLAY_TEXT_FRAME, &msg, &len))
            return;
    }
    deliver(c, s, arg->opcode, msg, len);
    if (s->w->inflated.cap > INFLATED_KEEP)
        buf_free(&s->w->inflated); /* a large message does not pin its memory */
    if (conn_is_closed(c))
        ws_feed_window(&s->rd, NULL, 0); /* the rest of this read is no longer wanted */
}

/* ==== Context lifetime ==== */

/* Creates the wslay context unless one is held. */
static void hold(conn_t *c, ws_conn_t *s)
{
    static const struct wslay_event_callbacks cb = {
        .recv_callback = recv_cb,
        .send_callback = send_cb,
        .on_msg_recv_callback = msg_cb,
    };
    if (s->ws)
        return;
    s->ws = ws_feed_context_new(&cb, c, s->w->max_message);
    if (s->deflate)
        wslay_event_config_set_allowed_rsv_bits(s->ws, WSLAY_RSV1_BIT);
    s->w->contexts++;
}

/* Frees the wslay context between messages (ws_feed_at_rest): an idle WebSocket then costs no
 * more than its conn_t and this state. */
static void release_if_idle(conn_t *c, ws_conn_t *s)
{
    if (!is_open(c, s) || !s->ws || s->dead || !ws_feed_at_rest(&s->rd, s->ws))
        return;
    wslay_event_context_free(s->ws);
    s->ws = NULL;
    s->w->contexts--;
    buf_free(&s->stage);
}

static void on_release(conn_t *c, void *state)
{
    (void)c;
    ws_conn_t *s = state;
    ws_ctx_t *w = s->w;
    if (s->ws) {
        wslay_event_context_free(s->ws);
        w->contexts--;
    }
    buf_free(&s->stage);
    free(s);
    w->live--;
    if (w->freeing && w->live == 0)
        ctx_destroy(w);
}

/* ==== Input and wslay's output ==== */

/* Moves whatever wslay has queued (pongs, Close) into the output queue. */
static int pump(conn_t *c, ws_conn_t *s)
{
    if (s->dead)
        return -EPIPE;
    if (!s->ws || !wslay_event_want_write(s->ws))
        return 0;
    int rc = 0;
    if (wslay_event_send(s->ws) != 0) {
        s->dead = true;
        rc = -EPIPE;
    } else if (s->stage.len) {
        conn_push(c, refbuf_from(s->stage.data, s->stage.len));
    }
    if (s->stage.cap > STAGE_KEEP)
        buf_free(&s->stage);
    else
        buf_reset(&s->stage);
    return rc;
}

/* After wslay ran: flush its output and follow the closing handshake. */
static void after_io(conn_t *c, ws_conn_t *s)
{
    if (conn_is_closed(c))
        return;
    if (pump(c, s) != 0) {
        conn_close(c);
        return;
    }
    if (!conn_fits(c, 0)) {
        conn_overflow(c);
        return;
    }
    if (wslay_event_get_close_sent(s->ws)) {
        if (wslay_event_get_close_received(s->ws) || !wslay_event_get_read_enabled(s->ws)) {
            conn_drain(c);
        } else if (is_open(c, s)) {
            s->closing = true;
            conn_close_deadline(c);
        }
    } else if (!wslay_event_get_read_enabled(s->ws)) {
        conn_close(c);
    }
}

/* Delivers the small messages at the front of p[0..n) that need no wslay context (ws_feed_small:
 * a handshake's and a heartbeat's, so a connection sets up and idles without creating one, ~9
 * allocations and 8.8 KiB each time); the bytes used. Stops when the connection is no longer open:
 * what is left then goes through wslay as before. */
static size_t take_small(conn_t *c, ws_conn_t *s, const char *p, size_t n)
{
    size_t used = 0, k, len;
    uint8_t msg[WS_FEED_SMALL_MAX], op;
    while (is_open(c, s) &&
           (k = ws_feed_small(&s->rd, p + used, n - used, s->w->max_message, msg, &len, &op))) {
        used += k;
        deliver(c, s, op, msg, len);
    }
    return used;
}

static void on_data(conn_t *c, void *state, const char *p, size_t n)
{
    ws_conn_t *s = state;
    if (s->dead)
        return;
    if (!s->ws) {
        size_t used = take_small(c, s, p, n);
        if (used == n || conn_is_closed(c))
            return;
        p += used;
        n -= used;
    }
    hold(c, s);
    ws_feed_window(&s->rd, p, n);
    int r = wslay_event_recv(s->ws);
    ws_feed_window(&s->rd, NULL, 0);
    if (r != 0) {
        /* e.g. a fragmented or oversized control frame: wslay queued a Close it can no longer
         * send, since it must not be called again */
        s->dead = true;
        conn_close(c);
        return;
    }
    if (s->fail && is_open(c, s)) {
        /* as wslay fails a connection itself: Close, read nothing more, drain and close */
        int qr = wslay_event_queue_close(s->ws, s->fail, NULL, 0);
        wslay_event_shutdown_read(s->ws);
        if (qr != 0 && qr != WSLAY_ERR_NO_MORE_MSG) {
            conn_close(c);
            return;
        }
    }
    after_io(c, s);
    /* wslay answers an oversized message with Close 1009 on its own; count it once sent */
    if (!s->told && wslay_event_get_close_sent(s->ws)) {
        s->told = true;
        if (wslay_event_get_status_code_sent(s->ws) == WSLAY_CODE_MESSAGE_TOO_BIG && s->w->stats)
            STATS_ADD(s->w->stats->limit_rejections[STATS_LIMIT_WS_MESSAGE], 1);
    }
    release_if_idle(c, s);
}

void ws_conn_start(ws_ctx_t *w, conn_t *c, const ws_handlers_t *h, bool deflate)
{
    ws_conn_t *s = xcalloc(1, sizeof(*s));
    s->w = w;
    s->h = h;
    s->deflate = deflate;
    if (deflate && !w->deflate)
        w->deflate = ws_deflate_new();
    buf_init(&s->stage);
    w->live++;
    conn_set_proto(c, &proto, s);
}

/* ==== Output ==== */

/* Common checks before a data frame is appended; leaves wslay at a frame boundary. */
static int send_prepare(conn_t *c, size_t len)
{
    ws_conn_t *s = state_of(c);
    if (!s)
        return conn_is_closed(c) ? -EPIPE : -EINVAL;
    if (!is_open(c, s) || s->dead)
        return -EPIPE;
    if (!conn_fits(c, len)) {
        conn_overflow(c);
        return -ENOBUFS;
    }
    /* wslay's pending control frames go first, so our frame cannot land inside one of them */
    int rc = pump(c, s);
    if (rc)
        conn_close(c);
    return rc;
}

int ws_conn_send_text(conn_t *c, const char *p, size_t len)
{
    ws_deflate_t *d = len >= WS_DEFLATE_THRESHOLD ? ws_conn_deflater(c) : NULL;
    if (d) {
        buf_t z;
        buf_init(&z);
        ws_deflate_compress(d, p, len, &z);
        refbuf_t *rb = ws_frame_new(WS_FRAME_TEXT | WS_FRAME_RSV1, z.data, z.len);
        buf_free(&z);
        int rc = ws_conn_send_frame(c, rb);
        refbuf_unref(rb);
        return rc;
    }
    uint8_t hdr[WS_FRAME_HEADER_MAX];
    size_t hlen = ws_frame_header(hdr, WS_FRAME_TEXT, len);
    if (len > SIZE_MAX - hlen)
        return -EINVAL;
    int rc = send_prepare(c, hlen + len);
    if (rc)
        return rc;
    refbuf_t *rb = refbuf_new(hlen + len);
    memcpy(refbuf_data(rb), hdr, hlen);
    if (len)
        memcpy(refbuf_data(rb) + hlen, p, len);
    conn_push(c, rb);
    return 0;
}

int ws_conn_send_frame(conn_t *c, refbuf_t *frame)
{
    if (!frame)
        return -EINVAL;
    int rc = send_prepare(c, refbuf_len(frame));
    if (rc)
        return rc;
    if (refbuf_len(frame) != 0)
        conn_push(c, refbuf_ref(frame));
    return 0;
}

static bool close_code_valid(uint16_t code)
{
    return code == 0 ||
           (code >= 1000 && code <= 1011 && code != 1004 && code != 1005 && code != 1006) ||
           (code >= 3000 && code <= 4999);
}

int ws_conn_close(conn_t *c, uint16_t code)
{
    ws_conn_t *s = state_of(c);
    if (!s || !close_code_valid(code))
        return -EINVAL;
    if (!is_open(c, s))
        return 0;
    if (s->dead) {
        conn_close(c);
        return 0;
    }
    hold(c, s);
    int r = wslay_event_queue_close(s->ws, code, NULL, 0);
    if (r != 0 && r != WSLAY_ERR_NO_MORE_MSG) {
        conn_close(c);
        return 0;
    }
    after_io(c, s);
    return 0;
}
