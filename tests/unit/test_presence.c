/*
 * Unit tests for worker/bridge/presence over a fake Redis seam: connections with and without
 * MAX_CONNECTIONS_PER_USER (the CONNECT waits only with a limit; a refusal; a socket gone before
 * the verdict; Redis unreachable), rooms (first join and last leave published only for
 * PRESENCE_ROOMS, several devices counted as one user), online/offline entries, the heartbeat and
 * the removal of a silent writer (its rooms' users leave, its users go offline, then its index
 * and heartbeat go), the rewrite after a reconnect and the stop.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/unit/bridge_fake.h"
#include "worker/bridge/presence.h"

#define T0 1700000000000ull
#define P "socket.io:presence"

typedef struct fix {
    bridge_fake_t *fake;
    cfg_t cfg;
    stats_worker_t stats;
    presence_t *p;
    int verdicts[8]; /* 1 ok, 0 refused */
    size_t nverdicts;
} fix_t;

static fix_t *fix_new(const char *const *env)
{
    fix_t *x = calloc(1, sizeof(*x));
    bridge_fake_config(&x->cfg, env);
    x->fake = bridge_fake_new();
    bridge_redis_t ops = bridge_fake_ops(x->fake);
    x->p = presence_new(&ops, &x->cfg, "W1", &x->stats);
    return x;
}

static void fix_free(fix_t *x)
{
    bridge_fake_free(x->fake);
    presence_free(x->p);
    free(x);
}

static void verdict(void *arg, bool ok)
{
    fix_t *x = arg;
    x->verdicts[x->nverdicts++] = ok;
}

static const char *next(fix_t *x)
{
    return bridge_fake_next(x->fake);
}

static void answer(fix_t *x, redisReply *r)
{
    bridge_fake_answer(x->fake, r);
}

static redisReply *user_reply(long long total, long long mine)
{
    return bf_arr(3, bf_int(total), bf_int(mine), bf_int(1700000000123));
}

static redisReply *room_reply(long long total, long long mine)
{
    return bf_arr(2, bf_int(total), bf_int(mine));
}

static const char *const full_env[] = {"PRESENCE",        "true",     "PRESENCE_ROOMS",
                                       "chat.*",          "PRESENCE_STREAM", "pres",
                                       "PRESENCE_TTL_MS", "3000",     NULL};

static void test_off(void **state)
{
    (void)state;
    fix_t *x = fix_new(NULL);
    assert_null(x->p);
    assert_null(presence_sock_new(NULL, "u", 1));
    presence_tick(NULL, T0);
    fix_free(x);
}

static void test_rooms_and_states(void **state)
{
    (void)state;
    fix_t *x = fix_new(full_env);
    /* anonymous sockets are not counted */
    assert_null(presence_sock_new(x->p, "", 0));
    char longid[300];
    memset(longid, 'x', sizeof(longid));
    assert_null(presence_sock_new(x->p, longid, sizeof(longid)));
    presence_sock_t *a = presence_sock_new(x->p, "alice", 5);
    presence_sock_t *b = presence_sock_new(x->p, "alice", 5);
    assert_string_equal(presence_sock_user(a), "alice");
    /* without a limit the CONNECT goes on at once */
    assert_int_equal(presence_sock_connect(a, verdict, x), 1);
    assert_string_equal(next(x), P ":srv:{W1} | HSET " P ":srv:{W1} u:alice 1");
    assert_string_equal(next(x), P ":user:{alice} | EVAL <script> 1 " P ":user:{alice} W1 1 0");
    assert_int_equal(presence_sock_connect(b, verdict, x), 1);
    assert_string_equal(next(x), P ":user:{alice} | EVAL <script> 1 " P ":user:{alice} W1 1 0");
    assert_int_equal(STATS_GET(x->stats.presence_users), 1);
    answer(x, user_reply(1, 1)); /* her first connection anywhere: online */
    assert_string_equal(next(x), "pres | XADD pres MAXLEN ~ 100000 * user alice state online ts "
                                 "1700000000123");
    answer(x, user_reply(2, 2));
    assert_string_equal(next(x), "(none)");
    /* both devices join a PRESENCE_ROOMS room: one presence:join */
    presence_sock_join(a, "chat.1", 6);
    assert_string_equal(next(x), P ":srv:{W1} | HSET " P ":srv:{W1} r:chat.1 1");
    assert_string_equal(next(x), P ":room:{chat.1} | EVAL <script> 2 " P ":room:{chat.1} " P
                                 ":room:{chat.1}:W1 W1 alice 1");
    presence_sock_join(b, "chat.1", 6);
    assert_string_equal(next(x), P ":room:{chat.1} | EVAL <script> 2 " P ":room:{chat.1} " P
                                 ":room:{chat.1}:W1 W1 alice 1");
    assert_int_equal(STATS_GET(x->stats.presence_members), 1);
    answer(x, room_reply(1, 1));
    assert_string_equal(next(x), " | PUBLISH socket.io-presence j6:chat.1alice");
    answer(x, room_reply(2, 2));
    assert_string_equal(next(x), "(none)");
    assert_int_equal(STATS_GET(x->stats.presence_events), 1);
    /* a room outside PRESENCE_ROOMS is counted, never announced */
    presence_sock_join(a, "news", 4);
    assert_string_equal(next(x), P ":srv:{W1} | HSET " P ":srv:{W1} r:news 1");
    next(x);
    answer(x, room_reply(1, 1));
    assert_string_equal(next(x), "(none)");
    presence_sock_leave(a, "news", 4);
    next(x);
    answer(x, room_reply(0, 0));
    assert_string_equal(next(x), "(none)");
    /* the last device leaves: one presence:leave */
    presence_sock_leave(a, "chat.1", 6);
    next(x);
    answer(x, room_reply(1, 1));
    presence_sock_leave(b, "chat.1", 6);
    next(x);
    answer(x, room_reply(0, 0));
    assert_string_equal(next(x), " | PUBLISH socket.io-presence l6:chat.1alice");
    /* a leave of nothing (mine < 0: a silent-writer sweep took it) is not announced again */
    presence_sock_join(a, "chat.2", 6);
    next(x);
    next(x);
    answer(x, room_reply(1, 1));
    next(x);
    presence_sock_leave(a, "chat.2", 6);
    next(x);
    answer(x, room_reply(0, -1));
    assert_string_equal(next(x), "(none)");
    assert_int_equal(STATS_GET(x->stats.presence_members), 0);
    /* sockets end: offline after the last one */
    presence_sock_free(a);
    assert_string_equal(next(x), P ":user:{alice} | EVAL <script> 1 " P ":user:{alice} W1 -1 0");
    answer(x, user_reply(1, 1));
    assert_string_equal(next(x), "(none)");
    presence_sock_free(b);
    next(x);
    answer(x, user_reply(0, 0));
    assert_string_equal(next(x), "pres | XADD pres MAXLEN ~ 100000 * user alice state offline ts "
                                 "1700000000123");
    assert_int_equal(STATS_GET(x->stats.presence_users), 0);
    fix_free(x);
}

static void test_limit(void **state)
{
    (void)state;
    static const char *const env[] = {"MAX_CONNECTIONS_PER_USER", "2", NULL};
    fix_t *x = fix_new(env);
    presence_sock_t *a = presence_sock_new(x->p, "bob", 3);
    presence_sock_t *b = presence_sock_new(x->p, "bob", 3);
    presence_sock_t *c = presence_sock_new(x->p, "bob", 3);
    /* with a limit the CONNECT waits for Redis' verdict */
    assert_int_equal(presence_sock_connect(a, verdict, x), 0);
    next(x);
    assert_string_equal(next(x), P ":user:{bob} | EVAL <script> 1 " P ":user:{bob} W1 1 2");
    assert_int_equal(presence_sock_connect(b, verdict, x), 0);
    next(x);
    assert_int_equal(presence_sock_connect(c, verdict, x), 0);
    next(x);
    assert_int_equal(x->nverdicts, 0);
    answer(x, user_reply(1, 1));
    answer(x, user_reply(2, 2));
    answer(x, bf_arr(3, bf_int(-1), bf_int(0), bf_int(1700000000123)));
    assert_int_equal(x->nverdicts, 3);
    assert_int_equal(x->verdicts[0], 1);
    assert_int_equal(x->verdicts[1], 1);
    assert_int_equal(x->verdicts[2], 0);
    assert_int_equal(STATS_GET(x->stats.limit_rejections[STATS_LIMIT_PER_USER]), 1);
    /* no PRESENCE_STREAM: no entries; the refused socket counts nothing when it goes */
    assert_string_equal(next(x), "(none)");
    presence_sock_free(c);
    assert_string_equal(next(x), "(none)");
    /* a socket gone before its verdict: an accepted connection is taken back */
    presence_sock_t *d = presence_sock_new(x->p, "carol", 5);
    assert_int_equal(presence_sock_connect(d, verdict, x), 0);
    next(x);
    next(x);
    presence_sock_free(d);
    answer(x, user_reply(1, 1));
    assert_int_equal(x->nverdicts, 3); /* no verdict for a socket that went */
    assert_string_equal(next(x), P ":user:{carol} | EVAL <script> 1 " P ":user:{carol} W1 -1 0");
    /* Redis out of reach: let in, counted here, written on the next resync */
    bridge_fake_refuse(x->fake, ENOTCONN);
    presence_sock_t *e = presence_sock_new(x->p, "dave", 4);
    assert_int_equal(presence_sock_connect(e, verdict, x), 1);
    bridge_fake_refuse(x->fake, 0);
    presence_resync(x->p, T0);
    assert_string_equal(next(x), P ":servers | ZADD " P ":servers 1700000000000 W1");
    assert_string_equal(next(x), P ":servers | ZRANGEBYSCORE " P ":servers -inf (1699999985000 "
                                 "LIMIT 0 16");
    /* bob's two connections and dave's, in the map's order */
    const char *l1 = next(x), *want_dave = P ":srv:{W1} | HSET " P ":srv:{W1} u:dave 1";
    (void)l1;
    bool seen_dave = false, seen_bob = false;
    for (const char *l = next(x); strcmp(l, "(none)") != 0; l = next(x)) {
        seen_dave |= strcmp(l, P ":user:{dave} | EVAL <script> 1 " P ":user:{dave} W1 1") == 0;
        seen_bob |= strcmp(l, P ":user:{bob} | EVAL <script> 1 " P ":user:{bob} W1 2") == 0;
    }
    (void)want_dave;
    assert_true(seen_dave);
    assert_true(seen_bob);
    presence_sock_free(a);
    presence_sock_free(b);
    presence_sock_free(e);
    fix_free(x);
}

static void test_silent_writer_is_removed(void **state)
{
    (void)state;
    fix_t *x = fix_new(full_env);
    /* heartbeat every TTL / 3, with a look for writers silent for the TTL */
    presence_tick(x->p, T0);
    assert_string_equal(next(x), P ":servers | ZADD " P ":servers 1700000000000 W1");
    assert_string_equal(next(x), P ":servers | ZRANGEBYSCORE " P ":servers -inf (1699999997000 "
                                 "LIMIT 0 16");
    presence_tick(x->p, T0 + 999);
    assert_string_equal(next(x), "(none)");
    /* this worker's own late name is never taken for dead */
    answer(x, bf_arr(2, bf_str("W0"), bf_str("W1")));
    assert_string_equal(next(x), P ":srv:{W0} | HGETALL " P ":srv:{W0}");
    assert_string_equal(next(x), "(none)");
    presence_tick(x->p, T0 + 1000); /* the sweep is still going: heartbeat only */
    assert_string_equal(next(x), P ":servers | ZADD " P ":servers 1700000001000 W1");
    assert_string_equal(next(x), "(none)");
    answer(x, bf_arr(6, bf_str("r:chat.9"), bf_str("1"), bf_str("u:bob"), bf_str("1"),
                     bf_str("r:news"), bf_str("1")));
    assert_string_equal(next(x), P ":room:{chat.9} | EVAL <script> 2 " P ":room:{chat.9} " P
                                 ":room:{chat.9}:W0 W0");
    assert_string_equal(next(x), P ":user:{bob} | EVAL <script> 1 " P ":user:{bob} W0");
    assert_string_equal(next(x), P ":room:{news} | EVAL <script> 2 " P ":room:{news} " P
                                 ":room:{news}:W0 W0");
    /* its users leave the rooms (announced where PRESENCE_ROOMS says) and go offline */
    answer(x, bf_arr(2, bf_str("bob"), bf_str("eve")));
    assert_string_equal(next(x), " | PUBLISH socket.io-presence l6:chat.9bob");
    assert_string_equal(next(x), " | PUBLISH socket.io-presence l6:chat.9eve");
    answer(x, bf_arr(3, bf_int(0), bf_int(1), bf_int(1700000001500)));
    assert_string_equal(next(x), "pres | XADD pres MAXLEN ~ 100000 * user bob state offline ts "
                                 "1700000001500");
    answer(x, bf_arr(1, bf_str("bob")));
    /* news is not a PRESENCE_ROOMS room; then the writer's index and its heartbeat go */
    assert_string_equal(next(x), P ":srv:{W0} | DEL " P ":srv:{W0}");
    assert_string_equal(next(x), P ":servers | ZREM " P ":servers W0");
    assert_string_equal(next(x), "(none)");
    assert_int_equal(STATS_GET(x->stats.presence_expired), 3);
    /* the next heartbeat looks again */
    presence_tick(x->p, T0 + 2000);
    next(x);
    assert_string_equal(next(x), P ":servers | ZRANGEBYSCORE " P ":servers -inf (1699999999000 "
                                 "LIMIT 0 16");
    fix_free(x);
}

static void test_resync_and_stop(void **state)
{
    (void)state;
    fix_t *x = fix_new(full_env);
    presence_sock_t *a = presence_sock_new(x->p, "alice", 5);
    presence_sock_connect(a, verdict, x);
    next(x);
    next(x);
    answer(x, user_reply(1, 1));
    next(x);
    presence_sock_join(a, "chat.1", 6);
    next(x);
    next(x);
    answer(x, room_reply(1, 1));
    next(x);
    assert_string_equal(next(x), "(none)");
    /* Redis came back (maybe empty): the worker's share is written again */
    presence_resync(x->p, T0);
    assert_string_equal(next(x), P ":servers | ZADD " P ":servers 1700000000000 W1");
    next(x); /* ZRANGEBYSCORE */
    assert_string_equal(next(x), P ":srv:{W1} | HSET " P ":srv:{W1} u:alice 1");
    assert_string_equal(next(x), P ":user:{alice} | EVAL <script> 1 " P ":user:{alice} W1 1");
    assert_string_equal(next(x), P ":srv:{W1} | HSET " P ":srv:{W1} r:chat.1 1");
    assert_string_equal(next(x), P ":room:{chat.1} | EVAL <script> 2 " P ":room:{chat.1} " P
                                 ":room:{chat.1}:W1 W1 alice 1");
    assert_string_equal(next(x), "(none)");
    presence_sock_leave(a, "chat.1", 6);
    next(x);
    presence_sock_free(a);
    next(x);
    presence_stop(x->p);
    assert_string_equal(next(x), P ":srv:{W1} | DEL " P ":srv:{W1}");
    assert_string_equal(next(x), P ":servers | ZREM " P ":servers W1");
    fix_free(x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_off),
        cmocka_unit_test(test_rooms_and_states),
        cmocka_unit_test(test_limit),
        cmocka_unit_test(test_silent_writer_is_removed),
        cmocka_unit_test(test_resync_and_stop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
