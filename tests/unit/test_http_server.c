/*
 * Unit tests for worker/http/http_server over real loopback sockets, with the layers it drives:
 * the transport (worker/net/conn: output queue, close sequence) and the WebSocket framing
 * (worker/ws/ws_conn). Server and clients share one libuv loop, each test checks exact bytes on
 * the client side and ends with uv_loop_close() == 0.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/proto/ws_deflate.h"
#include "common/proto/ws_frame.h"
#include "worker/http/http_server.h"
#include "worker/http/router.h"
#include "worker/net/conn.h"
#include "worker/ws/ws_conn.h"

#define MAX_CONNS 8
#define MAX_TEXTS 16
/* How long a wait may take before the test fails: only a failing test waits it out, and a box at
 * load 16 under ASan needs seconds to move tens of MiB (the large answer below) */
#define GUARD_MS 30000

static const char upgrade_req[] = "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n"
                                  "Host: 127.0.0.1:3010\r\n"
                                  "Upgrade: websocket\r\n"
                                  "Connection: Upgrade\r\n"
                                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                                  "Sec-WebSocket-Version: 13\r\n"
                                  "\r\n";
static const char resp_101[] = "HTTP/1.1 101 Switching Protocols\r\n"
                               "Upgrade: websocket\r\n"
                               "Connection: Upgrade\r\n"
                               "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
                               "\r\n";
#define LEN_101 (sizeof(resp_101) - 1)

typedef struct fixture fixture_t;

typedef struct client {
    uv_tcp_t tcp;
    uv_connect_t creq;
    fixture_t *f;
    buf_t in;
    bool open;
    bool connected;
    bool eof;
    bool closed;
    int read_err;
    char rbuf[65536];
} client_t;

struct fixture {
    uv_loop_t loop;
    uv_tcp_t server;
    uv_timer_t guard;
    bool timed_out;
    int port;
    router_t *router;
    http_server_t *hs;
    bool hs_freed;
    stats_worker_t stats; /* the limit counters */
    conn_t *conns[MAX_CONNS];
    int nconns;
    int requests;
    int closes;
    conn_t *held; /* a request answered later (http_defer) */
    bool echo;
    buf_t texts[MAX_TEXTS];
    size_t text_contexts[MAX_TEXTS]; /* wslay contexts held while each text was delivered */
    int ntexts;
    buf_t bin;
    int nbin;
    client_t cl[MAX_CONNS];
};

/* ==== Server side handlers ==== */

static const ws_handlers_t ws_handlers;
static size_t ws_contexts(const fixture_t *f);

static void on_request(conn_t *c, const http_req_t *req, void *ud)
{
    fixture_t *f = ud;
    f->requests++;
    const char *path = http_req_path(req);
    if (strcmp(path, "/socket.io/") == 0) {
        buf_t t;
        buf_init(&t);
        bool ws = http_req_query(req, "transport", &t) == 0 && strcmp(t.data, "websocket") == 0;
        buf_free(&t);
        if (ws && http_ws_accept(c, &ws_handlers) == 0)
            return;
        assert_int_equal(http_respond(c, 400, "text/html", NULL, "Transport unknown", 17), 0);
    } else if (strcmp(path, "/hello") == 0) {
        assert_int_equal(http_respond(c, 200, "text/plain", "X-Test: 1\r\n", "hi", 2), 0);
        /* a second answer is refused */
        assert_int_equal(http_respond(c, 200, NULL, NULL, NULL, 0), -EINVAL);
        assert_int_equal(http_ws_accept(c, &ws_handlers), -EINVAL);
    } else if (strcmp(path, "/close") == 0) {
        conn_close(c);
        conn_close(c);
    } else if (strcmp(path, "/defer") == 0) {
        assert_int_equal(http_defer(c), 0);
        assert_true(http_pending(c));
        assert_ptr_equal(http_request(c), req);
        f->held = c;
    } else if (strcmp(path, "/body") == 0) {
        size_t n;
        const char *b = http_req_body(req, &n);
        assert_int_equal(http_respond(c, 200, NULL, NULL, b, n), 0);
        assert_null(http_request(c));
    } else if (strcmp(path, "/noanswer") != 0) {
        assert_int_equal(http_respond(c, 404, NULL, NULL, NULL, 0), 0);
    }
}

static void on_ws_text(conn_t *c, const char *msg, size_t len, void *ud)
{
    fixture_t *f = ud;
    assert_true(f->ntexts < MAX_TEXTS);
    f->text_contexts[f->ntexts] = ws_contexts(f);
    buf_t *b = &f->texts[f->ntexts++];
    buf_append(b, msg, len);
    if (f->echo)
        assert_int_equal(ws_conn_send_text(c, msg, len), 0);
}

static void on_ws_binary(conn_t *c, const uint8_t *msg, size_t len, void *ud)
{
    (void)c;
    fixture_t *f = ud;
    f->nbin++;
    buf_reset(&f->bin);
    buf_append(&f->bin, msg, len);
}

static void on_close(conn_t *c, void *ud)
{
    fixture_t *f = ud;
    f->closes++;
    for (int i = 0; i < f->nconns; i++) {
        if (f->conns[i] == c)
            f->conns[i] = NULL;
    }
}

static const ws_handlers_t ws_handlers = {on_ws_text, on_ws_binary};

static uint64_t refusals(const fixture_t *f, enum stats_limit l)
{
    return STATS_GET(f->stats.limit_rejections[l]);
}

static void on_connection(uv_stream_t *server, int status)
{
    fixture_t *f = server->data;
    assert_int_equal(status, 0);
    assert_true(f->nconns < MAX_CONNS);
    conn_t *c = NULL;
    assert_int_equal(http_server_accept(f->hs, server, &c), 0);
    assert_null(conn_data(c));
    conn_set_owner(c, on_close, f);
    assert_false(ws_conn_is(c));
    f->conns[f->nconns++] = c;
}

/* ==== Loop helpers ==== */

static void on_guard(uv_timer_t *t)
{
    fixture_t *f = t->data;
    f->timed_out = true;
}

#define RUN_UNTIL(f, cond)                                                                         \
    do {                                                                                           \
        (f)->timed_out = false;                                                                    \
        uv_timer_start(&(f)->guard, on_guard, GUARD_MS, 0);                                        \
        while (!(cond) && !(f)->timed_out)                                                         \
            uv_run(&(f)->loop, UV_RUN_ONCE);                                                       \
        uv_timer_stop(&(f)->guard);                                                                \
        assert_true(cond);                                                                         \
    } while (0)

/* Runs the loop for about `ms` so that anything pending has a chance to happen. */
static void run_for(fixture_t *f, uint64_t ms)
{
    f->timed_out = false;
    uv_timer_start(&f->guard, on_guard, ms, 0);
    while (!f->timed_out)
        uv_run(&f->loop, UV_RUN_ONCE);
}

static http_stats_t stats_of(const fixture_t *f)
{
    http_stats_t st;
    http_server_stats(f->hs, &st);
    return st;
}

static uint64_t bytes_in(const fixture_t *f)
{
    return stats_of(f).conn.bytes_in;
}

static size_t ws_contexts(const fixture_t *f)
{
    return stats_of(f).ws_contexts;
}

/* ==== Clients ==== */

static void cl_close(client_t *cl);

static void cl_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    client_t *cl = h->data;
    *buf = uv_buf_init(cl->rbuf, sizeof(cl->rbuf));
}

static void cl_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    client_t *cl = s->data;
    if (nread == UV_EOF) {
        cl->eof = true;
        cl_close(cl); /* as a browser does: the server waits for this FIN */
    } else if (nread < 0)
        cl->read_err = (int)nread;
    else if (nread > 0)
        buf_append(&cl->in, buf->base, (size_t)nread);
}

static void cl_connected(uv_connect_t *req, int status)
{
    client_t *cl = req->data;
    assert_int_equal(status, 0);
    cl->connected = true;
    assert_int_equal(uv_read_start((uv_stream_t *)&cl->tcp, cl_alloc, cl_read), 0);
}

static client_t *cl_connect(fixture_t *f, int i)
{
    client_t *cl = &f->cl[i];
    cl->f = f;
    buf_init(&cl->in);
    assert_int_equal(uv_tcp_init(&f->loop, &cl->tcp), 0);
    cl->tcp.data = cl;
    cl->creq.data = cl;
    cl->open = true;
    struct sockaddr_in sa;
    uv_ip4_addr("127.0.0.1", f->port, &sa);
    assert_int_equal(
        uv_tcp_connect(&cl->creq, &cl->tcp, (const struct sockaddr *)&sa, cl_connected), 0);
    int want = f->nconns + 1;
    RUN_UNTIL(f, cl->connected && f->nconns == want);
    return cl;
}

static void cl_send(client_t *cl, const void *p, size_t len)
{
    uv_buf_t b = uv_buf_init((char *)p, (unsigned int)len);
    assert_int_equal(uv_try_write((uv_stream_t *)&cl->tcp, &b, 1), (int)len);
}

static void cl_on_closed(uv_handle_t *h)
{
    client_t *cl = h->data;
    cl->closed = true;
}

static void cl_close(client_t *cl)
{
    if (cl->open) {
        cl->open = false;
        uv_close((uv_handle_t *)&cl->tcp, cl_on_closed);
    }
}

/* A masked client frame (RFC 6455 §5.3) with mask key 01 02 03 04. */
static void ws_client_frame(buf_t *out, uint8_t first_byte, const void *p, size_t len)
{
    static const uint8_t key[4] = {1, 2, 3, 4};
    uint8_t hdr[WS_FRAME_HEADER_MAX];
    size_t hlen = ws_frame_header(hdr, 0, len);
    hdr[0] = first_byte;
    hdr[1] |= 0x80;
    buf_append(out, hdr, hlen);
    buf_append(out, key, 4);
    for (size_t i = 0; i < len; i++)
        buf_putc(out, (char)(((const uint8_t *)p)[i] ^ key[i % 4]));
}

static void cl_send_frame(client_t *cl, uint8_t first_byte, const void *p, size_t len)
{
    buf_t b;
    buf_init(&b);
    ws_client_frame(&b, first_byte, p, len);
    cl_send(cl, b.data, b.len);
    buf_free(&b);
}

/* Connects client i and completes the WebSocket handshake. */
static client_t *ws_connect(fixture_t *f, int i)
{
    client_t *cl = cl_connect(f, i);
    cl_send(cl, upgrade_req, sizeof(upgrade_req) - 1);
    RUN_UNTIL(f, cl->in.len >= LEN_101);
    assert_int_equal(cl->in.len, LEN_101);
    assert_memory_equal(cl->in.data, resp_101, LEN_101);
    assert_true(ws_conn_is(f->conns[f->nconns - 1]));
    buf_reset(&cl->in);
    return cl;
}

/* ==== Fixture ==== */

#define TAG "AbCd" /* the server's relay tag */
/* the second pass runs every test again on the transport's syscall path (IO_URING=off) */
static bool no_io_uring;

static int setup(void **state)
{
    http_limits_t lim = *(const http_limits_t *)*state;
    lim.no_io_uring = no_io_uring;
    fixture_t *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    assert_int_equal(uv_timer_init(&f->loop, &f->guard), 0);
    f->guard.data = f;
    assert_int_equal(uv_tcp_init(&f->loop, &f->server), 0);
    f->server.data = f;
    struct sockaddr_in sa;
    uv_ip4_addr("127.0.0.1", 0, &sa);
    assert_int_equal(uv_tcp_bind(&f->server, (const struct sockaddr *)&sa, 0), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&f->server, 16, on_connection), 0);
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    assert_int_equal(uv_tcp_getsockname(&f->server, (struct sockaddr *)&ss, &len), 0);
    f->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    f->router = router_new();
    router_add(f->router, "/", on_request, f); /* every path */
    assert_int_equal(http_server_new(&f->hs, &f->loop, &lim, TAG, f->router, &f->stats), 0);
    for (int i = 0; i < MAX_TEXTS; i++)
        buf_init(&f->texts[i]);
    buf_init(&f->bin);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    for (int i = 0; i < MAX_CONNS; i++)
        cl_close(&f->cl[i]);
    if (!f->hs_freed)
        http_server_free(f->hs);
    uv_close((uv_handle_t *)&f->server, NULL);
    uv_close((uv_handle_t *)&f->guard, NULL);
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    router_free(f->router);
    for (int i = 0; i < MAX_CONNS; i++)
        buf_free(&f->cl[i].in);
    for (int i = 0; i < MAX_TEXTS; i++)
        buf_free(&f->texts[i]);
    buf_free(&f->bin);
    free(f);
    return 0;
}

/* ==== Tests ==== */

static void test_ws_handshake_and_messages(void **state)
{
    fixture_t *f = *state;
    client_t *cl = cl_connect(f, 0);
    /* a frame in the same write as the head belongs to the WebSocket stream */
    buf_t b;
    buf_init(&b);
    buf_append(&b, upgrade_req, sizeof(upgrade_req) - 1);
    ws_client_frame(&b, 0x81, "first", 5);
    cl_send(cl, b.data, b.len);
    buf_free(&b);
    RUN_UNTIL(f, cl->in.len >= LEN_101 && f->ntexts == 1);
    assert_int_equal(cl->in.len, LEN_101);
    assert_memory_equal(cl->in.data, resp_101, LEN_101);
    assert_string_equal(f->texts[0].data, "first");
    assert_int_equal(f->requests, 1);
    buf_reset(&cl->in);

    /* one frame split across two writes, cut inside the mask key */
    buf_init(&b);
    ws_client_frame(&b, 0x81, "hello", 5);
    uint64_t before = bytes_in(f);
    cl_send(cl, b.data, 3);
    RUN_UNTIL(f, bytes_in(f) == before + 3);
    assert_int_equal(f->ntexts, 1);
    cl_send(cl, b.data + 3, b.len - 3);
    buf_free(&b);
    RUN_UNTIL(f, f->ntexts == 2);
    assert_string_equal(f->texts[1].data, "hello");

    /* a fragmented message (TEXT without FIN + CONTINUATION with FIN), then an empty one */
    f->echo = true;
    cl_send_frame(cl, 0x01, "frag", 4);
    cl_send_frame(cl, 0x80, "mented", 6);
    cl_send_frame(cl, 0x81, "", 0);
    RUN_UNTIL(f, f->ntexts == 4 && cl->in.len == 2 + 10 + 2);
    assert_string_equal(f->texts[2].data, "fragmented");
    assert_int_equal(f->texts[3].len, 0);
    assert_memory_equal(cl->in.data,
                        "\x81\x0a"
                        "fragmented\x81\x00",
                        14);
    buf_reset(&cl->in);

    /* binary and ping: the pong is wslay's own, queued in the same output */
    cl_send_frame(cl, 0x82, "\x00\x01\x02", 3);
    cl_send_frame(cl, 0x89, "p", 1);
    RUN_UNTIL(f, f->nbin == 1 && cl->in.len == 3);
    assert_int_equal(f->bin.len, 3);
    assert_memory_equal(f->bin.data, "\x00\x01\x02", 3);
    assert_memory_equal(cl->in.data, "\x8a\x01p", 3);
    buf_reset(&cl->in);

    /* the client closes: the Close is echoed, then the server closes TCP */
    cl_send_frame(cl, 0x88, "\x03\xe8", 2);
    RUN_UNTIL(f, cl->eof && f->closes == 1);
    assert_int_equal(cl->in.len, 4);
    assert_memory_equal(cl->in.data, "\x88\x02\x03\xe8", 4);
    run_for(f, 20);
    assert_int_equal(f->closes, 1);
    assert_null(f->conns[0]);
    conn_stats_t st = stats_of(f).conn;
    assert_int_equal(st.accepted, 1);
    assert_int_equal(st.closed, 1);
    assert_int_equal(st.live, 0);
}

static void test_broadcast_shared_frame(void **state)
{
    fixture_t *f = *state;
    client_t *cl[3];
    for (int i = 0; i < 3; i++)
        cl[i] = ws_connect(f, i);

    static const char msg[] = "42[\"room:message\",{\"id\":1,\"text\":\"hi\"}]";
    refbuf_t *small = ws_frame_new(WS_FRAME_TEXT, msg, sizeof(msg) - 1);
    size_t big_len = 300000;
    char *payload = malloc(big_len);
    for (size_t i = 0; i < big_len; i++)
        payload[i] = (char)i;
    refbuf_t *big = ws_frame_new(WS_FRAME_BINARY, payload, big_len);
    free(payload);
    assert_non_null(small);
    assert_non_null(big);
    buf_t want;
    buf_init(&want);
    buf_append(&want, refbuf_data(small), refbuf_len(small));
    buf_append(&want, refbuf_data(big), refbuf_len(big));
    buf_append(&want, refbuf_data(small), refbuf_len(small));
    for (int i = 0; i < 3; i++) {
        assert_int_equal(ws_conn_send_frame(f->conns[i], small), 0);
        assert_int_equal(ws_conn_send_frame(f->conns[i], big), 0);
        assert_int_equal(ws_conn_send_frame(f->conns[i], small), 0);
        assert_int_equal(conn_outq_bytes(f->conns[i]), want.len);
    }
    /* the queues hold references: the caller's can go now */
    refbuf_unref(small);
    refbuf_unref(big);
    RUN_UNTIL(f,
              cl[0]->in.len == want.len && cl[1]->in.len == want.len && cl[2]->in.len == want.len);
    for (int i = 0; i < 3; i++) {
        assert_memory_equal(cl[i]->in.data, want.data, want.len);
        assert_int_equal(conn_outq_bytes(f->conns[i]), 0);
    }
    buf_free(&want);
    assert_int_equal(ws_conn_send_frame(f->conns[0], NULL), -EINVAL);
}

static void test_oversize_message_1009(void **state)
{
    fixture_t *f = *state;
    client_t *cl = ws_connect(f, 0);
    cl_send_frame(cl, 0x81, "0123456789abcdef", 16);
    RUN_UNTIL(f, f->ntexts == 1);
    cl_send_frame(cl, 0x81, "0123456789abcdefg", 17);
    RUN_UNTIL(f, cl->eof && f->closes == 1);
    assert_int_equal(f->ntexts, 1);
    assert_int_equal(cl->in.len, 4);
    assert_memory_equal(cl->in.data, "\x88\x02\x03\xf1", 4);
    assert_int_equal(refusals(f, STATS_LIMIT_WS_MESSAGE), 1);
}

static void test_protocol_errors(void **state)
{
    fixture_t *f = *state;
    /* an unmasked client frame: Close 1002 */
    client_t *cl = ws_connect(f, 0);
    cl_send(cl, "\x81\x02hi", 4);
    RUN_UNTIL(f, cl->eof && f->closes == 1);
    assert_int_equal(cl->in.len, 4);
    assert_memory_equal(cl->in.data, "\x88\x02\x03\xea", 4);
    /* invalid UTF-8 in a text message: Close 1007 */
    cl = ws_connect(f, 1);
    cl_send_frame(cl, 0x81, "\xc3\x28", 2);
    RUN_UNTIL(f, cl->eof && f->closes == 2);
    assert_memory_equal(cl->in.data, "\x88\x02\x03\xef", 4);
    /* a fragmented ping is a frame-level error: wslay fails and the socket is just closed */
    cl = ws_connect(f, 2);
    cl_send_frame(cl, 0x09, "p", 1);
    RUN_UNTIL(f, cl->eof && f->closes == 3);
    assert_int_equal(cl->in.len, 0);
    assert_int_equal(f->ntexts, 0);
}

static const char upgrade_deflate_req[] =
    "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n"
    "Host: 127.0.0.1:3010\r\n"
    "Upgrade: websocket\r\n"
    "Connection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Sec-WebSocket-Version: 13\r\n"
    "Sec-WebSocket-Extensions: x-webkit-deflate-frame\r\n"
    "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
    "\r\n";
static const char resp_101_deflate[] =
    "HTTP/1.1 101 Switching Protocols\r\n"
    "Upgrade: websocket\r\n"
    "Connection: Upgrade\r\n"
    "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
    "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; "
    "client_no_context_takeover\r\n"
    "\r\n";

/* Client i offers permessage-deflate (in the second of two headers); returns the 101's length. */
static client_t *ws_connect_offering(fixture_t *f, int i, const char *want_101)
{
    client_t *cl = cl_connect(f, i);
    cl_send(cl, upgrade_deflate_req, sizeof(upgrade_deflate_req) - 1);
    size_t n = strlen(want_101);
    RUN_UNTIL(f, cl->in.len >= n);
    assert_int_equal(cl->in.len, n);
    assert_memory_equal(cl->in.data, want_101, n);
    buf_reset(&cl->in);
    return cl;
}

/* A compressed client frame (RSV1) of p[0..len). */
static void cl_send_deflated(client_t *cl, ws_deflate_t *d, uint8_t opcode, const void *p,
                             size_t len)
{
    buf_t z;
    buf_init(&z);
    ws_deflate_compress(d, p, len, &z);
    cl_send_frame(cl, (uint8_t)(0xc0 | opcode), z.data, z.len);
    buf_free(&z);
}

static void test_permessage_deflate(void **state)
{
    fixture_t *f = *state;
    ws_deflate_t *d = ws_deflate_new();
    client_t *cl = ws_connect_offering(f, 0, resp_101_deflate);
    conn_t *c = f->conns[0];
    assert_non_null(ws_conn_deflater(c));

    /* compressed text and binary messages arrive inflated; plain ones as they are */
    char big[3000];
    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (char)('a' + i % 7);
    cl_send_deflated(cl, d, 0x1, big, sizeof(big));
    cl_send_frame(cl, 0x81, "plain", 5);
    cl_send_deflated(cl, d, 0x2, "\x00\xff\x00", 3);
    RUN_UNTIL(f, f->ntexts == 2 && f->nbin == 1);
    assert_int_equal(f->texts[0].len, sizeof(big));
    assert_memory_equal(f->texts[0].data, big, sizeof(big));
    assert_string_equal(f->texts[1].data, "plain");
    assert_int_equal(f->bin.len, 3);
    assert_memory_equal(f->bin.data, "\x00\xff\x00", 3);

    /* sent texts from the threshold on go compressed, shorter ones plain */
    assert_int_equal(ws_conn_send_text(c, "short", 5), 0);
    assert_int_equal(ws_conn_send_text(c, big, WS_DEFLATE_THRESHOLD), 0);
    RUN_UNTIL(f, cl->in.len >= 7 + 2 && conn_outq_bytes(c) == 0);
    assert_memory_equal(cl->in.data, "\x81\x05short", 7);
    const uint8_t *payload;
    size_t plen;
    size_t hl = ws_frame_parse((const uint8_t *)cl->in.data + 7, cl->in.len - 7, &payload, &plen);
    assert_true(hl > 0);
    assert_int_equal((uint8_t)cl->in.data[7], 0xc1);
    assert_int_equal(7 + hl + plen, cl->in.len);
    assert_true(plen < WS_DEFLATE_THRESHOLD / 4);
    buf_t back;
    buf_init(&back);
    assert_int_equal(ws_deflate_inflate(d, payload, plen, 1 << 20, &back), 0);
    assert_int_equal(back.len, WS_DEFLATE_THRESHOLD);
    assert_memory_equal(back.data, big, WS_DEFLATE_THRESHOLD);
    buf_free(&back);
    buf_reset(&cl->in);

    /* past the largest message once inflated: Close 1009, counted once */
    static char huge[5000];
    memset(huge, 'x', sizeof(huge));
    cl_send_deflated(cl, d, 0x1, huge, sizeof(huge));
    RUN_UNTIL(f, cl->eof && f->closes == 1);
    assert_int_equal(f->ntexts, 2);
    assert_memory_equal(cl->in.data, "\x88\x02\x03\xf1", 4);
    run_for(f, 20);
    assert_int_equal(refusals(f, STATS_LIMIT_WS_MESSAGE), 1);

    /* not deflate data, and a compressed text that is not UTF-8: Close 1007 */
    cl = ws_connect_offering(f, 1, resp_101_deflate);
    cl_send_frame(cl, 0xc1, "\xff\xff\xff\xff", 4);
    RUN_UNTIL(f, cl->eof && f->closes == 2);
    assert_memory_equal(cl->in.data, "\x88\x02\x03\xef", 4);
    cl = ws_connect_offering(f, 2, resp_101_deflate);
    cl_send_deflated(cl, d, 0x1, "\xc3\x28", 2);
    RUN_UNTIL(f, cl->eof && f->closes == 3);
    assert_memory_equal(cl->in.data, "\x88\x02\x03\xef", 4);
    assert_int_equal(f->ntexts, 2);

    /* a client that offers nothing gets plain frames, and RSV1 is a protocol error (1002) */
    cl = ws_connect(f, 3);
    assert_null(ws_conn_deflater(f->conns[3]));
    assert_int_equal(ws_conn_send_text(f->conns[3], big, sizeof(big)), 0);
    RUN_UNTIL(f, cl->in.len == 4 + sizeof(big));
    assert_int_equal((uint8_t)cl->in.data[0], 0x81);
    buf_reset(&cl->in);
    cl_send_deflated(cl, d, 0x1, "hi", 2);
    RUN_UNTIL(f, cl->eof && f->closes == 4);
    assert_memory_equal(cl->in.data, "\x88\x02\x03\xea", 4);
    ws_deflate_free(d);
}

/* Without per_message_deflate an offer is ignored: the 101 is the plain one. */
static void test_permessage_deflate_off(void **state)
{
    fixture_t *f = *state;
    ws_connect_offering(f, 0, resp_101);
    assert_null(ws_conn_deflater(f->conns[0]));
}

static void test_http_keep_alive_and_close(void **state)
{
    fixture_t *f = *state;
    static const char resp_ka[] =
        "HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nKeep-Alive: timeout=4\r\n"
        "Content-type: text/plain\r\nContent-Length: 2\r\n"
        "X-Test: 1\r\n\r\nhi";
    static const char resp_close[] = "HTTP/1.1 200 OK\r\nConnection: close\r\n"
                                     "Content-type: text/plain\r\nContent-Length: 2\r\n"
                                     "X-Test: 1\r\n\r\nhi";
    size_t ka = sizeof(resp_ka) - 1, cl_len = sizeof(resp_close) - 1;
    client_t *cl = cl_connect(f, 0);
    cl_send(cl, "GET /hello?x=1 HTTP/1.1\r\nHost: a\r\n\r\n", 36);
    RUN_UNTIL(f, cl->in.len >= ka);
    assert_int_equal(cl->in.len, ka);
    assert_memory_equal(cl->in.data, resp_ka, ka);
    run_for(f, 20);
    assert_false(cl->eof);
    buf_reset(&cl->in);
    /* two pipelined requests in one write; the second asks to close; HEAD gets no body */
    static const char two[] = "HEAD /hello HTTP/1.1\r\n\r\nGET /hello HTTP/1.1\r\n"
                              "Connection: close\r\n\r\n";
    cl_send(cl, two, sizeof(two) - 1);
    RUN_UNTIL(f, cl->eof && f->closes == 1);
    assert_int_equal(cl->in.len, ka - 2 + cl_len);
    assert_memory_equal(cl->in.data, resp_ka, ka - 2);
    assert_memory_equal(cl->in.data + ka - 2, resp_close, cl_len);
    assert_int_equal(f->requests, 3);

    /* HTTP/1.0 without keep-alive: 404 and close */
    cl = cl_connect(f, 1);
    cl_send(cl, "GET /nothing HTTP/1.0\r\n\r\n", 25);
    RUN_UNTIL(f, cl->eof && f->closes == 2);
    static const char r404[] =
        "HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";
    assert_int_equal(cl->in.len, sizeof(r404) - 1);
    assert_memory_equal(cl->in.data, r404, sizeof(r404) - 1);
}

static void test_upgrade_refused_400(void **state)
{
    fixture_t *f = *state;
    static const char req[] =
        "GET /socket.io/?EIO=4&transport=abc HTTP/1.1\r\n"
        "Host: 127.0.0.1:3010\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n";
    /* protocol.md §1.8, byte for byte */
    static const char want[] = "HTTP/1.1 400 Bad Request\r\nConnection: close\r\n"
                               "Content-type: text/html\r\nContent-Length: 17\r\n\r\n"
                               "Transport unknown";
    client_t *cl = cl_connect(f, 0);
    cl_send(cl, req, sizeof(req) - 1);
    RUN_UNTIL(f, cl->eof && f->closes == 1);
    assert_int_equal(cl->in.len, sizeof(want) - 1);
    assert_memory_equal(cl->in.data, want, sizeof(want) - 1);

    /* a websocket request without a key cannot be accepted either */
    cl = cl_connect(f, 1);
    static const char nokey[] = "GET /socket.io/?transport=websocket HTTP/1.1\r\n"
                                "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                                "Sec-WebSocket-Version: 13\r\n\r\n";
    cl_send(cl, nokey, sizeof(nokey) - 1);
    RUN_UNTIL(f, cl->eof && f->closes == 2);
    assert_memory_equal(cl->in.data, want, sizeof(want) - 1);
}

static void test_parser_errors(void **state)
{
    fixture_t *f = *state;
    static const char r400[] = "HTTP/1.1 400 Bad Request\r\nConnection: close\r\n"
                               "Content-Length: 0\r\n\r\n";
    static const char r431[] = "HTTP/1.1 431 Request Header Fields Too Large\r\n"
                               "Connection: close\r\nContent-Length: 0\r\n\r\n";
    client_t *cl = cl_connect(f, 0);
    cl_send(cl, "GET / HTTP/1.1\r\nNo-Colon\r\n\r\n", 28);
    RUN_UNTIL(f, cl->eof && f->closes == 1);
    assert_int_equal(cl->in.len, sizeof(r400) - 1);
    assert_memory_equal(cl->in.data, r400, sizeof(r400) - 1);

    cl = cl_connect(f, 1);
    char big[17000]; /* over HTTP_DEFAULT_MAX_HEADER_BYTES */
    memset(big, 'a', sizeof(big));
    memcpy(big, "GET / HTTP/1.1\r\nX: ", 19);
    cl_send(cl, big, sizeof(big));
    RUN_UNTIL(f, cl->eof && f->closes == 2);
    assert_int_equal(cl->in.len, sizeof(r431) - 1);
    assert_memory_equal(cl->in.data, r431, sizeof(r431) - 1);
    assert_int_equal(f->requests, 0);
    http_stats_t st = stats_of(f);
    assert_int_equal(st.http_errors, 2);
    assert_int_equal(refusals(f, STATS_LIMIT_HEADER_SIZE), 1);
    assert_int_equal(refusals(f, STATS_LIMIT_BODY_SIZE), 0);
}

static void test_server_close_handshake(void **state)
{
    fixture_t *f = *state;
    /* the peer answers the Close */
    client_t *cl = ws_connect(f, 0);
    conn_t *c = f->conns[0];
    assert_int_equal(ws_conn_close(c, 1005), -EINVAL);
    assert_int_equal(ws_conn_close(c, 1000), 0);
    assert_int_equal(ws_conn_close(c, 1000), 0);
    assert_int_equal(ws_conn_send_text(c, "x", 1), -EPIPE);
    RUN_UNTIL(f, cl->in.len == 4);
    assert_memory_equal(cl->in.data, "\x88\x02\x03\xe8", 4);
    /* messages after our Close are not delivered */
    cl_send_frame(cl, 0x81, "late", 4);
    run_for(f, 20);
    assert_false(cl->eof);
    assert_int_equal(f->closes, 0);
    cl_send_frame(cl, 0x88, "\x03\xe8", 2);
    RUN_UNTIL(f, cl->eof && f->closes == 1);
    assert_int_equal(f->ntexts, 0);

    /* the peer never answers: close_timeout_ms (200) ends it; code 0 sends no status */
    cl = ws_connect(f, 1);
    assert_int_equal(ws_conn_close(f->conns[1], 0), 0);
    RUN_UNTIL(f, cl->eof && f->closes == 2);
    assert_int_equal(cl->in.len, 2);
    assert_memory_equal(cl->in.data, "\x88\x00", 2);

    /* ws_conn_close on an HTTP connection */
    cl = cl_connect(f, 2);
    assert_int_equal(ws_conn_close(f->conns[2], 1000), -EINVAL);
    assert_int_equal(ws_conn_send_text(f->conns[2], "x", 1), -EINVAL);
}

static void test_slow_consumer(void **state)
{
    fixture_t *f = *state;
    client_t *cl = ws_connect(f, 0);
    uv_read_stop((uv_stream_t *)&cl->tcp);
    conn_t *c = f->conns[0];
    static char chunk[16384];
    memset(chunk, 'x', sizeof(chunk));
    int rc = 0, sends = 0;
    f->timed_out = false;
    uv_timer_start(&f->guard, on_guard, GUARD_MS, 0);
    while (rc == 0 && !f->timed_out) {
        rc = ws_conn_send_text(c, chunk, sizeof(chunk));
        sends++;
        uv_run(&f->loop, UV_RUN_NOWAIT);
    }
    uv_timer_stop(&f->guard);
    assert_int_equal(rc, -ENOBUFS);
    assert_true(sends > 4); /* the kernel took some first: this really was a slow reader */
    RUN_UNTIL(f, f->closes == 1);
    conn_stats_t st = stats_of(f).conn;
    assert_int_equal(st.slow_consumers, 1);
    assert_int_equal(refusals(f, STATS_LIMIT_OUTPUT_BUFFER), 1);
}

/* A frame larger than max_outq_bytes (64 KiB here) goes to a client that reads: it is no slow
 * consumer. One that reads nothing is still found out, once a frame waits behind the head. */
static void test_one_large_frame_is_not_slow(void **state)
{
    fixture_t *f = *state;
    size_t len = 1u << 20;
    char *big = malloc(len);
    memset(big, 'y', len);
    client_t *cl = ws_connect(f, 0);
    conn_t *c = f->conns[0];
    assert_int_equal(ws_conn_send_text(c, big, len), 0);
    assert_int_equal(ws_conn_send_text(c, "after", 5), 0);
    RUN_UNTIL(f, cl->in.len == 10 + len + 2 + 5); /* 127-length header, then a 7-byte frame */
    assert_memory_equal(cl->in.data + cl->in.len - 5, "after", 5);
    assert_int_equal(f->closes, 0);
    assert_int_equal(stats_of(f).conn.slow_consumers, 0);

    client_t *idle = ws_connect(f, 1);
    uv_read_stop((uv_stream_t *)&idle->tcp);
    c = f->conns[1];
    int rc = 0, sends = 0;
    f->timed_out = false;
    uv_timer_start(&f->guard, on_guard, GUARD_MS, 0);
    while (rc == 0 && !f->timed_out) {
        rc = ws_conn_send_text(c, big, len);
        sends++;
        uv_run(&f->loop, UV_RUN_NOWAIT);
    }
    uv_timer_stop(&f->guard);
    assert_int_equal(rc, -ENOBUFS); /* the kernel's buffers filled, then one waited behind */
    assert_true(sends >= 2);
    RUN_UNTIL(f, f->closes == 1);
    assert_int_equal(stats_of(f).conn.slow_consumers, 1);
    free(big);
}

/* conn_close while a uv_write is pending: the write is cancelled, refs are released once. */
static void test_close_with_write_in_flight(void **state)
{
    fixture_t *f = *state;
    client_t *cl = ws_connect(f, 0);
    uv_read_stop((uv_stream_t *)&cl->tcp);
    conn_t *c = f->conns[0];
    size_t len = 32u << 20;
    char *payload = calloc(1, len);
    refbuf_t *frame = ws_frame_new(WS_FRAME_BINARY, payload, len);
    free(payload);
    assert_int_equal(ws_conn_send_frame(c, frame), 0);
    assert_int_equal(ws_conn_send_text(c, "tail", 4), 0);
    /* the kernel took part of it: the rest sits in a pending uv_write */
    RUN_UNTIL(f, conn_outq_bytes(c) < len);
    assert_true(conn_outq_bytes(c) > 0);
    conn_close(c);
    assert_int_equal(ws_conn_send_frame(c, frame), -EPIPE);
    assert_int_equal(http_respond(c, 200, NULL, NULL, NULL, 0), -EPIPE);
    RUN_UNTIL(f, f->closes == 1);
    refbuf_unref(frame); /* the last reference: LeakSanitizer checks nothing else holds one */
}

static void test_eof_and_contract(void **state)
{
    fixture_t *f = *state;
    /* EOF in the middle of a head */
    client_t *cl = cl_connect(f, 0);
    cl_send(cl, "GET /hel", 8);
    RUN_UNTIL(f, bytes_in(f) == 8);
    cl_close(cl);
    RUN_UNTIL(f, f->closes == 1);
    assert_int_equal(f->requests, 0);
    /* a handler that answers nothing gets the connection closed */
    cl = cl_connect(f, 1);
    cl_send(cl, "GET /noanswer HTTP/1.1\r\n\r\n", 26);
    RUN_UNTIL(f, cl->eof && f->closes == 2);
    assert_int_equal(cl->in.len, 0);
    /* a handler that closes */
    cl = cl_connect(f, 2);
    cl_send(cl, "GET /close HTTP/1.1\r\n\r\nGET /hello HTTP/1.1\r\n\r\n", 46);
    RUN_UNTIL(f, cl->eof && f->closes == 3);
    assert_int_equal(f->requests, 2);
    /* a reset while a WebSocket is open */
    cl = ws_connect(f, 3);
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    uv_os_fd_t fd;
    assert_int_equal(uv_fileno((uv_handle_t *)&cl->tcp, &fd), 0);
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
    cl_close(cl);
    RUN_UNTIL(f, f->closes == 4);
    /* a client that half-closes right after its request still gets the response */
    cl = cl_connect(f, 4);
    cl_send(cl, "GET /hello HTTP/1.1\r\n\r\n", 23);
    uv_shutdown_t sreq;
    assert_int_equal(uv_shutdown(&sreq, (uv_stream_t *)&cl->tcp, NULL), 0);
    RUN_UNTIL(f, cl->eof && f->closes == 5);
    assert_true(cl->in.len > 0);
    assert_memory_equal(cl->in.data, "HTTP/1.1 200 OK\r\n", 17);
}

/* http_server_free closes what is still open; every on_close runs before the loop can close. */
static void test_ctx_free_with_live_conns(void **state)
{
    fixture_t *f = *state;
    client_t *a = ws_connect(f, 0);
    client_t *b = cl_connect(f, 1);
    cl_send(b, "GET /hel", 8);
    assert_int_equal(ws_conn_send_text(f->conns[0], "bye", 3), 0);
    http_server_free(f->hs);
    f->hs_freed = true;
    RUN_UNTIL(f, f->closes == 2 && a->eof && (b->eof || b->read_err));
}

static void test_deferred_answer_and_bodies(void **state)
{
    fixture_t *f = *state;
    client_t *cl = cl_connect(f, 0);
    /* a held request: nothing is answered, bytes sent meanwhile are not parsed */
    cl_send(cl, "GET /defer HTTP/1.1\r\n\r\n", strlen("GET /defer HTTP/1.1\r\n\r\n"));
    RUN_UNTIL(f, f->held != NULL);
    cl_send(cl, "GET /hello HTTP/1.1\r\n\r\n", strlen("GET /hello HTTP/1.1\r\n\r\n"));
    run_for(f, 30);
    assert_int_equal(cl->in.len, 0);
    assert_int_equal(f->requests, 1);
    assert_int_equal(http_respond(f->held, 200, NULL, NULL, "late", 4), 0);
    static const char late[] = "HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nKeep-Alive: "
                               "timeout=4\r\nContent-Length: 4\r\n\r\nlate";
    RUN_UNTIL(f, cl->in.len >= sizeof(late) - 1);
    assert_memory_equal(cl->in.data, late, sizeof(late) - 1);
    assert_int_equal(http_defer(f->held), -EINVAL); /* nothing awaits an answer now */
    buf_reset(&cl->in);
    /* the request is dispatched once its body is complete, and sees the body */
    cl_send(cl, "POST /body HTTP/1.1\r\nContent-Length: 5\r\n\r\nab",
            strlen("POST /body HTTP/1.1\r\nContent-Length: 5\r\n\r\nab"));
    run_for(f, 20);
    assert_int_equal(f->requests, 1); /* the GET sent while held was dropped, the POST waits */
    cl_send(cl, "cde", 3);
    static const char echo[] = "HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nKeep-Alive: "
                               "timeout=4\r\nContent-Length: 5\r\n\r\nabcde";
    RUN_UNTIL(f, cl->in.len >= sizeof(echo) - 1);
    assert_memory_equal(cl->in.data, echo, sizeof(echo) - 1);
    assert_int_equal(f->requests, 2);
    /* a body over max_body: 413 and close */
    buf_reset(&cl->in);
    cl_send(cl, "POST /body HTTP/1.1\r\nContent-Length: 9\r\n\r\n",
            strlen("POST /body HTTP/1.1\r\nContent-Length: 9\r\n\r\n"));
    RUN_UNTIL(f, cl->eof);
    static const char r413[] = "HTTP/1.1 413 Payload Too Large\r\nConnection: close\r\n"
                               "Content-Length: 0\r\n\r\n";
    assert_int_equal(cl->in.len, sizeof(r413) - 1);
    assert_memory_equal(cl->in.data, r413, sizeof(r413) - 1);
    assert_int_equal(refusals(f, STATS_LIMIT_BODY_SIZE), 1);
}

/* Slowloris: heads and bodies that take too long get a 408; an idle keep-alive is just closed. */
#define R408 "HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"

/* A head that does not come whole within header_timeout_ms (150) is answered 408. (Only clients
 * meant to time out share this short deadline: on a loaded box a head sent at once may still be
 * read past it.) */
static void test_head_timeouts(void **state)
{
    fixture_t *f = *state;
    /* connected, never sends a byte */
    client_t *idle = cl_connect(f, 0);
    /* a head trickling in, never finished */
    client_t *trickle = cl_connect(f, 1);
    cl_send(trickle, "GET /hello HTTP/1.1\r\nX-A: 1\r\n", 29);
    RUN_UNTIL(f, idle->eof && trickle->eof);
    assert_int_equal(idle->in.len, sizeof(R408) - 1);
    assert_memory_equal(idle->in.data, R408, sizeof(R408) - 1);
    assert_int_equal(trickle->in.len, sizeof(R408) - 1);
    assert_memory_equal(trickle->in.data, R408, sizeof(R408) - 1);
    assert_int_equal(f->requests, 0);
    assert_int_equal(refusals(f, STATS_LIMIT_HEADER_TIMEOUT), 2);
    assert_int_equal(refusals(f, STATS_LIMIT_BODY_TIMEOUT), 0);
    http_stats_t st = stats_of(f);
    assert_int_equal(st.timeouts, 2);
    assert_int_equal(st.http_errors, 0);
}

/* A body that stops short gets 408 after body_timeout_ms (200); a held request is the
 * application's business and never times out; an answered one idle on keep-alive is closed
 * without an answer; a WebSocket is past the request. (A head deadline of a minute: these heads
 * are never late.) */
static void test_body_and_idle_timeouts(void **state)
{
    fixture_t *f = *state;
    /* a head, then only part of the body */
    client_t *body = cl_connect(f, 0);
    cl_send(body, "POST /body HTTP/1.1\r\nContent-Length: 5\r\n\r\nab",
            strlen("POST /body HTTP/1.1\r\nContent-Length: 5\r\n\r\nab"));
    client_t *held = cl_connect(f, 1);
    cl_send(held, "GET /defer HTTP/1.1\r\n\r\n", strlen("GET /defer HTTP/1.1\r\n\r\n"));
    RUN_UNTIL(f, body->eof);
    assert_int_equal(body->in.len, sizeof(R408) - 1);
    assert_memory_equal(body->in.data, R408, sizeof(R408) - 1);
    assert_int_equal(refusals(f, STATS_LIMIT_HEADER_TIMEOUT), 0);
    assert_int_equal(refusals(f, STATS_LIMIT_BODY_TIMEOUT), 1);
    RUN_UNTIL(f, f->held != NULL);
    run_for(f, 300);
    assert_false(held->eof);
    assert_int_equal(f->requests, 1);
    assert_int_equal(http_respond(f->held, 200, NULL, NULL, "ok", 2), 0);
    static const char ok[] =
        "HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok";
    RUN_UNTIL(f, held->in.len >= sizeof(ok) - 1);
    assert_memory_equal(held->in.data, ok, sizeof(ok) - 1);
    /* answered, then idle on keep-alive: closed with no answer and no refusal counted */
    RUN_UNTIL(f, held->eof);
    assert_int_equal(held->in.len, sizeof(ok) - 1);
    assert_int_equal(refusals(f, STATS_LIMIT_HEADER_TIMEOUT), 0);
    http_stats_t st = stats_of(f);
    assert_int_equal(st.timeouts, 1);
    assert_int_equal(st.http_errors, 0);
    /* a WebSocket is past the request: no deadline applies */
    client_t *ws = ws_connect(f, 2);
    run_for(f, 300);
    assert_false(ws->eof);
}

/* A large answer its reader takes longer than the keep-alive deadline to read is finished, not
 * cut off as an idle connection. */
static void test_keep_alive_deadline_finishes_a_large_answer(void **state)
{
    fixture_t *f = *state;
    client_t *cl = cl_connect(f, 0);
    cl_send(cl, "GET /defer HTTP/1.1\r\n\r\n", strlen("GET /defer HTTP/1.1\r\n\r\n"));
    RUN_UNTIL(f, f->held != NULL);
    uv_read_stop((uv_stream_t *)&cl->tcp);
    size_t len = 32u << 20; /* more than the kernel's buffers hold */
    char *body = malloc(len);
    memset(body, 'z', len);
    assert_int_equal(http_respond(f->held, 200, NULL, NULL, body, len), 0);
    free(body);
    run_for(f, 600); /* several keep-alive deadlines (150 ms) while nothing is read */
    assert_int_equal(f->closes, 0);
    assert_int_equal(uv_read_start((uv_stream_t *)&cl->tcp, cl_alloc, cl_read), 0);
    RUN_UNTIL(f, cl->eof);
    static const char head[] =
        "HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nContent-Length: 33554432\r\n\r\n";
    assert_int_equal(cl->in.len, sizeof(head) - 1 + len);
    assert_memory_equal(cl->in.data, head, sizeof(head) - 1);
    assert_int_equal(cl->in.data[cl->in.len - 1], 'z');
    assert_int_equal(cl->read_err, 0);
}

static const char req_hello[] = "GET /hello HTTP/1.1\r\n\r\n";
static const char ok_hello[] = "HTTP/1.1 200 OK\r\nConnection: keep-alive\r\n"
                               "Content-type: text/plain\r\nContent-Length: 2\r\n"
                               "X-Test: 1\r\n\r\nhi";
#define REQ_LEN (sizeof(req_hello) - 1)
#define OK_LEN (sizeof(ok_hello) - 1)

/* A client whose request was answered, with the first `more` bytes of a next one sent in the same
 * write (so they arrive before any deadline can pass). */
static client_t *cl_answered(fixture_t *f, int i, size_t more)
{
    client_t *cl = cl_connect(f, i);
    char two[2 * sizeof(req_hello)];
    memcpy(two, req_hello, REQ_LEN);
    memcpy(two + REQ_LEN, req_hello, more);
    cl_send(cl, two, REQ_LEN + more);
    RUN_UNTIL(f, cl->in.len >= OK_LEN);
    return cl;
}

/* The silence allowed on a keep-alive connection is its own deadline, not the head's: a
 * connection answered and then silent, with nothing of a next request or a next head stopped half
 * way, is closed without an answer (no refusal counted), while the head of a fresh connection
 * keeps the head's time. */
static void test_keep_alive_silence_is_not_the_head_deadline(void **state)
{
    fixture_t *f = *state;
    client_t *slow = cl_connect(f, 0);
    cl_send(slow, req_hello, 8);
    client_t *idle = cl_answered(f, 1, 0);
    client_t *stalled = cl_answered(f, 2, 8);
    RUN_UNTIL(f, idle->eof && stalled->eof);
    assert_int_equal(idle->in.len, OK_LEN);
    assert_memory_equal(idle->in.data, ok_hello, OK_LEN);
    assert_int_equal(stalled->in.len, OK_LEN);
    assert_memory_equal(stalled->in.data, ok_hello, OK_LEN);
    run_for(f, 400); /* two more keep-alive deadlines (200 ms) */
    assert_false(slow->eof);
    cl_send(slow, req_hello + 8, REQ_LEN - 8);
    RUN_UNTIL(f, slow->in.len >= OK_LEN);
    assert_int_equal(slow->in.len, OK_LEN);
    assert_memory_equal(slow->in.data, ok_hello, OK_LEN);
    assert_int_equal(f->requests, 3);
    assert_int_equal(refusals(f, STATS_LIMIT_HEADER_TIMEOUT), 0);
    assert_int_equal(stats_of(f).timeouts, 0);
}

/* A next head that keeps coming on a keep-alive connection outlives the keep-alive deadline (it
 * counts from the last bytes, as Node's keepAliveTimeout) and is answered. */
static void test_keep_alive_next_head_arriving_is_not_idle(void **state)
{
    fixture_t *f = *state;
    static const char head[] = "GET /hello HTTP/1.1\r\nX-A: ";
    client_t *cl = cl_connect(f, 0);
    char first[sizeof(req_hello) + sizeof(head)];
    memcpy(first, req_hello, REQ_LEN);
    memcpy(first + REQ_LEN, head, sizeof(head) - 1);
    cl_send(cl, first, REQ_LEN + sizeof(head) - 1);
    RUN_UNTIL(f, cl->in.len >= OK_LEN);
    for (int i = 0; i < 25; i++) { /* 2.5 s, past the keep-alive deadline (1.5 s) */
        run_for(f, 100);
        assert_false(cl->eof);
        cl_send(cl, "a", 1);
    }
    cl_send(cl, "\r\n\r\n", 4);
    RUN_UNTIL(f, cl->in.len >= 2 * OK_LEN);
    assert_int_equal(cl->in.len, 2 * OK_LEN);
    assert_memory_equal(cl->in.data + OK_LEN, ok_hello, OK_LEN);
    assert_int_equal(f->requests, 2);
}

/* ... but the head deadline still bounds it, from its first bytes: 408 once more arrive later. */
static void test_keep_alive_next_head_has_the_head_deadline(void **state)
{
    fixture_t *f = *state;
    static const char r408[] = "HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n"
                               "Content-Length: 0\r\n\r\n";
    client_t *cl = cl_answered(f, 0, 8);
    run_for(f, 400); /* past the head deadline (300 ms), not the keep-alive one */
    assert_false(cl->eof);
    cl_send(cl, req_hello + 8, 4);
    RUN_UNTIL(f, cl->eof);
    assert_int_equal(cl->in.len, OK_LEN + sizeof(r408) - 1);
    assert_memory_equal(cl->in.data + OK_LEN, r408, sizeof(r408) - 1);
    assert_int_equal(f->requests, 1);
    assert_int_equal(refusals(f, STATS_LIMIT_HEADER_TIMEOUT), 1);
}

static void test_adopt_with_bytes_read(void **state)
{
    fixture_t *f = *state;
    /* a socket accepted elsewhere: here the fixture's own, taken back out of its conn */
    client_t *cl = cl_connect(f, 0);
    RUN_UNTIL(f, f->nconns == 1);
    int fd = conn_fileno(f->conns[0]);
    assert_true(fd >= 0);
    int dupfd = dup(fd);
    assert_true(dupfd >= 0);
    conn_close(f->conns[0]);
    RUN_UNTIL(f, f->closes == 1);
    conn_t *c = NULL;
    static const char head[] = "GET /hello HTTP/1.1\r\nHost: a\r\n\r\n";
    assert_int_equal(http_server_adopt(f->hs, dupfd, head, sizeof(head) - 1, &c), 0);
    assert_int_equal(f->requests, 1);
    conn_set_owner(c, on_close, f);
    RUN_UNTIL(f, cl->in.len > 0 && memmem(cl->in.data, cl->in.len, "\r\n\r\nhi", 6));
    assert_memory_equal(cl->in.data, "HTTP/1.1 200 OK\r\n", 17);
    conn_close(c);
    RUN_UNTIL(f, f->closes == 2 && cl->eof);
}

/* Sends p[0..len) in one write and runs the loop until the server has read all of it. */
static void cl_send_read(fixture_t *f, client_t *cl, const void *p, size_t len)
{
    uint64_t before = bytes_in(f);
    cl_send(cl, p, len);
    RUN_UNTIL(f, bytes_in(f) == before + len);
}

/* The handshake's and the heartbeat's messages (whole, small, masked data frames) are delivered
 * without a wslay context; anything else still goes through one, from the first byte that is not
 * such a frame. */
static void test_ws_small_without_context(void **state)
{
    fixture_t *f = *state;
    client_t *cl = ws_connect(f, 0);
    buf_t b;
    buf_init(&b);
    /* three in one read, the last a binary one */
    ws_client_frame(&b, 0x81, "40", 2);
    ws_client_frame(&b, 0x81, "420[\"join-room\",\"r\"]", 20);
    ws_client_frame(&b, 0x82, "\x00\xff", 2);
    cl_send_read(f, cl, b.data, b.len);
    assert_int_equal(f->ntexts, 2);
    assert_string_equal(f->texts[0].data, "40");
    assert_string_equal(f->texts[1].data, "420[\"join-room\",\"r\"]");
    assert_int_equal(f->texts[1].len, 20);
    assert_int_equal(f->text_contexts[0], 0);
    assert_int_equal(f->text_contexts[1], 0);
    assert_int_equal(f->nbin, 1);
    assert_memory_equal(f->bin.data, "\x00\xff", 2);
    assert_int_equal(ws_contexts(f), 0);

    /* a small one, then half of the next: that half waits in a context */
    buf_reset(&b);
    ws_client_frame(&b, 0x81, "3", 1);
    ws_client_frame(&b, 0x81, "hello", 5);
    cl_send_read(f, cl, b.data, b.len - 2);
    assert_int_equal(f->ntexts, 3);
    assert_int_equal(f->text_contexts[2], 0);
    assert_int_equal(ws_contexts(f), 1);
    cl_send_read(f, cl, b.data + b.len - 2, 2);
    assert_int_equal(f->ntexts, 4);
    assert_string_equal(f->texts[3].data, "hello");
    assert_int_equal(f->text_contexts[3], 1);
    assert_int_equal(ws_contexts(f), 0);

    /* 126 bytes (the 16-bit length form) go through wslay */
    char big[126];
    memset(big, 'x', sizeof(big));
    buf_reset(&b);
    ws_client_frame(&b, 0x81, big, sizeof(big));
    cl_send_read(f, cl, b.data, b.len);
    assert_int_equal(f->ntexts, 5);
    assert_int_equal(f->texts[4].len, sizeof(big));
    assert_int_equal(f->text_contexts[4], 1);
    assert_int_equal(ws_contexts(f), 0);

    /* a small text that is not UTF-8 after a good one: the good one is delivered, then wslay
     * fails the connection with 1007, as before */
    buf_reset(&b);
    ws_client_frame(&b, 0x81, "ok", 2);
    ws_client_frame(&b, 0x81, "\xc3\x28", 2);
    buf_reset(&cl->in);
    cl_send(cl, b.data, b.len);
    RUN_UNTIL(f, cl->in.len >= 4);
    assert_int_equal(f->ntexts, 6);
    assert_string_equal(f->texts[5].data, "ok");
    assert_memory_equal(cl->in.data, "\x88\x02\x03\xef", 4);
    RUN_UNTIL(f, f->closes == 1);
    assert_int_equal(f->ntexts, 6);

    /* an unmasked small frame is a protocol error (1002) */
    cl = ws_connect(f, 1);
    cl_send(cl,
            "\x81\x02"
            "40",
            4);
    RUN_UNTIL(f, cl->in.len >= 4);
    assert_memory_equal(cl->in.data, "\x88\x02\x03\xea", 4);
    RUN_UNTIL(f, f->closes == 2);
    assert_int_equal(f->ntexts, 6);
    buf_free(&b);
}

static void test_ws_context_lazy(void **state)
{
    fixture_t *f = *state;
    client_t *cl = ws_connect(f, 0);
    /* an open, idle WebSocket holds no wslay context */
    assert_int_equal(ws_contexts(f), 0);

    /* a frame cut inside its header: the context lives until the frame ends */
    buf_t b;
    buf_init(&b);
    ws_client_frame(&b, 0x81, "hello", 5);
    cl_send_read(f, cl, b.data, 1);
    assert_int_equal(ws_contexts(f), 1);
    cl_send_read(f, cl, b.data + 1, b.len - 1);
    assert_int_equal(f->ntexts, 1);
    assert_string_equal(f->texts[0].data, "hello");
    assert_int_equal(ws_contexts(f), 0);

    /* a fragmented message across reads, a ping between its fragments: the context (and the
     * first fragment in it) lives until the last fragment; the ping is answered meanwhile */
    buf_reset(&b);
    ws_client_frame(&b, 0x01, "frag", 4);
    cl_send_read(f, cl, b.data, b.len);
    assert_int_equal(ws_contexts(f), 1);
    buf_reset(&b);
    ws_client_frame(&b, 0x89, "p", 1);
    cl_send_read(f, cl, b.data, b.len);
    RUN_UNTIL(f, cl->in.len == 3);
    assert_memory_equal(cl->in.data, "\x8a\x01p", 3);
    assert_int_equal(ws_contexts(f), 1);
    buf_reset(&b);
    ws_client_frame(&b, 0x00, "men", 3);
    ws_client_frame(&b, 0x80, "ted", 3);
    cl_send_read(f, cl, b.data, b.len - 2);
    assert_int_equal(f->ntexts, 1);
    assert_int_equal(ws_contexts(f), 1);
    cl_send_read(f, cl, b.data + b.len - 2, 2);
    assert_int_equal(f->ntexts, 2);
    assert_string_equal(f->texts[1].data, "fragmented");
    assert_int_equal(ws_contexts(f), 0);

    /* a lone ping at rest: answered, and the context goes again */
    buf_reset(&cl->in);
    buf_reset(&b);
    ws_client_frame(&b, 0x89, "", 0);
    cl_send_read(f, cl, b.data, b.len);
    RUN_UNTIL(f, cl->in.len == 2);
    assert_memory_equal(cl->in.data, "\x8a\x00", 2);
    assert_int_equal(ws_contexts(f), 0);

    /* the 16- and 64-bit length forms, each cut inside its extended length */
    size_t lens[] = {300, 70000};
    for (int k = 0; k < 2; k++) {
        char *payload = malloc(lens[k]);
        assert_non_null(payload);
        for (size_t i = 0; i < lens[k]; i++)
            payload[i] = (char)(i % 251);
        buf_reset(&b);
        ws_client_frame(&b, 0x82, payload, lens[k]);
        cl_send_read(f, cl, b.data, 3);
        assert_int_equal(ws_contexts(f), 1);
        cl_send_read(f, cl, b.data + 3, b.len - 3);
        assert_int_equal(f->nbin, k + 1);
        assert_int_equal(f->bin.len, lens[k]);
        assert_memory_equal(f->bin.data, payload, lens[k]);
        assert_int_equal(ws_contexts(f), 0);
        free(payload);
    }
    buf_free(&b);

    /* the server closes an idle WebSocket: a context carries the handshake to its end */
    buf_reset(&cl->in);
    assert_int_equal(ws_conn_close(f->conns[0], 1001), 0);
    assert_int_equal(ws_contexts(f), 1);
    RUN_UNTIL(f, cl->in.len == 4);
    assert_memory_equal(cl->in.data, "\x88\x02\x03\xe9", 4);
    cl_send_frame(cl, 0x88, "\x03\xe9", 2);
    RUN_UNTIL(f, cl->eof && f->closes == 1);
    assert_int_equal(ws_contexts(f), 0);
}

/* One stream of frames, every kind of boundary: a message, a 16-bit length, a ping, a
 * fragmented message. Expected: the three messages and the pong, whatever the cuts. */
static void lazy_stream(buf_t *b)
{
    char bin[200];
    for (size_t i = 0; i < sizeof(bin); i++)
        bin[i] = (char)(255 - i);
    ws_client_frame(b, 0x81, "hello", 5);
    ws_client_frame(b, 0x82, bin, sizeof(bin));
    ws_client_frame(b, 0x89, "p", 1);
    ws_client_frame(b, 0x01, "ab", 2);
    ws_client_frame(b, 0x80, "cd", 2);
}

static void lazy_stream_check(fixture_t *f, client_t *cl)
{
    RUN_UNTIL(f, f->ntexts == 2 && f->nbin == 1 && cl->in.len == 3);
    assert_string_equal(f->texts[0].data, "hello");
    assert_string_equal(f->texts[1].data, "abcd");
    assert_int_equal(f->bin.len, 200);
    for (size_t i = 0; i < 200; i++)
        assert_int_equal((uint8_t)f->bin.data[i], 255 - i);
    assert_memory_equal(cl->in.data, "\x8a\x01p", 3);
    assert_int_equal(ws_contexts(f), 0);
    f->ntexts = 0;
    f->nbin = 0;
    buf_reset(&f->texts[0]);
    buf_reset(&f->texts[1]);
    buf_reset(&cl->in);
}

static void test_ws_split_every_offset(void **state)
{
    fixture_t *f = *state;
    client_t *cl = ws_connect(f, 0);
    buf_t b;
    buf_init(&b);
    lazy_stream(&b);
    /* message boundaries, where the context must be gone between the two reads */
    const size_t rest[] = {11, 11 + 208, 11 + 208 + 7};
    for (size_t cut = 1; cut < b.len; cut++) {
        cl_send_read(f, cl, b.data, cut);
        bool at_rest = cut == rest[0] || cut == rest[1] || cut == rest[2];
        assert_int_equal(ws_contexts(f), at_rest ? 0 : 1);
        cl_send_read(f, cl, b.data + cut, b.len - cut);
        lazy_stream_check(f, cl);
    }
    /* and one byte per read */
    for (size_t i = 0; i < b.len; i++)
        cl_send_read(f, cl, b.data + i, 1);
    lazy_stream_check(f, cl);
    assert_int_equal(f->closes, 0);
    buf_free(&b);
}

static void test_oversize_fragmented_across_reads(void **state)
{
    fixture_t *f = *state;
    client_t *cl = ws_connect(f, 0);
    /* 10 + 7 bytes in two fragments, read apart: the limit (16) counts the whole message */
    buf_t b;
    buf_init(&b);
    ws_client_frame(&b, 0x01, "0123456789", 10);
    cl_send_read(f, cl, b.data, b.len);
    assert_int_equal(ws_contexts(f), 1);
    buf_reset(&b);
    ws_client_frame(&b, 0x80, "abcdefg", 7);
    cl_send(cl, b.data, b.len);
    buf_free(&b);
    RUN_UNTIL(f, cl->eof && f->closes == 1);
    assert_int_equal(f->ntexts, 0);
    assert_int_equal(cl->in.len, 4);
    assert_memory_equal(cl->in.data, "\x88\x02\x03\xf1", 4);
    assert_int_equal(refusals(f, STATS_LIMIT_WS_MESSAGE), 1);
    assert_int_equal(ws_contexts(f), 0);
}

/* Another server relaying here opens with a hello naming this server: answered, then HTTP; a
 * hello naming another server is closed unanswered; plain HTTP is untouched. A server needs a
 * tag of RELAY_HELLO_TAG_LEN characters. */
#define CLOSE_GET "GET /hello HTTP/1.1\r\nConnection: close\r\n\r\n"

static void test_relay_hello(void **state)
{
    fixture_t *f = *state;
    http_server_t *bad = NULL;
    assert_int_equal(http_server_new(&bad, &f->loop, NULL, "AbC", f->router, NULL), -EINVAL);
    assert_int_equal(http_server_new(&bad, &f->loop, NULL, "AbCdE", f->router, NULL), -EINVAL);
    assert_null(bad);
    char hello[RELAY_HELLO_LEN], want[RELAY_ANSWER_LEN];
    relay_hello_build(hello, TAG, "0123456789abcdef");
    relay_answer_build(want, TAG, "0123456789abcdef");
    client_t *cl = cl_connect(f, 0);
    cl_send(cl, hello, sizeof(hello));
    RUN_UNTIL(f, cl->in.len >= sizeof(want));
    assert_int_equal(cl->in.len, sizeof(want));
    assert_memory_equal(cl->in.data, want, sizeof(want));
    buf_reset(&cl->in);
    cl_send(cl, CLOSE_GET, sizeof(CLOSE_GET) - 1);
    RUN_UNTIL(f, cl->eof && f->closes == 1);
    assert_int_equal(f->requests, 1);
    assert_memory_equal(cl->in.data, "HTTP/1.1 200 OK\r\n", 17);

    cl = cl_connect(f, 1);
    relay_hello_build(hello, "ZZZZ", "0123456789abcdef");
    cl_send(cl, hello, sizeof(hello));
    RUN_UNTIL(f, cl->eof && f->closes == 2);
    assert_int_equal(cl->in.len, 0);
    assert_int_equal(f->requests, 1);

    cl = cl_connect(f, 2);
    cl_send(cl, CLOSE_GET, sizeof(CLOSE_GET) - 1);
    RUN_UNTIL(f, cl->eof && f->closes == 3);
    assert_int_equal(f->requests, 2);
    assert_memory_equal(cl->in.data, "HTTP/1.1 200 OK\r\n", 17);
}

/* The network may cut a relay's hello anywhere: a hello in pieces is answered as a whole one is,
 * one for another server is still closed unanswered, and first bytes that only began like a
 * hello are parsed as HTTP, with the same answer as when they come in one piece. */
#define ODD_METHOD "STREAMIO-RELAX / HTTP/1.1\r\nConnection: close\r\n\r\n"

static void test_relay_hello_in_pieces(void **state)
{
    fixture_t *f = *state;
    char hello[RELAY_HELLO_LEN], want[RELAY_ANSWER_LEN];
    relay_hello_build(hello, TAG, "0123456789abcdef");
    relay_answer_build(want, TAG, "0123456789abcdef");
    static const size_t cuts[][2] = {{1, 15}, {14, 30}, {15, 37}, {20, 21}};
    int conns = 0;
    for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
        client_t *cl = cl_connect(f, conns++);
        cl_send_read(f, cl, hello, cuts[i][0]);
        cl_send_read(f, cl, hello + cuts[i][0], cuts[i][1] - cuts[i][0]);
        assert_int_equal(cl->in.len, 0);
        /* the rest of the hello and a request, in one piece */
        char rest[RELAY_HELLO_LEN + sizeof(CLOSE_GET)];
        size_t nrest = RELAY_HELLO_LEN - cuts[i][1];
        memcpy(rest, hello + cuts[i][1], nrest);
        memcpy(rest + nrest, CLOSE_GET, sizeof(CLOSE_GET) - 1);
        cl_send(cl, rest, nrest + sizeof(CLOSE_GET) - 1);
        RUN_UNTIL(f, cl->eof && f->closes == conns);
        assert_int_equal(f->requests, (int)i + 1);
        assert_true(cl->in.len > sizeof(want) + 17);
        assert_memory_equal(cl->in.data, want, sizeof(want));
        assert_memory_equal(cl->in.data + sizeof(want), "HTTP/1.1 200 OK\r\n", 17);
    }

    client_t *cl = cl_connect(f, conns++);
    relay_hello_build(hello, "ZZZZ", "0123456789abcdef");
    cl_send_read(f, cl, hello, 17);
    cl_send(cl, hello + 17, sizeof(hello) - 17);
    RUN_UNTIL(f, cl->eof && f->closes == conns);
    assert_int_equal(cl->in.len, 0);

    /* not a hello after all: the same answer whole and in pieces */
    cl = cl_connect(f, conns++);
    cl_send(cl, ODD_METHOD, sizeof(ODD_METHOD) - 1);
    RUN_UNTIL(f, cl->eof && f->closes == conns);
    buf_t whole;
    buf_init(&whole);
    buf_append(&whole, cl->in.data, cl->in.len);
    assert_true(whole.len > 0);
    cl = cl_connect(f, conns++);
    cl_send_read(f, cl, ODD_METHOD, 9);
    cl_send(cl, ODD_METHOD + 9, sizeof(ODD_METHOD) - 1 - 9);
    RUN_UNTIL(f, cl->eof && f->closes == conns);
    assert_int_equal(cl->in.len, whole.len);
    assert_memory_equal(cl->in.data, whole.data, whole.len);
    buf_free(&whole);
}

static const http_limits_t lim_default = {0};
static const http_limits_t lim_small_body = {.max_body = 8};
static const http_limits_t lim_small_msg = {.max_ws_message = 16};
static const http_limits_t lim_close = {.close_timeout_ms = 200};
static const http_limits_t lim_slow = {.max_outq_bytes = 65536};
static const http_limits_t lim_big_outq = {.max_outq_bytes = 64u << 20};
static const http_limits_t lim_deflate = {.per_message_deflate = true, .max_ws_message = 4096};
static const http_limits_t lim_slow_req = {
    .header_timeout_ms = 150, .body_timeout_ms = 200, .keepalive_timeout_ms = 150};
static const http_limits_t lim_slow_body = {
    .header_timeout_ms = 60000, .body_timeout_ms = 200, .keepalive_timeout_ms = 150};
static const http_limits_t lim_short_idle = {.header_timeout_ms = 60000,
                                             .keepalive_timeout_ms = 200};
/* keep-alive deadlines under 2 s: answers carry no Keep-Alive hint */
static const http_limits_t lim_idle_1500 = {.header_timeout_ms = 60000,
                                            .keepalive_timeout_ms = 1500};
static const http_limits_t lim_short_head = {.header_timeout_ms = 300,
                                             .keepalive_timeout_ms = 1900};

#define T(fn, lim) cmocka_unit_test_prestate_setup_teardown(fn, setup, teardown, (void *)&(lim))

int main(void)
{
    /* a peer that resets makes writev raise SIGPIPE; servers ignore it */
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        T(test_ws_handshake_and_messages, lim_default),
        T(test_broadcast_shared_frame, lim_default),
        T(test_oversize_message_1009, lim_small_msg),
        T(test_protocol_errors, lim_default),
        T(test_permessage_deflate, lim_deflate),
        T(test_permessage_deflate_off, lim_default),
        T(test_http_keep_alive_and_close, lim_default),
        T(test_upgrade_refused_400, lim_default),
        T(test_parser_errors, lim_default),
        T(test_server_close_handshake, lim_close),
        T(test_slow_consumer, lim_slow),
        T(test_one_large_frame_is_not_slow, lim_slow),
        T(test_close_with_write_in_flight, lim_big_outq),
        T(test_eof_and_contract, lim_default),
        T(test_ctx_free_with_live_conns, lim_default),
        T(test_deferred_answer_and_bodies, lim_small_body),
        T(test_adopt_with_bytes_read, lim_default),
        T(test_head_timeouts, lim_slow_req),
        T(test_body_and_idle_timeouts, lim_slow_body),
        T(test_keep_alive_deadline_finishes_a_large_answer, lim_slow_req),
        T(test_keep_alive_silence_is_not_the_head_deadline, lim_short_idle),
        T(test_keep_alive_next_head_arriving_is_not_idle, lim_idle_1500),
        T(test_keep_alive_next_head_has_the_head_deadline, lim_short_head),
        T(test_ws_context_lazy, lim_default),
        T(test_ws_small_without_context, lim_default),
        T(test_ws_split_every_offset, lim_default),
        T(test_oversize_fragmented_across_reads, lim_small_msg),
        T(test_relay_hello, lim_default),
        T(test_relay_hello_in_pieces, lim_default),
    };
    int failed =
        cmocka_run_group_tests_name("writes through io_uring where allowed", tests, NULL, NULL);
    no_io_uring = true;
    return failed | cmocka_run_group_tests_name("writes with syscalls", tests, NULL, NULL);
}
