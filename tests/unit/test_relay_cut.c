/*
 * Unit tests for worker/cluster/relay_cut with worker/cluster/relay_role: workers of one server
 * read the same ordered stream of pub/sub messages (what one Redis node sends to each of their
 * subscriptions), each at its own pace, and follow the rules worker.c follows (the role's flags
 * shared through an array, as in shared memory). Whatever the interleaving, each broadcast is
 * applied once: by the old holder before the successor's marker, by the successor after it.
 * Also: a start, a marker that never comes back, a holder that never sees it, a crash, two
 * namespaces. Sharded mode (RELAY_CUT_CHANNELS) runs the same scenarios with a channel per
 * "namespace", each subscribed and marked on its own, plus rooms created during a handover (each
 * worker subscribes at its own pace) and a channel lost while its marker was on its way.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "worker/cluster/relay_cut.h"
#include "worker/cluster/relay_role.h"

#define SLOTS 3
#define MAX_MSGS 1024
#define MAX_CH 4
#define TIMEOUT 3000
#define NEVER SIZE_MAX

typedef struct msg {
    bool marker;
    unsigned nsp;
    uint32_t from; /* a marker's publisher */
} msg_t;

typedef struct sim sim_t;

typedef struct wk {
    relay_cut_t *cut;
    bool live, draining, subscribed;
    bool ready;           /* subscribed a tick ago: its subscription counts as confirmed */
    size_t since[MAX_CH]; /* channels: the first message of each it receives (NEVER: none) */
    size_t pos;           /* the next message it reads */
    int marks;            /* markers it published */
    int timeouts, yields;
} wk_t;

struct sim {
    wk_t w[SLOTS];
    msg_t msgs[MAX_MSGS];
    size_t n;               /* messages Redis sent so far */
    int applied[MAX_MSGS];  /* broadcast i applied this many times */
    int owner[MAX_MSGS];    /* by which slot (the last one) */
    unsigned nnsp;          /* namespaces, or channels */
    bool channels;          /* RELAY_CUT_CHANNELS */
    bool exists[MAX_CH];    /* channels: the room is in the server's union */
    bool late[MAX_CH];      /* created during the run */
    size_t created[MAX_CH]; /* ... since this message */
    uint64_t now;
    uint32_t rng, seed;
};

static const char *chan_name(unsigned i)
{
    static const char *names[MAX_CH] = {"ch0", "ch1", "ch2", "ch3"};
    return names[i];
}

static unsigned chan_index(const char *chan, size_t len)
{
    assert_int_equal(len, 3);
    return (unsigned)(chan[2] - '0');
}

static void view(uint32_t i, relay_slot_t *out, void *arg)
{
    sim_t *s = arg;
    relay_cut_hold_t h = s->w[i].cut ? relay_cut_holds(s->w[i].cut) : RELAY_CUT_HOLDS_NONE;
    *out = (relay_slot_t){.live = s->w[i].live,
                          .draining = s->w[i].draining,
                          .up = h == RELAY_CUT_HOLDS_ALL,
                          .holds = h != RELAY_CUT_HOLDS_NONE};
}

static uint32_t rnd(sim_t *s)
{
    s->rng = s->rng * 1103515245u + 12345u;
    return s->rng >> 16;
}

static void publish(sim_t *s, bool marker, unsigned nsp, uint32_t from)
{
    assert_true(s->n < MAX_MSGS);
    s->msgs[s->n++] = (msg_t){marker, nsp, from};
}

typedef struct mark_ctx {
    sim_t *s;
    uint32_t me;
} mark_ctx_t;

/* Channels: one marker, on its channel. */
static int mark_one(const char *chan, size_t len, void *arg)
{
    mark_ctx_t *m = arg;
    publish(m->s, true, chan_index(chan, len), m->me);
    return 0;
}

/* Channels: the worker's subscription of channel i is sent and confirmed (it receives what Redis
 * sends next), lost, or given up. */
static void settle(sim_t *s, uint32_t me, bool on);

static void chan_sub(sim_t *s, uint32_t me, unsigned i, relay_cut_chan_t ev)
{
    wk_t *w = &s->w[me];
    w->since[i] = ev == RELAY_CUT_CHAN_CONFIRMED ? s->n : NEVER;
    if (ev != RELAY_CUT_CHAN_CONFIRMED) {
        relay_cut_channel(w->cut, chan_name(i), 3, ev);
        return;
    }
    /* worker.c's relay_channel: what the siblings hold now, then the channel, then its marker */
    relay_cut_channel(w->cut, chan_name(i), 3, RELAY_CUT_CHAN_WANTED);
    settle(s, me, relay_role_subscribe(SLOTS, me, view, s));
    relay_cut_channel(w->cut, chan_name(i), 3, ev);
    settle(s, me, relay_role_subscribe(SLOTS, me, view, s));
}

/* worker.c's relay_settle: the cut follows the role and the subscription. */
static void settle(sim_t *s, uint32_t me, bool on)
{
    wk_t *w = &s->w[me];
    relay_others_t o;
    relay_role_others(SLOTS, me, view, s, &o);
    relay_cut_input_t in = {
        .up = on && w->subscribed && w->ready,
        .candidate = relay_role_candidate(SLOTS, me, view, s),
        .others = o.all   ? RELAY_CUT_HOLDS_ALL
                  : o.any ? RELAY_CUT_HOLDS_SOME
                          : RELAY_CUT_HOLDS_NONE,
    };
    switch (relay_cut_update(w->cut, &in, s->now)) {
    case RELAY_CUT_MARK:
        w->marks++;
        if (s->channels) {
            mark_ctx_t m = {s, me};
            relay_cut_each_mark(w->cut, mark_one, &m);
            break;
        }
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
    bool was = w->subscribed;
    if (on && !w->subscribed) {
        w->subscribed = true;
        w->pos = s->n;
        for (unsigned i = 0; s->channels && i < s->nnsp; i++)
            if (s->exists[i])
                chan_sub(s, me, i, RELAY_CUT_CHAN_CONFIRMED);
    } else if (!on && w->subscribed) {
        w->subscribed = w->ready = false;
        for (unsigned i = 0; s->channels && i < s->nnsp; i++)
            if (w->since[i] != NEVER)
                chan_sub(s, me, i, RELAY_CUT_CHAN_GONE);
    }
    /* channels: the rooms of the union, each subscribed when this worker gets to it (its
     * siblings' notices reach each worker at its own pace) */
    for (unsigned i = 0; on && s->channels && i < s->nnsp; i++)
        if (s->exists[i] && w->since[i] == NEVER && rnd(s) % 2 == 0)
            chan_sub(s, me, i, RELAY_CUT_CHAN_CONFIRMED);
    w->ready = was; /* confirmed by the next tick (broadcasts arrive meanwhile) */
    settle(s, me, on);
}

/* The worker reads its next message (worker.c's relay_broadcast and relay_marked). */
static bool step(sim_t *s, uint32_t me)
{
    wk_t *w = &s->w[me];
    if (!w->live || !w->subscribed || w->pos >= s->n)
        return false;
    const msg_t *m = &s->msgs[w->pos++];
    if (s->channels && (w->since[m->nsp] == NEVER || w->since[m->nsp] > w->pos - 1))
        return true; /* not subscribed to its channel when Redis sent it */
    if (m->marker && s->channels) {
        relay_cut_channel_marker(w->cut, chan_name(m->nsp), 3, m->from == me);
        return true;
    }
    if (m->marker) {
        relay_cut_marker(w->cut, m->nsp, m->from == me);
        return true;
    }
    if (relay_cut_holds(w->cut) != RELAY_CUT_HOLDS_ALL)
        settle(s, me, relay_role_subscribe(SLOTS, me, view, s));
    if (s->channels ? relay_cut_channel_applies(w->cut, chan_name(m->nsp), 3)
                    : relay_cut_applies(w->cut, m->nsp)) {
        s->applied[w->pos - 1]++;
        s->owner[w->pos - 1] = (int)me;
    }
    return true;
}

static void start(sim_t *s, unsigned nnsp, relay_cut_kind_t kind, uint32_t seed)
{
    memset(s, 0, sizeof(*s));
    s->nnsp = nnsp;
    s->channels = kind == RELAY_CUT_CHANNELS;
    s->rng = s->seed = seed;
    s->now = 1000;
    for (uint32_t i = 0; i < SLOTS; i++) {
        s->w[i].cut = relay_cut_new(nnsp, kind, TIMEOUT);
        for (unsigned c = 0; c < MAX_CH; c++)
            s->w[i].since[c] = NEVER;
    }
    for (unsigned c = 0; c < nnsp; c++)
        s->exists[c] = true;
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
        if (k < 3) {
            unsigned c = rnd(s) % s->nnsp;
            if (s->exists[c])
                publish(s, false, c, 0);
        } else if (k < 9) {
            uint32_t me = rnd(s) % SLOTS;
            if (me != slow || rnd(s) % 4 == 0)
                step(s, me);
        } else {
            tick(s, rnd(s) % SLOTS);
        }
        s->now += 1;
    }
}

/* Each broadcast that reached a subscribed worker at or after `from` was applied exactly once
 * (on a channel created later: from the first one applied on, none before it twice). */
static void assert_once_from(sim_t *s, size_t from)
{
    bool begun[MAX_CH] = {0}, again[MAX_CH] = {0};
    for (size_t i = from; i < s->n; i++) {
        const msg_t *m = &s->msgs[i];
        if (m->marker)
            continue;
        bool late = s->channels && s->late[m->nsp];
        if (late && i >= s->created[m->nsp] && !again[m->nsp])
            begun[m->nsp] = false, again[m->nsp] = true; /* (created again) */
        if (late && !begun[m->nsp] && s->applied[i] == 0)
            continue; /* before any worker's subscription to the new room counted */
        begun[m->nsp] = true;
        if (s->applied[i] != 1)
            fail_msg("seed %u: broadcast %zu (of %zu, %s %u) applied %d times", s->seed, i, s->n,
                     s->channels ? "channel" : "namespace", m->nsp, s->applied[i]);
    }
}

/* A rolling replacement: slot 0 holds, drains, slot 1 takes over at its marker; then a new worker
 * starts in slot 2 and slot 1 drains; whatever the pace of each, every broadcast once. */
static void test_drain_cuts_at_the_marker(void **state)
{
    (void)state;
    for (uint32_t seed = 1; seed <= 600; seed++) {
        for (uint32_t slow = 0; slow < SLOTS; slow++) {
            sim_t s;
            start(&s, 1, seed % 2 ? RELAY_CUT_CHANNELS : RELAY_CUT_NAMESPACES, seed);
            s.w[0].live = s.w[1].live = true;
            tick(&s, 0);
            tick(&s, 1);
            tick(&s, 0); /* confirmed */
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
    for (uint32_t seed = 1; seed <= 600; seed++) {
        sim_t s;
        start(&s, 1, seed % 2 ? RELAY_CUT_CHANNELS : RELAY_CUT_NAMESPACES, seed);
        s.w[1].live = true;
        tick(&s, 1);
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
    for (uint32_t seed = 1; seed <= 600; seed++) {
        sim_t s;
        start(&s, 2, seed % 2 ? RELAY_CUT_CHANNELS : RELAY_CUT_NAMESPACES, seed);
        s.w[0].live = s.w[1].live = true;
        tick(&s, 0);
        tick(&s, 0);
        run(&s, 30, 2);
        s.w[0].draining = true;
        run(&s, 400, seed / 2 % 2);
        drain_all(&s);
        assert_once_from(&s, 0);
        if (!s.channels) /* channels: each may be marked as it is confirmed */
            assert_int_equal(s.w[1].marks, 1);
        assert_int_equal(relay_cut_holds(s.w[1].cut), RELAY_CUT_HOLDS_ALL);
        finish(&s);
    }
    /* half done: the holder keeps the namespace whose marker it has not seen yet */
    relay_cut_t *c = relay_cut_new(2, RELAY_CUT_NAMESPACES, TIMEOUT);
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
    relay_cut_t *old = relay_cut_new(1, RELAY_CUT_NAMESPACES, TIMEOUT),
                *succ = relay_cut_new(1, RELAY_CUT_NAMESPACES, TIMEOUT);
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
    start(&s, 1, RELAY_CUT_NAMESPACES, 7);
    s.w[0].live = s.w[1].live = true;
    tick(&s, 0);
    tick(&s, 0);
    run(&s, 20, 2);
    s.w[0].draining = true;
    tick(&s, 1);
    tick(&s, 1); /* subscribed, confirmed: publishes its marker */
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

/* Sharded mode: rooms enter the server's union during a handover (slot 0 drains, slot 1 takes
 * over; then slot 0's replacement takes it back) and each subscribed worker subscribes to them
 * at its own pace: each room's broadcasts are applied once each from the first applied on, and
 * none is missed after that (a room joined mid-handover is the successor's from its marker on). */
static void test_rooms_created_during_handover(void **state)
{
    (void)state;
    for (uint32_t seed = 1; seed <= 600; seed++) {
        sim_t s;
        start(&s, 4, RELAY_CUT_CHANNELS, seed);
        s.exists[2] = s.exists[3] = false;
        s.w[0].live = s.w[1].live = true;
        tick(&s, 0);
        tick(&s, 0);
        run(&s, 30, 2);
        s.w[0].draining = true;
        run(&s, (int)(rnd(&s) % 60), seed % SLOTS);
        s.exists[2] = true;
        s.created[2] = s.n;
        s.late[2] = true;
        run(&s, (int)(rnd(&s) % 60), seed % SLOTS);
        s.exists[3] = true;
        s.created[3] = s.n;
        s.late[3] = true;
        run(&s, 200, seed % SLOTS);
        drain_all(&s); /* it exits once handed over */
        assert_false(s.w[0].subscribed);
        relay_cut_free(s.w[0].cut);
        s.w[0] = (wk_t){.cut = relay_cut_new(4, RELAY_CUT_CHANNELS, TIMEOUT), .live = true};
        for (unsigned c = 0; c < MAX_CH; c++)
            s.w[0].since[c] = NEVER;
        s.exists[3] = false; /* a room goes, and comes back, while the role moves back */
        for (uint32_t i = 0; i < SLOTS; i++)
            if (s.w[i].since[3] != NEVER)
                chan_sub(&s, i, 3, RELAY_CUT_CHAN_GONE);
        run(&s, (int)(rnd(&s) % 100), seed % SLOTS);
        s.exists[3] = true;
        s.created[3] = s.n;
        run(&s, 300, seed % SLOTS);
        drain_all(&s);
        for (unsigned c = 0; c < 4; c++)
            publish(&s, false, c, 0); /* once everybody settled: each once */
        drain_all(&s);
        assert_once_from(&s, 0);
        for (size_t i = s.n - 4; i < s.n; i++)
            assert_int_equal(s.applied[i], 1);
        assert_int_equal(relay_cut_holds(s.w[0].cut), RELAY_CUT_HOLDS_ALL);
        assert_false(s.w[1].subscribed);
        finish(&s);
    }
}

static relay_cut_t *chan_cut(const char *const *chans, size_t n)
{
    relay_cut_t *c = relay_cut_new(1, RELAY_CUT_CHANNELS, TIMEOUT);
    for (size_t i = 0; i < n; i++) {
        relay_cut_channel(c, chans[i], strlen(chans[i]), RELAY_CUT_CHAN_WANTED);
        relay_cut_channel(c, chans[i], strlen(chans[i]), RELAY_CUT_CHAN_CONFIRMED);
    }
    return c;
}

typedef struct marks {
    char chans[8][16];
    int n;
    int fail; /* the next publishes fail */
} marks_t;

static int record(const char *chan, size_t len, void *arg)
{
    marks_t *m = arg;
    if (m->fail) {
        m->fail--;
        return -107; /* -ENOTCONN */
    }
    assert_true(m->n < 8);
    snprintf(m->chans[m->n++], sizeof(m->chans[0]), "%.*s", (int)len, chan);
    return 0;
}

static bool applies(relay_cut_t *c, const char *chan)
{
    return relay_cut_channel_applies(c, chan, strlen(chan));
}

/* The successor marks that channel alone, and both see the marker. */
static void marks_only(relay_cut_t *succ, relay_cut_t *old, const relay_cut_input_t *in,
                       uint64_t now, const char *chan)
{
    marks_t m = {0};
    assert_int_equal(relay_cut_update(succ, in, now), RELAY_CUT_MARK);
    relay_cut_each_mark(succ, record, &m);
    assert_int_equal(m.n, 1);
    assert_string_equal(m.chans[0], chan);
    relay_cut_channel_marker(succ, chan, strlen(chan), true);
    relay_cut_channel_marker(old, chan, strlen(chan), false);
}

/* Sharded mode, one channel at a time: the successor marks each channel it confirmed; a publish
 * that fails is asked again; the holder lets go of each at its marker; a channel lost while its
 * marker was on its way (its slot moved) is marked again once confirmed on its new node; a
 * marker that never comes back is given up at the timeout, and a holder that never sees one lets
 * go as long after its rival holds it all. */
static void test_channels_one_by_one(void **state)
{
    (void)state;
    static const char *const chans[] = {"a", "b", "c"};
    relay_cut_t *old = chan_cut(chans, 3), *succ = chan_cut(chans, 3);
    relay_cut_input_t in = {.up = true, .others = RELAY_CUT_HOLDS_NONE};
    assert_int_equal(relay_cut_update(old, &in, 0), RELAY_CUT_NONE);
    assert_int_equal(relay_cut_holds(old), RELAY_CUT_HOLDS_ALL);
    assert_true(applies(old, "a"));
    /* a room the steady holder subscribes later is its own at once */
    relay_cut_channel(old, "d", 1, RELAY_CUT_CHAN_WANTED);
    relay_cut_channel(old, "d", 1, RELAY_CUT_CHAN_CONFIRMED);
    assert_true(applies(old, "d"));
    relay_cut_channel(old, "d", 1, RELAY_CUT_CHAN_GONE);
    assert_false(applies(old, "d"));

    relay_cut_input_t s_in = {.up = true, .candidate = true, .others = RELAY_CUT_HOLDS_ALL};
    assert_int_equal(relay_cut_update(succ, &s_in, 100), RELAY_CUT_MARK);
    marks_t m = {.fail = 1};
    relay_cut_each_mark(succ, record, &m);
    assert_int_equal(m.n, 2);
    assert_int_equal(relay_cut_holds(succ), RELAY_CUT_HOLDS_SOME);
    assert_int_equal(relay_cut_update(succ, &s_in, 110), RELAY_CUT_MARK); /* the failed one */
    relay_cut_each_mark(succ, record, &m);
    assert_int_equal(m.n, 3);
    assert_int_equal(relay_cut_update(succ, &s_in, 120), RELAY_CUT_NONE);
    assert_false(applies(succ, "a"));

    relay_cut_input_t o_in = {.up = true, .others = RELAY_CUT_HOLDS_SOME};
    assert_int_equal(relay_cut_update(old, &o_in, 130), RELAY_CUT_NONE);
    /* "a": both see the marker */
    relay_cut_channel_marker(succ, "a", 1, true);
    relay_cut_channel_marker(old, "a", 1, false);
    assert_true(applies(succ, "a"));
    assert_false(applies(old, "a"));
    assert_true(applies(old, "b"));
    assert_int_equal(relay_cut_holds(old), RELAY_CUT_HOLDS_SOME);
    /* a room created now: the giving holder does not take it; the successor marks it */
    relay_cut_channel(old, "e", 1, RELAY_CUT_CHAN_WANTED);
    relay_cut_channel(old, "e", 1, RELAY_CUT_CHAN_CONFIRMED);
    assert_false(applies(old, "e"));
    relay_cut_channel(succ, "e", 1, RELAY_CUT_CHAN_WANTED);
    assert_false(applies(succ, "e"));
    relay_cut_channel(succ, "e", 1, RELAY_CUT_CHAN_CONFIRMED);
    marks_only(succ, old, &s_in, 140, "e");
    assert_true(applies(succ, "e"));
    /* "b" moves with its slot before its marker reached either: marked again once confirmed */
    relay_cut_channel(succ, "b", 1, RELAY_CUT_CHAN_LOST);
    relay_cut_channel(old, "b", 1, RELAY_CUT_CHAN_LOST);
    assert_int_equal(relay_cut_update(succ, &s_in, 150), RELAY_CUT_NONE);
    relay_cut_channel(old, "b", 1, RELAY_CUT_CHAN_CONFIRMED);
    assert_true(applies(old, "b")); /* still the holder's: nobody else applies it */
    relay_cut_channel(succ, "b", 1, RELAY_CUT_CHAN_CONFIRMED);
    marks_only(succ, old, &s_in, 160, "b");
    assert_true(applies(succ, "b"));
    assert_false(applies(old, "b"));
    /* "c": its marker never comes back to either */
    assert_int_equal(relay_cut_update(succ, &s_in, 100 + TIMEOUT - 1), RELAY_CUT_NONE);
    assert_false(applies(succ, "c"));
    assert_int_equal(relay_cut_update(succ, &s_in, 100 + TIMEOUT), RELAY_CUT_TIMEOUT);
    assert_true(applies(succ, "c"));
    assert_int_equal(relay_cut_holds(succ), RELAY_CUT_HOLDS_ALL);
    o_in.others = RELAY_CUT_HOLDS_ALL;
    assert_int_equal(relay_cut_update(old, &o_in, 5000), RELAY_CUT_NONE);
    assert_true(applies(old, "c"));
    assert_int_equal(relay_cut_update(old, &o_in, 5000 + TIMEOUT), RELAY_CUT_YIELD);
    assert_false(applies(old, "c"));
    assert_int_equal(relay_cut_holds(old), RELAY_CUT_HOLDS_NONE);
    /* the old holder is gone: the successor holds what comes next at once */
    s_in.others = RELAY_CUT_HOLDS_NONE;
    assert_int_equal(relay_cut_update(succ, &s_in, 9000), RELAY_CUT_NONE);
    relay_cut_channel(succ, "f", 1, RELAY_CUT_CHAN_WANTED);
    relay_cut_channel(succ, "f", 1, RELAY_CUT_CHAN_CONFIRMED);
    assert_true(applies(succ, "f"));
    relay_cut_free(old);
    relay_cut_free(succ);
}

/* Sharded mode: a holder that let go of every channel holds nothing (it may unsubscribe), and
 * takes them all back if the successor is gone before it (nobody else applies them). */
static void test_channels_all_let_go(void **state)
{
    (void)state;
    static const char *const chans[] = {"a", "b"};
    relay_cut_t *old = chan_cut(chans, 2);
    relay_cut_input_t in = {.up = true, .others = RELAY_CUT_HOLDS_NONE};
    relay_cut_update(old, &in, 0);
    in.others = RELAY_CUT_HOLDS_SOME;
    relay_cut_update(old, &in, 1);
    relay_cut_channel_marker(old, "a", 1, false);
    relay_cut_channel_marker(old, "b", 1, false);
    assert_int_equal(relay_cut_holds(old), RELAY_CUT_HOLDS_NONE);
    in.others = RELAY_CUT_HOLDS_NONE;
    relay_cut_update(old, &in, 2);
    assert_true(applies(old, "a"));
    assert_int_equal(relay_cut_holds(old), RELAY_CUT_HOLDS_ALL);
    /* and with no channel at all: the holder unless it gives the role away */
    relay_cut_t *empty = relay_cut_new(1, RELAY_CUT_CHANNELS, TIMEOUT);
    relay_cut_update(empty, &in, 0);
    assert_int_equal(relay_cut_holds(empty), RELAY_CUT_HOLDS_ALL);
    in.others = RELAY_CUT_HOLDS_ALL;
    relay_cut_update(empty, &in, 1);
    assert_int_equal(relay_cut_holds(empty), RELAY_CUT_HOLDS_NONE);
    relay_cut_free(empty);
    relay_cut_free(old);
}

typedef struct tally {
    unsigned n;
    char last[32];
} tally_t;

static int tally(const char *chan, size_t len, void *arg)
{
    tally_t *t = arg;
    t->n++;
    snprintf(t->last, sizeof(t->last), "%.*s", (int)len, chan);
    return 0;
}

/* What worker.c does before a broadcast on the channel: update unless holding it all, then ask. */
static bool broadcast_applies(relay_cut_t *c, const relay_cut_input_t *in, uint64_t now,
                              const char *chan)
{
    if (relay_cut_holds(c) != RELAY_CUT_HOLDS_ALL)
        assert_int_equal(relay_cut_update(c, in, now), RELAY_CUT_NONE);
    return applies(c, chan);
}

/* Sharded mode with a room per user: a handover of N rooms whose subscriptions the successor sees
 * confirmed one at a time (an update before and after each, and a broadcast), then their markers
 * come back one at a time, costs each of them O(N) channel visits in all, not O(N) per event. */
static void test_channels_handover_is_linear(void **state)
{
    (void)state;
    enum { N = 20000 };
    static char names[N][24];
    for (unsigned i = 0; i < N; i++)
        snprintf(names[i], sizeof(names[i]), "chat.user.%u#", i);
    relay_cut_t *old = relay_cut_new(1, RELAY_CUT_CHANNELS, TIMEOUT);
    relay_cut_t *succ = relay_cut_new(1, RELAY_CUT_CHANNELS, TIMEOUT);
    relay_cut_input_t o_in = {.up = true, .others = RELAY_CUT_HOLDS_NONE};
    for (unsigned i = 0; i < N; i++) {
        relay_cut_channel(old, names[i], strlen(names[i]), RELAY_CUT_CHAN_WANTED);
        relay_cut_channel(old, names[i], strlen(names[i]), RELAY_CUT_CHAN_CONFIRMED);
        relay_cut_channel(succ, names[i], strlen(names[i]), RELAY_CUT_CHAN_WANTED);
    }
    assert_int_equal(relay_cut_update(old, &o_in, 0), RELAY_CUT_NONE);
    assert_int_equal(relay_cut_holds(old), RELAY_CUT_HOLDS_ALL);
    relay_cut_input_t s_in = {.up = true, .candidate = true, .others = RELAY_CUT_HOLDS_ALL};
    assert_int_equal(relay_cut_update(succ, &s_in, 0), RELAY_CUT_NONE);
    tally_t t = {0};
    for (unsigned i = 0; i < N; i++) {
        const char *ch = names[i];
        s_in.others = relay_cut_holds(old);
        assert_int_equal(relay_cut_update(succ, &s_in, 1), RELAY_CUT_NONE);
        relay_cut_channel(succ, ch, strlen(ch), RELAY_CUT_CHAN_CONFIRMED);
        assert_int_equal(relay_cut_update(succ, &s_in, 1), RELAY_CUT_MARK);
        relay_cut_each_mark(succ, tally, &t);
        assert_int_equal(t.n, i + 1);
        assert_string_equal(t.last, ch);
        o_in.others = relay_cut_holds(succ);
        assert_false(broadcast_applies(succ, &s_in, 1, ch));
        assert_true(broadcast_applies(old, &o_in, 1, ch));
        /* each confirmation visits its own channel a bounded number of times */
        assert_true(relay_cut_visits(succ) <= 4 * (uint64_t)(i + 1));
    }
    for (unsigned i = 0; i < N; i++) {
        const char *ch = names[i];
        relay_cut_channel_marker(succ, ch, strlen(ch), true);
        relay_cut_channel_marker(old, ch, strlen(ch), false);
        s_in.others = relay_cut_holds(old);
        o_in.others = relay_cut_holds(succ);
        assert_true(broadcast_applies(succ, &s_in, 2, ch));
        assert_false(broadcast_applies(old, &o_in, 2, ch));
        assert_true(relay_cut_visits(succ) <= 4 * (uint64_t)N + i + 1);
    }
    assert_int_equal(relay_cut_holds(succ), RELAY_CUT_HOLDS_ALL);
    assert_int_equal(relay_cut_holds(old), RELAY_CUT_HOLDS_NONE);
    assert_int_equal(t.n, N);
    assert_true(relay_cut_visits(old) <= 2 * (uint64_t)N);
    relay_cut_free(old);
    relay_cut_free(succ);
}

static int refuse(const char *chan, size_t len, void *arg)
{
    (void)chan;
    (void)len;
    (*(unsigned *)arg)++;
    return -107; /* -ENOTCONN */
}

/* Sharded mode: markers that cannot be published (their node is down) are asked again 10 ms
 * later, not by every update meanwhile (each confirmation makes two). */
static void test_channels_failed_marks_wait(void **state)
{
    (void)state;
    enum { N = 20000 };
    static char names[N][24];
    relay_cut_t *succ = relay_cut_new(1, RELAY_CUT_CHANNELS, TIMEOUT);
    relay_cut_input_t s_in = {.up = true, .candidate = true, .others = RELAY_CUT_HOLDS_ALL};
    unsigned tries = 0;
    for (unsigned i = 0; i < N; i++) {
        snprintf(names[i], sizeof(names[i]), "chat.user.%u#", i);
        relay_cut_channel(succ, names[i], strlen(names[i]), RELAY_CUT_CHAN_WANTED);
        relay_cut_channel(succ, names[i], strlen(names[i]), RELAY_CUT_CHAN_CONFIRMED);
        assert_int_equal(relay_cut_update(succ, &s_in, 100 + i / (N / 4)), RELAY_CUT_MARK);
        relay_cut_each_mark(succ, refuse, &tries);
        assert_int_equal(relay_cut_update(succ, &s_in, 100 + i / (N / 4)), RELAY_CUT_NONE);
    }
    assert_int_equal(tries, N);
    assert_int_equal(relay_cut_update(succ, &s_in, 109), RELAY_CUT_NONE);
    assert_int_equal(relay_cut_update(succ, &s_in, 113), RELAY_CUT_MARK);
    tally_t t = {0};
    relay_cut_each_mark(succ, tally, &t);
    assert_int_equal(t.n, N);
    assert_int_equal(relay_cut_update(succ, &s_in, 114), RELAY_CUT_NONE);
    assert_true(relay_cut_visits(succ) <= 3 * (uint64_t)N);
    relay_cut_free(succ);
}

/* Sharded mode: a channel lost (its slot moving) while its marker waits to be published again
 * gets no marker until it is confirmed again. One published meanwhile would reach the old holder,
 * which lets go at it, but not the successor, which is not subscribed there and takes the channel
 * only at its next marker: the broadcasts in between would be applied by nobody. */
static void test_channels_lost_mark_waits_for_confirmation(void **state)
{
    (void)state;
    static const char *const chans[] = {"a"};
    relay_cut_t *old = chan_cut(chans, 1), *succ = chan_cut(chans, 1);
    relay_cut_input_t o_in = {.up = true, .others = RELAY_CUT_HOLDS_NONE};
    relay_cut_update(old, &o_in, 0);
    relay_cut_input_t s_in = {.up = true, .candidate = true, .others = relay_cut_holds(old)};
    assert_int_equal(relay_cut_update(succ, &s_in, 0), RELAY_CUT_MARK);
    unsigned tries = 0;
    relay_cut_each_mark(succ, refuse, &tries); /* its node is down: asked again later */
    assert_int_equal(tries, 1);
    relay_cut_channel(succ, "a", 1, RELAY_CUT_CHAN_LOST);
    o_in.others = relay_cut_holds(succ);
    tally_t t = {0};
    for (uint64_t now = 1; now < 100; now++) {
        if (relay_cut_update(succ, &s_in, now) == RELAY_CUT_MARK)
            relay_cut_each_mark(succ, tally, &t);
    }
    assert_int_equal(t.n, 0);
    assert_true(broadcast_applies(old, &o_in, 100, "a"));
    /* confirmed on its new node: marked there, where both see it */
    relay_cut_channel(succ, "a", 1, RELAY_CUT_CHAN_CONFIRMED);
    assert_int_equal(relay_cut_update(succ, &s_in, 100), RELAY_CUT_MARK);
    relay_cut_each_mark(succ, tally, &t);
    assert_int_equal(t.n, 1);
    assert_string_equal(t.last, "a");
    relay_cut_channel_marker(succ, "a", 1, true);
    relay_cut_channel_marker(old, "a", 1, false);
    s_in.others = relay_cut_holds(old);
    o_in.others = relay_cut_holds(succ);
    assert_true(broadcast_applies(succ, &s_in, 101, "a"));
    assert_false(broadcast_applies(old, &o_in, 101, "a"));
    relay_cut_free(old);
    relay_cut_free(succ);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_drain_cuts_at_the_marker),
        cmocka_unit_test(test_lower_successor),
        cmocka_unit_test(test_two_namespaces),
        cmocka_unit_test(test_marker_lost),
        cmocka_unit_test(test_holder_crashes),
        cmocka_unit_test(test_rooms_created_during_handover),
        cmocka_unit_test(test_channels_one_by_one),
        cmocka_unit_test(test_channels_all_let_go),
        cmocka_unit_test(test_channels_handover_is_linear),
        cmocka_unit_test(test_channels_failed_marks_wait),
        cmocka_unit_test(test_channels_lost_mark_waits_for_confirmation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
