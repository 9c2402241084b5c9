/*
 * Unit tests for worker/net/splice over real loopback TCP: a relayed request reaches the peer
 * with the bytes given first, the answer comes back, both sides close when done; a large answer
 * arrives whole through the one-write-per-direction backpressure; an unreachable peer gets the
 * client the fallback answer; a peer that does not give the expected answer to the hello gets
 * nothing of the client's, and the client gets the fallback.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/buf.h"
#include "worker/net/splice.h"

#define BIG (1u << 20)
#define HELLO "HELLO peer-1 n0nce\r\n"
#define EXPECT "OK peer-1 n0nce\r\n"
#define FALLBACK "HTTP/1.1 400 x\r\n\r\n"

typedef struct fx {
    uv_loop_t loop;
    uv_tcp_t server; /* the peer */
    uv_tcp_t conn;   /* its accepted connection */
    bool accepted, peer_eof, conn_closed;
    buf_t got;         /* what the peer received */
    size_t answer_len; /* bytes it answers once it saw the request's end */
    char *answer;
    const char *greeting; /* what it answers to the hello (NULL: nothing) */
    uv_write_t greet_wr;
    uv_write_t wr;
    struct sockaddr_in addr;
    int client;     /* the test's end of the client connection */
    buf_t received; /* what the client received */
    bool client_eof;
    splice_stats_t stats;
    splice_set_t *set;
} fx_t;

static void on_conn_closed(uv_handle_t *h)
{
    ((fx_t *)h->data)->conn_closed = true;
}

static void on_answered(uv_write_t *w, int status)
{
    (void)status;
    uv_close((uv_handle_t *)w->handle, on_conn_closed);
}

static void peer_alloc(uv_handle_t *h, size_t n, uv_buf_t *b)
{
    (void)h;
    b->base = malloc(n);
    b->len = n;
}

static void peer_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    fx_t *f = s->data;
    if (n > 0)
        buf_append(&f->got, b->base, (size_t)n);
    free(b->base);
    if (n < 0)
        f->peer_eof = true;
    if (f->greeting && n > 0 && f->got.len == strlen(HELLO) && memcmp(f->got.data, HELLO, strlen(HELLO)) == 0) {
        uv_buf_t g = uv_buf_init((char *)f->greeting, (unsigned)strlen(f->greeting));
        uv_write(&f->greet_wr, s, &g, 1, NULL);
    }
    /* the request ends with a blank line: answer it */
    if (f->answer && n > 0 && f->got.len >= 4 && memcmp(f->got.data + f->got.len - 4, "\r\n\r\n", 4) == 0) {
        uv_buf_t out = uv_buf_init(f->answer, (unsigned)f->answer_len);
        uv_write(&f->wr, s, &out, 1, on_answered);
    }
}

static void on_peer_connection(uv_stream_t *srv, int status)
{
    fx_t *f = srv->data;
    assert_int_equal(status, 0);
    uv_tcp_init(&f->loop, &f->conn);
    f->conn.data = f;
    assert_int_equal(uv_accept(srv, (uv_stream_t *)&f->conn), 0);
    f->accepted = true;
    uv_read_start((uv_stream_t *)&f->conn, peer_alloc, peer_read);
}

/* A connected pair over loopback: returns the accepted end (for splice), *other the test's. */
static int tcp_pair(int *other)
{
    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof(a);
    assert_int_equal(bind(l, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(l, 1), 0);
    assert_int_equal(getsockname(l, (struct sockaddr *)&a, &al), 0);
    int c = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(connect(c, (struct sockaddr *)&a, sizeof(a)), 0);
    int s = accept(l, NULL, NULL);
    close(l);
    fcntl(s, F_SETFL, O_NONBLOCK);
    fcntl(c, F_SETFL, O_NONBLOCK);
    *other = c;
    return s;
}

static int setup(void **state)
{
    fx_t *f = calloc(1, sizeof(*f));
    uv_loop_init(&f->loop);
    f->set = splice_set_new(&f->loop);
    buf_init(&f->got);
    buf_init(&f->received);
    uv_tcp_init(&f->loop, &f->server);
    f->server.data = f;
    uv_ip4_addr("127.0.0.1", 0, &f->addr);
    assert_int_equal(uv_tcp_bind(&f->server, (struct sockaddr *)&f->addr, 0), 0);
    int len = sizeof(f->addr);
    uv_tcp_getsockname(&f->server, (struct sockaddr *)&f->addr, &len);
    assert_int_equal(uv_listen((uv_stream_t *)&f->server, 8, on_peer_connection), 0);
    *state = f;
    return 0;
}

static void walk_close(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static int teardown(void **state)
{
    fx_t *f = *state;
    /* the client hangs up, as nginx does after the answer: the splice closes itself */
    close(f->client);
    uv_close((uv_handle_t *)&f->server, NULL);
    for (int i = 0; i < 1000 && uv_run(&f->loop, UV_RUN_NOWAIT); i++)
        usleep(1000);
    splice_set_free(f->set);
    uv_walk(&f->loop, walk_close, NULL);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    buf_free(&f->got);
    buf_free(&f->received);
    free(f->answer);
    free(f);
    return 0;
}

/* Runs the loop (and drains the client's socket) until done(f) or 5 s. */
static bool run_until(fx_t *f, bool (*done)(fx_t *))
{
    for (int i = 0; i < 5000 && !done(f); i++) {
        uv_run(&f->loop, UV_RUN_NOWAIT);
        char b[65536];
        ssize_t n;
        while ((n = read(f->client, b, sizeof(b))) > 0)
            buf_append(&f->received, b, (size_t)n);
        if (n == 0)
            f->client_eof = true;
        if (!done(f))
            usleep(1000);
    }
    return done(f);
}

static bool answered_and_closed(fx_t *f)
{
    return f->client_eof && f->received.len == f->answer_len;
}

static void start_greeting(fx_t *f, const char *first, const struct sockaddr *to, bool greet)
{
    int s = tcp_pair(&f->client);
    splice_msgs_t m = {
        .hello = HELLO,
        .hello_len = greet ? strlen(HELLO) : 0,
        .expect = EXPECT,
        .expect_len = greet ? strlen(EXPECT) : 0,
        .first = first,
        .first_len = strlen(first),
        .fallback = FALLBACK,
        .fallback_len = strlen(FALLBACK),
    };
    assert_int_equal(splice_start(f->set, s, to, &m, &f->stats), 0);
}

static void start(fx_t *f, const char *first, const struct sockaddr *to)
{
    start_greeting(f, first, to, false);
}

static void test_relays_both_ways(void **state)
{
    fx_t *f = *state;
    f->answer = strdup("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    f->answer_len = strlen(f->answer);
    start(f, "GET /socket.io/?EIO=4&sid=x HTTP/1.1\r\n", (struct sockaddr *)&f->addr);
    /* the rest of the request comes from the client after the first bytes */
    assert_int_equal(write(f->client, "Host: a\r\n\r\n", 11), 11);
    assert_true(run_until(f, answered_and_closed));
    assert_string_equal(f->got.data, "GET /socket.io/?EIO=4&sid=x HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_memory_equal(f->received.data, f->answer, f->answer_len);
    assert_int_equal(f->stats.relayed, 1);
    assert_int_equal(f->stats.bytes_out, f->answer_len);
    assert_int_equal(f->stats.bytes_in, f->got.len);
}

static void test_a_large_answer_arrives_whole(void **state)
{
    fx_t *f = *state;
    f->answer_len = BIG;
    f->answer = malloc(BIG);
    for (size_t i = 0; i < BIG; i++)
        f->answer[i] = (char)(i * 7 + i / 251);
    start(f, "GET / HTTP/1.1\r\n\r\n", (struct sockaddr *)&f->addr);
    assert_true(run_until(f, answered_and_closed));
    assert_memory_equal(f->received.data, f->answer, BIG);
}

static bool client_closed(fx_t *f)
{
    return f->client_eof;
}

static void test_unreachable_peer_gets_the_fallback(void **state)
{
    fx_t *f = *state;
    struct sockaddr_in nowhere;
    uv_ip4_addr("127.0.0.1", 1, &nowhere); /* nothing listens on port 1 */
    start(f, "GET / HTTP/1.1\r\n\r\n", (struct sockaddr *)&nowhere);
    assert_true(run_until(f, client_closed));
    assert_string_equal(f->received.data, "HTTP/1.1 400 x\r\n\r\n");
    assert_int_equal(f->stats.failed, 1);
    assert_int_equal(f->stats.relayed, 0);
}

static bool peer_saw_request(fx_t *f)
{
    return f->accepted && f->got.len == 24;
}

static bool both_ends_closed(fx_t *f)
{
    return f->client_eof && f->peer_eof;
}

/* A relay that never ends by itself (a WebSocket) ends with its set: the worker's shutdown. */
static void test_freeing_the_set_ends_a_running_relay(void **state)
{
    fx_t *f = *state;
    start(f, "GET / HTTP/1.1\r\nX: y", (struct sockaddr *)&f->addr);
    assert_int_equal(write(f->client, "\r\n\r\n", 4), 4);
    /* no answer: the peer keeps the connection open */
    assert_true(run_until(f, peer_saw_request));
    splice_set_free(f->set);
    f->set = splice_set_new(&f->loop);
    assert_true(run_until(f, both_ends_closed));
    assert_int_equal(f->stats.relayed, 1);
}

/* The peer proves it is the server meant: the hello, then the request, then the answer back. */
static void test_a_peer_that_answers_the_hello_gets_the_request(void **state)
{
    fx_t *f = *state;
    f->greeting = EXPECT;
    f->answer = strdup("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    f->answer_len = strlen(f->answer);
    start_greeting(f, "GET /x HTTP/1.1\r\n\r\n", (struct sockaddr *)&f->addr, true);
    assert_true(run_until(f, answered_and_closed));
    assert_string_equal(f->got.data, HELLO "GET /x HTTP/1.1\r\n\r\n");
    assert_memory_equal(f->received.data, f->answer, f->answer_len);
    assert_int_equal(f->stats.relayed, 1);
    assert_int_equal(f->stats.failed, 0);
}

static bool refused(fx_t *f)
{
    return f->client_eof && f->peer_eof;
}

/* Any other service (here one that answers as HTTP would) never sees the client's bytes. */
static void test_a_peer_with_a_wrong_answer_gets_nothing_of_the_client(void **state)
{
    fx_t *f = *state;
    f->greeting = "HTTP/1.1 400 Bad Request\r\n\r\n";
    start_greeting(f, "GET /secret HTTP/1.1\r\n", (struct sockaddr *)&f->addr, true);
    assert_int_equal(write(f->client, "Cookie: c\r\n\r\n", 15), 15);
    assert_true(run_until(f, refused));
    assert_string_equal(f->got.data, HELLO);
    assert_string_equal(f->received.data, FALLBACK);
    assert_int_equal(f->stats.failed, 1);
    assert_int_equal(f->stats.relayed, 0);
}

/* An echo server sends the hello back: not the answer. */
static void test_an_echo_is_not_the_answer(void **state)
{
    fx_t *f = *state;
    f->greeting = HELLO;
    start_greeting(f, "GET / HTTP/1.1\r\n\r\n", (struct sockaddr *)&f->addr, true);
    assert_true(run_until(f, refused));
    assert_string_equal(f->got.data, HELLO);
    assert_string_equal(f->received.data, FALLBACK);
    assert_int_equal(f->stats.failed, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_relays_both_ways, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_large_answer_arrives_whole, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unreachable_peer_gets_the_fallback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_freeing_the_set_ends_a_running_relay, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_peer_that_answers_the_hello_gets_the_request, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_peer_with_a_wrong_answer_gets_nothing_of_the_client,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_an_echo_is_not_the_answer, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
