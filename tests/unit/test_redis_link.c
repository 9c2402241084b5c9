/* Unit tests for common/redis/redis_link, the byte pipe. Against a plain loopback peer (a socket
 * of the test's own, read and written directly): a flush the socket takes at once, a write larger
 * than the socket takes, an early write the socket takes in part, and a peer that reset. Against
 * the scripted server (tests/unit/redis_fake.c): a busy link reads in chunks larger than its first
 * 16 KB buffer, every byte once and in order whatever the chunk sizes; a queue past 256 KB is
 * written at once, not at the end of the loop iteration. */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <cmocka.h>

#include "common/redis/redis_link.h"
#include "tests/unit/redis_fake.h"

#define TURNS 20000 /* loop turns before a wait gives up (each waits up to 1 ms) */

typedef struct fx {
    uv_loop_t loop;
    int lfd;  /* listener */
    int peer; /* the accepted side of the link's connection */
    redis_link_t *l;
    int opened, errors, err;
    size_t got; /* bytes the link handed over */
} fx_t;

static void on_open(redis_link_t *l, void *arg)
{
    (void)l;
    ((fx_t *)arg)->opened++;
}

static void on_data(redis_link_t *l, char *p, size_t n, void *arg)
{
    (void)l;
    (void)p;
    ((fx_t *)arg)->got += n;
}

static void on_error(redis_link_t *l, int err, const char *why, void *arg)
{
    (void)l;
    (void)why;
    fx_t *f = arg;
    f->errors++;
    f->err = err;
}

static const redis_link_cbs_t cbs = {.open = on_open, .data = on_data, .error = on_error};

/* One loop turn, then a wait of at most a millisecond for the peer's socket to become readable
 * (the link's own events are taken by the next turn). */
static void turn(fx_t *f)
{
    uv_run(&f->loop, UV_RUN_NOWAIT);
    if (f->peer >= 0) {
        struct pollfd p = {.fd = f->peer, .events = POLLIN};
        (void)poll(&p, 1, 1);
    }
}

static int setup(void **state)
{
    fx_t *f = calloc(1, sizeof(*f));
    assert_int_equal(uv_loop_init(&f->loop), 0);
    f->lfd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(f->lfd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof(sa);
    assert_int_equal(bind(f->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(f->lfd, 4), 0);
    assert_int_equal(getsockname(f->lfd, (struct sockaddr *)&sa, &sl), 0);
    f->l = redis_link_open(&f->loop, "127.0.0.1", ntohs(sa.sin_port), NULL, NULL, &cbs, f);
    for (int i = 0; i < TURNS && !f->opened && !f->errors; i++)
        turn(f);
    assert_int_equal(f->opened, 1);
    f->peer = accept(f->lfd, NULL, NULL);
    assert_true(f->peer >= 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx_t *f = *state;
    redis_link_close(f->l);
    while (uv_run(&f->loop, UV_RUN_NOWAIT))
        ;
    assert_int_equal(uv_loop_close(&f->loop), 0);
    if (f->peer >= 0)
        close(f->peer);
    close(f->lfd);
    free(f);
    return 0;
}

/* Reads what the peer has now, without waiting; appends to buf (cap bytes). */
static size_t peer_read(fx_t *f, char *buf, size_t have, size_t cap)
{
    for (;;) {
        ssize_t n = recv(f->peer, buf + have, cap - have, MSG_DONTWAIT);
        if (n <= 0)
            return have;
        have += (size_t)n;
    }
}

/* The commands of one paced read, or its acknowledgements: the socket takes them whole, so they
 * are on the wire when the flush's loop turn ends, with nothing queued and no write request left
 * on the loop, and the link still reads. */
static void test_a_flush_the_socket_takes_at_once_is_done_in_its_turn(void **state)
{
    fx_t *f = *state;
    static const char cmd[] = "*1\r\n$4\r\nPING\r\n";
    redis_link_write(f->l, cmd, sizeof(cmd) - 1);
    assert_int_equal(redis_link_queued(f->l), sizeof(cmd) - 1);
    uv_run(&f->loop, UV_RUN_NOWAIT); /* the prepare phase flushes */
    assert_int_equal(redis_link_queued(f->l), 0);
    assert_int_equal(f->loop.active_reqs.count, 0);
    char buf[64];
    size_t have = 0;
    for (int i = 0; i < TURNS && have < sizeof(cmd) - 1; i++) {
        have = peer_read(f, buf, have, sizeof(buf));
        if (have < sizeof(cmd) - 1)
            turn(f);
    }
    assert_int_equal(have, sizeof(cmd) - 1);
    assert_memory_equal(buf, cmd, sizeof(cmd) - 1);
    /* and the link still reads */
    assert_int_equal(send(f->peer, "+PONG\r\n", 7, 0), 7);
    for (int i = 0; i < TURNS && f->got < 7; i++)
        turn(f);
    assert_int_equal(f->got, 7);
    assert_int_equal(f->errors, 0);
}

/* More than the socket takes at once: the rest goes once the peer reads, every byte in order,
 * and what is still queued is counted exactly meanwhile. */
static void test_a_write_larger_than_the_socket_goes_out_whole_and_in_order(void **state)
{
    fx_t *f = *state;
    const size_t total = 8u << 20;
    char *out = malloc(total), *in = malloc(total);
    for (size_t i = 0; i < total; i++)
        out[i] = (char)(i * 7 + i / 251);
    memcpy(redis_link_reserve(f->l, total), out, total);
    redis_link_commit(f->l, total);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    size_t queued = redis_link_queued(f->l);
    assert_true(queued > 0 && queued < total); /* part taken at once, the rest waits */
    /* a second write queued behind the one in flight */
    redis_link_write(f->l, "tail", 4);
    assert_int_equal(redis_link_queued(f->l), queued + 4);
    size_t have = 0;
    char tail[4];
    size_t tail_have = 0;
    for (int i = 0; i < TURNS * 10 && (have < total || tail_have < 4); i++) {
        if (have < total)
            have = peer_read(f, in, have, total);
        else
            tail_have = peer_read(f, tail, tail_have, sizeof(tail));
        turn(f);
    }
    assert_int_equal(have, total);
    assert_memory_equal(in, out, total);
    assert_int_equal(tail_have, 4);
    assert_memory_equal(tail, "tail", 4);
    assert_int_equal(redis_link_queued(f->l), 0);
    assert_int_equal(f->errors, 0);
    free(out);
    free(in);
}

/* A queue past 256 KB is written from the commit itself (no loop turn) and the socket takes part
 * of it: the rest stays queued, counted exactly; no further early write is tried until the loop's
 * flush, so a later commit only adds to the queue; every byte reaches the peer once, in order. */
static void test_an_early_write_the_socket_takes_in_part_keeps_the_rest(void **state)
{
    fx_t *f = *state;
    const size_t total = 8u << 20, more = 300000;
    char *out = malloc(total + more), *in = malloc(total + more);
    for (size_t i = 0; i < total + more; i++)
        out[i] = (char)(i * 13 + i / 509);
    memcpy(redis_link_reserve(f->l, total), out, total);
    redis_link_commit(f->l, total);
    size_t queued = redis_link_queued(f->l);
    assert_true(queued > 0 && queued < total); /* part taken at once, the rest kept */
    memcpy(redis_link_reserve(f->l, more), out + total, more);
    redis_link_commit(f->l, more); /* past 256 KB again, but the socket was full */
    assert_int_equal(redis_link_queued(f->l), queued + more);
    size_t have = 0;
    for (int i = 0; i < TURNS * 10 && have < total + more; i++) {
        have = peer_read(f, in, have, total + more);
        turn(f);
    }
    assert_int_equal(have, total + more);
    assert_memory_equal(in, out, total + more);
    assert_int_equal(redis_link_queued(f->l), 0);
    assert_int_equal(f->errors, 0);
    free(out);
    free(in);
}

/* A peer that reset: the next write fails the link once, with the socket's error. */
static void test_a_write_to_a_reset_peer_fails_the_link_once(void **state)
{
    fx_t *f = *state;
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    assert_int_equal(setsockopt(f->peer, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
    close(f->peer);
    f->peer = -1;
    for (int i = 0; i < TURNS && !f->errors; i++) {
        redis_link_write(f->l, "*1\r\n$4\r\nPING\r\n", 14);
        turn(f);
    }
    assert_int_equal(f->errors, 1);
    assert_true(f->err < 0);
    redis_link_write(f->l, "x", 1); /* dropped silently once failed */
    turn(f);
    assert_int_equal(f->errors, 1);
}

#define FIRST_BUF 16384         /* the link's first read buffer */
#define MAX_BUF (256 * 1024)    /* its largest */
#define TOTAL (4 * 1024 * 1024) /* bytes the server sends */

/* ---- against the scripted server ---- */

typedef struct sfx {
    uv_loop_t loop;
    fake_t *srv;
    redis_link_t *l;
    bool open;
    int err;
    size_t got;      /* bytes received */
    size_t reads;    /* data callbacks */
    size_t largest;  /* largest chunk */
    size_t mismatch; /* bytes not where the pattern puts them */
} sfx_t;

static char pattern(size_t i)
{
    return (char)('a' + i % 26);
}

static void s_on_cmd(fake_conn_t *fc, int argc, char **argv, size_t *lens, void *arg)
{
    (void)fc, (void)argc, (void)argv, (void)lens, (void)arg;
}

static void s_on_open(redis_link_t *l, void *arg)
{
    (void)l;
    ((sfx_t *)arg)->open = true;
}

static void s_on_data(redis_link_t *l, char *p, size_t n, void *arg)
{
    (void)l;
    sfx_t *fx = arg;
    for (size_t i = 0; i < n; i++)
        fx->mismatch += p[i] != pattern(fx->got + i);
    fx->got += n;
    fx->reads++;
    if (n > fx->largest)
        fx->largest = n;
}

static void s_on_error(redis_link_t *l, int err, const char *why, void *arg)
{
    (void)l, (void)why;
    ((sfx_t *)arg)->err = err;
}

static const redis_link_cbs_t s_cbs = {s_on_open, s_on_data, s_on_error};

static bool connected(void *arg)
{
    sfx_t *fx = arg;
    return fx->open && fake_last(fx->srv) != NULL;
}

static bool all_received(void *arg)
{
    sfx_t *fx = arg;
    return fx->got >= TOTAL || fx->err;
}

static int setup_scripted(void **state)
{
    sfx_t *fx = calloc(1, sizeof(*fx));
    uv_loop_init(&fx->loop);
    fx->srv = fake_new(&fx->loop, s_on_cmd, fx);
    fx->l = redis_link_open(&fx->loop, "127.0.0.1", fake_port(fx->srv), NULL, NULL, &s_cbs, fx);
    *state = fx;
    return 0;
}

static int teardown_scripted(void **state)
{
    sfx_t *fx = *state;
    redis_link_close(fx->l);
    fake_free(fx->srv);
    assert_int_equal(fake_loop_close(&fx->loop), 0);
    free(fx);
    return 0;
}

/* Old code read at most 16 KB per call, so a server streaming megabytes cost a read system call
 * per 16 KB. The server sends 4 MB in one write while the loop also reads: the reads that fill
 * the buffer make it grow, so some chunk exceeds 16 KB, none exceeds 256 KB, and the bytes are
 * intact and in order. */
static void test_busy_link_reads_larger_chunks(void **state)
{
    sfx_t *fx = *state;
    assert_true(fake_run_until(&fx->loop, connected, fx, 10000));
    char *blob = malloc(TOTAL + 1);
    for (size_t i = 0; i < TOTAL; i++)
        blob[i] = pattern(i);
    blob[TOTAL] = '\0';
    fake_send(fake_last(fx->srv), blob);
    free(blob);
    assert_true(fake_run_until(&fx->loop, all_received, fx, 60000));
    assert_int_equal(fx->err, 0);
    assert_int_equal(fx->got, TOTAL);
    assert_int_equal(fx->mismatch, 0);
    assert_true(fx->largest > FIRST_BUF);
    assert_true(fx->largest <= MAX_BUF);
}

#define PINGS 22000 /* 14 bytes each: past the 256 KB that is written early */

static bool all_pings(void *arg)
{
    sfx_t *fx = arg;
    return fake_count(fx->srv, "PING") >= PINGS || fx->err;
}

/* Old code queued every command until the loop iteration ended, so a read batch's PUBLISHes
 * filled megabytes of cold queue. Past 256 KB with nothing in flight, the queue goes to the kernel
 * from the commit itself: fewer bytes are queued than were committed before the loop runs, and
 * the server still gets every command once, in order. */
static void test_large_queue_is_written_early(void **state)
{
    sfx_t *fx = *state;
    assert_true(fake_run_until(&fx->loop, connected, fx, 10000));
    static const char ping[] = "*1\r\n$4\r\nPING\r\n";
    size_t len = sizeof(ping) - 1;
    for (size_t i = 0; i < PINGS; i++) {
        memcpy(redis_link_reserve(fx->l, len), ping, len);
        redis_link_commit(fx->l, len);
    }
    assert_true(redis_link_queued(fx->l) < PINGS * len);
    assert_true(fake_run_until(&fx->loop, all_pings, fx, 60000));
    assert_int_equal(fx->err, 0);
    assert_int_equal(fake_count(fx->srv, "PING"), PINGS);
    assert_int_equal(fake_nseen(fx->srv), PINGS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_a_flush_the_socket_takes_at_once_is_done_in_its_turn,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_a_write_larger_than_the_socket_goes_out_whole_and_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_an_early_write_the_socket_takes_in_part_keeps_the_rest,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_write_to_a_reset_peer_fails_the_link_once, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_busy_link_reads_larger_chunks, setup_scripted,
                                        teardown_scripted),
        cmocka_unit_test_setup_teardown(test_large_queue_is_written_early, setup_scripted,
                                        teardown_scripted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
