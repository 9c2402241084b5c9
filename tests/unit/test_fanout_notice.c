/*
 * Unit tests for worker/fanout's messages between the workers of one server: room notices
 * (fanout_notice) and relayed adapter messages (fanout_relay), over real sibling sockets and a
 * real shared region, three fanouts in one process without sockets to deliver to. (A file of its
 * own beside test_fanout.c, which a parallel branch adds with deliveries through sio: once both
 * have landed these tests can move into it.)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shm/local_sock.h"
#include "shm/region.h"
#include "shm/stats.h"
#include "worker/fanout/fanout.h"

/* generous: the box may be at load 16 */
#define GUARD_MS 60000

typedef struct got {
    int calls;
    char kinds[8];     /* a notice's kind; 'R' for a relayed message */
    uint32_t from[8];  /* a notice's sender */
    uint64_t seqs[8];  /* a notice's number */
    char rooms[8][16]; /* a notice's room, a relayed message's channel */
    char msgs[8][16];  /* a relayed message's bytes */
} got_t;

static void on_notice(uint32_t from, char kind, uint64_t seq, const char *room, size_t len,
                      void *arg)
{
    got_t *g = arg;
    if (g->calls < 8) {
        g->kinds[g->calls] = kind;
        g->from[g->calls] = from;
        g->seqs[g->calls] = seq;
        snprintf(g->rooms[g->calls], 16, "%.*s", (int)len, room);
    }
    g->calls++;
}

static void on_relayed(const char *chan, size_t chan_len, const uint8_t *msg, size_t msg_len,
                       void *arg)
{
    got_t *g = arg;
    if (g->calls < 8) {
        g->kinds[g->calls] = 'R';
        snprintf(g->rooms[g->calls], 16, "%.*s", (int)chan_len, chan);
        snprintf(g->msgs[g->calls], 16, "%.*s", (int)msg_len, (const char *)msg);
    }
    g->calls++;
}

typedef struct fixture {
    uv_loop_t loop;
    shm_region_t *region;
    local_sock_t *socks;
    fanout_t *f[3];
    got_t got[3];
} fixture_t;

/* Three slots, a fanout each (no sockets to deliver to), every callback set; nobody live yet. */
static int setup(void **state)
{
    fixture_t *x = calloc(1, sizeof(*x));
    assert_non_null(x);
    assert_int_equal(uv_loop_init(&x->loop), 0);
    assert_int_equal(shm_region_new(&x->region, 3, 4096, sizeof(stats_worker_t), 0), 0);
    assert_int_equal(local_sock_new(&x->socks, 3), 0);
    for (uint32_t i = 0; i < 3; i++) {
        stats_worker_t *st = shm_region_slot_stats(x->region, i);
        assert_int_equal(fanout_new(&x->f[i], &x->loop, NULL, x->region, x->socks, i, st), 0);
        fanout_on_notice(x->f[i], on_notice, &x->got[i]);
        fanout_on_relayed(x->f[i], on_relayed, &x->got[i]);
    }
    *state = x;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *x = *state;
    for (int i = 0; i < 3; i++)
        fanout_free(x->f[i]);
    uv_run(&x->loop, UV_RUN_NOWAIT);
    assert_int_equal(uv_loop_close(&x->loop), 0);
    local_sock_free(x->socks);
    shm_region_free(x->region);
    free(x);
    return 0;
}

static void set_live(fixture_t *x, uint32_t slot)
{
    stats_worker_t *st = shm_region_slot_stats(x->region, slot);
    STATS_SET(st->pid, getpid());
}

/* Runs the loop, never blocking, until slot's fanout had want calls: GUARD_MS at most. */
static void wait_calls(fixture_t *x, int slot, int want)
{
    uv_update_time(&x->loop);
    uint64_t until = uv_now(&x->loop) + GUARD_MS;
    while (x->got[slot].calls < want && uv_now(&x->loop) < until) {
        uv_run(&x->loop, UV_RUN_NOWAIT);
        uv_update_time(&x->loop);
    }
    assert_int_equal(x->got[slot].calls, want);
}

/* A notice reaches every live sibling (not its sender, not a dead slot) with the sender's slot,
 * its kind, its number and its room, in order with the relayed messages around it; an empty room
 * arrives as
 * "#". */
static void test_notices_reach_live_siblings_in_order(void **state)
{
    fixture_t *x = *state;
    assert_int_equal(fanout_notice(x->f[0], '+', 11, "r1", 2), 0); /* nobody live: not queued */
    set_live(x, 0);
    set_live(x, 1);
    assert_int_equal(fanout_notice(x->f[0], '+', 12, "r1", 2), 1);
    assert_int_equal(fanout_relay(x->f[0], "ch#/#", 5, (const uint8_t *)"\x93m", 2), 1);
    assert_int_equal(fanout_notice(x->f[0], '-', 13, "", 0), 1);
    assert_int_equal(fanout_notice(x->f[0], '*', 14, "r2", 2), 1);
    wait_calls(x, 1, 4);
    got_t *g = &x->got[1];
    assert_int_equal(g->kinds[0], '+');
    assert_int_equal(g->from[0], 0);
    assert_int_equal(g->seqs[0], 12);
    assert_int_equal(g->seqs[3], 14);
    assert_string_equal(g->rooms[0], "r1");
    assert_int_equal(g->kinds[1], 'R');
    assert_string_equal(g->rooms[1], "ch#/#");
    assert_string_equal(g->msgs[1], "\x93m");
    assert_int_equal(g->kinds[2], '-');
    assert_string_equal(g->rooms[2], "#");
    assert_int_equal(g->kinds[3], '*');
    assert_string_equal(g->rooms[3], "r2");
    /* the other way: slot 1's notice reaches slot 0, which names the sender */
    assert_int_equal(fanout_notice(x->f[1], '+', 15, "r3", 2), 1);
    wait_calls(x, 0, 1);
    assert_int_equal(x->got[0].kinds[0], '+');
    assert_int_equal(x->got[0].from[0], 1);
    assert_string_equal(x->got[0].rooms[0], "r3");
    assert_int_equal(x->got[1].calls, 4); /* a sender never hears its own */
    assert_int_equal(x->got[2].calls, 0); /* slot 2 is not live */
}

/* A fanout without a notice callback drops notices (and one without a relayed callback relayed
 * messages) and goes on with what follows. */
static void test_notice_without_callback_is_dropped(void **state)
{
    fixture_t *x = *state;
    set_live(x, 0);
    set_live(x, 1);
    fanout_on_notice(x->f[1], NULL, NULL);
    assert_int_equal(fanout_notice(x->f[0], '+', 16, "r1", 2), 1);
    assert_int_equal(fanout_relay(x->f[0], "ch", 2, (const uint8_t *)"m", 1), 1);
    wait_calls(x, 1, 1);
    assert_int_equal(x->got[1].kinds[0], 'R');
    fanout_on_notice(x->f[1], on_notice, &x->got[1]);
    fanout_on_relayed(x->f[1], NULL, NULL);
    assert_int_equal(fanout_relay(x->f[0], "ch", 2, (const uint8_t *)"m", 1), 1);
    assert_int_equal(fanout_notice(x->f[0], '-', 17, "r1", 2), 1);
    wait_calls(x, 1, 2);
    assert_int_equal(x->got[1].kinds[1], '-');
    assert_string_equal(x->got[1].rooms[1], "r1");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_notices_reach_live_siblings_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_notice_without_callback_is_dropped, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
