/*
 * Unit tests for master/discovery/dispatch on a real region and loop: records reach the block a
 * worker is attached to in order, wait in the outbox while the ring is full and go out on the
 * retry timer (order kept), nothing goes to a detached worker, and forwarded key events follow
 * the ownership filter.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "master/discovery/dispatch.h"
#include "shm/stats.h"
#include "shm/workdesc.h"

#define CAP 4096 /* a small ring: a few dozen records fill it */

typedef struct popped {
    char names[256][32];
    int n;
} popped_t;

static void on_name(const char *name, size_t len, void *arg)
{
    popped_t *p = arg;
    snprintf(p->names[p->n++], sizeof(p->names[0]), "%.*s", (int)len, name);
}

/* Pops every record of `block` into p; returns how many. */
static int drain(shm_region_t *region, uint32_t block, popped_t *p)
{
    ring_t *r = shm_region_ring(region, block);
    char buf[256];
    uint16_t type;
    uint32_t len, pool;
    int n = 0;
    while (ring_pop(r, &type, buf, sizeof(buf), &len) == 0) {
        assert_int_equal(type, WORKDESC_POOL_ADD);
        assert_int_equal(workdesc_decode(buf, len, &pool, on_name, p), 0);
        n++;
    }
    return n;
}

typedef struct fixture {
    uv_loop_t loop;
    shm_region_t *region;
    dispatch_t *d;
    popped_t popped;
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    uv_loop_init(&f->loop);
    assert_int_equal(shm_region_new(&f->region, 4, CAP, sizeof(stats_worker_t), 64), 0);
    f->d = dispatch_new(&f->loop, f->region, 2);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    dispatch_close(f->d);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    shm_region_free(f->region);
    free(f);
    return 0;
}

static void test_order_survives_a_full_ring(void **state)
{
    fixture_t *f = *state;
    popped_t *p = &f->popped;
    assert_int_equal(dispatch_block(f->d, 0), -1);
    dispatch_attach(f->d, 0, 3);
    assert_int_equal(dispatch_block(f->d, 0), 3);
    char name[32];
    for (int i = 0; i < 200; i++) { /* far more than the ring holds */
        snprintf(name, sizeof(name), "stream.%03d", i);
        dispatch_stream(f->d, WORKDESC_POOL_ADD, 7, 0, name, strlen(name));
    }
    int first = drain(f->region, 3, p);
    assert_true(first > 0 && first < 200);
    /* the rest goes out on the retry timer, as the ring empties */
    while (p->n < 200) {
        uv_run(&f->loop, UV_RUN_ONCE);
        drain(f->region, 3, p);
    }
    for (int i = 0; i < 200; i++) {
        snprintf(name, sizeof(name), "stream.%03d", i);
        assert_string_equal(p->names[i], name);
    }
    stats_worker_t *ws = shm_region_slot_stats(f->region, 3);
    assert_int_equal(STATS_GET(ws->desc_sent), 200);
}

static void test_nothing_reaches_a_detached_worker(void **state)
{
    fixture_t *f = *state;
    popped_t *p = &f->popped;
    dispatch_stream(f->d, WORKDESC_POOL_ADD, 1, 1, "early", 5); /* not attached yet */
    dispatch_attach(f->d, 1, 0);
    for (int i = 0; i < 200; i++)
        dispatch_stream(f->d, WORKDESC_POOL_ADD, 1, 1, "queued", 6);
    /* the worker's process is gone: what waits for it is dropped, and so is what comes next */
    dispatch_detach(f->d, 1);
    dispatch_stream(f->d, WORKDESC_POOL_ADD, 1, 1, "late", 4);
    int before = drain(f->region, 0, p);
    assert_true(before > 0 && before < 200); /* the ring held some; the outbox had the rest */
    /* the retry timer, armed while the ring was full, fires, finds nothing and stops: the loop
     * ends with it (a retry that still held records would push them before it ended) */
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(drain(f->region, 0, p), 0);
    for (int i = 0; i < before; i++)
        assert_string_equal(p->names[i], "queued");
    assert_int_equal(dispatch_block(f->d, 1), -1);
}

static bool keep_even(void *arg, const char *name, size_t len)
{
    (void)arg;
    return (name[len - 1] - '0') % 2 == 0;
}

/* Another server reads the streams the filter refuses: they are never added here, but removals
 * always go; quiet means every record reached its ring and the worker took it. */
static void test_filter_and_quiet(void **state)
{
    fixture_t *f = *state;
    popped_t *p = &f->popped;
    dispatch_attach(f->d, 0, 2);
    assert_true(dispatch_quiet(f->d));
    dispatch_set_filter(f->d, keep_even, NULL);
    char name[32];
    for (int i = 0; i < 10; i++) {
        snprintf(name, sizeof(name), "s%d", i);
        dispatch_stream(f->d, WORKDESC_POOL_ADD, 1, 0, name, strlen(name));
    }
    assert_false(dispatch_quiet(f->d)); /* in the ring, not yet taken */
    assert_int_equal(drain(f->region, 2, p), 5);
    assert_true(dispatch_quiet(f->d));
    for (int i = 0; i < 5; i++) {
        snprintf(name, sizeof(name), "s%d", 2 * i);
        assert_string_equal(p->names[i], name);
    }
    dispatch_stream(f->d, WORKDESC_STREAM_REMOVE, 1, 0, "s1", 2);
    ring_t *r = shm_region_ring(f->region, 2);
    char buf[64];
    uint16_t type;
    uint32_t len;
    assert_int_equal(ring_pop(r, &type, buf, sizeof(buf), &len), 0);
    assert_int_equal(type, WORKDESC_STREAM_REMOVE);
    dispatch_set_filter(f->d, NULL, NULL);
    dispatch_stream(f->d, WORKDESC_POOL_ADD, 1, 0, "s1", 2);
    assert_int_equal(drain(f->region, 2, p), 1);
}

/* A fence goes to every attached worker behind its other records; quiet waits for each one's
 * word (fence_done in its stats slot); a worker attached since owes none. */
static void test_fence_waits_for_every_workers_word(void **state)
{
    fixture_t *f = *state;
    dispatch_attach(f->d, 0, 1);
    dispatch_attach(f->d, 1, 3);
    dispatch_stream(f->d, WORKDESC_STREAM_REMOVE, 1, 0, "s1", 2);
    dispatch_fence(f->d, 5);
    uint32_t want[][2] = {{1, WORKDESC_STREAM_REMOVE}, {1, WORKDESC_FENCE}, {3, WORKDESC_FENCE}};
    for (size_t i = 0; i < 3; i++) {
        char buf[64];
        uint16_t type;
        uint32_t len, seq;
        assert_int_equal(
            ring_pop(shm_region_ring(f->region, want[i][0]), &type, buf, sizeof(buf), &len), 0);
        assert_int_equal(type, want[i][1]);
        if (type == WORKDESC_FENCE) {
            assert_int_equal(workdesc_decode(buf, len, &seq, NULL, NULL), 0);
            assert_int_equal(seq, 5);
        }
    }
    assert_false(dispatch_quiet(f->d)); /* taken, no word yet */
    stats_worker_t *w0 = shm_region_slot_stats(f->region, 1);
    stats_worker_t *w1 = shm_region_slot_stats(f->region, 3);
    STATS_SET(w0->fence_done, 5);
    assert_false(dispatch_quiet(f->d));
    STATS_SET(w1->fence_done, 4); /* an older fence */
    assert_false(dispatch_quiet(f->d));
    /* worker 1's process is replaced: the new one never read those streams */
    dispatch_attach(f->d, 1, 2);
    assert_true(dispatch_quiet(f->d));
}

/* Key events forwarded to the stream's reader: refused by the filter like additions (another
 * server reads the stream); the subscription's state is a record with no stream. */
static void test_events_follow_the_filter(void **state)
{
    fixture_t *f = *state;
    dispatch_attach(f->d, 0, 2);
    dispatch_set_filter(f->d, keep_even, NULL);
    dispatch_stream(f->d, WORKDESC_STREAM_EVENT, 3, 0, "s1", 2);
    dispatch_stream(f->d, WORKDESC_STREAM_EVENT, 3, 0, "s2", 2);
    dispatch_stream(f->d, WORKDESC_EVENTS, 1, 0, NULL, 0);
    ring_t *r = shm_region_ring(f->region, 2);
    char buf[64];
    uint16_t type;
    uint32_t len, pool;
    popped_t *p = &f->popped;
    assert_int_equal(ring_pop(r, &type, buf, sizeof(buf), &len), 0);
    assert_int_equal(type, WORKDESC_STREAM_EVENT);
    assert_int_equal(workdesc_decode(buf, len, &pool, on_name, p), 0);
    assert_int_equal(pool, 3);
    assert_int_equal(p->n, 1);
    assert_string_equal(p->names[0], "s2");
    assert_int_equal(ring_pop(r, &type, buf, sizeof(buf), &len), 0);
    assert_int_equal(type, WORKDESC_EVENTS);
    assert_int_equal(workdesc_decode(buf, len, &pool, on_name, p), 0);
    assert_int_equal(pool, 1);
    assert_int_equal(p->n, 1); /* no stream */
    assert_int_not_equal(ring_pop(r, &type, buf, sizeof(buf), &len), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_order_survives_a_full_ring, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nothing_reaches_a_detached_worker, setup, teardown),
        cmocka_unit_test_setup_teardown(test_filter_and_quiet, setup, teardown),
        cmocka_unit_test_setup_teardown(test_events_follow_the_filter, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fence_waits_for_every_workers_word, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
