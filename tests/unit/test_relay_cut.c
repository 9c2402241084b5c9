/*
 * Unit tests for worker/cluster/relay_cut with worker/cluster/relay_role: workers of one server
 * read the same ordered stream of pub/sub messages (what one Redis node sends to each of their
 * subscriptions), each at its own pace, and follow the rules worker.c follows (the role's flags
 * shared through an array, as in shared memory). Whatever the interleaving, each broadcast is
 * applied once: by the old holder before the successor's marker, by the successor after it.
 * Also: a start, a marker that never comes back, a holder that never sees it, a crash, two
 * namespaces, and sharded mode (no markers).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "worker/cluster/relay_cut.h"
#include "worker/cluster/relay_role.h"

#define SLOTS 3
#define MAX_MSGS 512
#define TIMEOUT 3000

typedef struct msg {
    bool marker;
    unsigned nsp;
    uint32_t from; /* a marker's publisher */
} msg_t;

typedef struct sim sim_t;

typedef struct wk {
    relay_cut_t *cut;
    bool live, draining, subscribed;
    size_t pos; /* the next message it reads */
    int marks;  /* markers it published */
    int timeouts, yields;
} wk_t;

struct sim {
    wk_t w[SLOTS];
    msg_t msgs[MAX_MSGS];
    size_t n;              /* messages Redis sent so far */
    int applied[MAX_MSGS]; /* broadcast i applied this many times */
    int owner[MAX_MSGS];   /* by which slot (the last one) */
    unsigned nnsp;
    uint64_t now;
    uint32_t rng;
};

static void view(uint32_t i, relay_slot_t *out, void *arg)
{
    sim_t *s = arg;
    relay_cut_hold_t h = s->w[i].cut ? relay_cut_holds(s->w[i].cut) : RELAY_CUT_HOLDS_NONE;
    *out = (relay_slot_t){.live = s->w[i].live,
                          .draining = s->w[i].draining,
                          .up = h == RELAY_CUT_HOLDS_ALL,
                          .holds = h != RELAY_CUT_HOLDS_NONE};
}

static void publish(sim_t *s, bool marker, unsigned nsp, uint32_t from)
{
    assert_true(s->n < MAX_MSGS);
    s->msgs[s->n++] = (msg_t){marker, nsp, from};
}

/* worker.c's relay_settle: the cut follows the role and the subscription. */
static void settle(sim_t *s, uint32_t me, bool on)
{
    wk_t *w = &s->w[me];
    relay_others_t o;
    relay_role_others(SLOTS, me, view, s, &o);
    relay_cut_input_t in = {
        .up = on && w->subscribed,
        .candidate = relay_role_candidate(SLOTS, me, view, s),
        .others = o.all   ? RELAY_CUT_HOLDS_ALL
                  : o.any ? RELAY_CUT_HOLDS_SOME
                          : RELAY_CUT_HOLDS_NONE,
    };
    switch (relay_cut_update(w->cut, &in, s->now)) {
    case RELAY_CUT_MARK:
        w->marks++;
        for (unsigned i = 0; i < s->nnsp; i++)
            publish(s, true, i, me); /* through its own connection: after what Redis sent */
        break;
    case RELAY_CUT_TIMEOUT:
        w->timeouts++;
        break;
    case RELAY_CUT_YIELD:
        w->yields++;
        break;
    case RELAY_CUT_NONE:
        break;
    }
}

/* worker.c's relay_tick: subscribe or not (a new subscription receives what Redis sends next). */
static void tick(sim_t *s, uint32_t me)
{
    wk_t *w = &s->w[me];
    if (!w->live)
        return;
    bool on = relay_role_subscribe(SLOTS, me, view, s);
    if (on && !w->subscribed) {
        w->subscribed = true;
        w->pos = s->n;
    } else if (!on) {
        w->subscribed = false;
    }
    settle(s, me, on);
}

/* The worker reads its next message (worker.c's relay_broadcast and relay_marked). */
static bool step(sim_t *s, uint32_t me)
{
    wk_t *w = &s->w[me];
    if (!w->live || !w->subscribed || w->pos >= s->n)
        return false;
    const msg_t *m = &s->msgs[w->pos++];
    if (m->marker) {
        relay_cut_marker(w->cut, m->nsp, m->from == me);
        return true;
    }
    if (relay_cut_holds(w->cut) != RELAY_CUT_HOLDS_ALL)
        settle(s, me, relay_role_subscribe(SLOTS, me, view, s));
    if (relay_cut_applies(w->cut, m->nsp)) {
        s->applied[w->pos - 1]++;
        s->owner[w->pos - 1] = (int)me;
    }
    return true;
}

static uint32_t rnd(sim_t *s)
{
    s->rng = s->rng * 1103515245u + 12345u;
    return s->rng >> 16;
}

static void start(sim_t *s, unsigned nnsp, bool markers, uint32_t seed)
{
    memset(s, 0, sizeof(*s));
    s->nnsp = nnsp;
    s->rng = seed;
    s->now = 1000;
    for (uint32_t i = 0; i < SLOTS; i++)
        s->w[i].cut = relay_cut_new(nnsp, markers, TIMEOUT);
}

static void finish(sim_t *s)
{
    for (uint32_t i = 0; i < SLOTS; i++)
        relay_cut_free(s->w[i].cut);
}

/* Every worker reads all it was sent, and ticks, until nothing changes. */
static void drain_all(sim_t *s)
{
    for (int round = 0; round < 8; round++) {
        for (uint32_t i = 0; i < SLOTS; i++)
            while (step(s, i))
                ;
        for (uint32_t i = 0; i < SLOTS; i++)
            tick(s, i);
    }
}

/* Random interleaving for `rounds` steps: the publisher sends broadcasts (nsp at random), the
 * workers read at their own pace (`lag` makes one of them slower), and tick now and then. */
static void run(sim_t *s, int rounds, uint32_t slow)
{
    for (int r = 0; r < rounds; r++) {
        uint32_t k = rnd(s) % 10;
        if (k < 3)
            publish(s, false, rnd(s) % s->nnsp, 0);
        else if (k < 9) {
            uint32_t me = rnd(s) % SLOTS;
            if (me != slow || rnd(s) % 4 == 0)
                step(s, me);
        } else {
            tick(s, rnd(s) % SLOTS);
        }
        s->now += 1;
    }
}

/* Each broadcast that reached a subscribed worker at or after `from` was applied exactly once. */
static void assert_once_from(sim_t *s, size_t from)
{
    for (size_t i = from; i < s->n; i++) {
        if (s->msgs[i].marker)
            continue;
        if (s->applied[i] != 1)
            fail_msg("broadcast %zu (of %zu) applied %d times", i, s->n, s->applied[i]);
    }
}

/* A rolling replacement: slot 0 holds, drains, slot 1 takes over at its marker; then a new worker
 * starts in slot 2 and slot 1 drains; whatever the pace of each, every broadcast once. */
static void test_drain_cuts_at_the_marker(void **state)
{
    (void)state;
    for (uint32_t seed = 1; seed <= 300; seed++) {
        for (uint32_t slow = 0; slow < SLOTS; slow++) {
            sim_t s;
            start(&s, 1, true, seed);
            s.w[0].live = s.w[1].live = true;
            tick(&s, 0);
            tick(&s, 1);
            assert_true(s.w[0].subscribed);
            assert_false(s.w[1].subscribed);
            assert_int_equal(relay_cut_holds(s.w[0].cut), RELAY_CUT_HOLDS_ALL); /* alone: at once */
            assert_int_equal(s.w[0].marks, 0);
            run(&s, 40, slow);
            s.w[0].draining = true; /* SIGHUP */
            run(&s, 200, slow);
            s.w[2].live = true; /* its replacement */
            run(&s, 100, slow);
            s.w[1].draining = true;
            run(&s, 200, slow);
            drain_all(&s);
            assert_once_from(&s, 0);
            assert_int_equal(s.w[0].timeouts + s.w[1].timeouts + s.w[2].timeouts, 0);
            assert_int_equal(s.w[0].yields + s.w[1].yields + s.w[2].yields, 0);
            assert_int_equal(relay_cut_holds(s.w[2].cut), RELAY_CUT_HOLDS_ALL);
            assert_false(s.w[0].subscribed);
            assert_false(s.w[1].subscribed);
            finish(&s);
        }
    }
}

/* The successor starts in a lower slot than the holder, which is not draining: it becomes the
 * candidate at once, and the role moves at its marker. */
static void test_lower_successor(void **state)
{
    (void)state;
    for (uint32_t seed = 1; seed <= 300; seed++) {
        sim_t s;
        start(&s, 1, true, seed);
        s.w[1].live = true;
        tick(&s, 1);
        run(&s, 30, 1);
        s.w[0].live = true;
        run(&s, 300, seed % SLOTS);
        drain_all(&s);
        assert_once_from(&s, 0);
        assert_int_equal(relay_cut_holds(s.w[0].cut), RELAY_CUT_HOLDS_ALL);
        assert_false(s.w[1].subscribed);
        /* the broadcasts before slot 0's marker are slot 1's, those after are slot 0's */
        size_t cut = 0;
        while (cut < s.n && !(s.msgs[cut].marker && s.msgs[cut].from == 0))
            cut++;
        assert_true(cut < s.n);
        for (size_t i = 0; i < s.n; i++)
            if (!s.msgs[i].marker)
                assert_int_equal(s.owner[i], i < cut ? 1 : 0);
        finish(&s);
    }
}

/* Two namespaces (on a Cluster each pattern may be on another node): a marker per namespace, and
 * the role moves namespace by namespace; the old holder keeps its subscription meanwhile. */
static void test_two_namespaces(void **state)
{
    (void)state;
    for (uint32_t seed = 1; seed <= 300; seed++) {
        sim_t s;
        start(&s, 2, true, seed);
        s.w[0].live = s.w[1].live = true;
        tick(&s, 0);
        run(&s, 30, 2);
        s.w[0].draining = true;
        run(&s, 400, seed % 2);
        drain_all(&s);
        assert_once_from(&s, 0);
        assert_int_equal(s.w[1].marks, 1);
        assert_int_equal(relay_cut_holds(s.w[1].cut), RELAY_CUT_HOLDS_ALL);
        finish(&s);
    }
    /* half done: the holder keeps the namespace whose marker it has not seen yet */
    relay_cut_t *c = relay_cut_new(2, true, TIMEOUT);
    relay_cut_input_t in = {.up = true, .others = RELAY_CUT_HOLDS_NONE};
    assert_int_equal(relay_cut_update(c, &in, 0), RELAY_CUT_NONE);
    relay_cut_marker(c, 0, false);
    assert_false(relay_cut_applies(c, 0));
    assert_true(relay_cut_applies(c, 1));
    assert_int_equal(relay_cut_holds(c), RELAY_CUT_HOLDS_SOME);
    in.others = RELAY_CUT_HOLDS_SOME;
    assert_int_equal(relay_cut_update(c, &in, 10), RELAY_CUT_NONE); /* no new marker */
    assert_true(relay_cut_applies(c, 1));
    relay_cut_marker(c, 1, false);
    assert_int_equal(relay_cut_holds(c), RELAY_CUT_HOLDS_NONE);
    relay_cut_free(c);
}

/* The successor's marker never comes back: it takes the role after the timeout, and the holder,
 * which never saw it either, lets go as long after (both said, for a log line). */
static void test_marker_lost(void **state)
{
    (void)state;
    relay_cut_t *old = relay_cut_new(1, true, TIMEOUT), *succ = relay_cut_new(1, true, TIMEOUT);
    relay_cut_input_t in = {.up = true, .others = RELAY_CUT_HOLDS_NONE};
    assert_int_equal(relay_cut_update(old, &in, 0), RELAY_CUT_NONE);
    in = (relay_cut_input_t){.up = true, .candidate = true, .others = RELAY_CUT_HOLDS_ALL};
    assert_int_equal(relay_cut_update(succ, &in, 100), RELAY_CUT_MARK);
    assert_false(relay_cut_applies(succ, 0));
    /* its publish failed (not connected yet): asked again, same deadline */
    relay_cut_unsent(succ);
    assert_int_equal(relay_cut_update(succ, &in, 200), RELAY_CUT_MARK);
    assert_int_equal(relay_cut_update(succ, &in, 300), RELAY_CUT_NONE);
    assert_int_equal(relay_cut_update(succ, &in, 100 + TIMEOUT - 1), RELAY_CUT_NONE);
    assert_false(relay_cut_applies(succ, 0));
    assert_int_equal(relay_cut_holds(succ), RELAY_CUT_HOLDS_SOME); /* nobody takes it at once */
    assert_int_equal(relay_cut_update(succ, &in, 100 + TIMEOUT), RELAY_CUT_TIMEOUT);
    assert_int_equal(relay_cut_holds(succ), RELAY_CUT_HOLDS_ALL);
    /* the old holder is not the candidate: it lets go TIMEOUT after seeing the rival */
    relay_cut_input_t o = {.up = true, .candidate = false, .others = RELAY_CUT_HOLDS_ALL};
    assert_int_equal(relay_cut_update(old, &o, 5000), RELAY_CUT_NONE);
    assert_true(relay_cut_applies(old, 0));
    assert_int_equal(relay_cut_update(old, &o, 5000 + TIMEOUT - 1), RELAY_CUT_NONE);
    assert_int_equal(relay_cut_update(old, &o, 5000 + TIMEOUT), RELAY_CUT_YIELD);
    assert_false(relay_cut_applies(old, 0));
    /* the candidate never yields to a rival */
    assert_int_equal(relay_cut_update(succ, &in, 99999), RELAY_CUT_NONE);
    assert_true(relay_cut_applies(succ, 0));
    relay_cut_free(old);
    relay_cut_free(succ);
}

/* The holder crashed during the handover (its slot is no longer live): the successor still takes
 * the role at its own marker; and a worker confirmed with nobody holding takes it at once. */
static void test_holder_crashes(void **state)
{
    (void)state;
    sim_t s;
    start(&s, 1, true, 7);
    s.w[0].live = s.w[1].live = true;
    tick(&s, 0);
    run(&s, 20, 2);
    s.w[0].draining = true;
    tick(&s, 1); /* subscribes and publishes its marker */
    assert_int_equal(s.w[1].marks, 1);
    s.w[0] = (wk_t){.cut = s.w[0].cut}; /* kill -9: the master frees its block */
    relay_cut_update(s.w[0].cut, &(relay_cut_input_t){0}, s.now);
    publish(&s, false, 0, 0);
    drain_all(&s);
    assert_int_equal(relay_cut_holds(s.w[1].cut), RELAY_CUT_HOLDS_ALL);
    assert_int_equal(s.applied[s.n - 1], 1);
    /* a marker of its own arriving once it no longer wants the role is ignored */
    relay_cut_update(s.w[1].cut, &(relay_cut_input_t){0}, s.now);
    relay_cut_marker(s.w[1].cut, 0, true);
    assert_int_equal(relay_cut_holds(s.w[1].cut), RELAY_CUT_HOLDS_NONE);
    finish(&s);
}

/* Sharded mode: no markers; the role is taken once subscribed, and a holder that is not the
 * candidate lets go as soon as another holds it (which one applies is relay_role_holder's). */
static void test_without_markers(void **state)
{
    (void)state;
    relay_cut_t *old = relay_cut_new(1, false, TIMEOUT), *succ = relay_cut_new(1, false, TIMEOUT);
    relay_cut_input_t in = {.up = true, .others = RELAY_CUT_HOLDS_NONE};
    assert_int_equal(relay_cut_update(old, &in, 0), RELAY_CUT_NONE);
    in = (relay_cut_input_t){.up = true, .candidate = true, .others = RELAY_CUT_HOLDS_ALL};
    assert_int_equal(relay_cut_update(succ, &in, 10), RELAY_CUT_NONE);
    assert_int_equal(relay_cut_holds(succ), RELAY_CUT_HOLDS_ALL);
    in.candidate = false;
    assert_int_equal(relay_cut_update(old, &in, 20), RELAY_CUT_YIELD);
    assert_int_equal(relay_cut_holds(old), RELAY_CUT_HOLDS_NONE);
    relay_cut_free(old);
    relay_cut_free(succ);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_drain_cuts_at_the_marker), cmocka_unit_test(test_lower_successor),
        cmocka_unit_test(test_two_namespaces),           cmocka_unit_test(test_marker_lost),
        cmocka_unit_test(test_holder_crashes),           cmocka_unit_test(test_without_markers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
