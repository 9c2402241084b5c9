/*
 * Unit tests for worker/eio/eio_session: the Engine.IO session states — polling GET (answered,
 * held, overlapping), batched POST, the upgrade probe and its noop/upgrade sequence, heartbeat
 * ping/pong and timeouts, close from each side — against a fake clock (timerq_clock_t) and a
 * fake transport (eio_transport_t) that records what each connection was sent. Connections are
 * opaque tokens: the sessions never touch them except through the transport.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/buf.h"
#include "common/proto/ws_frame.h"
#include "worker/eio/eio_session.h"

#define PING 300
#define PONG 200
#define READY 1000
#define UPGRADE 250
#define MAX_QUEUES 8

/* ==== Fake clock ==== */

typedef struct fake_clock {
    uint64_t now;
    timerq_t *q[MAX_QUEUES];
    uint64_t due[MAX_QUEUES];
    bool armed[MAX_QUEUES];
} fake_clock_t;

static uint64_t clk_now(void *arg)
{
    return ((fake_clock_t *)arg)->now;
}

static int clk_slot(fake_clock_t *c, timerq_t *q)
{
    for (int i = 0; i < MAX_QUEUES; i++)
        if (c->q[i] == q)
            return i;
    for (int i = 0; i < MAX_QUEUES; i++)
        if (!c->q[i]) {
            c->q[i] = q;
            return i;
        }
    fail_msg("too many queues");
    return -1;
}

static void clk_wake(void *arg, timerq_t *q, uint64_t due)
{
    fake_clock_t *c = arg;
    int i = clk_slot(c, q);
    c->due[i] = due;
    c->armed[i] = true;
}

static void clk_cancel(void *arg, timerq_t *q)
{
    fake_clock_t *c = arg;
    c->armed[clk_slot(c, q)] = false;
}

/* Moves time forward by ms, firing every wake-up that falls due on the way, in time order. */
static void advance(fake_clock_t *c, uint64_t ms)
{
    uint64_t end = c->now + ms;
    for (;;) {
        int next = -1;
        for (int i = 0; i < MAX_QUEUES; i++)
            if (c->armed[i] && c->due[i] <= end && (next < 0 || c->due[i] < c->due[next]))
                next = i;
        if (next < 0)
            break;
        if (c->due[next] > c->now)
            c->now = c->due[next];
        c->armed[next] = false;
        timerq_expire(c->q[next]);
    }
    c->now = end;
}

/* ==== Fake transport: one log line per call ==== */

static char conn_tokens[8];
#define C(i) ((conn_t *)&conn_tokens[i])

static int conn_no(conn_t *c)
{
    return (int)((char *)c - conn_tokens);
}

typedef struct fake_tr {
    buf_t log;               /* "<call> c<n> <details>\n" per call */
    eio_session_t *owner[8]; /* what `own` set */
    int hold_rc;
    bool failed; /* what `open` answers: the transport failed and is closing */
} fake_tr_t;

static void trace(fake_tr_t *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void trace(fake_tr_t *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    buf_vprintf(&t->log, fmt, ap);
    va_end(ap);
}

static int tr_ws_text(void *arg, conn_t *c, const char *p, size_t len)
{
    trace(arg, "ws c%d %.*s\n", conn_no(c), (int)len, p);
    return 0;
}

/* Logs a frame sequence as the payloads of its frames: text as is, binary as hex. */
static int tr_ws_msg(void *arg, conn_t *c, eio_msg_t *m)
{
    fake_tr_t *t = arg;
    refbuf_t *frames = eio_msg_frames(m);
    trace(t, "frames c%d", conn_no(c));
    const uint8_t *d = (const uint8_t *)refbuf_data(frames), *end = d + refbuf_len(frames), *p;
    size_t len;
    while (d < end && ws_frame_parse(d, (size_t)(end - d), &p, &len)) {
        if ((d[0] & 0x0f) == WS_FRAME_TEXT) {
            trace(t, " %.*s", (int)len, (const char *)p);
        } else {
            trace(t, " bin:");
            for (size_t i = 0; i < len; i++)
                trace(t, "%02x", p[i]);
        }
        d = p + len;
    }
    trace(t, "\n");
    return 0;
}

static int tr_ws_close(void *arg, conn_t *c, uint16_t code)
{
    trace(arg, "ws_close c%d %u\n", conn_no(c), code);
    return 0;
}

static size_t tr_backlog(void *arg, conn_t *c)
{
    (void)arg;
    (void)c;
    return 0;
}

static bool tr_open(void *arg, conn_t *c)
{
    (void)c;
    return !((fake_tr_t *)arg)->failed;
}

static void tr_respond(void *arg, conn_t *c, int status, const char *ctype, const char *body,
                       size_t len, bool cors)
{
    trace(arg, "respond c%d %d%s %s %.*s\n", conn_no(c), status, cors ? "" : " plain",
          ctype ? ctype : "-", (int)len, body ? body : "");
}

static int tr_hold(void *arg, conn_t *c)
{
    fake_tr_t *t = arg;
    trace(t, "hold c%d\n", conn_no(c));
    return t->hold_rc;
}

static void tr_close(void *arg, conn_t *c)
{
    trace(arg, "close c%d\n", conn_no(c));
}

static void tr_own(void *arg, conn_t *c, eio_session_t *s)
{
    ((fake_tr_t *)arg)->owner[conn_no(c)] = s;
}

/* ==== Fake application ==== */

typedef struct app {
    buf_t got; /* "t:<text>\n" or "b:<hex>\n" per message */
    bool closed;
    bool ready_on_open;
    eio_session_t *s;
} app_t;

static void *app_open(void *arg, eio_session_t *s, const http_req_t *req,
                      const struct sockaddr_storage *peer)
{
    (void)req;
    (void)peer;
    app_t *a = arg;
    a->s = s;
    if (a->ready_on_open)
        eio_session_ready(s);
    return a;
}

static int app_text(void *app, const char *p, size_t len)
{
    app_t *a = app;
    if (len >= 3 && memcmp(p, "bad", 3) == 0)
        return -EPROTO;
    buf_printf(&a->got, "t:%.*s\n", (int)len, p);
    return 0;
}

static int app_binary(void *app, const uint8_t *p, size_t len)
{
    app_t *a = app;
    buf_puts(&a->got, "b:");
    for (size_t i = 0; i < len; i++)
        buf_printf(&a->got, "%02x", p[i]);
    buf_putc(&a->got, '\n');
    return 0;
}

static void app_close(void *app)
{
    ((app_t *)app)->closed = true;
}

/* ==== Fixture ==== */

typedef struct fx {
    fake_clock_t clk;
    timerq_clock_t clock;
    fake_tr_t tr;
    app_t app;
    eio_handlers_t h;
    stats_worker_t stats;
    eio_t *e;
    eio_session_t *s;
    bool all_closed;
} fx_t;

static void on_all_closed(void *arg)
{
    *(bool *)arg = true;
}

static int setup(void **state)
{
    fx_t *f = calloc(1, sizeof(*f));
    f->clk.now = 1000;
    f->clock = (timerq_clock_t){&f->clk, clk_now, clk_wake, clk_cancel};
    buf_init(&f->tr.log);
    buf_init(&f->app.got);
    f->app.ready_on_open = true;
    f->h = (eio_handlers_t){.arg = &f->app,
                            .on_open = app_open,
                            .on_text = app_text,
                            .on_binary = app_binary,
                            .on_close = app_close};
    eio_transport_t tr = {&f->tr, tr_ws_text, tr_ws_msg, tr_ws_close, tr_backlog, tr_open, tr_respond, tr_hold, tr_close, tr_own};
    eio_config_t cfg = {.ping_interval_ms = PING,
                        .ping_timeout_ms = PONG,
                        .upgrade_timeout_ms = UPGRADE,
                        .ready_timeout_ms = READY,
                        .max_payload = 1000000,
                        .slot = 0,
                        .tag = "Ab-_",
                        .max_poll_queue = 1u << 20};
    assert_int_equal(eio_new(&f->e, NULL, &f->clock, &cfg, &tr, &f->stats), 0);
    *state = f;
    return 0;
}

/* The transport reports c closed (as libuv does, later than any close request). */
static void closed(fx_t *f, int c)
{
    eio_session_t *s = f->tr.owner[c];
    assert_non_null(s);
    f->tr.owner[c] = NULL;
    eio_conn_closed(C(c), s);
}

static int teardown(void **state)
{
    fx_t *f = *state;
    eio_free(f->e);
    for (int i = 0; i < 8; i++) /* sessions wait for their connections to close */
        if (f->tr.owner[i])
            closed(f, i);
    buf_free(&f->tr.log);
    buf_free(&f->app.got);
    free(f);
    return 0;
}

/* The transport log since the last call, then forgotten. */
static const char *taken(fx_t *f)
{
    static char copy[8192];
    snprintf(copy, sizeof(copy), "%s", f->tr.log.data ? f->tr.log.data : "");
    buf_reset(&f->tr.log);
    return copy;
}

static const char *got(fx_t *f)
{
    static char copy[4096];
    snprintf(copy, sizeof(copy), "%s", f->app.got.data ? f->app.got.data : "");
    buf_reset(&f->app.got);
    return copy;
}

static void open_polling(fx_t *f)
{
    assert_int_equal(eio_session_open(f->e, &f->h, C(1), NULL, NULL, false, true, &f->s), 0);
    taken(f);
}

static void open_ws(fx_t *f)
{
    assert_int_equal(eio_session_open(f->e, &f->h, C(1), NULL, NULL, true, false, &f->s), 0);
    taken(f);
}

static void post(fx_t *f, int c, const char *body)
{
    eio_session_poll_post(f->s, C(c), body, strlen(body));
}

/* ==== Tests ==== */

/* A sid names a server only when it is a sid as servers make them. */
static void test_sid_tag(void **state)
{
    (void)state;
    assert_memory_equal(eio_sid_tag("AAwxyzAAAAAAAAAAAAAA", EIO_SID_LEN), "wxyz", 4);
    assert_null(eio_sid_tag("AAwxyzAAAAAAAAAAAAA", EIO_SID_LEN - 1)); /* too short */
    assert_null(eio_sid_tag("AAwx.zAAAAAAAAAAAAAA", EIO_SID_LEN));    /* not base64url */
    assert_null(eio_sid_tag("AAwx\0zAAAAAAAAAAAAAA", EIO_SID_LEN));
}

static void test_handshakes(void **state)
{
    fx_t *f = *state;
    eio_session_t *s;
    assert_int_equal(eio_session_open(f->e, &f->h, C(1), NULL, NULL, false, true, &s), 0);
    char want[256];
    snprintf(want, sizeof(want),
             "respond c1 200 text/plain; charset=UTF-8 0{\"sid\":\"%s\",\"upgrades\":"
             "[\"websocket\"],\"pingInterval\":300,\"pingTimeout\":200,\"maxPayload\":1000000}\n",
             eio_session_sid(s));
    assert_string_equal(taken(f), want);
    assert_int_equal(strlen(eio_session_sid(s)), EIO_SID_LEN);
    assert_int_equal(eio_sid_slot(eio_session_sid(s), EIO_SID_LEN), 0);
    /* the server's tag follows the worker's two characters: another server relays by it */
    assert_memory_equal(eio_sid_tag(eio_session_sid(s), EIO_SID_LEN), "Ab-_", EIO_SID_TAG_LEN);
    assert_ptr_equal(eio_find(f->e, eio_session_sid(s), EIO_SID_LEN), s);
    /* a WebSocket handshake: the open packet as the first frame, no upgrades */
    eio_session_t *w;
    assert_int_equal(eio_session_open(f->e, &f->h, C(2), NULL, NULL, true, true, &w), 0);
    snprintf(want, sizeof(want),
             "ws c2 0{\"sid\":\"%s\",\"upgrades\":[],\"pingInterval\":300,\"pingTimeout\":200,"
             "\"maxPayload\":1000000}\n",
             eio_session_sid(w));
    assert_string_equal(taken(f), want);
    assert_ptr_equal(f->tr.owner[2], w);
    assert_true(eio_session_upgraded(w));
    assert_int_equal(eio_sessions(f->e), 2);
    assert_int_equal(STATS_GET(f->stats.handshakes), 2);
    assert_null(eio_find(f->e, "AAnope", 6));
}

static void test_get_answered_or_held(void **state)
{
    fx_t *f = *state;
    open_polling(f);
    /* nothing queued: the GET is held */
    eio_session_poll_get(f->s, C(2));
    assert_string_equal(taken(f), "hold c2\n");
    assert_ptr_equal(f->tr.owner[2], f->s);
    /* the first packet answers it */
    eio_session_send_text(f->s, "42[\"a\"]", 7);
    assert_string_equal(taken(f), "respond c2 200 text/plain; charset=UTF-8 42[\"a\"]\n");
    assert_null(f->tr.owner[2]);
    /* packets queued meanwhile go out together, separated by 0x1e */
    eio_session_send_text(f->s, "42[\"b\"]", 7);
    eio_session_send_text(f->s, "42[\"c\"]", 7);
    assert_string_equal(taken(f), "");
    eio_session_poll_get(f->s, C(3));
    assert_string_equal(taken(f), "respond c3 200 text/plain; charset=UTF-8 42[\"b\"]\x1e"
                                  "42[\"c\"]\n");
    /* a packet that cannot ride polling (a 0x1e inside) is dropped */
    eio_session_send_text(f->s, "4a\x1e", 3);
    assert_int_equal(eio_session_backlog(f->s), 0);
}

static void test_post_batched_records(void **state)
{
    fx_t *f = *state;
    open_polling(f);
    char sid[EIO_SID_LEN + 1];
    memcpy(sid, eio_session_sid(f->s), sizeof(sid));
    post(f, 2,
         "4hello\x1e"
         "4world\x1e"
         "bAQID\x1e"
         "6");
    assert_string_equal(taken(f), "respond c2 200 text/html ok\n");
    assert_string_equal(got(f), "t:hello\nt:world\nb:010203\n");
    /* a bad record: 400 and the session ends */
    post(f, 3,
         "4x\x1e"
         "abc");
    assert_string_equal(taken(f), "respond c3 400 text/html \n");
    assert_true(f->app.closed);
    assert_null(eio_find(f->e, sid, EIO_SID_LEN));
}

static void test_post_rejections(void **state)
{
    fx_t *f = *state;
    open_polling(f);
    post(f, 2, ""); /* an empty body */
    assert_string_equal(taken(f), "respond c2 400 text/html \n");
    assert_true(f->app.closed);
    f->app.closed = false;
    open_polling(f);
    post(f, 2, "2"); /* a client ping is the wrong direction in v4 */
    assert_true(f->app.closed);
    f->app.closed = false;
    open_polling(f);
    post(f, 2, "4bad"); /* the application refuses the message */
    assert_true(f->app.closed);
    f->app.closed = false;
    open_polling(f);
    post(f, 2, "b!!!!"); /* bad base64 */
    assert_true(f->app.closed);
}

static void test_overlapping_gets(void **state)
{
    fx_t *f = *state;
    open_polling(f);
    char sid[EIO_SID_LEN + 1];
    memcpy(sid, eio_session_sid(f->s), sizeof(sid));
    eio_session_poll_get(f->s, C(2));
    taken(f);
    eio_session_poll_get(f->s, C(3));
    assert_string_equal(taken(f), "respond c3 400 plain text/html \n"
                                  "respond c2 200 text/plain; charset=UTF-8 1\n");
    assert_true(f->app.closed);
    assert_null(eio_find(f->e, sid, EIO_SID_LEN));
    assert_int_equal(eio_sessions(f->e), 0); /* no connection holds it any more */
}

static void test_upgrade_probe_noop_upgrade(void **state)
{
    fx_t *f = *state;
    open_polling(f);
    eio_session_poll_get(f->s, C(2));
    taken(f);
    eio_session_probe(f->s, C(3));
    assert_ptr_equal(f->tr.owner[3], f->s);
    /* 2probe: 3probe on the WebSocket, the held GET gets a noop */
    eio_ws_text(C(3), f->s, "2probe", 6);
    assert_string_equal(taken(f), "ws c3 3probe\n"
                                  "respond c2 200 text/plain; charset=UTF-8 6\n");
    /* while probed, a GET is answered at once with a noop */
    eio_session_poll_get(f->s, C(4));
    assert_string_equal(taken(f), "respond c4 200 text/plain; charset=UTF-8 6\n");
    /* packets sent before `5` still wait for polling ... */
    eio_session_send_text(f->s, "42[\"q\"]", 7);
    uint8_t bin[] = {1, 2};
    uint32_t n = 2;
    char atts[6];
    memcpy(atts, &n, 4);
    memcpy(atts + 4, bin, 2);
    static const char bin_text[] = "451-[\"b\",{\"_placeholder\":true,\"num\":0}]";
    eio_msg_t *m = eio_msg_new(bin_text, sizeof(bin_text) - 1, atts, 6, 1);
    assert_true(eio_session_send_msg(f->s, m));
    eio_msg_unref(m);
    assert_string_equal(taken(f), "");
    assert_false(eio_session_upgraded(f->s));
    /* ... and go over the WebSocket, in order, once it is upgraded */
    eio_ws_text(C(3), f->s, "5", 1);
    assert_string_equal(taken(f), "frames c3 42[\"q\"]\n"
                                  "frames c3 451-[\"b\",{\"_placeholder\":true,\"num\":0}] "
                                  "bin:0102\n");
    assert_true(eio_session_upgraded(f->s));
    eio_session_send_text(f->s, "42[\"r\"]", 7);
    assert_string_equal(taken(f), "ws c3 42[\"r\"]\n");
    /* messages now arrive over the WebSocket */
    eio_ws_text(C(3), f->s, "4hi", 3);
    assert_string_equal(got(f), "t:hi\n");
}

static void test_upgrade_aborted(void **state)
{
    fx_t *f = *state;
    open_polling(f);
    /* anything but 2probe / 5 aborts the upgrade */
    eio_session_probe(f->s, C(3));
    eio_ws_text(C(3), f->s, "5", 1); /* 5 before 2probe */
    assert_string_equal(taken(f), "ws_close c3 0\n");
    closed(f, 3);
    /* polling goes on; a new probe may come */
    eio_session_probe(f->s, C(4));
    eio_ws_binary(C(4), f->s, (const uint8_t *)"x", 1);
    assert_string_equal(taken(f), "ws_close c4 0\n");
    closed(f, 4);
    /* a second WebSocket while one probes is accepted and closed */
    eio_session_probe(f->s, C(5));
    eio_session_probe(f->s, C(6));
    assert_string_equal(taken(f), "ws_close c6 0\n");
    /* the probe that never finishes is closed after upgradeTimeout */
    advance(&f->clk, UPGRADE - 1);
    assert_string_equal(taken(f), "");
    advance(&f->clk, 1);
    assert_string_equal(taken(f), "ws_close c5 0\n");
    assert_false(f->app.closed);
}

static void test_heartbeat_websocket(void **state)
{
    fx_t *f = *state;
    open_ws(f);
    advance(&f->clk, PING - 1);
    assert_string_equal(taken(f), "");
    advance(&f->clk, 1);
    assert_string_equal(taken(f), "ws c1 2\n");
    /* the pong re-arms the ping pingInterval later */
    advance(&f->clk, PONG - 50);
    eio_ws_text(C(1), f->s, "3", 1);
    advance(&f->clk, PING - 1);
    assert_string_equal(taken(f), "");
    advance(&f->clk, 1);
    assert_string_equal(taken(f), "ws c1 2\n");
    /* any other packet while waiting refreshes the pong deadline once (Node) */
    advance(&f->clk, PONG - 10);
    eio_ws_text(C(1), f->s, "4x", 2);
    advance(&f->clk, PONG - 1);
    assert_false(f->app.closed);
    /* no pong: ping timeout, the WebSocket is closed without a status */
    advance(&f->clk, 1);
    assert_string_equal(taken(f), "ws_close c1 0\n");
    assert_true(f->app.closed);
    closed(f, 1);
    assert_int_equal(eio_sessions(f->e), 0);
}

static void test_heartbeat_polling_timeout(void **state)
{
    fx_t *f = *state;
    open_polling(f);
    const char *sid = eio_session_sid(f->s);
    char keep[EIO_SID_LEN + 1];
    memcpy(keep, sid, sizeof(keep));
    /* the ping is queued for a GET that never comes: closed at pingInterval + pingTimeout */
    advance(&f->clk, PING + PONG - 1);
    assert_false(f->app.closed);
    advance(&f->clk, 1);
    assert_true(f->app.closed);
    assert_null(eio_find(f->e, keep, EIO_SID_LEN));
}

static void test_find_judges_deadlines_on_current_time(void **state)
{
    fx_t *f = *state;
    open_polling(f);
    char sid[EIO_SID_LEN + 1];
    memcpy(sid, eio_session_sid(f->s), sizeof(sid));
    /* time passed but the timers have not fired yet in this loop turn */
    f->clk.now += PING + PONG;
    assert_null(eio_find(f->e, sid, EIO_SID_LEN));
    assert_true(f->app.closed);
}

static void test_ready_deadline(void **state)
{
    fx_t *f = *state;
    f->app.ready_on_open = false;
    open_ws(f);
    /* pongs keep it alive, but the application never accepted it */
    for (int i = 0; i < 3; i++) {
        advance(&f->clk, PING);
        eio_ws_text(C(1), f->s, "3", 1);
    }
    advance(&f->clk, READY - 3 * PING);
    assert_true(f->app.closed);
    assert_int_equal(STATS_GET(f->stats.limit_rejections[STATS_LIMIT_FIRST_PACKET_TIMEOUT]), 1);
}

static void test_ready_deadline_of_a_failed_websocket_is_not_counted_again(void **state)
{
    fx_t *f = *state;
    f->app.ready_on_open = false;
    open_ws(f);
    /* e.g. Close 1009 sent and counted; the connection waits for the peer's FIN */
    f->tr.failed = true;
    advance(&f->clk, READY);
    assert_true(f->app.closed);
    assert_int_equal(STATS_GET(f->stats.limit_rejections[STATS_LIMIT_FIRST_PACKET_TIMEOUT]), 0);
}

static void test_close_from_the_client(void **state)
{
    fx_t *f = *state;
    /* polling: POST `1` while a GET is held: the GET gets a noop */
    open_polling(f);
    eio_session_poll_get(f->s, C(2));
    taken(f);
    post(f, 3, "1");
    assert_string_equal(taken(f), "respond c2 200 text/plain; charset=UTF-8 6\n"
                                  "respond c3 200 text/html ok\n");
    assert_true(f->app.closed);
    /* WebSocket: `1` closes with 1000 */
    f->app.closed = false;
    open_ws(f);
    eio_ws_text(C(1), f->s, "1", 1);
    assert_string_equal(taken(f), "ws_close c1 1000\n");
    assert_true(f->app.closed);
    closed(f, 1);
    /* WebSocket: the connection drops */
    f->app.closed = false;
    open_ws(f);
    closed(f, 1);
    assert_true(f->app.closed);
    assert_int_equal(eio_sessions(f->e), 0);
}

static void test_close_from_the_server(void **state)
{
    fx_t *f = *state;
    open_polling(f);
    eio_session_poll_get(f->s, C(2));
    taken(f);
    eio_session_close(f->s);
    assert_string_equal(taken(f), "respond c2 200 text/plain; charset=UTF-8 1\n");
    assert_true(f->app.closed);
    /* a WebSocket: closed without a status code */
    f->app.closed = false;
    open_ws(f);
    assert_false(eio_session_closed(f->s));
    eio_session_close(f->s);
    assert_true(eio_session_closed(f->s));
    assert_string_equal(taken(f), "ws_close c1 0\n");
    closed(f, 1);
    /* shutdown: every session ends, WebSockets with 1001, new ones are refused */
    f->app.closed = false;
    open_ws(f);
    eio_close_all(f->e, on_all_closed, &f->all_closed);
    assert_true(eio_closing(f->e));
    assert_string_equal(taken(f), "ws_close c1 1001\n");
    assert_true(f->app.closed);
    assert_false(f->all_closed); /* its WebSocket still holds it */
    closed(f, 1);
    assert_true(f->all_closed);
}

static void free_when_closed(void *arg)
{
    fx_t *f = arg;
    eio_free(f->e); /* what the worker's shutdown does once the sessions are gone */
    f->e = NULL;
    f->all_closed = true;
}

/* done may free the sessions' owner: eio_close_all must not touch it afterwards (ASan). */
static void test_close_all_done_frees(void **state)
{
    fx_t *f = *state;
    open_polling(f);
    open_polling(f);
    eio_close_all(f->e, free_when_closed, f);
    assert_true(f->all_closed);
    assert_null(f->e);
}

static void test_shared_message_forms(void **state)
{
    fx_t *f = *state;
    eio_session_t *a, *b, *p;
    assert_int_equal(eio_session_open(f->e, &f->h, C(1), NULL, NULL, true, false, &a), 0);
    assert_int_equal(eio_session_open(f->e, &f->h, C(2), NULL, NULL, true, false, &b), 0);
    assert_int_equal(eio_session_open(f->e, &f->h, C(3), NULL, NULL, false, true, &p), 0);
    taken(f);
    eio_msg_t *m = eio_msg_new("42[\"x\"]", 7, NULL, 0, 0);
    refbuf_t *frames = eio_msg_frames(m);
    assert_true(eio_session_send_msg(a, m));
    assert_true(eio_session_send_msg(b, m));
    assert_true(eio_session_send_msg(p, m));
    assert_ptr_equal(eio_msg_frames(m), frames); /* built once */
    assert_string_equal(taken(f), "frames c1 42[\"x\"]\nframes c2 42[\"x\"]\n");
    eio_msg_unref(m); /* the polling queue keeps its own reference */
    eio_session_poll_get(p, C(4));
    assert_string_equal(taken(f), "respond c4 200 text/plain; charset=UTF-8 42[\"x\"]\n");
}

static void test_hold_failure_closes_the_request(void **state)
{
    fx_t *f = *state;
    open_polling(f);
    f->tr.hold_rc = -EINVAL;
    eio_session_poll_get(f->s, C(2));
    assert_string_equal(taken(f), "hold c2\nclose c2\n");
    assert_null(f->tr.owner[2]);
}

static uint64_t held(fx_t *f)
{
    return STATS_GET(f->stats.polls_held);
}

/* A new polling session holding a GET on c. */
static void held_get(fx_t *f, int c)
{
    open_polling(f);
    uint64_t before = held(f);
    eio_session_poll_get(f->s, C(c));
    assert_string_equal(taken(f), c == 2 ? "hold c2\n" : "hold c3\n");
    assert_int_equal(held(f), before + 1);
}

/* stats.polls_held counts the GETs held, whichever way each ends; below 0 it would wrap round. */
static void test_held_gets_counted(void **state)
{
    fx_t *f = *state;
    /* answered at once: never held */
    open_polling(f);
    eio_session_send_text(f->s, "42[\"a\"]", 7);
    eio_session_poll_get(f->s, C(2));
    assert_int_equal(held(f), 0);
    /* data sent */
    eio_session_poll_get(f->s, C(2));
    assert_int_equal(held(f), 1);
    eio_session_send_text(f->s, "42[\"b\"]", 7);
    assert_int_equal(held(f), 0);
    /* the ping sent */
    eio_session_poll_get(f->s, C(2));
    assert_int_equal(held(f), 1);
    advance(&f->clk, PING);
    assert_int_equal(held(f), 0);
    post(f, 3, "3");
    /* the connection closed */
    eio_session_poll_get(f->s, C(2));
    assert_int_equal(held(f), 1);
    closed(f, 2);
    assert_int_equal(held(f), 0);
    /* the hold refused: never held */
    f->tr.hold_rc = -EINVAL;
    eio_session_poll_get(f->s, C(2));
    assert_int_equal(held(f), 0);
    f->tr.hold_rc = 0;
    /* the upgrade: 2probe answers it, GETs while probed are not held, nor after `5` */
    eio_session_poll_get(f->s, C(2));
    assert_int_equal(held(f), 1);
    eio_session_probe(f->s, C(3));
    eio_ws_text(C(3), f->s, "2probe", 6);
    assert_int_equal(held(f), 0);
    eio_session_poll_get(f->s, C(4));
    eio_ws_text(C(3), f->s, "5", 1);
    assert_int_equal(held(f), 0);
    eio_session_close(f->s);
    closed(f, 3);
    taken(f);
    /* the session ends: the client's `1`, the server, overlapping GETs, no pong */
    held_get(f, 2);
    post(f, 3, "1");
    assert_int_equal(held(f), 0);
    held_get(f, 2);
    eio_session_close(f->s);
    assert_int_equal(held(f), 0);
    held_get(f, 2);
    eio_session_poll_get(f->s, C(3));
    assert_int_equal(held(f), 0);
    f->app.closed = false;
    held_get(f, 2);
    advance(&f->clk, PING); /* the ping answers it; the next GET waits for the pong */
    eio_session_poll_get(f->s, C(2));
    assert_int_equal(held(f), 1);
    advance(&f->clk, PONG);
    assert_true(f->app.closed);
    assert_int_equal(held(f), 0);
    /* the worker drains */
    taken(f);
    held_get(f, 2);
    held_get(f, 3);
    assert_int_equal(held(f), 2);
    eio_close_all(f->e, on_all_closed, &f->all_closed);
    assert_int_equal(held(f), 0);
    assert_true(f->all_closed);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sid_tag),
        cmocka_unit_test_setup_teardown(test_handshakes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_get_answered_or_held, setup, teardown),
        cmocka_unit_test_setup_teardown(test_post_batched_records, setup, teardown),
        cmocka_unit_test_setup_teardown(test_post_rejections, setup, teardown),
        cmocka_unit_test_setup_teardown(test_overlapping_gets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_upgrade_probe_noop_upgrade, setup, teardown),
        cmocka_unit_test_setup_teardown(test_upgrade_aborted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_heartbeat_websocket, setup, teardown),
        cmocka_unit_test_setup_teardown(test_heartbeat_polling_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_find_judges_deadlines_on_current_time, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_ready_deadline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ready_deadline_of_a_failed_websocket_is_not_counted_again, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_from_the_client, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_from_the_server, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_all_done_frees, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shared_message_forms, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hold_failure_closes_the_request, setup, teardown),
        cmocka_unit_test_setup_teardown(test_held_gets_counted, setup, teardown),
    };
    return cmocka_run_group_tests_name("eio_session", tests, NULL, NULL);
}
