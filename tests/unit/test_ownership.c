/* Unit tests for master/discovery/ownership: rendezvous assignment, taking and renewing leases,
 * the drain before a handover, a lost lease, the local expiry guard, leaving, and replies that
 * arrive after the free. Redis and the host are fakes: commands are queued and answered here. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "master/discovery/ownership.h"

#define MAXCMD 4096
#define TTL 10000

typedef struct cmd {
    char name[16]; /* EVAL's script is told apart by its first words */
    char key[128];
    int kind; /* 'H'eartbeat, 'C'laim, 'R'elease, 'P'ending, 'Z'rem */
    ownership_reply_fn cb;
    void *arg;
    bool done;
} cmd_t;

typedef struct fake {
    cmd_t cmds[MAXCMD];
    size_t n, next; /* queued, first not yet answered */
    uint64_t now;
    bool refuse;
    /* host */
    int moved_calls;
    int gained, lost, recover;
    bool quiet;
    const char **streams;
    size_t nstreams;
} fake_t;

static int f_command(void *ctx, const char *key, size_t key_len, ownership_reply_fn cb, void *arg,
                     int argc, const char **argv, const size_t *lens)
{
    (void)lens;
    fake_t *f = ctx;
    if (f->refuse)
        return -107;
    assert_true(f->n < MAXCMD);
    cmd_t *c = &f->cmds[f->n++];
    memset(c, 0, sizeof(*c));
    snprintf(c->name, sizeof(c->name), "%s", argv[0]);
    snprintf(c->key, sizeof(c->key), "%.*s", (int)key_len, key);
    c->cb = cb;
    c->arg = arg;
    if (strcmp(argv[0], "EVAL") == 0) {
        assert_true(argc >= 4);
        c->kind = strstr(argv[1], "TIME") ? 'H' : strstr(argv[1], "return 2") ? 'C' : 'R';
    } else if (strcmp(argv[0], "XPENDING") == 0) {
        c->kind = 'P';
    } else {
        c->kind = 'Z';
    }
    return 0;
}

static uint64_t f_now(void *ctx)
{
    return ((fake_t *)ctx)->now;
}

static void h_moved(void *arg, const bool *gained, const bool *lost, const bool *recover)
{
    fake_t *f = arg;
    f->moved_calls++;
    for (int b = 0; b < OWNERSHIP_BUCKETS; b++) {
        f->gained += gained[b];
        f->lost += lost[b];
        f->recover += recover[b];
        assert_true(!recover[b] || gained[b]);
    }
}

static void h_each(void *arg, const bool *want, ownership_stream_fn fn, void *fn_arg)
{
    fake_t *f = arg;
    for (size_t i = 0; i < f->nstreams; i++) {
        if (want[ownership_bucket(f->streams[i], strlen(f->streams[i]))])
            fn(f->streams[i], strlen(f->streams[i]), fn_arg);
    }
}

static bool h_quiet(void *arg)
{
    return ((fake_t *)arg)->quiet;
}

static ownership_t *make(fake_t *f, const char *id)
{
    memset(f, 0, sizeof(*f));
    f->now = 1000000;
    f->quiet = true;
    ownership_ops_t ops = {f, f_command, f_now};
    ownership_host_t host = {f, h_moved, h_each, h_quiet};
    ownership_config_t cfg = {"socket.io", id, "box:3000:", "streamio", "streamio\n*\n", TTL};
    return ownership_new(&ops, &host, &cfg);
}

/* ---- replies ---- */

static void answer(fake_t *f, cmd_t *c, const redisReply *r)
{
    (void)f;
    assert_false(c->done);
    c->done = true;
    c->cb(r, c->arg);
}

static void answer_int(fake_t *f, cmd_t *c, long long v)
{
    redisReply r = {.type = REDIS_REPLY_INTEGER, .integer = v};
    answer(f, c, &r);
}

static void answer_members(fake_t *f, cmd_t *c, const char **ids, size_t n)
{
    redisReply items[8];
    redisReply *ptrs[8];
    for (size_t i = 0; i < n; i++) {
        items[i] =
            (redisReply){.type = REDIS_REPLY_STRING, .str = (char *)ids[i], .len = strlen(ids[i])};
        ptrs[i] = &items[i];
    }
    redisReply r = {.type = REDIS_REPLY_ARRAY, .elements = n, .element = ptrs};
    answer(f, c, &r);
}

/* XPENDING summary with `count` entries pending for `consumer`, or none at all. */
static void answer_pending(fake_t *f, cmd_t *c, const char *consumer, const char *count)
{
    if (!consumer) {
        redisReply zero = {.type = REDIS_REPLY_INTEGER, .integer = 0};
        redisReply nil = {.type = REDIS_REPLY_NIL};
        redisReply *e[] = {&zero, &nil, &nil, &nil};
        redisReply r = {.type = REDIS_REPLY_ARRAY, .elements = 4, .element = e};
        answer(f, c, &r);
        return;
    }
    redisReply name = {
        .type = REDIS_REPLY_STRING, .str = (char *)consumer, .len = strlen(consumer)};
    redisReply n = {.type = REDIS_REPLY_STRING, .str = (char *)count, .len = strlen(count)};
    redisReply *pair_e[] = {&name, &n};
    redisReply pair = {.type = REDIS_REPLY_ARRAY, .elements = 2, .element = pair_e};
    redisReply *list_e[] = {&pair};
    redisReply list = {.type = REDIS_REPLY_ARRAY, .elements = 1, .element = list_e};
    redisReply total = {.type = REDIS_REPLY_INTEGER, .integer = 1};
    redisReply id = {.type = REDIS_REPLY_STRING, .str = "1-0", .len = 3};
    redisReply *e[] = {&total, &id, &id, &list};
    redisReply r = {.type = REDIS_REPLY_ARRAY, .elements = 4, .element = e};
    answer(f, c, &r);
}

/* Answers every pending command of `kind` with `v` (claims, releases); returns how many. */
static int answer_all(fake_t *f, int kind, long long v)
{
    int n = 0;
    for (size_t i = 0; i < f->n; i++) {
        if (!f->cmds[i].done && f->cmds[i].kind == kind) {
            answer_int(f, &f->cmds[i], v);
            n++;
        }
    }
    return n;
}

static cmd_t *pending_of(fake_t *f, int kind)
{
    for (size_t i = 0; i < f->n; i++) {
        if (!f->cmds[i].done && f->cmds[i].kind == kind)
            return &f->cmds[i];
    }
    return NULL;
}

static int count_pending(fake_t *f, int kind)
{
    int n = 0;
    for (size_t i = 0; i < f->n; i++)
        n += !f->cmds[i].done && f->cmds[i].kind == kind;
    return n;
}

/* One tick whose heartbeat sees `ids`. */
static void tick_with(fake_t *f, ownership_t *o, const char **ids, size_t n)
{
    ownership_tick(o);
    cmd_t *hb = pending_of(f, 'H');
    assert_non_null(hb);
    assert_memory_equal(hb->key, "socket.io:owners:", 17); /* then the scope's hash */
    answer_members(f, hb, ids, n);
}

/* A server alone takes every bucket in one round. */
static ownership_t *alone(fake_t *f, const char *id)
{
    ownership_t *o = make(f, id);
    const char *ids[] = {id};
    tick_with(f, o, ids, 1);
    assert_int_equal(count_pending(f, 'C'), OWNERSHIP_BUCKETS);
    assert_int_equal(f->moved_calls, 0); /* the round is not over yet */
    answer_all(f, 'C', 1);
    assert_int_equal(f->moved_calls, 1);
    assert_int_equal(f->gained, OWNERSHIP_BUCKETS);
    assert_int_equal(ownership_held(o), OWNERSHIP_BUCKETS);
    return o;
}

/* ---- tests ---- */

static void test_assign_is_stable_and_balanced(void **state)
{
    (void)state;
    const char *two[] = {"AAAAaaaa0001", "BBBBbbbb0002"};
    const char *three[] = {"AAAAaaaa0001", "BBBBbbbb0002", "CCCCcccc0003"};
    const char *swapped[] = {"BBBBbbbb0002", "AAAAaaaa0001"};
    int per[3] = {0}, moved = 0;
    for (uint32_t b = 0; b < OWNERSHIP_BUCKETS; b++) {
        int w2 = ownership_assign(two, 2, b);
        int w3 = ownership_assign(three, 3, b);
        /* the order the members come in does not matter */
        assert_string_equal(two[w2], swapped[ownership_assign(swapped, 2, b)]);
        per[w3]++;
        if (strcmp(two[w2], three[w3]) != 0) {
            /* a server joining takes buckets only for itself */
            assert_int_equal(w3, 2);
            moved++;
        }
    }
    for (int i = 0; i < 3; i++)
        assert_true(per[i] > OWNERSHIP_BUCKETS / 6 && per[i] < OWNERSHIP_BUCKETS / 2);
    assert_int_equal(moved, per[2]);
    assert_int_equal(ownership_assign(two, 0, 0), -1);
    assert_true(ownership_bucket("chat.user.1", 11) < OWNERSHIP_BUCKETS);
    assert_int_equal(ownership_bucket("chat.user.1", 11), ownership_bucket("chat.user.1", 11));
}

static void test_alone_takes_everything(void **state)
{
    (void)state;
    fake_t f;
    ownership_t *o = alone(&f, "me");
    assert_true(ownership_holds(o, "chat.user.1", 11));
    assert_int_equal(ownership_members(o), 1);
    /* the next tick renews every lease and moves nothing */
    const char *ids[] = {"me"};
    f.now += OWNERSHIP_TICK_MS;
    tick_with(&f, o, ids, 1);
    assert_int_equal(answer_all(&f, 'C', 1), OWNERSHIP_BUCKETS);
    assert_int_equal(f.moved_calls, 1);
    ownership_free(o);
}

static void test_lease_held_elsewhere_is_not_taken(void **state)
{
    (void)state;
    fake_t f;
    ownership_t *o = make(&f, "me");
    const char *ids[] = {"me"};
    tick_with(&f, o, ids, 1);
    /* another server still holds every lease (it has not drained yet) */
    answer_all(&f, 'C', 0);
    assert_int_equal(f.moved_calls, 0);
    assert_int_equal(ownership_held(o), 0);
    assert_false(ownership_holds(o, "chat.user.1", 11));
    /* asked again on the next tick, and taken once free: half handed over (a tombstone: 1),
     * half expired with their holder (2: what it left pending is to be recovered first) */
    f.now += OWNERSHIP_TICK_MS;
    tick_with(&f, o, ids, 1);
    cmd_t *c;
    int i = 0;
    while ((c = pending_of(&f, 'C')))
        answer_int(&f, c, i++ % 2 ? 1 : 2);
    assert_int_equal(i, OWNERSHIP_BUCKETS);
    assert_int_equal(f.gained, OWNERSHIP_BUCKETS);
    assert_int_equal(f.recover, OWNERSHIP_BUCKETS / 2);
    ownership_free(o);
}

static void test_handover_waits_for_the_drain(void **state)
{
    (void)state;
    fake_t f;
    ownership_t *o = alone(&f, "me");
    const char *streams[64];
    char names[64][16];
    for (int i = 0; i < 64; i++) {
        snprintf(names[i], sizeof(names[i]), "room.%d", i);
        streams[i] = names[i];
    }
    f.streams = streams;
    f.nstreams = 64;
    /* a second server appears: its buckets are taken from the workers at once */
    const char *ids[] = {"me", "other"};
    f.now += OWNERSHIP_TICK_MS;
    f.quiet = false; /* the removals are still in the rings */
    tick_with(&f, o, ids, 2);
    answer_all(&f, 'C', 1);
    int lost = f.lost;
    assert_true(lost > 0 && lost < OWNERSHIP_BUCKETS);
    assert_int_equal(ownership_held(o), OWNERSHIP_BUCKETS); /* still leased while draining */
    int mine = 0;
    for (int i = 0; i < 64; i++) {
        uint32_t b = ownership_bucket(streams[i], strlen(streams[i]));
        const char *both[] = {"me", "other"};
        bool is_mine = strcmp(both[ownership_assign(both, 2, b)], "me") == 0;
        assert_int_equal(ownership_holds(o, streams[i], strlen(streams[i])), is_mine);
        mine += is_mine;
    }
    assert_true(mine < 64);
    /* no XPENDING while a worker may still read (no word from it yet) */
    f.now += OWNERSHIP_TICK_MS;
    tick_with(&f, o, ids, 2);
    answer_all(&f, 'C', 1);
    assert_int_equal(count_pending(&f, 'P'), 0);
    /* quiet, every worker said nothing is in flight: one XPENDING per stream of a draining
     * bucket; one has an entry of ours in hand, another one of another server's */
    f.quiet = true;
    f.now += OWNERSHIP_TICK_MS;
    tick_with(&f, o, ids, 2);
    answer_all(&f, 'C', 1);
    assert_int_equal(count_pending(&f, 'P'), 64 - mine);
    cmd_t *first = pending_of(&f, 'P');
    uint32_t held_back = ownership_bucket(first->key, strlen(first->key));
    answer_pending(&f, first, "box:3000:1", "3");
    cmd_t *p;
    while ((p = pending_of(&f, 'P')))
        answer_pending(&f, p, strcmp(p->key, "room.1") == 0 ? "elsewhere:3000:0" : NULL, "5");
    /* one clean check: those leases go at once (one per drained bucket) */
    assert_int_equal(count_pending(&f, 'R'), lost - 1);
    /* the next check finds our entry acknowledged: that one goes too */
    f.now += OWNERSHIP_TICK_MS;
    tick_with(&f, o, ids, 2);
    answer_all(&f, 'C', 1);
    while ((p = pending_of(&f, 'P'))) {
        assert_int_equal(ownership_bucket(p->key, strlen(p->key)), held_back);
        answer_pending(&f, p, NULL, "0");
    }
    int released = count_pending(&f, 'R');
    assert_int_equal(released, lost);
    assert_int_equal(ownership_held(o), OWNERSHIP_BUCKETS - lost);
    answer_all(&f, 'R', 1);
    assert_int_equal(f.gained, OWNERSHIP_BUCKETS); /* nothing taken back meanwhile */
    ownership_free(o);
}

static void test_drain_gives_up_after_the_ttl(void **state)
{
    (void)state;
    fake_t f;
    ownership_t *o = alone(&f, "me");
    /* a stream whose bucket goes to the other server */
    const char *ids[] = {"me", "other"};
    char name[32];
    for (int i = 0;; i++) {
        snprintf(name, sizeof(name), "stuck.%d", i);
        if (ownership_assign(ids, 2, ownership_bucket(name, strlen(name))) == 1)
            break;
    }
    const char *streams[] = {name};
    f.streams = streams;
    f.nstreams = 1;
    char suffix[16];
    snprintf(suffix, sizeof(suffix), ":%u", ownership_bucket(name, strlen(name)));
    cmd_t *p;
    bool released = false;
    int t = 0;
    for (; t <= TTL / OWNERSHIP_TICK_MS + 1 && !released; t++) {
        f.now += OWNERSHIP_TICK_MS;
        tick_with(&f, o, ids, 2);
        answer_all(&f, 'C', 1);
        while ((p = pending_of(&f, 'P')))
            answer_pending(&f, p, "box:3000:0", "1"); /* never acknowledged */
        while ((p = pending_of(&f, 'R'))) {
            size_t n = strlen(p->key);
            released |= n > strlen(suffix) && strcmp(p->key + n - strlen(suffix), suffix) == 0;
            answer_int(&f, p, 1); /* the other, empty buckets go after two checks */
        }
    }
    /* held for a whole lease after the drain began, then handed over */
    assert_true(released);
    assert_true(t >= TTL / OWNERSHIP_TICK_MS);
    ownership_free(o);
}

/* A worker that never says nothing is in flight (hung, or gone without a respawn yet) holds a
 * handover back for one lease at most, and no XPENDING is asked meanwhile. */
static void test_handover_without_the_workers_word_ends_after_the_ttl(void **state)
{
    (void)state;
    fake_t f;
    ownership_t *o = alone(&f, "me");
    const char *ids[] = {"me", "other"};
    f.quiet = false;
    int t = 0;
    while (ownership_held(o) == OWNERSHIP_BUCKETS) {
        f.now += OWNERSHIP_TICK_MS;
        tick_with(&f, o, ids, 2);
        answer_all(&f, 'C', 1);
        assert_int_equal(count_pending(&f, 'P'), 0);
        answer_all(&f, 'R', 1);
        t++;
        assert_true(t <= TTL / OWNERSHIP_TICK_MS + 2);
    }
    assert_true(t >= TTL / OWNERSHIP_TICK_MS);
    assert_int_equal(ownership_held(o), OWNERSHIP_BUCKETS - f.lost);
    ownership_free(o);
}

static void test_lost_lease_stops_the_workers(void **state)
{
    (void)state;
    fake_t f;
    ownership_t *o = alone(&f, "me");
    const char *ids[] = {"me"};
    f.now += OWNERSHIP_TICK_MS;
    tick_with(&f, o, ids, 1);
    /* one renewal finds the lease taken by another server (Redis was out of reach too long) */
    cmd_t *c = pending_of(&f, 'C');
    answer_int(&f, c, 0);
    answer_all(&f, 'C', 1);
    assert_int_equal(f.lost, 1);
    assert_int_equal(ownership_held(o), OWNERSHIP_BUCKETS - 1);
    ownership_free(o);
}

static void test_unconfirmed_leases_are_given_up(void **state)
{
    (void)state;
    fake_t f;
    ownership_t *o = alone(&f, "me");
    /* Redis stops answering: renewals are refused, time goes on */
    f.refuse = true;
    int t = 0;
    while (f.lost == 0) {
        f.now += OWNERSHIP_TICK_MS;
        ownership_tick(o);
        t++;
        assert_true(t < TTL / OWNERSHIP_TICK_MS);
    }
    /* before the lease can expire in Redis (TTL after the last renewal was sent) */
    assert_int_equal(f.lost, OWNERSHIP_BUCKETS);
    assert_true((uint64_t)t * OWNERSHIP_TICK_MS < TTL);
    assert_int_equal(ownership_held(o), 0);
    ownership_free(o);
}

static void test_leave_releases_and_stopping_takes_nothing(void **state)
{
    (void)state;
    fake_t f;
    ownership_t *o = alone(&f, "me");
    ownership_stop(o);
    const char *ids[] = {"me", "other"};
    f.now += OWNERSHIP_TICK_MS;
    tick_with(&f, o, ids, 2);
    answer_all(&f, 'C', 1);
    assert_int_equal(f.lost, 0); /* the workers drain anyway: nothing moves while stopping */
    ownership_leave(o);
    assert_int_equal(count_pending(&f, 'R'), OWNERSHIP_BUCKETS);
    assert_int_equal(count_pending(&f, 'Z'), 1);
    ownership_tick(o); /* nothing after leaving */
    assert_null(pending_of(&f, 'H'));
    ownership_free(o); /* replies still due: freed by the last one */
    answer_all(&f, 'R', 1);
    answer_all(&f, 'Z', 1);
}

static void test_replies_after_free(void **state)
{
    (void)state;
    fake_t f;
    ownership_t *o = make(&f, "me");
    ownership_tick(o);
    ownership_free(o);
    const char *ids[] = {"me"};
    answer_members(&f, pending_of(&f, 'H'), ids, 1);
    assert_int_equal(f.n, 1); /* nothing sent by a freed one */
    ownership_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_assign_is_stable_and_balanced),
        cmocka_unit_test(test_alone_takes_everything),
        cmocka_unit_test(test_lease_held_elsewhere_is_not_taken),
        cmocka_unit_test(test_handover_waits_for_the_drain),
        cmocka_unit_test(test_drain_gives_up_after_the_ttl),
        cmocka_unit_test(test_handover_without_the_workers_word_ends_after_the_ttl),
        cmocka_unit_test(test_lost_lease_stops_the_workers),
        cmocka_unit_test(test_unconfirmed_leases_are_given_up),
        cmocka_unit_test(test_leave_releases_and_stopping_takes_nothing),
        cmocka_unit_test(test_replies_after_free),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
