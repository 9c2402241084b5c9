/* Unit tests for common/redis/redis_link: the byte pipe against a loopback server
 * (tests/unit/redis_fake.c): a busy link reads in chunks larger than its first 16 KB buffer, and
 * every byte arrives once, in order, whatever the chunk sizes; a queue past 256 KB is written at
 * once, not at the end of the loop iteration. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include <cmocka.h>

#include "common/redis/redis_link.h"
#include "tests/unit/redis_fake.h"

#define FIRST_BUF 16384         /* the link's first read buffer */
#define MAX_BUF (256 * 1024)    /* its largest */
#define TOTAL (4 * 1024 * 1024) /* bytes the server sends */

typedef struct fx {
    uv_loop_t loop;
    fake_t *srv;
    redis_link_t *l;
    bool open;
    int err;
    size_t got;      /* bytes received */
    size_t reads;    /* data callbacks */
    size_t largest;  /* largest chunk */
    size_t mismatch; /* bytes not where the pattern puts them */
} fx_t;

static char pattern(size_t i)
{
    return (char)('a' + i % 26);
}

static void on_cmd(fake_conn_t *fc, int argc, char **argv, size_t *lens, void *arg)
{
    (void)fc, (void)argc, (void)argv, (void)lens, (void)arg;
}

static void on_open(redis_link_t *l, void *arg)
{
    (void)l;
    ((fx_t *)arg)->open = true;
}

static void on_data(redis_link_t *l, char *p, size_t n, void *arg)
{
    (void)l;
    fx_t *fx = arg;
    for (size_t i = 0; i < n; i++)
        fx->mismatch += p[i] != pattern(fx->got + i);
    fx->got += n;
    fx->reads++;
    if (n > fx->largest)
        fx->largest = n;
}

static void on_error(redis_link_t *l, int err, const char *why, void *arg)
{
    (void)l, (void)why;
    ((fx_t *)arg)->err = err;
}

static const redis_link_cbs_t cbs = {on_open, on_data, on_error};

static bool connected(void *arg)
{
    fx_t *fx = arg;
    return fx->open && fake_last(fx->srv) != NULL;
}

static bool all_received(void *arg)
{
    fx_t *fx = arg;
    return fx->got >= TOTAL || fx->err;
}

static int setup(void **state)
{
    fx_t *fx = calloc(1, sizeof(*fx));
    uv_loop_init(&fx->loop);
    fx->srv = fake_new(&fx->loop, on_cmd, fx);
    fx->l = redis_link_open(&fx->loop, "127.0.0.1", fake_port(fx->srv), NULL, NULL, &cbs, fx);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fx_t *fx = *state;
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
    fx_t *fx = *state;
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
    fx_t *fx = arg;
    return fake_count(fx->srv, "PING") >= PINGS || fx->err;
}

/* Old code queued every command until the loop iteration ended, so a read batch's PUBLISHes
 * filled megabytes of cold queue. Past 256 KB with nothing in flight, the queue goes to the kernel
 * from the commit itself: fewer bytes are queued than were committed before the loop runs, and
 * the server still gets every command once, in order. */
static void test_large_queue_is_written_early(void **state)
{
    fx_t *fx = *state;
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
        cmocka_unit_test_setup_teardown(test_busy_link_reads_larger_chunks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_large_queue_is_written_early, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
