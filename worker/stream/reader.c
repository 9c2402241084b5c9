/* reader: see reader.h. */
#include "worker/stream/reader.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "common/decimal.h"
#include "common/log.h"
#include "common/strmap.h"
#include "common/xalloc.h"
#include "worker/stream/reader_dlq.h"

#define MISSING_RETRY_MS 1000
#define SVC_TICK_MS 100
#define PROBE_BATCH 5000 /* XINFO STREAM in flight at most */
#define WAKE_BATCH 1000  /* parked streams polled per service turn */
#define WAKE_PER_READ 100
#define WAKE_SLOWDOWN 10 /* with keyspace events, parked streams are polled 10 times less */
#define CLAIM_BATCH 200  /* XAUTOCLAIM per service turn */
#define PARK_CHECK_MS 1000
#define TRIM_EVERY_MS 1000
#define LAST_ID_MAX 48
#define SETTLE_MS 300 /* after a reconnect, before reading: see reader_set_gate */
#define GATE_RETRY_MS 100
/* event mode (see reader.h) */
#define EVENTS_CHECK_MS 30000  /* notify-keyspace-events asked again */
#define EVENTS_RECHECK_MS 5000 /* ... sooner while it lacks the flags (the master adds them) */
#define CLAIM_SPREAD_MS 600000 /* event mode: one XAUTOCLAIM sweep spread over this long */
#define CATCHUP_TURN 5000      /* parked streams polled per catch-up turn */
#define READS_PER_BATCH 16     /* XREADGROUPs (one slot group each) pipelined per lane */
#define HEARD_MAX 4096         /* key events of streams not assigned yet, remembered */
#define SLOT_LOOKAHEAD 4 /* Cluster: dirty streams looked at per read, x MAX_STREAMS_PER_READ */

typedef struct lane lane_t;

/* Where a stream is: waiting for its first XINFO, read by its lane, or parked (polled slowly). */
typedef enum rs_state { RS_PROBE, RS_ACTIVE, RS_PARKED } rs_state_t;

/* Event mode: an active stream with something to read is in one of its lane's dirty lists; a
 * parked stream due a catch-up poll is in the reader's due list (DUE). */
enum { CLEAN, DIRTY_HOT, DIRTY_COLD, DUE };

typedef struct rstream {
    lane_t *lane;
    uint32_t pool;
    rs_state_t state;
    size_t idx; /* position in the vector of its state */
    bool need_group;
    bool need_history;
    uint64_t missing_until; /* key absent: skip reads until then (now_ms) */
    uint64_t last_entry;    /* now_ms of the last entry seen */
    uint64_t next_trim;     /* retain policy: next XTRIM MINID not before (now_ms) */
    int slot;               /* Cluster hash slot; -1 on one server */
    uint8_t dirty;          /* event mode: CLEAN, DIRTY_HOT (event), DIRTY_COLD, DUE (parked) */
    size_t didx;            /* position in its dirty or due list */
    bool taken;             /* in the lane's batch in flight */
    char last_id[LAST_ID_MAX];
    size_t len;
    char name[];
} rstream_t;

typedef struct svec {
    rstream_t **v;
    size_t n, cap;
} svec_t;

typedef enum lane_state { LANE_IDLE, LANE_BUSY, LANE_WAIT, LANE_CLOSED } lane_state_t;

/* A removed stream standing for its lane and slot in a fence: what its PINGs are routed by. */
typedef struct gone {
    lane_t *lane;
    size_t len;
    char name[];
} gone_t;

/* One reader_fence: its PINGs due in the current round (two rounds), then done(arg, seq). */
typedef struct fence {
    reader_t *r;
    strmap_t *gone; /* what it covers */
    uint64_t seq;
    void (*done)(void *arg, uint64_t seq);
    void *arg;
    size_t out;
    int round;
} fence_t;

/* Event mode: one XREADGROUP of a lane's batch, over rd[from, from + n). */
typedef struct evread {
    lane_t *l;
    size_t from, n;
} evread_t;

struct lane {
    reader_t *r;
    reader_conn_t *conn;
    bool priority; /* the PRIORITY_STREAMS lane */
    svec_t active;
    lane_state_t state;
    size_t sweep_pos; /* next stream of a multi-read sweep */
    size_t sweep_got; /* entries found in the current sweep */
    size_t last_got;  /* entries the last read returned */
    bool quick_one;   /* ... one, which a blocking read waited less than half a window for */
    uint64_t pass_ms; /* when the current pass over the lane's streams began (now_ms) */
    bool read_blocking;
    uint64_t sent_ns;    /* when the read in flight was sent (now_ns) */
    uint64_t hold_until; /* no read before (now_ms): the other connections reconnect first */
    bool unblock_sent;
    int next_slot;  /* Cluster, streams of several slots: the slot group read next */
    bool swept;     /* Cluster: a rotation over the slot groups has begun */
    bool idle_wait; /* Cluster: waiting after a rotation found nothing (a key event ends it) */
    reader_timer_t *timer; /* retry after an error */
    /* argv of the command being built; pointers into stream names */
    const char **argv;
    size_t *argvlen;
    size_t argcap;
    rstream_t **sel; /* streams chosen for the next read, capacity active.cap */
    size_t sel_cap;
    reader_dlq_marks_t *marks; /* STREAM_DEAD_LETTER: poison entries of its next history read */
    /* event mode: streams with something to read (events first, then catch-up), the streams
     * of the batch in flight (NULL once removed) and its reads */
    svec_t hot, cold;
    rstream_t **rd;
    size_t rd_n, rd_cap;
    evread_t ev[READS_PER_BATCH];
    size_t reads_out; /* replies of the batch still due */
    size_t batch_got;
    bool batch_err;
};

struct reader {
    reader_redis_ops_t redis;
    reader_clock_ops_t clock;
    const cfg_t *cfg;
    stats_worker_t *stats;
    reader_entry_fn fn;
    void *arg;
    uint64_t read_failures;  /* XREADGROUP error replies (log sampling) */
    uint64_t group_failures; /* XGROUP CREATE refused for another reason than the key */
    char consumer[256];
    char count[16];
    char block[16];
    char claim_idle[16];
    strmap_t *streams; /* name -> rstream_t */
    lane_t *lanes;     /* the ordinary lanes, then the priority lane when PRIORITY_STREAMS is set */
    size_t nlanes;
    size_t nplain; /* ordinary lanes: MAX_CONCURRENT_POOLS */
    svec_t probe;  /* new streams waiting for XINFO STREAM */
    svec_t parked; /* streams idle past STREAM_INACTIVE_TTL */
    size_t wake_pos;
    size_t claim_lane, claim_pos; /* XAUTOCLAIM sweep cursor over active streams */
    uint64_t next_claim;
    uint64_t next_park_check;
    reader_conn_t *svc; /* service connection: probes, wake-up polls, XAUTOCLAIM and their acks */
    reader_timer_t *svc_timer;
    size_t svc_inflight;
    uint64_t svc_turns;
    const char **svc_argv;
    size_t *svc_len;
    size_t svc_cap;
    reader_gate_fn gate;
    void *gate_arg;
    bool stopping;
    size_t open_handles; /* connections and timers still to close */
    void (*done)(void *arg);
    void *done_arg;
    payload_field_t *fields; /* scratch for one entry, reused */
    size_t fields_cap;
    const char **ack_argv;
    size_t *ack_len;
    size_t ack_cap;
    reader_dlq_t *dlq; /* NULL without STREAM_DEAD_LETTER */
    /* event mode: on while the master forwards key events and Redis publishes them */
    bool events_up; /* the master's subscription is up (reader_events) */
    bool events_ok; /* notify-keyspace-events has E and t (CONFIG GET on svc) */
    bool evmode;
    uint64_t next_events_check;
    strmap_t *heard;         /* key events of unknown streams: read first once assigned */
    void (*pull)(void *arg); /* applies the key events queued for this reader (reader_set_pull) */
    void *pull_arg;
    bool pulling;       /* in pull: event lanes are kicked once it is over */
    bool kick_deferred; /* a lane was kicked during the pull */
    bool after_pull;    /* kicking the other lanes after a pull: they do not pull again */
    svec_t due;         /* parked streams to poll once (catch-up), taken from the end */
    bool due_sorted;    /* due is in descending slot order: its end is one slot's run */
    /* fences (reader_fence): "<lane>:<slot>" -> gone_t, of streams removed since the last
     * fence began; the fence running and the last one asked for meanwhile */
    strmap_t *gone;
    fence_t *fence;
    fence_t *fence_next;
};

static void lane_kick(lane_t *l);
static void svc_run(reader_t *r);
static void gone_note(reader_t *r, const rstream_t *s);

static uint64_t now_ms(const reader_t *r)
{
    return r->clock.now_ms(r->clock.ctx);
}

static bool conn_up(const reader_t *r, const reader_conn_t *c)
{
    return c && r->redis.up(c);
}

/* A command on c about the stream `key` (what a Cluster-aware layer routes by). */
static int send_cmd(reader_t *r, reader_conn_t *c, const char *key, size_t key_len,
                    reader_reply_fn cb, void *arg, int argc, const char **argv, const size_t *lens)
{
    return r->redis.command(c, key, key_len, cb, arg, argc, argv, lens);
}

/* ---- membership ---- */

/* A stream is in two vectors at most (its state's, a dirty list), each keeping its position
 * in a field of its own: `off` is that field's offset. */
#define POS(s, off) (*(size_t *)((char *)(s) + (off)))

static void vec_push(svec_t *v, rstream_t *s, size_t off)
{
    if (v->n == v->cap) {
        v->cap = v->cap ? v->cap * 2 : 8;
        v->v = xrealloc(v->v, v->cap * sizeof(*v->v));
    }
    POS(s, off) = v->n;
    v->v[v->n++] = s;
}

static void vec_drop(svec_t *v, rstream_t *s, size_t off)
{
    rstream_t *last = v->v[--v->n];
    v->v[POS(s, off)] = last;
    POS(last, off) = POS(s, off);
}

static void svec_push(svec_t *v, rstream_t *s)
{
    vec_push(v, s, offsetof(rstream_t, idx));
}

static void svec_drop(svec_t *v, rstream_t *s)
{
    vec_drop(v, s, offsetof(rstream_t, idx));
}

static void dvec_push(svec_t *v, rstream_t *s)
{
    vec_push(v, s, offsetof(rstream_t, didx));
}

static void dvec_drop(svec_t *v, rstream_t *s)
{
    vec_drop(v, s, offsetof(rstream_t, didx));
}

/* Event mode: s has something to read (hot: an event said so, read before catch-up work). */
static void dirty_mark(rstream_t *s, bool hot)
{
    lane_t *l = s->lane;
    if (s->dirty == DIRTY_HOT || (s->dirty == DIRTY_COLD && !hot))
        return;
    if (s->dirty == DIRTY_COLD)
        dvec_drop(&l->cold, s);
    s->dirty = hot ? DIRTY_HOT : DIRTY_COLD;
    dvec_push(hot ? &l->hot : &l->cold, s);
}

static void dirty_clear(rstream_t *s)
{
    if (s->dirty == CLEAN)
        return;
    dvec_drop(s->dirty == DIRTY_HOT ? &s->lane->hot : &s->lane->cold, s);
    s->dirty = CLEAN;
}

/* A lane reads on events (only what is dirty, never blocking): the ordinary lanes while event
 * mode is on. The priority lane keeps its blocking read. */
static bool events_lane(const lane_t *l)
{
    return l->r->evmode && !l->priority;
}

static svec_t *home(reader_t *r, rstream_t *s)
{
    switch (s->state) {
    case RS_ACTIVE:
        return &s->lane->active;
    case RS_PARKED:
        return &r->parked;
    case RS_PROBE:
        break;
    }
    return &r->probe;
}

/* Event mode: parked s is polled once in a catch-up turn. */
static void due_push(reader_t *r, rstream_t *s)
{
    if (s->dirty == DUE)
        return;
    s->dirty = DUE;
    dvec_push(&r->due, s);
    r->due_sorted = false;
}

static void due_drop(reader_t *r, rstream_t *s)
{
    if (s->dirty != DUE)
        return;
    bool last = s->didx + 1 == r->due.n;
    dvec_drop(&r->due, s);
    s->dirty = CLEAN;
    r->due_sorted &= last; /* otherwise the last one filled the hole */
}

static void detach(reader_t *r, rstream_t *s)
{
    svec_t *v = home(r, s);
    svec_drop(v, s);
    if (s->state == RS_PARKED)
        due_drop(r, s);
    if (s->state == RS_ACTIVE) {
        dirty_clear(s);
        if (s->lane->sweep_pos > v->n)
            s->lane->sweep_pos = 0;
    }
}

/* Moves s to `state`. */
static void move_to(reader_t *r, rstream_t *s, rs_state_t state)
{
    if (s->state == state)
        return;
    rs_state_t old = s->state;
    size_t old_idx = s->idx;
    s->state = state;
    svec_t *v = home(r, s);
    if (state == RS_ACTIVE && s->lane->sel_cap < v->n + 1) {
        size_t cap = v->cap ? v->cap * 2 : 8;
        s->lane->sel = xrealloc(s->lane->sel, cap * sizeof(*s->lane->sel));
        s->lane->sel_cap = cap;
    }
    svec_push(v, s);
    size_t new_idx = s->idx;
    s->state = old;
    s->idx = old_idx;
    detach(r, s);
    s->state = state;
    s->idx = new_idx;
    STATS_SET(r->stats->streams_parked, r->parked.n);
}

/* Ends the lane's blocking read now (CLIENT UNBLOCK: an empty reply), so its next read is
 * sent with the streams it has now. */
static void lane_cut_short(reader_t *r, lane_t *l, const rstream_t *s)
{
    if (l->state == LANE_BUSY && l->read_blocking && !l->unblock_sent && !r->stopping &&
        conn_up(r, r->svc))
        l->unblock_sent = r->redis.unblock(r->svc, l->conn, s->name, s->len) == 0;
}

/* A parked or probed stream with entries: its lane reads it again, history and group first.
 * A lane blocked on its other streams is cut short so it reads this one now. */
static void activate(reader_t *r, rstream_t *s)
{
    if (s->state == RS_ACTIVE)
        return;
    move_to(r, s, RS_ACTIVE);
    s->last_entry = now_ms(r);
    s->need_group = true;
    s->need_history = true;
    if (events_lane(s->lane))
        dirty_mark(s, true);
    lane_cut_short(r, s->lane, s);
    lane_kick(s->lane);
}

static void on_lane_state(reader_conn_t *conn, bool connected, void *arg)
{
    (void)conn;
    lane_t *l = arg;
    if (!connected) {
        l->state = LANE_IDLE;
        return;
    }
    /* Redis may have restarted without our groups, and anything we had read but not acked
     * is pending for us: check groups and re-read our history before new entries. */
    l->hold_until = now_ms(l->r) + SETTLE_MS;
    for (size_t i = 0; i < l->active.n; i++) {
        l->active.v[i]->need_group = true;
        l->active.v[i]->need_history = true;
        if (!l->priority)
            dirty_mark(l->active.v[i], false); /* event mode: events of the outage are lost */
    }
    lane_kick(l);
}

static void on_lane_timer(void *arg)
{
    lane_t *l = arg;
    if (l->state == LANE_WAIT)
        l->state = LANE_IDLE;
    l->idle_wait = false;
    lane_kick(l);
}

/* PRIORITY_STREAMS have a lane and a connection of their own: a busy lane of ordinary streams
 * (a long backlog, its PUBLISH/XACK/XDEL queue) never delays them. */
static lane_t *lane_for(reader_t *r, uint32_t pool, bool priority)
{
    lane_t *l = priority ? &r->lanes[r->nplain] : &r->lanes[pool % r->nplain];
    if (!l->conn && l->state != LANE_CLOSED) {
        char name[32];
        if (l->priority)
            snprintf(name, sizeof(name), "reader priority");
        else
            snprintf(name, sizeof(name), "reader %u", (unsigned)(l - r->lanes));
        l->conn = r->redis.open(r->redis.ctx, name, on_lane_state, l);
        l->timer = r->clock.timer_new(r->clock.ctx, on_lane_timer, l);
        r->open_handles += 2;
    }
    return l;
}

/* ---- command building ---- */

static void argv_reserve(const char ***argv, size_t **lens, size_t *cap, size_t n)
{
    if (n <= *cap)
        return;
    *argv = xrealloc(*argv, n * sizeof(**argv));
    *lens = xrealloc(*lens, n * sizeof(**lens));
    *cap = n;
}

static void arg_set(lane_t *l, size_t i, const char *s, size_t len)
{
    l->argv[i] = s;
    l->argvlen[i] = len;
}

static void on_read(const redisReply *rep, void *arg);

/* Starts the lane's argv with XREADGROUP GROUP g c COUNT n [BLOCK ms] STREAMS and the names of
 * sel[0..k), room left for their k ids; returns the next argument's index. */
static size_t read_head(lane_t *l, rstream_t *const *sel, size_t k, bool block)
{
    reader_t *r = l->r;
    argv_reserve(&l->argv, &l->argvlen, &l->argcap, 8 + (block ? 2 : 0) + 2 * k);
    size_t a = 0;
    arg_set(l, a++, "XREADGROUP", 10);
    arg_set(l, a++, "GROUP", 5);
    arg_set(l, a++, r->cfg->consumer_group, strlen(r->cfg->consumer_group));
    arg_set(l, a++, r->consumer, strlen(r->consumer));
    arg_set(l, a++, "COUNT", 5);
    arg_set(l, a++, r->count, strlen(r->count));
    if (block) {
        arg_set(l, a++, "BLOCK", 5);
        arg_set(l, a++, r->block, strlen(r->block));
    }
    arg_set(l, a++, "STREAMS", 7);
    for (size_t i = 0; i < k; i++)
        arg_set(l, a++, sel[i]->name, sel[i]->len);
    return a;
}

/* XREADGROUP GROUP g c COUNT n [BLOCK ms] STREAMS s... id... over sel[0..k); nothing when the
 * lane is not connected. */
static void send_read(lane_t *l, rstream_t **sel, size_t k, const char *id, bool block)
{
    reader_t *r = l->r;
    size_t a = read_head(l, sel, k, block);
    for (size_t i = 0; i < k; i++)
        arg_set(l, a++, id, strlen(id));
    int rc = block ? r->redis.command_blocking(l->conn, sel[0]->name, sel[0]->len,
                                               (uint32_t)r->cfg->read_block_ms, on_read, l, (int)a,
                                               l->argv, l->argvlen)
                   : send_cmd(r, l->conn, sel[0]->name, sel[0]->len, on_read, l, (int)a, l->argv,
                              l->argvlen);
    if (rc == 0) {
        l->state = LANE_BUSY;
        l->read_blocking = block;
        l->unblock_sent = false;
        l->sent_ns = r->clock.now_ns(r->clock.ctx);
    }
}

/* A command about one stream, which may be gone by the time the reply comes. */
typedef struct namereq {
    reader_t *r;
    reader_dlq_marks_t *marks; /* claims: poison entries among them */
    size_t len;
    char name[];
} namereq_t;

static namereq_t *namereq_new(reader_t *r, const rstream_t *s)
{
    namereq_t *q = xmalloc(sizeof(*q) + s->len);
    q->r = r;
    q->marks = NULL;
    q->len = s->len;
    memcpy(q->name, s->name, s->len);
    return q;
}

static void on_group(const redisReply *rep, void *arg)
{
    namereq_t *g = arg;
    reader_t *r = g->r;
    rstream_t *s = strmap_get(r->streams, g->name, g->len);
    if (s && rep && rep->type == REDIS_REPLY_ERROR && strncmp(rep->str, "BUSYGROUP", 9) != 0) {
        /* skip it for a while: the key is gone (or not a stream), or Redis refused (OOM under
         * maxmemory, an ACL): those are said, its entries wait in Redis meanwhile */
        s->need_group = true;
        s->missing_until = now_ms(r) + MISSING_RETRY_MS;
        if (strncmp(rep->str, "ERR", 3) == 0 || strncmp(rep->str, "WRONGTYPE", 9) == 0)
            LOG_DEBUG("stream %.*s: %s", (int)g->len, g->name, rep->str);
        else if (log_sampled(&r->group_failures))
            LOG_WARN("stream %.*s: cannot create consumer group %s, retrying: %s (%llu so far)",
                     (int)g->len, g->name, r->cfg->consumer_group, rep->str,
                     (unsigned long long)r->group_failures);
    }
    free(g);
}

/* XGROUP CREATE <s> <group> 0, queued ahead of the stream's read; need_group stays set when
 * the connection is down. */
static void send_group_create(reader_t *r, lane_t *l, rstream_t *s)
{
    namereq_t *g = namereq_new(r, s);
    const char *argv[] = {"XGROUP", "CREATE", s->name, r->cfg->consumer_group, "0"};
    size_t lens[] = {6, 6, s->len, strlen(r->cfg->consumer_group), 1};
    if (send_cmd(r, l->conn, s->name, s->len, on_group, g, 5, argv, lens)) {
        free(g);
        return;
    }
    s->need_group = false;
    s->missing_until = 0;
}

static void send_group_creates(lane_t *l)
{
    reader_t *r = l->r;
    uint64_t now = now_ms(r);
    for (size_t i = 0; i < l->active.n; i++) {
        rstream_t *s = l->active.v[i];
        if (!s->need_group || s->missing_until > now)
            continue;
        send_group_create(r, l, s);
        if (s->need_group)
            return;
    }
}

/* Streams ready for reads: grouped and not known missing. */
static bool readable(const rstream_t *s, uint64_t now)
{
    return !s->need_group && s->missing_until <= now;
}

/*
 * Bounded coalescing: while entries flow (the last pass over the lane's streams found more than
 * one), the next pass (its one read, or the first read of a sweep) begins BATCH_DELAY after the
 * last one began, so a paced load costs one round trip per window instead of one per entry, for
 * at most BATCH_DELAY of added latency. A lane that gets one entry per window or fewer reads
 * again at once: a quiet lane's next entry is never delayed, and a stream paced at about one
 * entry per window cannot fall into step just behind the reads. The priority lane never waits.
 */
static bool lane_pace(lane_t *l, uint64_t now)
{
    if (l->priority)
        return false;
    uint64_t due = l->pass_ms + (uint64_t)l->r->cfg->batch_delay_ms;
    if (now >= due)
        return false;
    l->state = LANE_WAIT;
    l->r->clock.timer_start(l->timer, due - now, 0);
    return true;
}

/* Entries flow: the last read found more than one, or one it waited less than half a window
 * for (entries come at two or more a window, so pacing costs nothing; reading again at once
 * would make it one blocking read per entry whenever the worker answers faster than they come).
 * One entry found by a read that itself waited for its window does not count: it came during the
 * pause, and counting it would keep a stream of one entry a window paced, each entry late. */
static bool flowing(const lane_t *l)
{
    return l->last_got > 1 || l->quick_one;
}

/* ---- Redis Cluster: one slot per read ---- */

/*
 * Moves to the front of sel[0..k) the streams of one slot, at most max of them: the group of
 * the lowest slot >= l->next_slot, or of the lowest slot when none is (*wrapped: a rotation
 * over the groups starts again). Returns how many; their slot in *slot.
 */
static size_t slot_group(lane_t *l, rstream_t **sel, size_t k, size_t max, int *slot, bool *wrapped)
{
    int best = -1, lowest = -1;
    for (size_t i = 0; i < k; i++) {
        int s = sel[i]->slot;
        if (lowest < 0 || s < lowest)
            lowest = s;
        if (s >= l->next_slot && (best < 0 || s < best))
            best = s;
    }
    *wrapped = best < 0 || l->next_slot == 0;
    *slot = best < 0 ? lowest : best;
    size_t n = 0;
    for (size_t i = 0; i < k && n < max; i++) {
        if (sel[i]->slot == *slot) {
            rstream_t *t = sel[n];
            sel[n++] = sel[i];
            sel[i] = t;
        }
    }
    return n;
}

/* Whether the streams sel[0..k) live in more than one slot (never outside a Cluster). */
static bool several_slots(rstream_t **sel, size_t k)
{
    for (size_t i = 1; i < k; i++) {
        if (sel[i]->slot != sel[0]->slot)
            return true;
    }
    return false;
}

/*
 * A lane whose streams span several slots reads one slot group per XREADGROUP, without BLOCK
 * (a blocking read on one group would hold back the others), group after group. A rotation
 * that found nothing waits READ_BLOCK_MS, cut short by a key event of one of its streams
 * (STREAM_KEYSPACE_EVENTS): Redis is not polled in a loop for idle streams.
 */
static void read_slot_groups(lane_t *l, rstream_t **sel, size_t k, size_t max, uint64_t now)
{
    reader_t *r = l->r;
    int slot;
    bool wrapped;
    size_t n = slot_group(l, sel, k, max, &slot, &wrapped);
    if (wrapped) {
        if (l->sweep_got > 1 && lane_pace(l, now))
            return;
        bool idle = l->swept && l->sweep_got == 0;
        l->sweep_got = 0;
        l->swept = !idle;
        if (idle) {
            l->state = LANE_WAIT;
            l->idle_wait = true;
            r->clock.timer_start(l->timer, (uint64_t)r->cfg->read_block_ms, 0);
            return;
        }
        l->pass_ms = now;
    }
    send_read(l, sel, n, ">", false);
    if (l->state == LANE_BUSY)
        l->next_slot = slot + 1;
}

/* ---- event mode: read what key events said has entries ---- */

static void on_ev_read(const redisReply *rep, void *arg);

/*
 * Takes into rd the dirty streams of one read: hot ones first, then catch-up ones, all of the
 * slot of the first (a Cluster's XREADGROUP names one slot), at most max. A stream read for
 * new entries leaves its list; one whose history (id 0) is read stays until that is empty. A
 * stream whose key is missing leaves too: its next XADD's event brings it back. Returns how many.
 */
static size_t take_dirty(lane_t *l, size_t max, uint64_t now)
{
    reader_t *r = l->r;
    size_t k = 0;
    int slot = 0;
    svec_t *lists[] = {&l->hot, &l->cold};
    for (size_t li = 0; li < 2 && k < max; li++) {
        svec_t *v = lists[li];
        size_t look = max * SLOT_LOOKAHEAD;
        for (size_t i = v->n; i-- > 0 && k < max && look-- > 0;) {
            rstream_t *s = v->v[i];
            if (s->missing_until > now) {
                dirty_clear(s);
                continue;
            }
            if (s->taken || (k && s->slot != slot))
                continue;
            if (k == 0)
                slot = s->slot;
            if (s->need_group)
                send_group_create(r, l, s);
            if (s->need_group)
                return k; /* not connected after all */
            if (r->dlq && s->need_history)
                reader_dlq_pending(r->dlq, l->conn, s->name, s->len, r->count, r->consumer, NULL,
                                   l->marks);
            if (!s->need_history)
                dirty_clear(s);
            if (l->rd_n + 1 > l->rd_cap) {
                l->rd_cap = l->rd_cap ? l->rd_cap * 2 : 64;
                l->rd = xrealloc(l->rd, l->rd_cap * sizeof(*l->rd));
            }
            l->rd[l->rd_n++] = s;
            s->taken = true;
            k++;
        }
    }
    return k;
}

/*
 * One batch: up to READS_PER_BATCH non-blocking XREADGROUPs over the dirty streams (history
 * "0" or new ">" per stream), pipelined in one write; the next batch goes when all are
 * answered, taking whatever was dirtied meanwhile. While entries flow, batches begin
 * BATCH_DELAY apart (lane_pace), as the blocking lanes' passes do.
 */
static void lane_read_dirty(lane_t *l, uint64_t now)
{
    reader_t *r = l->r;
    if (r->pull && !r->pulling && !r->after_pull) {
        /* the events queued while entries flowed (reader_events_may_wait) go into this batch */
        r->pulling = true;
        r->kick_deferred = false;
        r->pull(r->pull_arg);
        r->pulling = false;
        if (r->kick_deferred) {
            r->after_pull = true; /* once: their reads take what this pull brought */
            for (size_t i = 0; i < r->nplain; i++) {
                if (&r->lanes[i] != l)
                    lane_kick(&r->lanes[i]);
            }
            r->after_pull = false;
        }
        if (l->state != LANE_IDLE)
            return;
        if (!events_lane(l)) {
            lane_kick(l); /* event mode ended in the pull: a blocking read */
            return;
        }
    }
    if (!l->hot.n && !l->cold.n)
        return; /* nothing to read: a quiet lane costs nothing */
    if (flowing(l) && lane_pace(l, now))
        return;
    size_t max = (size_t)r->cfg->max_streams_per_read;
    l->rd_n = 0;
    l->reads_out = 0;
    l->batch_got = 0;
    l->batch_err = false;
    l->pass_ms = now;
    for (size_t b = 0; b < READS_PER_BATCH && (l->hot.n || l->cold.n); b++) {
        size_t from = l->rd_n;
        size_t k = take_dirty(l, max, now);
        if (k == 0)
            break;
        size_t a = read_head(l, l->rd + from, k, false);
        for (size_t i = 0; i < k; i++)
            arg_set(l, a++, l->rd[from + i]->need_history ? "0" : ">", 1);
        evread_t *e = &l->ev[b];
        *e = (evread_t){l, from, k};
        if (send_cmd(r, l->conn, l->rd[from]->name, l->rd[from]->len, on_ev_read, e, (int)a,
                     l->argv, l->argvlen)) {
            for (size_t i = 0; i < k; i++)
                dirty_mark(l->rd[from + i], true);
            break;
        }
        l->reads_out++;
    }
    if (l->reads_out) {
        l->state = LANE_BUSY;
        l->read_blocking = false;
        l->sent_ns = r->clock.now_ns(r->clock.ctx);
    }
}

static void lane_kick(lane_t *l)
{
    reader_t *r = l->r;
    if (l->state != LANE_IDLE || r->stopping || !conn_up(r, l->conn))
        return;
    bool ev = events_lane(l);
    if (!ev)
        send_group_creates(l);
    uint64_t now = now_ms(r);
    if (ev && r->pulling) {
        r->kick_deferred = true; /* kicked once the pull is over */
        return;
    }
    if (now < l->hold_until || (r->gate && !r->gate(r->gate_arg))) {
        /* what we would read now could not reach every socket: wait, it stays in Redis */
        l->state = LANE_WAIT;
        r->clock.timer_start(l->timer, GATE_RETRY_MS, 0);
        return;
    }
    if (ev) {
        lane_read_dirty(l, now);
        return;
    }
    size_t max = (size_t)r->cfg->max_streams_per_read;
    rstream_t **sel = l->sel;
    size_t k = 0;
    for (size_t i = 0; i < l->active.n && k < max; i++) {
        if (readable(l->active.v[i], now) && l->active.v[i]->need_history)
            sel[k++] = l->active.v[i];
    }
    /* a lane whose connection is down sends nothing: on_lane_state kicks it again */
    if (k) {
        int slot;
        bool wrapped;
        if (several_slots(sel, k))
            k = slot_group(l, sel, k, max, &slot, &wrapped);
        /* entries read again: their delivery counts first (dead letters), answered before */
        for (size_t i = 0; r->dlq && i < k; i++)
            reader_dlq_pending(r->dlq, l->conn, sel[i]->name, sel[i]->len, r->count, r->consumer,
                               NULL, l->marks);
        send_read(l, sel, k, "0", false);
    } else {
        for (size_t i = 0; i < l->active.n; i++) {
            if (readable(l->active.v[i], now))
                sel[k++] = l->active.v[i];
        }
        if (k == 0) {
            /* nothing readable now: retry later if some stream waits for its key */
            if (l->active.n)
                r->clock.timer_start(l->timer, MISSING_RETRY_MS, 0);
            return;
        }
        if (several_slots(sel, k)) {
            read_slot_groups(l, sel, k, max, now);
        } else if (k <= max) {
            if (flowing(l) && lane_pace(l, now))
                return;
            l->pass_ms = now;
            send_read(l, sel, k, ">", true);
        } else if (l->sweep_pos >= k) {
            /* a whole sweep done */
            bool idle = l->sweep_got == 0;
            if (l->sweep_got > 1 && lane_pace(l, now))
                return;
            l->pass_ms = now;
            l->sweep_pos = 0;
            l->sweep_got = 0;
            if (idle) {
                send_read(l, sel, k, ">", true);
            } else {
                size_t n = k < max ? k : max;
                send_read(l, sel, n, ">", false);
                l->sweep_pos = n;
            }
        } else {
            size_t n = k - l->sweep_pos < max ? k - l->sweep_pos : max;
            if (l->sweep_pos == 0)
                l->pass_ms = now;
            send_read(l, sel + l->sweep_pos, n, ">", false);
            l->sweep_pos += n;
        }
    }
}

/* ---- delivery ---- */

static void fields_reserve(reader_t *r, size_t n)
{
    if (n <= r->fields_cap)
        return;
    r->fields = xrealloc(r->fields, n * sizeof(*r->fields));
    r->fields_cap = n;
}

static void maybe_trim(reader_t *r, reader_conn_t *conn, rstream_t *s)
{
    uint64_t now = now_ms(r);
    if (!s || now < s->next_trim)
        return;
    s->next_trim = now + TRIM_EVERY_MS;
    char minid[32];
    uint64_t wall = r->clock.wall_ms(r->clock.ctx);
    uint64_t keep = (uint64_t)r->cfg->stream_retain_ms;
    snprintf(minid, sizeof(minid), "%llu", (unsigned long long)(wall > keep ? wall - keep : 0));
    const char *argv[] = {"XTRIM", s->name, "MINID", minid};
    size_t lens[] = {5, s->len, 5, strlen(minid)};
    send_cmd(r, conn, s->name, s->len, NULL, NULL, 4, argv, lens);
}

/*
 * Delivers entries ([id, [field, value...]]...) of one stream read or claimed on `conn` (reread:
 * from this consumer's pending list, see reader_entry_fn), then queues XACK (and XDEL under the
 * delete policy) behind whatever delivery queued on that same connection; dead letters (marks:
 * the poison ones) are moved instead. Returns how many entries were acknowledged.
 */
static size_t deliver(reader_t *r, reader_conn_t *conn, const char *name, size_t name_len,
                      const redisReply *entries, reader_dlq_marks_t *marks, bool reread)
{
    if (entries->elements == 0)
        return 0;
    argv_reserve(&r->ack_argv, &r->ack_len, &r->ack_cap, 3 + entries->elements);
    rstream_t *s = strmap_get(r->streams, name, name_len);
    size_t nids = 0;
    const redisReply *last = NULL;
    for (size_t i = 0; i < entries->elements; i++) {
        const redisReply *e = entries->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
            e->element[0]->type != REDIS_REPLY_STRING)
            continue;
        const redisReply *id = e->element[0];
        const redisReply *fv = e->element[1];
        size_t k = 0;
        if (fv->type == REDIS_REPLY_ARRAY) {
            fields_reserve(r, fv->elements / 2 ? fv->elements / 2 : 1);
            for (size_t j = 0; j + 1 < fv->elements; j += 2) {
                const redisReply *f = fv->element[j], *v = fv->element[j + 1];
                if (f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
                    continue;
                r->fields[k++] = (payload_field_t){f->str, f->len, v->str, v->len};
            }
            if (reader_dlq_divert(r->dlq, conn, marks, name, name_len, id->str, id->len, r->fields,
                                  k))
                continue; /* acknowledged once its dead letter is written */
        }
        r->ack_argv[3 + nids] = id->str;
        r->ack_len[3 + nids] = id->len;
        nids++;
        last = id;
        if (fv->type != REDIS_REPLY_ARRAY)
            continue; /* deleted while pending: nothing to deliver, still acknowledge it */
        r->fn(conn, name, name_len, id->str, id->len, r->fields, k, reread, r->arg);
    }
    if (nids == 0)
        return 0;
    r->ack_argv[0] = "XACK";
    r->ack_len[0] = 4;
    r->ack_argv[1] = name;
    r->ack_len[1] = name_len;
    r->ack_argv[2] = r->cfg->consumer_group;
    r->ack_len[2] = strlen(r->cfg->consumer_group);
    send_cmd(r, conn, name, name_len, NULL, NULL, (int)(3 + nids), r->ack_argv, r->ack_len);
    if (!r->cfg->stream_retain) {
        /* XDEL takes the same ids right after the key: reuse the vector one slot later */
        r->ack_argv[1] = "XDEL";
        r->ack_len[1] = 4;
        r->ack_argv[2] = name;
        r->ack_len[2] = name_len;
        send_cmd(r, conn, name, name_len, NULL, NULL, (int)(2 + nids), r->ack_argv + 1,
                 r->ack_len + 1);
    } else {
        maybe_trim(r, conn, s);
    }
    if (s) {
        s->last_entry = now_ms(r);
        if (last->len < LAST_ID_MAX) {
            memcpy(s->last_id, last->str, last->len);
            s->last_id[last->len] = '\0';
        }
    }
    STATS_ADD(r->stats->messages_processed, nids);
    return nids;
}

/* One [name, entries] element of an XREADGROUP reply on a lane. */
static size_t handle_stream(lane_t *l, const redisReply *sr)
{
    reader_t *r = l->r;
    if (sr->type != REDIS_REPLY_ARRAY || sr->elements != 2 ||
        sr->element[0]->type != REDIS_REPLY_STRING || sr->element[1]->type != REDIS_REPLY_ARRAY)
        return 0;
    const redisReply *name = sr->element[0];
    const redisReply *entries = sr->element[1];
    rstream_t *s = strmap_get(r->streams, name->str, name->len);
    if (entries->elements == 0) {
        if (s)
            s->need_history = false;
        return 0;
    }
    /* a stream is read from its pending list ("0") while it needs its history, which only an
     * empty reply to that read ends; a new read of it (">") waits until then. (A read in flight
     * when its stream was parked and woken up may come back marked too: nothing records its
     * entries as handed out yet, so they go.) */
    return deliver(r, l->conn, name->str, name->len, entries, l->marks, s && s->need_history);
}

static void lane_close_if_stopping(lane_t *l);

/* Read metrics: batch sizes of every reply; round trips only of reads that did not block (a
 * blocking read's time is mostly the wait for an entry, not Redis). */
static void observe_read(reader_t *r, const lane_t *l, size_t got)
{
    static const uint64_t lat_bounds[] = STATS_LATENCY_BOUNDS_US;
    static const uint64_t batch_bounds[] = STATS_BATCH_BOUNDS;
    STATS_ADD(r->stats->xread_calls, 1);
    STATS_ADD(r->stats->batch_sum, got);
    stats_observe(r->stats->batch, batch_bounds, got);
    if (!l->read_blocking) {
        uint64_t us = (r->clock.now_ns(r->clock.ctx) - l->sent_ns) / 1000;
        STATS_ADD(r->stats->xread_us_sum, us);
        stats_observe(r->stats->xread_us, lat_bounds, us);
    }
}

/*
 * One reply of an event-mode batch. A stream that returned a full COUNT has more: dirty again.
 * A lost connection, NOGROUP (a group deleted, a key re-created) or another error leaves the
 * batch's streams dirty, with their groups checked again on NOGROUP.
 */
static void on_ev_read(const redisReply *rep, void *arg)
{
    evread_t *e = arg;
    lane_t *l = e->l;
    reader_t *r = l->r;
    /* nil: nothing to read */
    bool ok = rep && (rep->type == REDIS_REPLY_ARRAY || rep->type == REDIS_REPLY_NIL);
    bool nogroup = rep && rep->type == REDIS_REPLY_ERROR && strncmp(rep->str, "NOGROUP", 7) == 0;
    if (rep && !ok && !nogroup) {
        l->batch_err = true;
        if (log_sampled(&r->read_failures))
            LOG_WARN("XREADGROUP failed: %s (%llu so far)",
                     rep->type == REDIS_REPLY_ERROR ? rep->str : "unexpected reply",
                     (unsigned long long)r->read_failures);
    }
    if (ok && rep->type == REDIS_REPLY_ARRAY) {
        size_t full = (size_t)r->cfg->max_messages_batch;
        for (size_t i = 0; i < rep->elements; i++) {
            const redisReply *sr = rep->element[i];
            l->batch_got += handle_stream(l, sr);
            rstream_t *s = sr->type == REDIS_REPLY_ARRAY && sr->elements == 2 &&
                                   sr->element[0]->type == REDIS_REPLY_STRING &&
                                   sr->element[1]->type == REDIS_REPLY_ARRAY &&
                                   sr->element[1]->elements >= full
                               ? strmap_get(r->streams, sr->element[0]->str, sr->element[0]->len)
                               : NULL;
            if (s && s->state == RS_ACTIVE)
                dirty_mark(s, true);
        }
    } else if (!ok) {
        for (size_t i = e->from; i < e->from + e->n; i++) {
            rstream_t *s = l->rd[i];
            if (!s || s->state != RS_ACTIVE)
                continue;
            s->need_group |= nogroup;
            dirty_mark(s, true);
        }
    }
    if (--l->reads_out)
        return;
    /* the batch is over */
    for (size_t i = 0; i < l->rd_n; i++) {
        if (l->rd[i])
            l->rd[i]->taken = false;
    }
    l->rd_n = 0;
    if (l->state == LANE_BUSY)
        l->state = LANE_IDLE;
    l->last_got = l->batch_got;
    l->quick_one = false;
    reader_dlq_marks_clear(l->marks);
    if (!rep || r->stopping) {
        lane_close_if_stopping(l);
        return; /* connection lost: on_lane_state restarts the lane */
    }
    observe_read(r, l, l->batch_got);
    if (l->batch_err) {
        l->state = LANE_WAIT; /* an error: not again at once */
        uint64_t delay = r->cfg->batch_delay_ms > 100 ? (uint64_t)r->cfg->batch_delay_ms : 100;
        r->clock.timer_start(l->timer, delay, 0);
        return;
    }
    lane_kick(l);
}

static void on_read(const redisReply *rep, void *arg)
{
    lane_t *l = arg;
    reader_t *r = l->r;
    if (l->state == LANE_BUSY)
        l->state = LANE_IDLE;
    bool paced = flowing(l); /* this read began a window after entries that flowed */
    l->last_got = 0;
    l->quick_one = false;
    if (!rep) {
        lane_close_if_stopping(l);
        return; /* connection lost: on_lane_state restarts the lane */
    }
    if (rep->type == REDIS_REPLY_ERROR) {
        if (strncmp(rep->str, "NOGROUP", 7) == 0 || strncmp(rep->str, "UNBLOCKED", 9) == 0) {
            /* a group or a key is gone (UNBLOCKED: a key of a blocking read was deleted, which
             * is expected; discovery drops it): the group checks find which stream, which then
             * waits for its key to come back until the master drops it */
            for (size_t i = 0; i < l->active.n; i++)
                l->active.v[i]->need_group = true;
        } else {
            if (log_sampled(&r->read_failures))
                LOG_WARN("XREADGROUP failed: %s (%llu so far)", rep->str,
                         (unsigned long long)r->read_failures);
            l->state = LANE_WAIT;
            uint64_t delay = r->cfg->batch_delay_ms > 100 ? (uint64_t)r->cfg->batch_delay_ms : 100;
            r->clock.timer_start(l->timer, delay, 0);
        }
    } else if (rep->type == REDIS_REPLY_ARRAY) {
        size_t got = 0;
        for (size_t i = 0; i < rep->elements; i++)
            got += handle_stream(l, rep->element[i]);
        l->sweep_got += got;
        l->last_got = got;
        l->quick_one =
            got == 1 && !paced && l->read_blocking &&
            r->clock.now_ns(r->clock.ctx) - l->sent_ns < (uint64_t)r->cfg->batch_delay_ms * 500000;
        observe_read(r, l, got);
    }
    reader_dlq_marks_clear(l->marks);
    if (r->stopping) {
        lane_close_if_stopping(l);
        return;
    }
    lane_kick(l);
}

/* ---- service connection: probes, parked streams, claims ---- */

static void send_probes(reader_t *r);

/* A service reply came. New streams are probed back to back, not one batch per tick. */
static void catchup_turn(reader_t *r);

static void svc_done(reader_t *r)
{
    if (r->svc_inflight)
        r->svc_inflight--;
    if (r->svc_inflight || r->stopping || !conn_up(r, r->svc))
        return;
    if (r->evmode)
        catchup_turn(r);
    else if (r->probe.n)
        send_probes(r);
}

/* ms part of a stream id ("1700000000000-3"); 0 when it has none. */
static uint64_t id_ms(const char *id, size_t len)
{
    uint64_t ms;
    decimal_read(id, len, 20, &ms); /* a larger number stops where it would wrap: still future */
    return ms;
}

/* XINFO STREAM reply: how long ago the last entry was added decides active or parked. */
static void probe_result(reader_t *r, rstream_t *s, const redisReply *rep)
{
    if (!s || s->state != RS_PROBE || !rep)
        return;
    const redisReply *last = NULL;
    if (rep->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i + 1 < rep->elements; i += 2) {
            const redisReply *k = rep->element[i];
            if (k->type == REDIS_REPLY_STRING && k->len == 17 &&
                memcmp(k->str, "last-generated-id", 17) == 0 &&
                rep->element[i + 1]->type == REDIS_REPLY_STRING)
                last = rep->element[i + 1];
        }
    }
    if (!last || last->len >= LAST_ID_MAX) {
        /* gone or not a stream: parked, so an entry under the same name brings it back */
        move_to(r, s, RS_PARKED);
        strcpy(s->last_id, "0-0");
        return;
    }
    memcpy(s->last_id, last->str, last->len);
    s->last_id[last->len] = '\0';
    uint64_t wall = r->clock.wall_ms(r->clock.ctx), at = id_ms(last->str, last->len);
    uint64_t idle = wall > at ? wall - at : 0;
    if (idle > (uint64_t)r->cfg->stream_inactive_ttl_ms && !s->lane->priority) {
        move_to(r, s, RS_PARKED);
        return;
    }
    activate(r, s);
    uint64_t now = now_ms(r);
    s->last_entry = now > idle ? now - idle : 0;
}

static void on_probe(const redisReply *rep, void *arg)
{
    namereq_t *q = arg;
    reader_t *r = q->r;
    probe_result(r, strmap_get(r->streams, q->name, q->len), rep);
    free(q);
    svc_done(r);
}

static void send_probes(reader_t *r)
{
    size_t n = r->probe.n < PROBE_BATCH ? r->probe.n : PROBE_BATCH;
    for (size_t i = 0; i < n; i++) {
        rstream_t *s = r->probe.v[i];
        namereq_t *q = namereq_new(r, s);
        const char *argv[] = {"XINFO", "STREAM", s->name};
        size_t lens[] = {5, 6, s->len};
        if (send_cmd(r, r->svc, s->name, s->len, on_probe, q, 3, argv, lens)) {
            free(q);
            return;
        }
        r->svc_inflight++;
    }
}

/* XREAD over parked streams: any entry past the last id we know wakes the stream up. */
static void on_wake(const redisReply *rep, void *arg)
{
    reader_t *r = arg;
    svc_done(r);
    if (!rep || rep->type != REDIS_REPLY_ARRAY)
        return;
    for (size_t i = 0; i < rep->elements; i++) {
        const redisReply *sr = rep->element[i];
        if (sr->type != REDIS_REPLY_ARRAY || sr->elements != 2 ||
            sr->element[0]->type != REDIS_REPLY_STRING)
            continue;
        rstream_t *s = strmap_get(r->streams, sr->element[0]->str, sr->element[0]->len);
        if (s && s->state == RS_PARKED) {
            LOG_DEBUG("stream %.*s is active again", (int)s->len, s->name);
            STATS_ADD(r->stats->wakes_polled, 1);
            activate(r, s);
        }
    }
}

/* XREAD COUNT 1 over pick[0..k), parked streams of one slot (a Cluster routes it by the first
 * to that slot's node, where it queues behind the other polls: one write per node); its reply
 * goes to cb(arg), which passes it on to on_wake. */
static int send_wake(reader_t *r, rstream_t *const *pick, size_t k, reader_reply_fn cb, void *arg)
{
    bool from_start = r->evmode && !r->cfg->stream_retain;
    argv_reserve(&r->svc_argv, &r->svc_len, &r->svc_cap, 4 + 2 * k);
    size_t a = 0;
    r->svc_argv[a] = "XREAD";
    r->svc_len[a++] = 5;
    r->svc_argv[a] = "COUNT";
    r->svc_len[a++] = 5;
    r->svc_argv[a] = "1";
    r->svc_len[a++] = 1;
    r->svc_argv[a] = "STREAMS";
    r->svc_len[a++] = 7;
    size_t first = a;
    for (size_t i = 0; i < k; i++) {
        const rstream_t *s = pick[i];
        r->svc_argv[first + i] = s->name;
        r->svc_len[first + i] = s->len;
        /* event mode, delete policy: an entry still in the stream is one to deliver */
        r->svc_argv[first + k + i] = s->last_id[0] && !from_start ? s->last_id : "0-0";
        r->svc_len[first + k + i] = strlen(r->svc_argv[first + k + i]);
    }
    int rc = send_cmd(r, r->svc, r->svc_argv[first], r->svc_len[first], cb, arg,
                      (int)(first + 2 * k), r->svc_argv, r->svc_len);
    if (rc == 0)
        r->svc_inflight++;
    return rc;
}

/* Polls up to `budget` parked streams in rotation; returns how many. */
static size_t send_wakes(reader_t *r, size_t budget)
{
    size_t sent = 0;
    if (budget > r->parked.n)
        budget = r->parked.n;
    while (budget) {
        size_t want = budget < WAKE_PER_READ ? budget : WAKE_PER_READ;
        /* in a Cluster the streams of one XREAD share a slot: consecutive ones of that slot */
        rstream_t *pick[WAKE_PER_READ];
        size_t k = 0;
        while (k < want) {
            if (r->wake_pos >= r->parked.n)
                r->wake_pos = 0;
            rstream_t *s = r->parked.v[r->wake_pos];
            if (k && s->slot != pick[0]->slot)
                break;
            pick[k++] = s;
            r->wake_pos++;
        }
        if (send_wake(r, pick, k, on_wake, r))
            break;
        budget -= k;
        sent += k;
    }
    return sent;
}

/* XAUTOCLAIM reply: [next, entries, (deleted ids)]; claimed entries are delivered here. */
static void on_claim(const redisReply *rep, void *arg)
{
    namereq_t *q = arg;
    reader_t *r = q->r;
    svc_done(r);
    if (rep && rep->type == REDIS_REPLY_ARRAY && rep->elements >= 2 &&
        rep->element[1]->type == REDIS_REPLY_ARRAY) {
        size_t n = deliver(r, r->svc, q->name, q->len, rep->element[1], q->marks, true);
        if (n)
            LOG_INFO("claimed %zu idle pending entries of %.*s", n, (int)q->len, q->name);
    }
    reader_dlq_marks_free(q->marks);
    free(q);
}

static void send_claims(reader_t *r, size_t budget)
{
    uint64_t now = now_ms(r);
    if (now < r->next_claim || (r->gate && !r->gate(r->gate_arg)))
        return;
    for (size_t sent = 0; sent < budget;) {
        if (r->claim_lane >= r->nlanes) {
            /* a full sweep: the next one after half the idle time */
            r->claim_lane = 0;
            r->claim_pos = 0;
            r->next_claim = now + (uint64_t)r->cfg->stream_claim_idle_ms / 2;
            return;
        }
        lane_t *l = &r->lanes[r->claim_lane];
        if (r->claim_pos >= l->active.n) {
            r->claim_lane++;
            r->claim_pos = 0;
            continue;
        }
        rstream_t *s = l->active.v[r->claim_pos++];
        if (s->need_group)
            continue;
        namereq_t *q = namereq_new(r, s);
        const char *argv[] = {"XAUTOCLAIM", s->name,       r->cfg->consumer_group,
                              r->consumer,  r->claim_idle, "0-0",
                              "COUNT",      r->count};
        size_t lens[8];
        for (size_t i = 0; i < 8; i++)
            lens[i] = i == 1 ? s->len : strlen(argv[i]);
        if (r->dlq) {
            q->marks = reader_dlq_marks_new();
            reader_dlq_pending(r->dlq, r->svc, s->name, s->len, r->count, NULL, r->claim_idle,
                               q->marks);
        }
        if (send_cmd(r, r->svc, s->name, s->len, on_claim, q, 8, argv, lens)) {
            reader_dlq_marks_free(q->marks);
            free(q);
            return;
        }
        r->svc_inflight++;
        sent++;
        if (r->cfg->stream_retain)
            maybe_trim(r, r->svc, s); /* quiet streams age out too */
    }
}

/* Streams with no entry for STREAM_INACTIVE_TTL leave their lane. */
static void park_idle(reader_t *r)
{
    uint64_t now = now_ms(r);
    if (now < r->next_park_check)
        return;
    r->next_park_check = now + PARK_CHECK_MS;
    uint64_t ttl = (uint64_t)r->cfg->stream_inactive_ttl_ms;
    for (size_t i = 0; i < r->nplain; i++) { /* priority streams are never parked */
        svec_t *v = &r->lanes[i].active;
        for (size_t j = v->n; j-- > 0;) {
            rstream_t *s = v->v[j];
            if (now - s->last_entry > ttl) {
                LOG_DEBUG("stream %.*s is inactive: parked", (int)s->len, s->name);
                /* parked means polled, not read: the lane's blocking read lets it go now */
                move_to(r, s, RS_PARKED);
                lane_cut_short(r, &r->lanes[i], s);
            }
        }
    }
}

/* ---- event mode: on, off, and its safety nets ---- */

/* notify-keyspace-events includes key events (E) of stream commands (t, or A: all classes). */
static bool flags_publish_xadd(const char *f, size_t len)
{
    return memchr(f, 'E', len) && (memchr(f, 't', len) || memchr(f, 'A', len));
}

/* Event mode follows the subscription and Redis' flags. Entering it, every ordinary active
 * stream is read once without blocking and every parked one polled (what an outage's lost
 * events announced is found); leaving it, the lanes go back to their blocking reads. */
static void evmode_update(reader_t *r)
{
    bool on = r->events_ok && r->events_up && !r->stopping;
    if (on == r->evmode)
        return;
    r->evmode = on;
    LOG_INFO("reader: %s", on ? "key events on: streams are read when an XADD announces entries"
                              : "key events off: lanes read with blocking XREADGROUP");
    if (on) {
        while (r->probe.n) { /* no XINFO: polled once from the start instead */
            rstream_t *s = r->probe.v[r->probe.n - 1];
            if (s->lane->priority) {
                activate(r, s);
            } else {
                move_to(r, s, RS_PARKED);
                if (!s->last_id[0])
                    strcpy(s->last_id, "0-0");
            }
        }
        for (size_t i = 0; i < r->parked.n; i++)
            due_push(r, r->parked.v[i]);
    }
    for (size_t i = 0; i < r->nplain; i++) {
        lane_t *l = &r->lanes[i];
        for (size_t j = 0; on && j < l->active.n; j++)
            dirty_mark(l->active.v[j], false);
        if (on && l->active.n)
            lane_cut_short(r, l, l->active.v[0]);
        lane_kick(l);
    }
}

static void on_events_config(const redisReply *rep, void *arg)
{
    reader_t *r = arg;
    svc_done(r);
    if (!rep)
        return; /* asked again when svc is back */
    bool ok = rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 &&
              rep->element[1]->type == REDIS_REPLY_STRING &&
              flags_publish_xadd(rep->element[1]->str, rep->element[1]->len);
    if (ok != r->events_ok && !ok)
        LOG_WARN("reader: Redis does not publish xadd key events (notify-keyspace-events needs E "
                 "and t): streams are read with blocking XREADGROUP");
    r->events_ok = ok;
    evmode_update(r);
}

/* STREAM_KEYSPACE_EVENTS: ask Redis whether it publishes the events (the master sets the flags
 * when it may; an operator may change them). */
static void check_events(reader_t *r)
{
    uint64_t now = now_ms(r);
    if (!r->cfg->keyspace_events || now < r->next_events_check)
        return;
    const char *argv[] = {"CONFIG", "GET", "notify-keyspace-events"};
    size_t lens[] = {6, 3, 22};
    if (send_cmd(r, r->svc, NULL, 0, on_events_config, r, 3, argv, lens) == 0) {
        r->svc_inflight++;
        r->next_events_check = now + (r->events_ok ? EVENTS_CHECK_MS : EVENTS_RECHECK_MS);
    }
}

/* Descending slot, then name: the due list's end is one slot's run, in name order. */
static int by_slot_desc(const void *a, const void *b)
{
    const rstream_t *x = *(rstream_t *const *)a, *y = *(rstream_t *const *)b;
    if (x->slot != y->slot)
        return x->slot < y->slot ? 1 : -1;
    int c = memcmp(x->name, y->name, x->len < y->len ? x->len : y->len);
    return c ? -c : x->len < y->len ? 1 : x->len > y->len ? -1 : 0;
}

/* A catch-up poll in flight: the streams it names, by name (one may be removed meanwhile). */
typedef struct catchup {
    reader_t *r;
    size_t n;
    size_t lens[WAKE_PER_READ];
    char names[]; /* n names back to back */
} catchup_t;

static catchup_t *catchup_new(reader_t *r, rstream_t *const *pick, size_t k)
{
    size_t bytes = 0;
    for (size_t i = 0; i < k; i++)
        bytes += pick[i]->len;
    catchup_t *c = xmalloc(sizeof(*c) + bytes);
    c->r = r;
    c->n = k;
    char *p = c->names;
    for (size_t i = 0; i < k; i++) {
        c->lens[i] = pick[i]->len;
        memcpy(p, pick[i]->name, pick[i]->len);
        p += pick[i]->len;
    }
    return c;
}

/* A catch-up poll's reply. Lost with its connection (NULL), its streams are due again: an entry
 * of one would otherwise wait for its next event. Only those: the polls already answered hold. */
static void on_catchup(const redisReply *rep, void *arg)
{
    catchup_t *c = arg;
    reader_t *r = c->r;
    if (!rep && !r->stopping) {
        const char *p = c->names;
        for (size_t i = 0; i < c->n; p += c->lens[i++]) {
            rstream_t *s = strmap_get(r->streams, p, c->lens[i]);
            if (s && s->state == RS_PARKED)
                due_push(r, s);
        }
    }
    free(c);
    on_wake(rep, r);
}

/*
 * Event mode: parked streams are polled only to catch up (after a (re)subscription, and new
 * streams once), a turn after the other as fast as Redis answers. On a Cluster the due list is
 * sorted by slot first, so one XREAD names all the due streams of a slot: 100k streams over
 * 16384 slots cost about 16k XREADs, not 100k.
 */
static void catchup_turn(reader_t *r)
{
    svec_t *v = &r->due;
    if (!v->n)
        return;
    if (!r->due_sorted && v->v[0]->slot >= 0) {
        qsort(v->v, v->n, sizeof(*v->v), by_slot_desc);
        for (size_t i = 0; i < v->n; i++)
            v->v[i]->didx = i;
    }
    r->due_sorted = true;
    for (size_t budget = CATCHUP_TURN; budget && v->n;) {
        rstream_t *pick[WAKE_PER_READ];
        size_t k = 0;
        while (k < WAKE_PER_READ && k < budget && v->n &&
               (k == 0 || v->v[v->n - 1]->slot == pick[0]->slot)) {
            pick[k++] = v->v[v->n - 1];
            due_drop(r, pick[k - 1]);
        }
        catchup_t *c = catchup_new(r, pick, k);
        if (send_wake(r, pick, k, on_catchup, c)) {
            free(c);
            while (k)
                due_push(r, pick[--k]); /* svc is down: polled once it is back */
            return;
        }
        budget -= k;
    }
}

/* Event mode: active streams are claimed from in a sweep spread over CLAIM_SPREAD_MS, not
 * every STREAM_CLAIM_IDLE_MS / 2 (a respawned worker re-reads its own pending entries at once). */
static void svc_events(reader_t *r)
{
    catchup_turn(r);
    send_claims(r, reader_active(r) / (CLAIM_SPREAD_MS / SVC_TICK_MS) + 1);
}

static void svc_run(reader_t *r)
{
    if (r->stopping || r->svc_inflight || !conn_up(r, r->svc))
        return;
    check_events(r);
    park_idle(r);
    if (r->evmode) {
        svc_events(r);
        return;
    }
    send_probes(r);
    /* keyspace events wake parked streams at once; polling is only the safety net then */
    if (!r->events_up || r->svc_turns++ % WAKE_SLOWDOWN == 0)
        send_wakes(r, WAKE_BATCH);
    send_claims(r, CLAIM_BATCH);
}

static void heard_clear(reader_t *r)
{
    strmap_free(r->heard);
    r->heard = strmap_new();
}

void reader_event(reader_t *r, const char *key, size_t len)
{
    rstream_t *s = strmap_get(r->streams, key, len);
    if (r->stopping)
        return;
    if (!s) {
        /* most likely a new stream the master assigns in a moment: read first once it does */
        if (r->evmode) {
            if (strmap_size(r->heard) >= HEARD_MAX)
                heard_clear(r);
            strmap_put(r->heard, key, len, r);
        }
        return;
    }
    if (s->state == RS_PARKED || (s->state == RS_PROBE && r->evmode)) {
        STATS_ADD(r->stats->wakes_event, 1);
        activate(r, s);
    } else if (s->state == RS_ACTIVE && events_lane(s->lane)) {
        dirty_mark(s, true);
        lane_kick(s->lane);
    } else if (s->state == RS_ACTIVE && s->lane->idle_wait) {
        lane_t *l = s->lane; /* an idle rotation over slot groups: read now */
        r->clock.timer_stop(l->timer);
        on_lane_timer(l);
    }
}

static void on_svc_timer(void *arg)
{
    svc_run(arg);
}

static void on_svc_state(reader_conn_t *conn, bool connected, void *arg)
{
    (void)conn;
    reader_t *r = arg;
    if (!connected) {
        r->svc_inflight = 0; /* their callbacks ran with NULL replies, or will not run */
    } else {
        r->next_events_check = 0;
        svc_run(r);
    }
}

/* ---- public ---- */

reader_t *reader_new(const reader_redis_ops_t *redis, const reader_clock_ops_t *clock,
                     const cfg_t *cfg, const char *consumer, stats_worker_t *stats,
                     reader_entry_fn fn, void *arg)
{
    reader_t *r = xcalloc(1, sizeof(*r));
    r->redis = *redis;
    r->clock = *clock;
    r->cfg = cfg;
    r->stats = stats;
    r->fn = fn;
    r->arg = arg;
    snprintf(r->consumer, sizeof(r->consumer), "%s", consumer);
    snprintf(r->count, sizeof(r->count), "%d", cfg->max_messages_batch);
    snprintf(r->block, sizeof(r->block), "%d", cfg->read_block_ms);
    snprintf(r->claim_idle, sizeof(r->claim_idle), "%d", cfg->stream_claim_idle_ms);
    r->nplain = (size_t)cfg->max_concurrent_pools;
    r->nlanes = r->nplain + (cfg->priority.n ? 1 : 0);
    r->lanes = xcalloc(r->nlanes, sizeof(*r->lanes));
    r->streams = strmap_new();
    r->heard = strmap_new();
    r->gone = strmap_new();
    r->svc = r->redis.open(r->redis.ctx, "reader svc", on_svc_state, r);
    for (size_t i = 0; i < r->nlanes; i++) {
        r->lanes[i].r = r;
        r->lanes[i].priority = i >= r->nplain;
    }
    r->dlq = reader_dlq_new(&r->redis, &r->clock, cfg, stats);
    for (size_t i = 0; r->dlq && i < r->nlanes; i++)
        r->lanes[i].marks = reader_dlq_marks_new();
    r->open_handles = 2;
    r->svc_timer = r->clock.timer_new(r->clock.ctx, on_svc_timer, r);
    r->clock.timer_start(r->svc_timer, SVC_TICK_MS, SVC_TICK_MS);
    return r;
}

void reader_add(reader_t *r, uint32_t pool, const char *name, size_t len)
{
    if (r->stopping || strmap_get(r->streams, name, len))
        return;
    rstream_t *s = xcalloc(1, sizeof(*s) + len + 1);
    s->lane = lane_for(r, pool, config_is_priority(r->cfg, name, len));
    s->pool = pool;
    s->state = RS_PROBE;
    s->len = len;
    memcpy(s->name, name, len);
    s->need_group = true;
    s->need_history = true;
    s->slot = r->redis.slot ? r->redis.slot(r->redis.ctx, name, len) : -1;
    svec_push(&r->probe, s);
    strmap_put(r->streams, s->name, len, s);
    STATS_SET(r->stats->streams, strmap_size(r->streams));
    if (r->evmode) {
        /* no probe: a stream its event announced is read now, any other polled once soon */
        if (strmap_del(r->heard, name, len) || s->lane->priority) {
            activate(r, s);
        } else {
            move_to(r, s, RS_PARKED);
            strcpy(s->last_id, "0-0");
            due_push(r, s);
        }
    }
    svc_run(r);
}

void reader_set_pull(reader_t *r, void (*pull)(void *arg), void *arg)
{
    r->pull = pull;
    r->pull_arg = arg;
}

bool reader_events_may_wait(const reader_t *r)
{
    if (!r->evmode || r->stopping || r->cfg->batch_delay_ms <= 0)
        return false;
    uint64_t now = now_ms(r);
    for (size_t i = 0; i < r->nplain; i++) {
        const lane_t *l = &r->lanes[i];
        if (!flowing(l) || !conn_up(r, l->conn))
            continue;
        /* paced, its batch in flight, or idle inside the window its next batch waits for
         * anyway: it pulls before that batch */
        if (l->state == LANE_WAIT || l->state == LANE_BUSY ||
            (l->state == LANE_IDLE && now < l->pass_ms + (uint64_t)r->cfg->batch_delay_ms))
            return true;
    }
    return false;
}

void reader_events(reader_t *r, bool up)
{
    if (up == r->events_up || r->stopping)
        return;
    r->events_up = up;
    if (!up) {
        evmode_update(r);
        return;
    }
    /* up again: events of the outage are lost; event mode (and its catch-up) once Redis is seen
     * to publish them */
    r->next_events_check = 0;
    svc_run(r);
}

void reader_remove(reader_t *r, const char *name, size_t len)
{
    rstream_t *s = strmap_del(r->streams, name, len);
    if (!s)
        return;
    for (size_t i = 0; s->taken && i < s->lane->rd_n; i++) {
        if (s->lane->rd[i] == s)
            s->lane->rd[i] = NULL; /* in the batch in flight */
    }
    /* another worker may read it next: this one's blocking read must not hold it meanwhile */
    if (s->state == RS_ACTIVE)
        lane_cut_short(r, s->lane, s);
    gone_note(r, s);
    detach(r, s);
    if (r->wake_pos > r->parked.n)
        r->wake_pos = 0;
    free(s);
    STATS_SET(r->stats->streams, strmap_size(r->streams));
    STATS_SET(r->stats->streams_parked, r->parked.n);
}

typedef struct pool_ctx {
    uint32_t pool;
    const char **names;
    size_t *lens;
    size_t n, cap;
} pool_ctx_t;

static void collect_pool(const char *key, size_t len, void *value, void *arg)
{
    pool_ctx_t *pc = arg;
    const rstream_t *s = value;
    if (s->pool != pc->pool)
        return;
    argv_reserve(&pc->names, &pc->lens, &pc->cap, pc->n + 1);
    pc->names[pc->n] = key;
    pc->lens[pc->n++] = len;
}

void reader_remove_pool(reader_t *r, uint32_t pool)
{
    pool_ctx_t pc = {.pool = pool};
    strmap_foreach(r->streams, collect_pool, &pc);
    /* names point into the map's keys; each stays valid until its own entry is removed */
    for (size_t i = 0; i < pc.n; i++) {
        rstream_t *s = strmap_get(r->streams, pc.names[i], pc.lens[i]);
        if (s)
            reader_remove(r, s->name, s->len);
    }
    free(pc.names);
    free(pc.lens);
}

/* ---- fences: nothing in flight for removed streams ---- */

/* s is removed: its lane and slot are fenced next time (one stream stands for each pair). Only
 * with an adapter: ownership handovers are what fences serve (master/discovery/ownership.h). */
static void gone_note(reader_t *r, const rstream_t *s)
{
    if (r->cfg->adapter == CONFIG_ADAPTER_OFF)
        return;
    char key[32];
    int n = snprintf(key, sizeof(key), "%u:%d", (unsigned)(s->lane - r->lanes), s->slot);
    if (strmap_get(r->gone, key, (size_t)n))
        return;
    gone_t *g = xmalloc(sizeof(*g) + s->len);
    g->lane = s->lane;
    g->len = s->len;
    memcpy(g->name, s->name, s->len);
    strmap_put(r->gone, key, (size_t)n, g);
}

static void fence_round(fence_t *f);

static void fence_finish(fence_t *f)
{
    reader_t *r = f->r;
    strmap_free_values(f->gone, NULL);
    strmap_free(f->gone);
    r->fence = NULL;
    f->done(f->arg, f->seq);
    free(f);
    fence_t *next = r->fence_next;
    if (next) {
        r->fence_next = NULL;
        r->fence = next;
        next->gone = r->gone;
        r->gone = strmap_new();
        fence_round(next);
    }
}

static void on_fence_ping(const redisReply *rep, void *arg)
{
    (void)rep; /* an error or a lost connection: nothing in flight there either */
    fence_t *f = arg;
    if (--f->out == 0)
        fence_round(f);
}

static void fence_ping(const char *key, size_t len, void *value, void *arg)
{
    (void)key;
    (void)len;
    fence_t *f = arg;
    const gone_t *g = value;
    reader_conn_t *conns[] = {g->lane->conn, f->r->svc};
    const char *argv[] = {"PING"};
    size_t lens[] = {4};
    for (size_t i = 0; i < 2; i++) {
        if (conns[i] &&
            send_cmd(f->r, conns[i], g->name, g->len, on_fence_ping, f, 1, argv, lens) == 0)
            f->out++;
    }
}

/* Two rounds of PINGs, the second sent when the first is all answered; then done. */
static void fence_round(fence_t *f)
{
    while (f->round < 2) {
        f->round++;
        strmap_foreach(f->gone, fence_ping, f);
        if (f->out)
            return;
    }
    fence_finish(f);
}

void reader_fence(reader_t *r, uint64_t seq, void (*done)(void *arg, uint64_t seq), void *arg)
{
    fence_t *f = xcalloc(1, sizeof(*f));
    *f = (fence_t){.r = r, .seq = seq, .done = done, .arg = arg};
    if (r->fence) {
        free(r->fence_next); /* the later one covers it: it starts when the running one ends */
        r->fence_next = f;
        return;
    }
    r->fence = f;
    f->gone = r->gone;
    r->gone = strmap_new();
    fence_round(f);
}

void reader_set_gate(reader_t *r, reader_gate_fn fn, void *arg)
{
    r->gate = fn;
    r->gate_arg = arg;
}

size_t reader_streams(const reader_t *r)
{
    return strmap_size(r->streams);
}

size_t reader_active(const reader_t *r)
{
    size_t n = 0;
    for (size_t i = 0; i < r->nlanes; i++)
        n += r->lanes[i].active.n;
    return n;
}

size_t reader_parked(const reader_t *r)
{
    return r->parked.n;
}

bool reader_connected(const reader_t *r)
{
    for (size_t i = 0; i < r->nlanes; i++) {
        if (r->lanes[i].conn && !r->redis.up(r->lanes[i].conn))
            return false;
    }
    /* once stopping, svc may already be closed and freed */
    return r->stopping || r->redis.up(r->svc);
}

int reader_send(reader_t *r, reader_conn_t *conn, const char *stream, size_t stream_len,
                reader_reply_fn cb, void *arg, int argc, const char **argv, const size_t *lens)
{
    return send_cmd(r, conn, stream, stream_len, cb, arg, argc, argv, lens);
}

uint64_t reader_where(const reader_t *r, reader_conn_t *conn)
{
    return r->redis.where ? r->redis.where(conn) : 0;
}

static void handle_closed(void *arg)
{
    reader_t *r = arg;
    if (--r->open_handles)
        return;
    void (*done)(void *) = r->done;
    void *done_arg = r->done_arg;
    strmap_free_values(r->streams, NULL);
    strmap_free(r->streams);
    strmap_free(r->heard);
    strmap_free_values(r->gone, NULL);
    strmap_free(r->gone);
    for (size_t i = 0; i < r->nlanes; i++) {
        free(r->lanes[i].hot.v);
        free(r->lanes[i].cold.v);
        free(r->lanes[i].rd);
        free(r->lanes[i].active.v);
        free(r->lanes[i].sel);
        free(r->lanes[i].argv);
        free(r->lanes[i].argvlen);
        reader_dlq_marks_free(r->lanes[i].marks);
    }
    reader_dlq_free(r->dlq);
    free(r->lanes);
    free(r->probe.v);
    free(r->parked.v);
    free(r->due.v);
    free(r->svc_argv);
    free(r->svc_len);
    free(r->fields);
    free(r->ack_argv);
    free(r->ack_len);
    free(r);
    if (done)
        done(done_arg);
}

static void lane_close_if_stopping(lane_t *l)
{
    reader_t *r = l->r;
    if (!r->stopping || l->state == LANE_BUSY || l->state == LANE_CLOSED || !l->conn)
        return;
    l->state = LANE_CLOSED;
    r->clock.timer_close(l->timer, handle_closed, r);
    reader_conn_t *conn = l->conn;
    l->conn = NULL;
    r->redis.close(conn, handle_closed, r); /* waits for the queued XACK/XDEL replies */
}

void reader_stop(reader_t *r, void (*done)(void *arg), void *arg)
{
    r->stopping = true;
    r->done = done;
    r->done_arg = arg;
    r->open_handles++; /* held until every lane was visited */
    r->clock.timer_close(r->svc_timer, handle_closed, r);
    r->redis.close(r->svc, handle_closed,
                   r); /* claimed entries in flight are delivered and acked */
    for (size_t i = 0; i < r->nlanes; i++) {
        lane_t *l = &r->lanes[i];
        if (l->state == LANE_WAIT) {
            r->clock.timer_stop(l->timer);
            l->state = LANE_IDLE;
        }
        lane_close_if_stopping(l);
    }
    handle_closed(r);
}
