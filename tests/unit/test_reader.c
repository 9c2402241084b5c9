/*
 * Unit tests for worker/stream/reader: its lane states against a fake Redis (the
 * reader_redis_ops_t seam) and a fake clock (reader_clock_ops_t). The fake logs every command as
 * "<connection>: <argv joined by spaces>" in send order, and the tests assert that log exactly,
 * then answer commands one connection at a time as Redis would (in order, skipping the ones
 * sent without a callback). Covered: probes of new streams (group creation at 0, BUSYGROUP,
 * NOGROUP, quiet and missing streams, priority streams), the blocking read of a lane that fits
 * in one read, the sweep of a larger lane and its block on all keys, parking after
 * STREAM_INACTIVE_TTL and the wake-up (key event + CLIENT UNBLOCK, slow poll), XAUTOCLAIM, the
 * XACK/XDEL order after delivery and the retain policy's XTRIM MINID, reconnects (pending
 * re-read, the settle time, the read gate), removal of streams and pools mid-read, deleted
 * streams (UNBLOCKED, missing keys), the drain on stop, and dead letters (STREAM_DEAD_LETTER:
 * oversized entries, poison entries found by XPENDING before a history read or a claim).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/buf.h"
#include "common/config.h"
#include "worker/stream/reader.h"

#define MAXC 16
#define WALL0 1700000000000ull /* wall clock at fake time 0 */

typedef struct fake fake_t;

struct reader_conn {
    fake_t *f;
    char name[32];
    bool up, closing;
    reader_state_fn state;
    void *arg;
    void (*done)(void *arg);
    void *done_arg;
};

struct reader_timer {
    fake_t *f;
    void (*fire)(void *arg);
    void *arg;
    bool armed, closing;
    uint64_t due, repeat;
    void (*done)(void *arg);
    void *done_arg;
};

typedef struct fcmd {
    reader_conn_t *c;
    char *text;
    reader_reply_fn cb;
    void *arg;
    bool answered;
} fcmd_t;

struct fake {
    reader_conn_t *conns[MAXC];
    size_t nconns;
    reader_timer_t *timers[MAXC];
    size_t ntimers;
    fcmd_t *cmds;
    size_t ncmds, cap, taken;
    uint64_t now;
    reader_t *r;
    cfg_t cfg;
    stats_worker_t stats;
    char got[32][160]; /* deliveries: "<conn>|<stream>|<id>|f=v,f=v" */
    bool reread[32];   /* ... each marked re-read from the pending list, or not */
    size_t ngot;
    bool publish; /* the entry callback sends PUBLISH <stream> <id> before the ack */
    bool gate;
    bool stopped;
    bool cluster;        /* slot(): streams a* in slot 1, others in slot 2; else -1 */
    const char *held[8]; /* key events waiting in the worker's ring for the reader's pull */
    size_t nheld;
    int pulls;
    uint64_t fenced; /* the last reader_fence done */
    char line[1024];
};

/* ---- replies ---- */

static redisReply *mk(int type)
{
    redisReply *r = calloc(1, sizeof(*r));
    assert_non_null(r);
    r->type = type;
    return r;
}

static redisReply *mkstr(int type, const char *s)
{
    redisReply *r = mk(type);
    r->str = strdup(s);
    r->len = strlen(s);
    return r;
}

static redisReply *rs(const char *s)
{
    return mkstr(REDIS_REPLY_STRING, s);
}

static redisReply *rstatus(const char *s)
{
    return mkstr(REDIS_REPLY_STATUS, s);
}

static redisReply *rerr(const char *s)
{
    return mkstr(REDIS_REPLY_ERROR, s);
}

static redisReply *rnil(void)
{
    return mk(REDIS_REPLY_NIL);
}

static redisReply *rinteger(long long v)
{
    redisReply *r = mk(REDIS_REPLY_INTEGER);
    r->integer = v;
    return r;
}

static redisReply *ra(size_t n, ...)
{
    redisReply *r = mk(REDIS_REPLY_ARRAY);
    r->elements = n;
    r->element = calloc(n ? n : 1, sizeof(*r->element));
    va_list ap;
    va_start(ap, n);
    for (size_t i = 0; i < n; i++)
        r->element[i] = va_arg(ap, redisReply *);
    va_end(ap);
    return r;
}

static void rfree(redisReply *r)
{
    if (!r)
        return;
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++)
        rfree(r->element[i]);
    free(r->element);
    free(r->str);
    free(r);
}

/* [id, [event, <event>, data, <data>]] */
static redisReply *entry(const char *id, const char *event, const char *data)
{
    return ra(2, rs(id), ra(4, rs("event"), rs(event), rs("data"), rs(data)));
}

/* [id, nil]: deleted while pending */
static redisReply *gone_entry(const char *id)
{
    return ra(2, rs(id), rnil());
}

/* A read's reply (XREAD, XREADGROUP) for one stream: [[stream, entries]] (entries taken) */
static redisReply *read_reply(const char *stream, redisReply *entries)
{
    return ra(1, ra(2, rs(stream), entries));
}

/* ... with no entry: a history read that found none */
static redisReply *read_none(const char *stream)
{
    return read_reply(stream, ra(0));
}

/* ... with one entry {event: e, data: d} */
static redisReply *read_one(const char *stream, const char *id)
{
    return read_reply(stream, ra(1, entry(id, "e", "d")));
}

/* XINFO STREAM's reply, reduced to what the probe reads */
static redisReply *xinfo(const char *last_id)
{
    return ra(4, rs("length"), rinteger(1), rs("last-generated-id"), rs(last_id));
}

/* ---- the fake Redis ---- */

static reader_conn_t *conn_named(fake_t *f, const char *name)
{
    for (size_t i = 0; i < f->nconns; i++) {
        if (f->conns[i] && strcmp(f->conns[i]->name, name) == 0)
            return f->conns[i];
    }
    fail_msg("no connection named %s", name);
    return NULL;
}

static reader_conn_t *add_conn(fake_t *f, const char *name, reader_state_fn state, void *arg)
{
    assert_true(f->nconns < MAXC);
    reader_conn_t *c = calloc(1, sizeof(*c));
    c->f = f;
    snprintf(c->name, sizeof(c->name), "%s", name);
    c->state = state;
    c->arg = arg;
    f->conns[f->nconns++] = c;
    return c;
}

static reader_conn_t *f_open(void *ctx, const char *name, reader_state_fn state, void *arg)
{
    return add_conn(ctx, name, state, arg);
}

static void log_cmd(fake_t *f, reader_conn_t *c, const char *text, reader_reply_fn cb, void *arg)
{
    if (f->ncmds == f->cap) {
        f->cap = f->cap ? f->cap * 2 : 64;
        f->cmds = realloc(f->cmds, f->cap * sizeof(*f->cmds));
    }
    f->cmds[f->ncmds++] = (fcmd_t){c, strdup(text), cb, arg, false};
}

static int f_command(reader_conn_t *c, const char *key, size_t key_len, reader_reply_fn cb,
                     void *arg, int argc, const char **argv, const size_t *lens)
{
    fake_t *f = c->f;
    if (!c->up || c->closing)
        return -ENOTCONN;
    buf_t b;
    buf_init(&b);
    bool key_seen = false;
    for (int i = 0; i < argc; i++) {
        size_t n = lens ? lens[i] : strlen(argv[i]);
        if (i)
            buf_append(&b, " ", 1);
        buf_append(&b, argv[i], n);
        key_seen |= i > 0 && key && n == key_len && memcmp(argv[i], key, n) == 0;
    }
    if (key && strcmp(argv[0], "PING") == 0) { /* a fence: routed by a stream it names */
        buf_append(&b, " @", 2);
        buf_append(&b, key, key_len);
    }
    buf_append(&b, "", 1);
    /* stream commands are routed by one of the streams they name */
    if (argv[0][0] == 'X') {
        assert_non_null(key);
        assert_true(key_seen);
    }
    log_cmd(f, c, b.data, cb, arg);
    buf_free(&b);
    return 0;
}

static int f_command_blocking(reader_conn_t *c, const char *key, size_t key_len, uint32_t block_ms,
                              reader_reply_fn cb, void *arg, int argc, const char **argv,
                              const size_t *lens)
{
    /* the BLOCK argument and the deadline the layer is told about agree */
    char ms[16];
    snprintf(ms, sizeof(ms), "%u", block_ms);
    bool found = false;
    for (int i = 0; i + 1 < argc; i++)
        found |= strcmp(argv[i], "BLOCK") == 0 && lens[i + 1] == strlen(ms) &&
                 memcmp(argv[i + 1], ms, lens[i + 1]) == 0;
    assert_true(found);
    return f_command(c, key, key_len, cb, arg, argc, argv, lens);
}

static int f_unblock(reader_conn_t *via, reader_conn_t *blocked, const char *key, size_t key_len)
{
    (void)key;
    (void)key_len;
    if (!via->up || !blocked->up)
        return -ENOTCONN;
    char text[64];
    snprintf(text, sizeof(text), "CLIENT UNBLOCK <%s>", blocked->name);
    log_cmd(via->f, via, text, NULL, NULL);
    return 0;
}

static bool f_up(const reader_conn_t *c)
{
    return c->up;
}

static void f_close(reader_conn_t *c, void (*done)(void *arg), void *arg)
{
    assert_false(c->closing);
    c->closing = true;
    c->done = done;
    c->done_arg = arg;
}

static int f_slot(void *ctx, const char *key, size_t len)
{
    const fake_t *f = ctx;
    return !f->cluster ? -1 : len && key[0] == 'a' ? 1 : 2;
}

static const reader_redis_ops_t fake_redis = {
    .open = f_open,
    .command = f_command,
    .command_blocking = f_command_blocking,
    .unblock = f_unblock,
    .up = f_up,
    .close = f_close,
    .slot = f_slot,
};

/* ---- the fake clock ---- */

static uint64_t c_now_ms(void *ctx)
{
    return ((fake_t *)ctx)->now;
}

static uint64_t c_now_ns(void *ctx)
{
    return ((fake_t *)ctx)->now * 1000000;
}

static uint64_t c_wall_ms(void *ctx)
{
    return WALL0 + ((fake_t *)ctx)->now;
}

static reader_timer_t *c_timer_new(void *ctx, void (*fire)(void *arg), void *arg)
{
    fake_t *f = ctx;
    assert_true(f->ntimers < MAXC);
    reader_timer_t *t = calloc(1, sizeof(*t));
    t->f = f;
    t->fire = fire;
    t->arg = arg;
    f->timers[f->ntimers++] = t;
    return t;
}

static void c_timer_start(reader_timer_t *t, uint64_t after_ms, uint64_t repeat_ms)
{
    assert_false(t->closing);
    t->armed = true;
    t->due = t->f->now + after_ms;
    t->repeat = repeat_ms;
}

static void c_timer_stop(reader_timer_t *t)
{
    t->armed = false;
}

static void c_timer_close(reader_timer_t *t, void (*done)(void *arg), void *arg)
{
    assert_false(t->closing);
    t->armed = false;
    t->closing = true;
    t->done = done;
    t->done_arg = arg;
}

static const reader_clock_ops_t fake_clock = {
    .now_ms = c_now_ms,
    .now_ns = c_now_ns,
    .wall_ms = c_wall_ms,
    .timer_new = c_timer_new,
    .timer_start = c_timer_start,
    .timer_stop = c_timer_stop,
    .timer_close = c_timer_close,
};

/* ---- driving the fake ---- */

/* The next command not yet checked, as "<connection>: <command>", or "(none)". */
static const char *next(fake_t *f)
{
    if (f->taken == f->ncmds)
        return "(none)";
    const fcmd_t *c = &f->cmds[f->taken++];
    snprintf(f->line, sizeof(f->line), "%s: %s", c->c->name, c->text);
    return f->line;
}

/* Consumes the next command only when it is `want`. */
static bool take_if(fake_t *f, const char *want)
{
    if (f->taken == f->ncmds)
        return false;
    const fcmd_t *c = &f->cmds[f->taken];
    snprintf(f->line, sizeof(f->line), "%s: %s", c->c->name, c->text);
    if (strcmp(f->line, want) != 0)
        return false;
    f->taken++;
    return true;
}

/* Redis answers the oldest command of `conn` that waits for a reply; rep is freed. */
static void answer(fake_t *f, const char *conn, redisReply *rep)
{
    reader_conn_t *c = conn_named(f, conn);
    for (size_t i = 0; i < f->ncmds; i++) {
        fcmd_t *cmd = &f->cmds[i];
        if (cmd->c != c || cmd->answered)
            continue;
        cmd->answered = true;
        if (!cmd->cb)
            continue; /* its reply is ignored */
        cmd->cb(rep, cmd->arg);
        rfree(rep);
        return;
    }
    fail_msg("%s has no command waiting for a reply", conn);
}

/* Every command of c still waiting gets NULL, as hiredis does when a connection goes away. */
static void drop_pending(fake_t *f, reader_conn_t *c)
{
    for (size_t i = 0; i < f->ncmds; i++) {
        fcmd_t *cmd = &f->cmds[i];
        if (cmd->c != c || cmd->answered)
            continue;
        cmd->answered = true;
        if (cmd->cb)
            cmd->cb(NULL, cmd->arg);
    }
}

static void set_up(fake_t *f, const char *conn, bool up)
{
    reader_conn_t *c = conn_named(f, conn);
    assert_true(c->up != up);
    c->up = up;
    if (!up)
        drop_pending(f, c);
    if (c->state)
        c->state(c, up, c->arg);
}

/* Completes closes: a closing connection's last replies (NULL if the test gave none), then its
 * done callback; closed timers' done callbacks. */
static void settle(fake_t *f)
{
    for (size_t i = 0; i < f->nconns; i++) {
        reader_conn_t *c = f->conns[i];
        if (!c || !c->closing)
            continue;
        drop_pending(f, c);
        f->conns[i] = NULL;
        void (*done)(void *) = c->done;
        void *arg = c->done_arg;
        free(c);
        done(arg);
    }
    for (size_t i = 0; i < f->ntimers; i++) {
        reader_timer_t *t = f->timers[i];
        if (!t || !t->closing)
            continue;
        f->timers[i] = NULL;
        void (*done)(void *) = t->done;
        void *arg = t->done_arg;
        free(t);
        done(arg);
    }
}

/* Moves the clock forward by ms, firing timers in due order. */
static void advance(fake_t *f, uint64_t ms)
{
    uint64_t until = f->now + ms;
    for (;;) {
        reader_timer_t *first = NULL;
        for (size_t i = 0; i < f->ntimers; i++) {
            reader_timer_t *t = f->timers[i];
            if (t && t->armed && t->due <= until && (!first || t->due < first->due))
                first = t;
        }
        if (!first)
            break;
        f->now = first->due;
        if (first->repeat)
            first->due += first->repeat;
        else
            first->armed = false;
        first->fire(first->arg);
    }
    f->now = until;
}

/* A key event the master forwards: XADD to `key`. */
static void key_event(fake_t *f, const char *key)
{
    reader_event(f->r, key, strlen(key));
}

/* The master says its key-event subscription is up or down. */
static void events_up(fake_t *f, bool up)
{
    reader_events(f->r, up);
}

static void on_entry(reader_conn_t *conn, const char *stream, size_t stream_len, const char *id,
                     size_t id_len, const payload_field_t *fields, size_t nfields, bool reread,
                     void *arg)
{
    fake_t *f = arg;
    assert_true(f->ngot < 32);
    f->reread[f->ngot] = reread;
    char *p = f->got[f->ngot++];
    int n = snprintf(p, 160, "%s|%.*s|%.*s|", conn->name, (int)stream_len, stream, (int)id_len, id);
    for (size_t i = 0; i < nfields; i++)
        n += snprintf(p + n, 160 - (size_t)n, "%s%.*s=%.*s", i ? "," : "", (int)fields[i].name_len,
                      fields[i].name, (int)fields[i].value_len, fields[i].value);
    if (f->publish) {
        const char *argv[] = {"PUBLISH", stream, id};
        size_t lens[] = {7, stream_len, id_len};
        assert_int_equal(reader_send(f->r, conn, stream, stream_len, NULL, NULL, 3, argv, lens), 0);
    }
}

static bool gate(void *arg)
{
    return ((fake_t *)arg)->gate;
}

static const char *env_get(const char *name, void *arg)
{
    for (const char *const *e = arg; e && *e; e += 2) {
        if (strcmp(e[0], name) == 0)
            return e[1];
    }
    return NULL;
}

/* A reader over the fakes, with these settings unless `env` (NAME, value, ..., NULL) says
 * otherwise: one lane, group g, batches of 10, BLOCK 500, claims and parking out of the way,
 * no coalescing window. */
static fake_t *fake_new(const char *const *env)
{
    /* clang-format off: NAME, value pairs */
    static const char *const base[] = {
        "STREAM_CONSUMER_GROUP",
        "g",
        "MAX_CONCURRENT_POOLS",
        "1",
        "MAX_MESSAGES_BATCH",
        "10",
        "READ_BLOCK_MS",
        "500",
        "STREAM_CLAIM_IDLE_MS",
        "600000",
        "BATCH_DELAY",
        "0",
        NULL,
    };
    /* clang-format on */
    fake_t *f = calloc(1, sizeof(*f));
    f->now = 1000;
    f->gate = true;
    const char *merged[64];
    size_t n = 0;
    for (const char *const *e = env; e && *e; e += 2) {
        merged[n++] = e[0];
        merged[n++] = e[1];
    }
    for (const char *const *e = base; *e; e += 2) {
        merged[n++] = e[0];
        merged[n++] = e[1];
    }
    merged[n] = NULL;
    buf_t err;
    buf_init(&err);
    assert_int_equal(config_load(&f->cfg, env_get, merged, &err), 0);
    buf_free(&err);
    reader_redis_ops_t redis = fake_redis;
    redis.ctx = f;
    reader_clock_ops_t clock = fake_clock;
    clock.ctx = f;
    f->r = reader_new(&redis, &clock, &f->cfg, "c1", &f->stats, on_entry, f);
    return f;
}

static void on_stopped(void *arg)
{
    ((fake_t *)arg)->stopped = true;
}

/* Stops the reader (every reply it still waits for: NULL) and frees everything. */
static void fake_free(fake_t *f)
{
    if (!f->stopped && f->r) {
        reader_stop(f->r, on_stopped, f);
        for (int i = 0; i < 10 && !f->stopped; i++) {
            for (size_t j = 0; j < f->nconns; j++) {
                if (f->conns[j])
                    drop_pending(f, f->conns[j]);
            }
            settle(f);
        }
        assert_true(f->stopped);
    }
    for (size_t i = 0; i < f->nconns; i++)
        assert_null(f->conns[i]);
    for (size_t i = 0; i < f->ntimers; i++)
        assert_null(f->timers[i]);
    for (size_t i = 0; i < f->ncmds; i++)
        free(f->cmds[i].text);
    free(f->cmds);
    free(f);
}

/* A stream id made now. */
static const char *fresh_id(fake_t *f)
{
    static char id[32];
    snprintf(id, sizeof(id), "%llu-0", (unsigned long long)c_wall_ms(f));
    return id;
}

/* STREAM_KEYSPACE_EVENTS: the reader asks whether Redis publishes xadd key events; `flags` is
 * notify-keyspace-events as Redis answers. */
static void events_config(fake_t *f, const char *flags)
{
    assert_string_equal(next(f), "reader svc: CONFIG GET notify-keyspace-events");
    answer(f, "reader svc", ra(2, rs("notify-keyspace-events"), rs(flags)));
}

/*
 * Adds streams (pool `pool`) one by one and answers each probe with an entry made just now; the
 * service connection comes up first. Checks the probes.
 */
static void add_fresh(fake_t *f, uint32_t pool, const char *const *names)
{
    if (!conn_named(f, "reader svc")->up) {
        set_up(f, "reader svc", true);
        if (f->cfg.keyspace_events)
            events_config(f, ""); /* not published: blocking lanes */
    }
    for (const char *const *s = names; *s; s++) {
        reader_add(f->r, pool, *s, strlen(*s));
        char want[128];
        snprintf(want, sizeof(want), "reader svc: XINFO STREAM %s", *s);
        assert_string_equal(next(f), want);
        answer(f, "reader svc", xinfo(fresh_id(f)));
    }
}

/* The lane comes up with `names` (at most MAX_STREAMS_PER_READ) active: group creation at 0 for
 * each, the settle time, the history read, then the blocking read on all of them. */
static void lane_start(fake_t *f, const char *lane, const char *const *names)
{
    char want[512], hist[512] = "", ids0[128] = "", ids[128] = "";
    set_up(f, lane, true);
    for (const char *const *s = names; *s; s++) {
        snprintf(want, sizeof(want), "%s: XGROUP CREATE %s g 0", lane, *s);
        assert_string_equal(next(f), want);
        strcat(hist, " ");
        strcat(hist, *s);
        strcat(ids0, " 0");
        strcat(ids, " >");
    }
    assert_string_equal(next(f), "(none)");
    advance(f, 299); /* no read in the first 300 ms of a connection */
    assert_string_equal(next(f), "(none)");
    advance(f, 1);
    bool dlq = f->cfg.dead_letter_stream[0];
    for (const char *const *s = names; dlq && *s; s++) {
        snprintf(want, sizeof(want), "%s: XPENDING %s g - + 10 c1", lane, *s);
        assert_string_equal(next(f), want);
    }
    snprintf(want, sizeof(want), "%s: XREADGROUP GROUP g c1 COUNT 10 STREAMS%s%s", lane, hist,
             ids0);
    assert_string_equal(next(f), want);
    for (const char *const *s = names; *s; s++)
        answer(f, lane, rerr("BUSYGROUP Consumer Group name already exists"));
    for (const char *const *s = names; dlq && *s; s++)
        answer(f, lane, ra(0));
    redisReply *h = ra(0);
    for (const char *const *s = names; *s; s++) {
        h->element = realloc(h->element, (h->elements + 1) * sizeof(*h->element));
        h->element[h->elements++] = ra(2, rs(*s), ra(0));
    }
    answer(f, lane, h);
    snprintf(want, sizeof(want), "%s: XREADGROUP GROUP g c1 COUNT 10 BLOCK 500 STREAMS%s%s", lane,
             hist, ids);
    assert_string_equal(next(f), want);
    assert_string_equal(next(f), "(none)");
}

/* The lane comes up with streams s0..s<n-1> and MAX_STREAMS_PER_READ 2: groups, the settle
 * time, then the history read two streams at a time. */
static void pair_lane_start(fake_t *f, int n)
{
    set_up(f, "reader 0", true);
    for (int i = 0; i < n; i++) {
        char want[64];
        snprintf(want, sizeof(want), "reader 0: XGROUP CREATE s%d g 0", i);
        assert_string_equal(next(f), want);
        answer(f, "reader 0", rstatus("OK"));
    }
    advance(f, 300);
    for (int i = 0; i < n; i += 2) {
        char want[128], a[8], b[8];
        snprintf(a, sizeof(a), "s%d", i);
        snprintf(b, sizeof(b), "s%d", i + 1);
        if (i + 1 < n) {
            snprintf(want, sizeof(want),
                     "reader 0: XREADGROUP GROUP g c1 COUNT 10 STREAMS %s %s 0 0", a, b);
            assert_string_equal(next(f), want);
            answer(f, "reader 0", ra(2, ra(2, rs(a), ra(0)), ra(2, rs(b), ra(0))));
        } else {
            snprintf(want, sizeof(want), "reader 0: XREADGROUP GROUP g c1 COUNT 10 STREAMS %s 0",
                     a);
            assert_string_equal(next(f), want);
            answer(f, "reader 0", read_none(a));
        }
    }
}

/* ---- tests ---- */

static void test_probe_of_a_new_stream(void **state)
{
    (void)state;
    fake_t *f = fake_new(NULL);
    set_up(f, "reader svc", true);
    assert_string_equal(next(f), "(none)");
    reader_add(f->r, 0, "s1", 2);
    assert_int_equal(reader_streams(f->r), 1);
    assert_int_equal(reader_active(f->r), 0);
    assert_string_equal(next(f), "reader svc: XINFO STREAM s1");
    /* the lane's connection is up and settled before the probe answers */
    set_up(f, "reader 0", true);
    advance(f, 300);
    assert_string_equal(next(f), "(none)");
    answer(f, "reader svc", xinfo(fresh_id(f)));
    assert_int_equal(reader_active(f->r), 1);
    /* the group is created at 0 (entries already there are delivered), history read first */
    assert_string_equal(next(f), "reader 0: XGROUP CREATE s1 g 0");
    assert_string_equal(next(f), "reader 0: XREADGROUP GROUP g c1 COUNT 10 STREAMS s1 0");
    answer(f, "reader 0", rerr("BUSYGROUP Consumer Group name already exists"));
    answer(f, "reader 0", read_none("s1"));
    /* one stream fits in one read: the lane blocks in Redis */
    assert_string_equal(next(f), "reader 0: XREADGROUP GROUP g c1 COUNT 10 BLOCK 500 STREAMS s1 >");
    assert_string_equal(next(f), "(none)");
    /* the group went away (FLUSHALL, XGROUP DESTROY): created again, read again */
    answer(f, "reader 0",
           rerr("NOGROUP No such key 's1' or consumer group 'g' in XREADGROUP with GROUP option"));
    assert_string_equal(next(f), "reader 0: XGROUP CREATE s1 g 0");
    assert_string_equal(next(f), "reader 0: XREADGROUP GROUP g c1 COUNT 10 BLOCK 500 STREAMS s1 >");
    answer(f, "reader 0", rstatus("OK"));
    /* a quiet read ends empty after BLOCK ms and is sent again */
    answer(f, "reader 0", rnil());
    assert_string_equal(next(f), "reader 0: XREADGROUP GROUP g c1 COUNT 10 BLOCK 500 STREAMS s1 >");
    assert_string_equal(next(f), "(none)");
    fake_free(f);
}

static void test_probe_parks_quiet_and_missing_streams(void **state)
{
    (void)state;
    static const char *const env[] = {"PRIORITY_STREAMS", "p1", NULL};
    fake_t *f = fake_new(env);
    set_up(f, "reader svc", true);
    char old[32];
    snprintf(old, sizeof(old), "%llu-5", (unsigned long long)(WALL0 - 2 * 3600 * 1000));
    reader_add(f->r, 0, "q1", 2);
    assert_string_equal(next(f), "reader svc: XINFO STREAM q1");
    answer(f, "reader svc", xinfo(old)); /* last entry 2 h ago: parked */
    reader_add(f->r, 0, "m1", 2);
    assert_string_equal(next(f), "reader svc: XINFO STREAM m1");
    char want[128];
    snprintf(want, sizeof(want), "reader svc: XREAD COUNT 1 STREAMS q1 %s", old);
    assert_string_equal(next(f), want); /* the same service turn polls the parked one */
    answer(f, "reader svc", rerr("ERR no such key")); /* not there (yet): parked from 0-0 */
    answer(f, "reader svc", rnil());
    assert_int_equal(reader_parked(f->r), 2);
    assert_int_equal(reader_active(f->r), 0);
    /* a priority stream is never parked, and has its own lane and connection */
    reader_add(f->r, 0, "p1", 2);
    assert_string_equal(next(f), "reader svc: XINFO STREAM p1");
    snprintf(want, sizeof(want), "reader svc: XREAD COUNT 1 STREAMS m1 q1 0-0 %s", old);
    assert_string_equal(next(f), want);
    answer(f, "reader svc", xinfo(old));
    answer(f, "reader svc", rnil());
    assert_int_equal(reader_active(f->r), 1);
    assert_int_equal(reader_parked(f->r), 2);
    set_up(f, "reader 0", true);
    set_up(f, "reader priority", true);
    assert_string_equal(next(f), "reader priority: XGROUP CREATE p1 g 0");
    assert_string_equal(next(f), "(none)");
    fake_free(f);
}

/* The probe reads the last id's ms part: an id without one is from the epoch (parked), the
 * largest an id can have is in the future (active), and so is one past 2^64 ms. */
static void test_probe_reads_the_ms_part(void **state)
{
    (void)state;
    fake_t *f = fake_new(NULL);
    set_up(f, "reader svc", true);
    reader_add(f->r, 0, "q1", 2);
    assert_string_equal(next(f), "reader svc: XINFO STREAM q1");
    answer(f, "reader svc", xinfo("x-1"));
    assert_int_equal(reader_parked(f->r), 1);
    static const char *const future[] = {"18446744073709551615-0", "18446744073709551616-0",
                                         "99999999999999999999999-0"};
    char name[4];
    for (int i = 0; i < 3; i++) {
        snprintf(name, sizeof(name), "s%d", i);
        reader_add(f->r, 0, name, 2);
        char want[64];
        snprintf(want, sizeof(want), "reader svc: XINFO STREAM %s", name);
        assert_string_equal(next(f), want);
        int polls = 0; /* of the parked one, in the same service turn */
        for (const char *got; strcmp(got = next(f), "(none)") != 0; polls++)
            assert_int_equal(strncmp(got, "reader svc: XREAD COUNT 1 STREAMS ", 34), 0);
        answer(f, "reader svc", xinfo(future[i]));
        while (polls--)
            answer(f, "reader svc", rnil());
        assert_int_equal(reader_active(f->r), i + 1);
    }
    assert_int_equal(reader_parked(f->r), 1);
    fake_free(f);
}

static void test_parked_streams_are_polled(void **state)
{
    (void)state;
    fake_t *f = fake_new(NULL);
    set_up(f, "reader svc", true);
    reader_add(f->r, 0, "q1", 2);
    set_up(f, "reader 0", true);
    assert_string_equal(next(f), "reader svc: XINFO STREAM q1");
    answer(f, "reader svc", xinfo("1000-5"));
    reader_add(f->r, 0, "m1", 2);
    assert_string_equal(next(f), "reader svc: XINFO STREAM m1");
    assert_string_equal(next(f), "reader svc: XREAD COUNT 1 STREAMS q1 1000-5");
    answer(f, "reader svc", rerr("ERR no such key"));
    answer(f, "reader svc", rnil());
    assert_string_equal(next(f), "(none)");
    /* without key events, every service turn (100 ms) polls them, from their last ids (the
     * cursor goes round the parked streams) */
    for (int i = 0; i < 3; i++) {
        advance(f, 100);
        assert_string_equal(next(f), "reader svc: XREAD COUNT 1 STREAMS m1 q1 0-0 1000-5");
        assert_string_equal(next(f), "(none)");
        answer(f, "reader svc", rnil());
    }
    /* an entry wakes its stream up: group and history first, in its lane */
    advance(f, 100);
    assert_string_equal(next(f), "reader svc: XREAD COUNT 1 STREAMS m1 q1 0-0 1000-5");
    answer(f, "reader svc", read_one("m1", "1-1"));
    assert_int_equal(reader_active(f->r), 1);
    assert_int_equal(reader_parked(f->r), 1);
    assert_string_equal(next(f), "reader 0: XGROUP CREATE m1 g 0");
    assert_string_equal(next(f), "reader 0: XREADGROUP GROUP g c1 COUNT 10 STREAMS m1 0");
    assert_string_equal(next(f), "(none)");
    assert_int_equal(f->ngot, 0); /* the poll only looks; the lane delivers */
    advance(f, 100);
    assert_string_equal(next(f), "reader svc: XREAD COUNT 1 STREAMS q1 1000-5");
    answer(f, "reader svc", rnil());
    fake_free(f);
}

static void test_blocking_read_and_acks_after_delivery(void **state)
{
    (void)state;
    fake_t *f = fake_new(NULL);
    static const char *const names[] = {"s1", "s2", NULL};
    add_fresh(f, 0, names);
    lane_start(f, "reader 0", names);
    f->publish = true;
    answer(f, "reader 0",
           ra(2,
              ra(2, rs("s1"),
                 ra(3, entry("5-0", "a", "1"), gone_entry("5-1"), entry("6-0", "b", "2"))),
              ra(2, rs("s2"), ra(1, entry("7-0", "c", "3")))));
    /* what the callback queued goes first, then XACK and XDEL of the stream's ids */
    assert_string_equal(next(f), "reader 0: PUBLISH s1 5-0");
    assert_string_equal(next(f), "reader 0: PUBLISH s1 6-0");
    assert_string_equal(next(f), "reader 0: XACK s1 g 5-0 5-1 6-0");
    assert_string_equal(next(f), "reader 0: XDEL s1 5-0 5-1 6-0");
    assert_string_equal(next(f), "reader 0: PUBLISH s2 7-0");
    assert_string_equal(next(f), "reader 0: XACK s2 g 7-0");
    assert_string_equal(next(f), "reader 0: XDEL s2 7-0");
    assert_string_equal(next(f),
                        "reader 0: XREADGROUP GROUP g c1 COUNT 10 BLOCK 500 STREAMS s1 s2 > >");
    assert_string_equal(next(f), "(none)");
    /* the entry deleted while pending is acknowledged, not delivered */
    assert_int_equal(f->ngot, 3);
    assert_string_equal(f->got[0], "reader 0|s1|5-0|event=a,data=1");
    assert_string_equal(f->got[1], "reader 0|s1|6-0|event=b,data=2");
    assert_string_equal(f->got[2], "reader 0|s2|7-0|event=c,data=3");
    assert_int_equal(f->stats.messages_processed, 4);
    fake_free(f);
}

/* In a Redis Cluster one XREADGROUP takes the keys of one slot: a lane with streams in two slots
 * reads them slot group by slot group, never with BLOCK, and waits READ_BLOCK_MS after a
 * rotation that found nothing, unless a key event of one of its streams comes first. */
static void test_cluster_reads_one_slot_per_command(void **state)
{
    (void)state;
    static const char *const env[] = {"STREAM_KEYSPACE_EVENTS", "true", NULL};
    fake_t *f = fake_new(env);
    f->cluster = true;
    events_up(f, true);
    static const char *const names[] = {"a1", "b1", "a2", NULL};
    add_fresh(f, 0, names);
    set_up(f, "reader 0", true);
    for (const char *const *n = names; *n; n++) {
        char want[64];
        snprintf(want, sizeof(want), "reader 0: XGROUP CREATE %s g 0", *n);
        assert_string_equal(next(f), want);
        answer(f, "reader 0", rstatus("OK"));
    }
    advance(f, 300);
    /* history: slot 1's streams together, then slot 2's */
    assert_string_equal(next(f), "reader 0: XREADGROUP GROUP g c1 COUNT 10 STREAMS a1 a2 0 0");
    answer(f, "reader 0", ra(2, ra(2, rs("a1"), ra(0)), ra(2, rs("a2"), ra(0))));
    assert_string_equal(next(f), "reader 0: XREADGROUP GROUP g c1 COUNT 10 STREAMS b1 0");
    answer(f, "reader 0", read_none("b1"));
    /* new entries: one slot group per read, no BLOCK */
    const char *slot1 = "reader 0: XREADGROUP GROUP g c1 COUNT 10 STREAMS a1 a2 > >";
    const char *slot2 = "reader 0: XREADGROUP GROUP g c1 COUNT 10 STREAMS b1 >";
    assert_string_equal(next(f), slot1);
    answer(f, "reader 0", rnil());
    assert_string_equal(next(f), slot2);
    answer(f, "reader 0", read_reply("b1", ra(1, entry("5-0", "e", "1"))));
    assert_string_equal(next(f), "reader 0: XACK b1 g 5-0");
    assert_string_equal(next(f), "reader 0: XDEL b1 5-0");
    /* the rotation found an entry: another one at once */
    assert_string_equal(next(f), slot1);
    answer(f, "reader 0", rnil());
    assert_string_equal(next(f), slot2);
    answer(f, "reader 0", rnil());
    /* a whole rotation found nothing: no command until READ_BLOCK_MS passed... */
    assert_string_equal(next(f), "(none)");
    advance(f, 499);
    assert_string_equal(next(f), "(none)");
    advance(f, 1);
    assert_string_equal(next(f), slot1);
    answer(f, "reader 0", rnil());
    assert_string_equal(next(f), slot2);
    answer(f, "reader 0", rnil());
    assert_string_equal(next(f), "(none)");
    /* ...or a key event of one of the lane's streams came */
    advance(f, 100);
    key_event(f, "a2");
    assert_string_equal(next(f), slot1);
    answer(f, "reader 0", read_reply("a2", ra(1, entry("6-0", "e", "2"))));
    assert_string_equal(next(f), "reader 0: XACK a2 g 6-0");
    assert_string_equal(next(f), "reader 0: XDEL a2 6-0");
    assert_string_equal(next(f), slot2);
    answer(f, "reader 0", rnil());
    assert_int_equal(f->ngot, 2);
    assert_string_equal(f->got[0], "reader 0|b1|5-0|event=e,data=1");
    assert_string_equal(f->got[1], "reader 0|a2|6-0|event=e,data=2");
    fake_free(f);
}

static void test_retain_policy_trims_by_age(void **state)
{
    (void)state;
    static const char *const env[] = {"STREAM_DELETE_POLICY", "retain", "STREAM_RETAIN_MS",
                                      "120000", NULL};
    fake_t *f = fake_new(env);
    static const char *const names[] = {"s1", NULL};
    add_fresh(f, 0, names);
    lane_start(f, "reader 0", names);
    char want[128];
    snprintf(want, sizeof(want), "reader 0: XTRIM s1 MINID %llu",
             (unsigned long long)(c_wall_ms(f) - 120000));
    answer(f, "reader 0", read_reply("s1", ra(1, entry("5-0", "a", "1"))));
    assert_string_equal(next(f), "reader 0: XACK s1 g 5-0");
    assert_string_equal(next(f), want);
    assert_string_equal(next(f), "reader 0: XREADGROUP GROUP g c1 COUNT 10 BLOCK 500 STREAMS s1 >");
    /* at most one XTRIM a second per stream */
    advance(f, 999);
    answer(f, "reader 0", read_reply("s1", ra(1, entry("5-1", "a", "1"))));
    assert_string_equal(next(f), "reader 0: XACK s1 g 5-1");
    assert_string_equal(next(f), "reader 0: XREADGROUP GROUP g c1 COUNT 10 BLOCK 500 STREAMS s1 >");
    advance(f, 1);
    answer(f, "reader 0", read_reply("s1", ra(1, entry("5-2", "a", "1"))));
    assert_string_equal(next(f), "reader 0: XACK s1 g 5-2");
    snprintf(want, sizeof(want), "reader 0: XTRIM s1 MINID %llu",
             (unsigned long long)(c_wall_ms(f) - 120000));
    assert_string_equal(next(f), want);
    assert_string_equal(next(f), "reader 0: XREADGROUP GROUP g c1 COUNT 10 BLOCK 500 STREAMS s1 >");
    assert_string_equal(next(f), "(none)");
    fake_free(f);
}

static void test_sweep_of_a_large_lane(void **state)
{
    (void)state;
    static const char *const env[] = {"MAX_STREAMS_PER_READ", "2", NULL};
    fake_t *f = fake_new(env);
    static const char *const names[] = {"s0", "s1", "s2", "s3", "s4", NULL};
    add_fresh(f, 0, names);
    pair_lane_start(f, 5); /* history, MAX_STREAMS_PER_READ at a time */
    /* a sweep of non-blocking reads; it found nothing: block on every key at once */
    static const char *const sweep[] = {
        "reader 0: XREADGROUP GROUP g c1 COUNT 10 STREAMS s0 s1 > >",
        "reader 0: XREADGROUP GROUP g c1 COUNT 10 STREAMS s2 s3 > >",
        "reader 0: XREADGROUP GROUP g c1 COUNT 10 STREAMS s4 >",
    };
    for (int i = 0; i < 3; i++) {
        assert_string_equal(next(f), sweep[i]);
        answer(f, "reader 0", rnil());
    }
    const char *block =
        "reader 0: XREADGROUP GROUP g c1 COUNT 10 BLOCK 500 STREAMS s0 s1 s2 s3 s4 > > > > >";
    assert_string_equal(next(f), block);
    /* an entry: a sweep follows, then another one, which finds nothing, then the block */
    answer(f, "reader 0", read_one("s3", "9-0"));
    assert_string_equal(next(f), "reader 0: XACK s3 g 9-0");
    assert_string_equal(next(f), "reader 0: XDEL s3 9-0");
    for (int i = 0; i < 3; i++) {
        assert_string_equal(next(f), sweep[i]);
        answer(f, "reader 0", i == 1 ? read_one("s2", "9-1") : rnil());
        if (i == 1) {
            assert_string_equal(next(f), "reader 0: XACK s2 g 9-1");
            assert_string_equal(next(f), "reader 0: XDEL s2 9-1");
        }
    }
    for (int i = 0; i < 3; i++) {
        assert_string_equal(next(f), sweep[i]);
        answer(f, "reader 0", rnil());
    }
    assert_string_equal(next(f), block);
    assert_string_equal(next(f), "(none)");
    assert_int_equal(f->ngot, 2);
    fake_free(f);
}

/* Lane 0 answers its read with entry `id` of s1, which is acknowledged and deleted at once. */
static void s1_entry_acked(fake_t *f, const char *id)
{
    char ack[64], del[64];
    snprintf(ack, sizeof(ack), "reader 0: XACK s1 g %s", id);
    snprintf(del, sizeof(del), "reader 0: XDEL s1 %s", id);
    answer(f, "reader 0", read_one("s1", id));
    assert_string_equal(next(f), ack);
    assert_string_equal(next(f), del);
}

static void test_paced_entries_gather_for_batch_delay(void **state)
{
    (void)state;
    static const char *const env[] = {"BATCH_DELAY", "10", NULL};
    fake_t *f = fake_new(env);
    static const char *const names[] = {"s1", NULL};
    add_fresh(f, 0, names);
    lane_start(f, "reader 0", names); /* the blocking read went out at 1300 ms */
    const char *block = "reader 0: XREADGROUP GROUP g c1 COUNT 10 BLOCK 500 STREAMS s1 >";
    /* one entry: acknowledged and read past at once */
    advance(f, 50);
    s1_entry_acked(f, "1-0");
    assert_string_equal(next(f), block); /* at 1350 ms */
    /* entries flow (two at once): acknowledged at once, the next read 10 ms after the last */
    advance(f, 2);
    answer(f, "reader 0", read_reply("s1", ra(2, entry("1-1", "e", "d"), entry("1-2", "e", "d"))));
    assert_string_equal(next(f), "reader 0: XACK s1 g 1-1 1-2");
    assert_string_equal(next(f), "reader 0: XDEL s1 1-1 1-2");
    assert_string_equal(next(f), "(none)");
    advance(f, 7);
    assert_string_equal(next(f), "(none)");
    advance(f, 1);
    assert_string_equal(next(f), block); /* at 1360 ms */
    /* down to one entry a window, waited for half a window or more: no more waiting */
    advance(f, 5);
    s1_entry_acked(f, "1-3");
    assert_string_equal(next(f), block); /* at 1365 ms */
    /* one entry that came sooner: they come at two or more a window, so the window holds */
    advance(f, 4);
    s1_entry_acked(f, "1-4");
    assert_string_equal(next(f), "(none)");
    advance(f, 5);
    assert_string_equal(next(f), "(none)");
    advance(f, 1);
    assert_string_equal(next(f), block); /* at 1375 ms, 10 ms after the last began */
    /* the read that waited for its window finds one entry at once (it came during the pause):
     * one a window, so the next read goes at once, never in step behind the window */
    s1_entry_acked(f, "1-5");
    assert_string_equal(next(f), block);
    /* nor after a read that found nothing */
    answer(f, "reader 0", rnil());
    assert_string_equal(next(f), block);
    assert_string_equal(next(f), "(none)");
    fake_free(f);
}

static void test_priority_lane_never_waits(void **state)
{
    (void)state;
    static const char *const env[] = {"BATCH_DELAY", "10", "PRIORITY_STREAMS", "p1", NULL};
    fake_t *f = fake_new(env);
    static const char *const names[] = {"p1", NULL};
    add_fresh(f, 0, names);
    lane_start(f, "reader priority", names);
    answer(f, "reader priority",
           read_reply("p1", ra(2, entry("1-1", "e", "d"), entry("1-2", "e", "d"))));
    assert_string_equal(next(f), "reader priority: XACK p1 g 1-1 1-2");
    assert_string_equal(next(f), "reader priority: XDEL p1 1-1 1-2");
    assert_string_equal(next(f),
                        "reader priority: XREADGROUP GROUP g c1 COUNT 10 BLOCK 500 STREAMS p1 >");
    fake_free(f);
}

static void test_sweep_is_paced_per_pass(void **state)
{
    (void)state;
    static const char *const env[] = {"BATCH_DELAY", "10", "MAX_STREAMS_PER_READ", "2", NULL};
    fake_t *f = fake_new(env);
    static const char *const names[] = {"s0", "s1", "s2", NULL};
    add_fresh(f, 0, names);
    pair_lane_start(f, 3);
    /* within a sweep, no pause between its reads, entries or not */
    const char *first = "reader 0: XREADGROUP GROUP g c1 COUNT 10 STREAMS s0 s1 > >";
    assert_string_equal(next(f), first);
    answer(f, "reader 0", read_one("s0", "2-0"));
    assert_string_equal(next(f), "reader 0: XACK s0 g 2-0");
    assert_string_equal(next(f), "reader 0: XDEL s0 2-0");
    assert_string_equal(next(f), "reader 0: XREADGROUP GROUP g c1 COUNT 10 STREAMS s2 >");
    answer(f, "reader 0", read_one("s2", "2-1"));
    assert_string_equal(next(f), "reader 0: XACK s2 g 2-1");
    assert_string_equal(next(f), "reader 0: XDEL s2 2-1");
    /* the sweep found entries: the next one begins BATCH_DELAY after this one began */
    assert_string_equal(next(f), "(none)");
    advance(f, 9);
    assert_string_equal(next(f), "(none)");
    advance(f, 1);
    assert_string_equal(next(f), first);
    answer(f, "reader 0", rnil());
    assert_string_equal(next(f), "reader 0: XREADGROUP GROUP g c1 COUNT 10 STREAMS s2 >");
    answer(f, "reader 0", rnil());
    /* that one found nothing: the block on every key follows at once (so it would after a
     * sweep that found a single entry) */
    assert_string_equal(
        next(f), "reader 0: XREADGROUP GROUP g c1 COUNT 10 BLOCK 500 STREAMS s0 s1 s2 > > >");
    fake_free(f);
}

static void test_idle_stream_parks_and_wakes_on_key_event(void **state)
{
    (void)state;
    static const char *const env[] = {"STREAM_INACTIVE_TTL", "1000", "STREAM_KEYSPACE_EVENTS",
                                      "true", NULL};
    fake_t *f = fake_new(env);
    events_up(f, true);
    static const char *const names[] = {"s1", "s2", NULL};
    add_fresh(f, 0, names);
    lane_start(f, "reader 0", names);
    /* s1 keeps getting entries, s2 none since its probe at 1000 ms; streams are checked once a
     * second (2000 ms, 3000 ms...) and leave their lane once idle for more than the TTL */
    char poll[128];
    snprintf(poll, sizeof(poll), "reader svc: XREAD COUNT 1 STREAMS s2 %llu-0",
             (unsigned long long)(WALL0 + 1000));
    for (int i = 0; i < 6; i++) {
        advance(f, 300); /* 1600 ms ... 3100 ms */
        assert_int_equal(reader_parked(f->r), f->now > 3000 ? 1 : 0);
        /* parking cuts the lane's blocking read short: s2 leaves it at once */
        assert_int_equal(take_if(f, "reader svc: CLIENT UNBLOCK <reader 0>"), i == 5);
        if (take_if(f, poll)) /* once parked, it is polled now and then */
            answer(f, "reader svc", rnil());
        answer(f, "reader 0", read_one("s1", "1-0"));
        assert_string_equal(next(f), "reader 0: XACK s1 g 1-0");
        assert_string_equal(next(f), "reader 0: XDEL s1 1-0");
        if (i < 5)
            assert_string_equal(
                next(f), "reader 0: XREADGROUP GROUP g c1 COUNT 10 BLOCK 500 STREAMS s1 s2 > >");
    }
    /* parked after STREAM_INACTIVE_TTL without an entry: out of the lane's reads */
    assert_int_equal(reader_parked(f->r), 1);
    assert_int_equal(reader_active(f->r), 1);
    assert_string_equal(next(f), "reader 0: XREADGROUP GROUP g c1 COUNT 10 BLOCK 500 STREAMS s1 >");
    assert_string_equal(next(f), "(none)");
    /* its key event: the lane's blocking read is cut short, then s2 is read again */
    key_event(f, "s2");
    assert_int_equal(reader_active(f->r), 2);
    assert_string_equal(next(f), "reader svc: CLIENT UNBLOCK <reader 0>");
    assert_string_equal(next(f), "(none)");
    answer(f, "reader 0", rnil()); /* what CLIENT UNBLOCK makes Redis answer */
    assert_string_equal(next(f), "reader 0: XGROUP CREATE s2 g 0");
    assert_string_equal(next(f), "reader 0: XREADGROUP GROUP g c1 COUNT 10 STREAMS s2 0");
    answer(f, "reader 0", rerr("BUSYGROUP Consumer Group name already exists"));
    answer(f, "reader 0", read_none("s2"));
    assert_string_equal(next(f),
                        "reader 0: XREADGROUP GROUP g c1 COUNT 10 BLOCK 500 STREAMS s1 s2 > >");
    /* events of active or unknown streams change nothing */
    key_event(f, "s1");
    key_event(f, "other");
    assert_string_equal(next(f), "(none)");
    fake_free(f);
}

static void test_key_events_slow_the_poll_down(void **state)
{
    (void)state;
    static const char *const env[] = {"STREAM_KEYSPACE_EVENTS", "true", NULL};
    fake_t *f = fake_new(env);
    set_up(f, "reader svc", true);
    events_config(f, "Kx"); /* no key events of stream commands: blocking lanes */
    events_up(f, true);
    events_config(f, "Kx"); /* asked again on every subscription */
    reader_add(f->r, 0, "q1", 2);
    assert_string_equal(next(f), "reader svc: XINFO STREAM q1");
    answer(f, "reader svc", xinfo("1000-5"));
    /* with key events up, polling is only the safety net: one turn in 10 */
    int polls = 0;
    for (int i = 0; i < 20; i++) {
        advance(f, 100);
        const char *c = next(f);
        if (strcmp(c, "(none)") == 0)
            continue;
        assert_string_equal(c, "reader svc: XREAD COUNT 1 STREAMS q1 1000-5");
        answer(f, "reader svc", rnil());
        polls++;
    }
    assert_int_equal(polls, 2);
    /* events lost: every turn again */
    events_up(f, false);
    for (int i = 0; i < 3; i++) {
        advance(f, 100);
        assert_string_equal(next(f), "reader svc: XREAD COUNT 1 STREAMS q1 1000-5");
        answer(f, "reader svc", rnil());
    }
    fake_free(f);
}

static void test_claims_idle_pending_entries(void **state)
{
    (void)state;
    static const char *const env[] = {"STREAM_CLAIM_IDLE_MS", "1000", NULL};
    fake_t *f = fake_new(env);
    static const char *const names[] = {"s1", "s2", NULL};
    add_fresh(f, 0, names);
    lane_start(f, "reader 0", names);
    f->publish = true;
    /* every STREAM_CLAIM_IDLE_MS / 2, each active stream: entries idle that long are ours */
    advance(f, 200);
    assert_string_equal(next(f), "reader svc: XAUTOCLAIM s1 g c1 1000 0-0 COUNT 10");
    assert_string_equal(next(f), "reader svc: XAUTOCLAIM s2 g c1 1000 0-0 COUNT 10");
    assert_string_equal(next(f), "(none)");
    answer(f, "reader svc", ra(3, rs("0-0"), ra(1, entry("3-0", "e", "d")), ra(0)));
    answer(f, "reader svc", ra(3, rs("0-0"), ra(0), ra(0)));
    /* delivered and acknowledged on the service connection, in that order */
    assert_string_equal(next(f), "reader svc: PUBLISH s1 3-0");
    assert_string_equal(next(f), "reader svc: XACK s1 g 3-0");
    assert_string_equal(next(f), "reader svc: XDEL s1 3-0");
    assert_string_equal(next(f), "(none)");
    assert_int_equal(f->ngot, 1);
    assert_string_equal(f->got[0], "reader svc|s1|3-0|event=e,data=d");
    /* another consumer read it and may have delivered it: marked */
    assert_true(f->reread[0]);
    /* the next sweep half the idle time later */
    advance(f, 400);
    assert_string_equal(next(f), "(none)");
    advance(f, 100);
    assert_string_equal(next(f), "reader svc: XAUTOCLAIM s1 g c1 1000 0-0 COUNT 10");
    assert_string_equal(next(f), "reader svc: XAUTOCLAIM s2 g c1 1000 0-0 COUNT 10");
    fake_free(f);
}

static void test_reconnect_rereads_pending_entries(void **state)
{
    (void)state;
    fake_t *f = fake_new(NULL);
    reader_set_gate(f->r, gate, f);
    static const char *const names[] = {"s1", NULL};
    add_fresh(f, 0, names);
    lane_start(f, "reader 0", names);
    /* the lane's connection goes: its read ends with no reply, nothing is sent meanwhile */
    set_up(f, "reader 0", false);
    assert_false(reader_connected(f->r));
    advance(f, 1000);
    assert_string_equal(next(f), "(none)");
    /* back: groups checked, the settle time, then what we read but did not ack is read again */
    set_up(f, "reader 0", true);
    assert_true(reader_connected(f->r));
    assert_string_equal(next(f), "reader 0: XGROUP CREATE s1 g 0");
    advance(f, 299);
    assert_string_equal(next(f), "(none)");
    advance(f, 1);
    assert_string_equal(next(f), "reader 0: XREADGROUP GROUP g c1 COUNT 10 STREAMS s1 0");
    answer(f, "reader 0", rerr("BUSYGROUP Consumer Group name already exists"));
    answer(f, "reader 0", read_one("s1", "4-0"));
    assert_string_equal(next(f), "reader 0: XACK s1 g 4-0");
    assert_string_equal(next(f), "reader 0: XDEL s1 4-0");
    /* history until it comes back empty */
    assert_string_equal(next(f), "reader 0: XREADGROUP GROUP g c1 COUNT 10 STREAMS s1 0");
    answer(f, "reader 0", read_none("s1"));
    assert_string_equal(next(f), "reader 0: XREADGROUP GROUP g c1 COUNT 10 BLOCK 500 STREAMS s1 >");
    /* the pending entry is marked re-read (it may have been delivered), a new one is not */
    answer(f, "reader 0", read_one("s1", "5-0"));
    assert_string_equal(next(f), "reader 0: XACK s1 g 5-0");
    assert_string_equal(next(f), "reader 0: XDEL s1 5-0");
    assert_int_equal(f->ngot, 2);
    assert_string_equal(f->got[0], "reader 0|s1|4-0|event=e,data=d");
    assert_true(f->reread[0]);
    assert_string_equal(f->got[1], "reader 0|s1|5-0|event=e,data=d");
    assert_false(f->reread[1]);
    assert_string_equal(next(f), "reader 0: XREADGROUP GROUP g c1 COUNT 10 BLOCK 500 STREAMS s1 >");
    /* the gate: closed, the lane waits (retrying every 100 ms) and the entries stay in Redis */
    f->gate = false;
    answer(f, "reader 0", rnil());
    advance(f, 1000);
    assert_string_equal(next(f), "(none)");
    f->gate = true;
    advance(f, 100);
    assert_string_equal(next(f), "reader 0: XREADGROUP GROUP g c1 COUNT 10 BLOCK 500 STREAMS s1 >");
    assert_string_equal(next(f), "(none)");
    fake_free(f);
}

static void test_remove_stream_and_pool_mid_read(void **state)
{
    (void)state;
    fake_t *f = fake_new(NULL);
    static const char *const pool0[] = {"s1", "s2", NULL};
    static const char *const pool1[] = {"t1", "t2", NULL};
    add_fresh(f, 0, pool0);
    add_fresh(f, 1, pool1);
    static const char *const all[] = {"s1", "s2", "t1", "t2", NULL};
    lane_start(f, "reader 0", all);
    /* STREAM_REMOVE: the blocking read holding it is cut short */
    reader_remove(f->r, "s2", 2);
    assert_int_equal(reader_streams(f->r), 3);
    assert_string_equal(next(f), "reader svc: CLIENT UNBLOCK <reader 0>");
    /* entries it read already are still delivered and acknowledged */
    answer(f, "reader 0", read_one("s2", "8-0"));
    assert_string_equal(next(f), "reader 0: XACK s2 g 8-0");
    assert_string_equal(next(f), "reader 0: XDEL s2 8-0");
    /* (the last stream took the removed one's place) */
    assert_string_equal(
        next(f), "reader 0: XREADGROUP GROUP g c1 COUNT 10 BLOCK 500 STREAMS s1 t2 t1 > > >");
    assert_int_equal(f->ngot, 1);
    /* POOL_REMOVE: every stream of the pool, one cut */
    reader_remove_pool(f->r, 1);
    assert_int_equal(reader_streams(f->r), 1);
    assert_string_equal(next(f), "reader svc: CLIENT UNBLOCK <reader 0>");
    assert_string_equal(next(f), "(none)");
    answer(f, "reader 0", rnil());
    assert_string_equal(next(f), "reader 0: XREADGROUP GROUP g c1 COUNT 10 BLOCK 500 STREAMS s1 >");
    /* removing what is not read, or a stream that is not in a read, sends nothing */
    reader_remove(f->r, "t1", 2);
    reader_add(f->r, 5, "q1", 2);
    assert_string_equal(next(f), "reader svc: XINFO STREAM q1");
    answer(f, "reader svc", xinfo("1000-1"));
    reader_remove(f->r, "q1", 2);
    assert_string_equal(next(f), "(none)");
    assert_int_equal(reader_streams(f->r), 1);
    fake_free(f);
}

static void fenced(void *arg, uint64_t seq)
{
    fake_t *f = arg;
    assert_true(seq > f->fenced);
    f->fenced = seq;
}

/* reader_fence: done once the reads in flight when their streams were removed are answered, and
 * then what their replies queued: two rounds of PINGs routed by a removed stream, on its lane
 * and on svc (claims). */
static void test_fence_waits_for_reads_of_removed_streams(void **state)
{
    (void)state;
    static const char *const env[] = {"SOCKETIO_REDIS_ADAPTER", "true", NULL};
    fake_t *f = fake_new(env);
    static const char *const names[] = {"s1", "s2", NULL};
    add_fresh(f, 0, names);
    lane_start(f, "reader 0", names);
    reader_remove(f->r, "s2", 2);
    assert_string_equal(next(f), "reader svc: CLIENT UNBLOCK <reader 0>");
    reader_fence(f->r, 7, fenced, f);
    assert_string_equal(next(f), "reader 0: PING @s2");
    assert_string_equal(next(f), "reader svc: PING @s2");
    assert_string_equal(next(f), "(none)");
    /* the read in flight returns an entry of s2: acknowledged behind the first PING */
    answer(f, "reader 0", ra(1, ra(2, rs("s2"), ra(1, entry("8-0", "e", "d")))));
    assert_string_equal(next(f), "reader 0: XACK s2 g 8-0");
    assert_string_equal(next(f), "reader 0: XDEL s2 8-0");
    assert_string_equal(next(f), "reader 0: XREADGROUP GROUP g c1 COUNT 10 BLOCK 500 STREAMS s1 >");
    /* a fence asked for meanwhile waits for this one */
    reader_fence(f->r, 8, fenced, f);
    answer(f, "reader 0", rstatus("PONG"));
    assert_string_equal(next(f), "(none)");
    answer(f, "reader svc", rstatus("PONG"));
    /* the second round goes behind the XACK and XDEL */
    assert_string_equal(next(f), "reader 0: PING @s2");
    assert_string_equal(next(f), "reader svc: PING @s2");
    assert_int_equal(f->fenced, 0);
    answer(f, "reader 0", rnil()); /* the blocking read, sent before it */
    assert_string_equal(next(f), "reader 0: XREADGROUP GROUP g c1 COUNT 10 BLOCK 500 STREAMS s1 >");
    answer(f, "reader 0", rstatus("PONG"));
    assert_int_equal(f->fenced, 0);
    answer(f, "reader svc", rstatus("PONG"));
    /* 7 done; 8 covers nothing removed since: done at once */
    assert_int_equal(f->fenced, 8);
    assert_int_equal(f->ngot, 1);
    /* a lost connection has nothing in flight: its PINGs' NULL replies count */
    reader_remove(f->r, "s1", 2);
    assert_string_equal(next(f), "reader svc: CLIENT UNBLOCK <reader 0>");
    reader_fence(f->r, 9, fenced, f);
    assert_string_equal(next(f), "reader 0: PING @s1");
    assert_string_equal(next(f), "reader svc: PING @s1");
    set_up(f, "reader 0", false);
    assert_int_equal(f->fenced, 8);
    answer(f, "reader svc", rstatus("PONG"));
    assert_string_equal(next(f), "reader svc: PING @s1"); /* reader 0 is down: svc only */
    answer(f, "reader svc", rstatus("PONG"));
    assert_int_equal(f->fenced, 9);
    fake_free(f);
}

static void test_deleted_streams(void **state)
{
    (void)state;
    fake_t *f = fake_new(NULL);
    static const char *const names[] = {"s1", "s2", NULL};
    add_fresh(f, 0, names);
    lane_start(f, "reader 0", names);
    /* DEL of a key a blocking read waits on: the group checks find which stream is gone */
    answer(f, "reader 0", rerr("UNBLOCKED the stream key no longer exists"));
    assert_string_equal(next(f), "reader 0: XGROUP CREATE s1 g 0");
    assert_string_equal(next(f), "reader 0: XGROUP CREATE s2 g 0");
    assert_string_equal(next(f),
                        "reader 0: XREADGROUP GROUP g c1 COUNT 10 BLOCK 500 STREAMS s1 s2 > >");
    answer(f, "reader 0",
           rerr("ERR The XGROUP subcommand requires the key to exist. Note that for CREATE you "
                "may want to use the MKSTREAM option to create an empty stream automatically."));
    answer(f, "reader 0", rerr("BUSYGROUP Consumer Group name already exists"));
    answer(f, "reader 0",
           rerr("NOGROUP No such key 's1' or consumer group 'g' in XREADGROUP with GROUP option"));
    /* the missing stream waits a second for its key; the other one is read */
    assert_string_equal(next(f), "reader 0: XGROUP CREATE s2 g 0");
    assert_string_equal(next(f), "reader 0: XREADGROUP GROUP g c1 COUNT 10 BLOCK 500 STREAMS s2 >");
    answer(f, "reader 0", rerr("BUSYGROUP Consumer Group name already exists"));
    advance(f, 1000);
    answer(f, "reader 0", rnil());
    assert_string_equal(next(f), "reader 0: XGROUP CREATE s1 g 0");
    assert_string_equal(next(f),
                        "reader 0: XREADGROUP GROUP g c1 COUNT 10 BLOCK 500 STREAMS s1 s2 > >");
    assert_string_equal(next(f), "(none)");
    fake_free(f);
}

static void test_missing_only_stream_retries_later(void **state)
{
    (void)state;
    fake_t *f = fake_new(NULL);
    static const char *const names[] = {"s1", NULL};
    add_fresh(f, 0, names);
    set_up(f, "reader 0", true);
    assert_string_equal(next(f), "reader 0: XGROUP CREATE s1 g 0");
    answer(f, "reader 0", rerr("ERR The XGROUP subcommand requires the key to exist."));
    /* nothing readable: no read at all, a retry after a second */
    advance(f, 999);
    assert_string_equal(next(f), "(none)");
    advance(f, 301);
    assert_string_equal(next(f), "reader 0: XGROUP CREATE s1 g 0");
    assert_string_equal(next(f), "reader 0: XREADGROUP GROUP g c1 COUNT 10 STREAMS s1 0");
    fake_free(f);
}

static void test_stop_drains_reads_in_flight(void **state)
{
    (void)state;
    fake_t *f = fake_new(NULL);
    static const char *const names[] = {"s1", NULL};
    add_fresh(f, 0, names);
    lane_start(f, "reader 0", names);
    reader_stop(f->r, on_stopped, f);
    settle(f);
    assert_false(f->stopped); /* the lane still waits for its read */
    reader_add(f->r, 0, "late", 4);
    answer(f, "reader 0", read_one("s1", "2-0"));
    /* delivered and acknowledged; no read after it */
    assert_string_equal(next(f), "reader 0: XACK s1 g 2-0");
    assert_string_equal(next(f), "reader 0: XDEL s1 2-0");
    assert_string_equal(next(f), "(none)");
    assert_int_equal(f->ngot, 1);
    settle(f);
    assert_true(f->stopped);
    fake_free(f);
}

/* The next command starts with `prefix` (dead letters carry long values and a wall time). */
static void expect_prefix(fake_t *f, const char *prefix)
{
    const char *got = next(f);
    if (strncmp(got, prefix, strlen(prefix)) != 0)
        fail_msg("expected a command starting with\n  %s\ngot\n  %s", prefix, got);
}

/* ---- event mode: key events subscribed and published ---- */

/* A reader with STREAM_KEYSPACE_EVENTS (plus env) whose svc, subscription and lane "reader 0"
 * are up and past the settle time, with Redis publishing xadd events: event mode. */
static fake_t *events_fake(const char *const *env)
{
    const char *merged[16] = {"STREAM_KEYSPACE_EVENTS", "true"};
    size_t n = 2;
    for (const char *const *e = env; e && *e; e++)
        merged[n++] = *e;
    merged[n] = NULL;
    fake_t *f = fake_new(merged);
    set_up(f, "reader svc", true);
    events_config(f, "KEA");
    events_up(f, true);
    events_config(f, "KEA"); /* asked again on every subscription: on now */
    assert_string_equal(next(f), "(none)");
    return f;
}

/* Time passes with nothing sent but the subscription's checks (every 30 s). */
static void quiet(fake_t *f, uint64_t ms)
{
    for (uint64_t t = 0; t < ms; t += 100) {
        advance(f, 100);
        const char *c = next(f);
        if (strcmp(c, "(none)") == 0)
            continue;
        assert_string_equal(c, "reader svc: CONFIG GET notify-keyspace-events");
        answer(f, "reader svc", ra(2, rs("notify-keyspace-events"), rs("KEA")));
        assert_string_equal(next(f), "(none)");
    }
}

/* s (new to the reader, not announced by an event) is polled once from the start: found with
 * an entry, it is read: group, history, then its new entries, and nothing more after that. */
static void add_polled(fake_t *f, const char *name, const char *id)
{
    char want[128];
    reader_add(f->r, 0, name, strlen(name));
    snprintf(want, sizeof(want), "reader svc: XREAD COUNT 1 STREAMS %s 0-0", name);
    assert_string_equal(next(f), want);
    answer(f, "reader svc", read_one(name, id));
}

/* s1, polled with an entry, is taken by lane "reader 0" once that is up: its group is created
 * and its history read is in flight. */
static void s1_history_asked(fake_t *f)
{
    add_polled(f, "s1", "1-0");
    set_up(f, "reader 0", true);
    advance(f, 300);
    assert_string_equal(next(f), "reader 0: XGROUP CREATE s1 g 0");
    assert_string_equal(next(f), "reader 0: XREADGROUP GROUP g c1 COUNT 10 STREAMS s1 0");
    answer(f, "reader 0", rstatus("OK"));
}

/* ... and its history and new entries come back empty: s1 is active, nothing in flight. */
static void s1_read_up(fake_t *f)
{
    s1_history_asked(f);
    answer(f, "reader 0", read_none("s1"));
    assert_string_equal(next(f), "reader 0: XREADGROUP GROUP g c1 COUNT 10 STREAMS s1 >");
    answer(f, "reader 0", rnil());
}

static void test_event_mode_reads_only_what_events_announce(void **state)
{
    (void)state;
    fake_t *f = events_fake(NULL);
    /* no XINFO probe: a new stream is polled once (non-blocking XREAD from the start) */
    reader_add(f->r, 0, "s1", 2);
    assert_string_equal(next(f), "reader svc: XREAD COUNT 1 STREAMS s1 0-0");
    set_up(f, "reader 0", true);
    advance(f, 300);
    answer(f, "reader svc", rnil()); /* empty: parked, costs nothing */
    assert_int_equal(reader_parked(f->r), 1);
    add_polled(f, "s2", "5-0");
    assert_string_equal(next(f), "reader 0: XGROUP CREATE s2 g 0");
    assert_string_equal(next(f), "reader 0: XREADGROUP GROUP g c1 COUNT 10 STREAMS s2 0");
    answer(f, "reader 0", rstatus("OK"));
    answer(f, "reader 0", read_none("s2"));
    assert_string_equal(next(f), "reader 0: XREADGROUP GROUP g c1 COUNT 10 STREAMS s2 >");
    answer(f, "reader 0", read_one("s2", "5-0"));
    assert_string_equal(next(f), "reader 0: XACK s2 g 5-0");
    assert_string_equal(next(f), "reader 0: XDEL s2 5-0");
    /* nothing dirty: no read at all, however long it stays quiet (no BLOCK, no poll) */
    quiet(f, 60000);
    assert_int_equal(f->ngot, 1);
    /* its xadd event: one non-blocking read of that stream alone */
    key_event(f, "s2");
    assert_string_equal(next(f), "reader 0: XREADGROUP GROUP g c1 COUNT 10 STREAMS s2 >");
    answer(f, "reader 0", rnil());
    assert_string_equal(next(f), "(none)");
    /* the parked one wakes on its event: group and history first; what the history holds is
     * marked re-read, what the new read finds is not */
    key_event(f, "s1");
    assert_string_equal(next(f), "reader 0: XGROUP CREATE s1 g 0");
    assert_string_equal(next(f), "reader 0: XREADGROUP GROUP g c1 COUNT 10 STREAMS s1 0");
    answer(f, "reader 0", rerr("BUSYGROUP Consumer Group name already exists"));
    answer(f, "reader 0", read_one("s1", "2-0"));
    assert_string_equal(next(f), "reader 0: XACK s1 g 2-0");
    assert_string_equal(next(f), "reader 0: XDEL s1 2-0");
    assert_string_equal(next(f), "reader 0: XREADGROUP GROUP g c1 COUNT 10 STREAMS s1 0");
    answer(f, "reader 0", read_none("s1"));
    assert_string_equal(next(f), "reader 0: XREADGROUP GROUP g c1 COUNT 10 STREAMS s1 >");
    answer(f, "reader 0", rnil());
    assert_int_equal(f->ngot, 2);
    assert_false(f->reread[0]); /* s2's 5-0 */
    assert_string_equal(f->got[1], "reader 0|s1|2-0|event=e,data=d");
    assert_true(f->reread[1]);
    /* an event before the master assigns the stream: read at once when it does, no poll */
    key_event(f, "s3");
    assert_string_equal(next(f), "(none)");
    reader_add(f->r, 0, "s3", 2);
    assert_string_equal(next(f), "reader 0: XGROUP CREATE s3 g 0");
    assert_string_equal(next(f), "reader 0: XREADGROUP GROUP g c1 COUNT 10 STREAMS s3 0");
    answer(f, "reader 0", rstatus("OK"));
    answer(f, "reader 0", read_none("s3"));
    assert_string_equal(next(f), "reader 0: XREADGROUP GROUP g c1 COUNT 10 STREAMS s3 >");
    answer(f, "reader 0", read_one("s3", "7-0"));
    assert_string_equal(next(f), "reader 0: XACK s3 g 7-0");
    assert_string_equal(next(f), "reader 0: XDEL s3 7-0");
    assert_string_equal(next(f), "(none)");
    assert_int_equal(f->ngot, 3);
    assert_false(f->reread[2]);
    fake_free(f);
}

static void test_event_mode_coalesces_events_of_a_busy_lane(void **state)
{
    (void)state;
    static const char *const env[] = {"BATCH_DELAY", "10", NULL};
    fake_t *f = events_fake(env);
    s1_history_asked(f);
    advance(f, 100);
    add_polled(f, "s2", "1-0");
    assert_string_equal(next(f), "(none)"); /* one read in flight per lane */
    answer(f, "reader 0", read_none("s1"));
    /* the next read takes both: s1's new entries, s2's group and history */
    assert_string_equal(next(f), "reader 0: XGROUP CREATE s2 g 0");
    assert_string_equal(next(f), "reader 0: XREADGROUP GROUP g c1 COUNT 10 STREAMS s2 s1 0 >");
    answer(f, "reader 0", rstatus("OK"));
    key_event(f, "s1");
    key_event(f, "s1");
    key_event(f, "s2");
    assert_string_equal(next(f), "(none)");
    answer(f, "reader 0",
           ra(2, ra(2, rs("s2"), ra(0)),
              ra(2, rs("s1"), ra(2, entry("1-0", "e", "d"), entry("2-0", "e", "d")))));
    assert_string_equal(next(f), "reader 0: XACK s1 g 1-0 2-0");
    assert_string_equal(next(f), "reader 0: XDEL s1 1-0 2-0");
    /* entries flow (2 in that read): the next read waits for BATCH_DELAY after the last began,
     * and events meanwhile gather into it */
    assert_string_equal(next(f), "(none)");
    advance(f, 9);
    key_event(f, "s1");
    assert_string_equal(next(f), "(none)");
    advance(f, 1);
    assert_string_equal(next(f), "reader 0: XREADGROUP GROUP g c1 COUNT 10 STREAMS s1 s2 > >");
    /* a stream that filled COUNT has more: read again without waiting for its next event */
    redisReply *full = ra(0);
    full->element = realloc(full->element, 10 * sizeof(*full->element));
    for (int i = 0; i < 10; i++) {
        char id[16];
        snprintf(id, sizeof(id), "%d-0", 10 + i);
        full->element[full->elements++] = entry(id, "e", "d");
    }
    answer(f, "reader 0", read_reply("s2", full));
    assert_string_equal(next(f),
                        "reader 0: XACK s2 g 10-0 11-0 12-0 13-0 14-0 15-0 16-0 17-0 18-0 19-0");
    assert_string_equal(next(f),
                        "reader 0: XDEL s2 10-0 11-0 12-0 13-0 14-0 15-0 16-0 17-0 18-0 19-0");
    advance(f, 10);
    assert_string_equal(next(f), "reader 0: XREADGROUP GROUP g c1 COUNT 10 STREAMS s2 >");
    answer(f, "reader 0", rnil());
    /* a quiet pass (one entry or none): the next event is read at once */
    key_event(f, "s1");
    assert_string_equal(next(f), "reader 0: XREADGROUP GROUP g c1 COUNT 10 STREAMS s1 >");
    answer(f, "reader 0", rnil());
    assert_string_equal(next(f), "(none)");
    fake_free(f);
}

/* The worker's side of reader_set_pull: the events held in its ring reach the reader now. */
static void f_pull(void *arg)
{
    fake_t *f = arg;
    f->pulls++;
    for (size_t i = 0; i < f->nheld; i++)
        key_event(f, f->held[i]);
    f->nheld = 0;
}

/* An event-mode reader whose worker holds key events back for its pull (f->held). */
static fake_t *pull_fake(const char *const *env)
{
    fake_t *f = events_fake(env);
    reader_set_pull(f->r, f_pull, f);
    return f;
}

/* A new stream whose key event came before the master assigned it: read once its lane is up. */
static void add_announced(fake_t *f, uint32_t pool, const char *name)
{
    key_event(f, name);
    reader_add(f->r, pool, name, strlen(name));
}

/* While entries flow the worker may hold key events back (no wake-up per event): the paced
 * lane pulls them into its next batch; once a batch finds one entry or none, events are
 * wanted at once again. */
static void test_paced_lane_pulls_held_events(void **state)
{
    (void)state;
    static const char *const env[] = {"BATCH_DELAY", "10", NULL};
    fake_t *f = pull_fake(env);
    add_announced(f, 0, "s1");
    add_announced(f, 0, "s2");
    assert_false(reader_events_may_wait(f->r)); /* nothing flows yet */
    set_up(f, "reader 0", true);
    advance(f, 300);
    assert_string_equal(next(f), "reader 0: XGROUP CREATE s2 g 0");
    assert_string_equal(next(f), "reader 0: XGROUP CREATE s1 g 0");
    assert_string_equal(next(f), "reader 0: XREADGROUP GROUP g c1 COUNT 10 STREAMS s2 s1 0 0");
    answer(f, "reader 0", rstatus("OK"));
    answer(f, "reader 0", rstatus("OK"));
    int before = f->pulls;
    answer(f, "reader 0", ra(2, ra(2, rs("s2"), ra(0)), ra(2, rs("s1"), ra(0))));
    assert_string_equal(next(f), "reader 0: XREADGROUP GROUP g c1 COUNT 10 STREAMS s2 s1 > >");
    assert_true(f->pulls > before); /* every batch pulls first */
    assert_false(reader_events_may_wait(f->r));
    answer(f, "reader 0",
           ra(1, ra(2, rs("s1"), ra(2, entry("1-0", "e", "d"), entry("2-0", "e", "d")))));
    assert_string_equal(next(f), "reader 0: XACK s1 g 1-0 2-0");
    assert_string_equal(next(f), "reader 0: XDEL s1 1-0 2-0");
    /* two entries: paced, and events may wait in the ring until the next batch */
    assert_string_equal(next(f), "(none)");
    assert_true(reader_events_may_wait(f->r));
    key_event(f, "s1"); /* this one reached it: its read waits for the window */
    f->held[f->nheld++] = "s2";
    advance(f, 9);
    assert_string_equal(next(f), "(none)");
    assert_int_equal(f->nheld, 1);
    advance(f, 1);
    assert_int_equal(f->nheld, 0);
    assert_string_equal(next(f), "reader 0: XREADGROUP GROUP g c1 COUNT 10 STREAMS s2 s1 > >");
    assert_true(reader_events_may_wait(f->r)); /* its batch is in flight: it pulls after it */
    answer(f, "reader 0", rnil());
    /* a quiet batch: no more waiting; the next event is read at once */
    assert_false(reader_events_may_wait(f->r));
    key_event(f, "s1");
    assert_string_equal(next(f), "reader 0: XREADGROUP GROUP g c1 COUNT 10 STREAMS s1 >");
    answer(f, "reader 0", rnil());
    assert_string_equal(next(f), "(none)");
    /* entries again (a kick pulls what was held), then the lane's connection is lost:
     * nothing may wait for it */
    f->held[f->nheld++] = "s2";
    key_event(f, "s1");
    assert_string_equal(next(f), "reader 0: XREADGROUP GROUP g c1 COUNT 10 STREAMS s2 s1 > >");
    answer(f, "reader 0",
           ra(2, ra(2, rs("s1"), ra(1, entry("3-0", "e", "d"))),
              ra(2, rs("s2"), ra(1, entry("4-0", "e", "d")))));
    assert_string_equal(next(f), "reader 0: XACK s1 g 3-0");
    assert_string_equal(next(f), "reader 0: XDEL s1 3-0");
    assert_string_equal(next(f), "reader 0: XACK s2 g 4-0");
    assert_string_equal(next(f), "reader 0: XDEL s2 4-0");
    assert_true(reader_events_may_wait(f->r));
    set_up(f, "reader 0", false);
    assert_false(reader_events_may_wait(f->r));
    fake_free(f);
}

/* Events pulled for one lane that belong to another: that lane is kicked once the pull is
 * over, and its own batch does not pull again in a loop. */
static void test_pull_kicks_the_other_lanes_once(void **state)
{
    (void)state;
    static const char *const env[] = {"BATCH_DELAY", "10", "MAX_CONCURRENT_POOLS", "2", NULL};
    fake_t *f = pull_fake(env);
    add_announced(f, 0, "s1");
    add_announced(f, 1, "t1");
    set_up(f, "reader 0", true);
    set_up(f, "reader 1", true);
    advance(f, 300);
    assert_string_equal(next(f), "reader 0: XGROUP CREATE s1 g 0");
    assert_string_equal(next(f), "reader 0: XREADGROUP GROUP g c1 COUNT 10 STREAMS s1 0");
    assert_string_equal(next(f), "reader 1: XGROUP CREATE t1 g 0");
    assert_string_equal(next(f), "reader 1: XREADGROUP GROUP g c1 COUNT 10 STREAMS t1 0");
    answer(f, "reader 0", rstatus("OK"));
    answer(f, "reader 0", ra(1, ra(2, rs("s1"), ra(0))));
    assert_string_equal(next(f), "reader 0: XREADGROUP GROUP g c1 COUNT 10 STREAMS s1 >");
    answer(f, "reader 1", rstatus("OK"));
    answer(f, "reader 1", ra(1, ra(2, rs("t1"), ra(0))));
    assert_string_equal(next(f), "reader 1: XREADGROUP GROUP g c1 COUNT 10 STREAMS t1 >");
    answer(f, "reader 1", rnil());
    /* lane 0's reply: its kick pulls an event of lane 1's stream, which lane 1 reads now */
    f->held[f->nheld++] = "t1";
    answer(f, "reader 0", rnil());
    assert_int_equal(f->nheld, 0);
    assert_string_equal(next(f), "reader 1: XREADGROUP GROUP g c1 COUNT 10 STREAMS t1 >");
    assert_string_equal(next(f), "(none)");
    fake_free(f);
}

static void test_event_mode_cluster_pipelines_one_read_per_slot(void **state)
{
    (void)state;
    fake_t *f = events_fake(NULL);
    f->cluster = true;
    /* three streams an event announced before they were assigned: read at once */
    static const char *const names[] = {"a1", "b1", "a2", NULL};
    for (const char *const *n = names; *n; n++) {
        key_event(f, *n);
        reader_add(f->r, 0, *n, 2);
    }
    set_up(f, "reader 0", true);
    advance(f, 300);
    /* one XREADGROUP per slot, all in one write: the histories */
    assert_string_equal(next(f), "reader 0: XGROUP CREATE a2 g 0");
    assert_string_equal(next(f), "reader 0: XGROUP CREATE a1 g 0");
    assert_string_equal(next(f), "reader 0: XREADGROUP GROUP g c1 COUNT 10 STREAMS a2 a1 0 0");
    assert_string_equal(next(f), "reader 0: XGROUP CREATE b1 g 0");
    assert_string_equal(next(f), "reader 0: XREADGROUP GROUP g c1 COUNT 10 STREAMS b1 0");
    assert_string_equal(next(f), "(none)");
    answer(f, "reader 0", rstatus("OK"));
    answer(f, "reader 0", rstatus("OK"));
    answer(f, "reader 0", ra(2, ra(2, rs("a2"), ra(0)), ra(2, rs("a1"), ra(0))));
    assert_string_equal(next(f), "(none)"); /* the batch's other reply is still due */
    answer(f, "reader 0", rstatus("OK"));
    answer(f, "reader 0", read_none("b1"));
    assert_string_equal(next(f), "reader 0: XREADGROUP GROUP g c1 COUNT 10 STREAMS a2 a1 > >");
    assert_string_equal(next(f), "reader 0: XREADGROUP GROUP g c1 COUNT 10 STREAMS b1 >");
    answer(f, "reader 0", rnil());
    answer(f, "reader 0", rnil());
    /* later events: only the slots that have entries */
    key_event(f, "a1");
    assert_string_equal(next(f), "reader 0: XREADGROUP GROUP g c1 COUNT 10 STREAMS a1 >");
    key_event(f, "b1");
    key_event(f, "a2");
    assert_string_equal(next(f), "(none)");
    answer(f, "reader 0", rnil());
    assert_string_equal(next(f), "reader 0: XREADGROUP GROUP g c1 COUNT 10 STREAMS a2 >");
    assert_string_equal(next(f), "reader 0: XREADGROUP GROUP g c1 COUNT 10 STREAMS b1 >");
    answer(f, "reader 0", rnil());
    answer(f, "reader 0", rnil());
    assert_string_equal(next(f), "(none)");
    fake_free(f);
}

/* On a Cluster the catch-up poll of parked streams names all the due streams of a slot in one
 * XREAD (sent to that slot's node), whatever order they came in; a stream woken by its event
 * meanwhile is not polled. */
static void test_event_mode_cluster_catchup_polls_one_read_per_slot(void **state)
{
    (void)state;
    fake_t *f = events_fake(NULL);
    f->cluster = true;
    reader_add(f->r, 0, "a0", 2); /* polled at once: svc was idle */
    assert_string_equal(next(f), "reader svc: XREAD COUNT 1 STREAMS a0 0-0");
    /* slots interleaved, as 100k streams over 16384 slots arrive */
    static const char *const names[] = {"b3", "a2", "b1", "a1", "b2", "a3", "a4", NULL};
    for (const char *const *n = names; *n; n++)
        reader_add(f->r, 0, *n, 2);
    assert_string_equal(next(f), "(none)"); /* one catch-up turn at a time */
    key_event(f, "a4");                     /* woken by its event: no poll needed */
    answer(f, "reader svc", rnil());
    assert_string_equal(next(f), "reader svc: XREAD COUNT 1 STREAMS a1 a2 a3 0-0 0-0 0-0");
    assert_string_equal(next(f), "reader svc: XREAD COUNT 1 STREAMS b1 b2 b3 0-0 0-0 0-0");
    assert_string_equal(next(f), "(none)");
    answer(f, "reader svc", rnil());
    answer(f, "reader svc", ra(1, ra(2, rs("b2"), ra(1, entry("1-0", "e", "d")))));
    assert_int_equal(reader_parked(f->r), 6); /* a4 and b2 are active */
    assert_string_equal(next(f), "(none)");
    /* a new subscription: every parked stream polled again, one XREAD per slot */
    events_up(f, false);
    events_up(f, true);
    events_config(f, "KEA");
    advance(f, 100); /* the next service turn */
    assert_string_equal(next(f), "reader svc: XREAD COUNT 1 STREAMS a0 a1 a2 a3 0-0 0-0 0-0 0-0");
    assert_string_equal(next(f), "reader svc: XREAD COUNT 1 STREAMS b1 b3 0-0 0-0");
    assert_string_equal(next(f), "(none)");
    fake_free(f);
}

/* svc is lost (its replies due come NULL) and back: the flags are asked again, a service turn. */
static void svc_lost_and_back(fake_t *f)
{
    set_up(f, "reader svc", false);
    set_up(f, "reader svc", true);
    events_config(f, "KEA");
    advance(f, 100);
}

/* A catch-up poll lost with the service connection is sent again once it is back: the stream it
 * named may hold an entry that no later event announces. */
static void test_event_mode_catchup_lost_with_svc_is_sent_again(void **state)
{
    (void)state;
    fake_t *f = events_fake(NULL);
    reader_add(f->r, 0, "a0", 2);
    assert_string_equal(next(f), "reader svc: XREAD COUNT 1 STREAMS a0 0-0");
    svc_lost_and_back(f); /* its reply never comes */
    assert_string_equal(next(f), "reader svc: XREAD COUNT 1 STREAMS a0 0-0");
    answer(f, "reader svc", ra(1, ra(2, rs("a0"), ra(1, entry("1-0", "e", "d")))));
    assert_int_equal(reader_parked(f->r), 0); /* found: read by its lane */
    fake_free(f);
}

/* ... and only that one: a parked stream whose poll was answered before the loss holds. */
static void test_event_mode_catchup_answered_is_not_sent_again(void **state)
{
    (void)state;
    fake_t *f = events_fake(NULL);
    reader_add(f->r, 0, "a0", 2);
    assert_string_equal(next(f), "reader svc: XREAD COUNT 1 STREAMS a0 0-0");
    answer(f, "reader svc", rnil()); /* empty: parked */
    reader_add(f->r, 0, "a1", 2);
    assert_string_equal(next(f), "reader svc: XREAD COUNT 1 STREAMS a1 0-0");
    assert_int_equal(reader_parked(f->r), 2);
    svc_lost_and_back(f); /* a1's reply never comes */
    assert_string_equal(next(f), "reader svc: XREAD COUNT 1 STREAMS a1 0-0");
    assert_string_equal(next(f), "(none)");
    answer(f, "reader svc", rnil());
    advance(f, 1000);
    assert_string_equal(next(f), "(none)");
    assert_int_equal(reader_parked(f->r), 2);
    fake_free(f);
}

static void test_event_mode_follows_the_subscription(void **state)
{
    (void)state;
    fake_t *f = events_fake(NULL);
    s1_read_up(f);
    assert_string_equal(next(f), "(none)");
    /* the subscription is lost: events may be missed, the lane blocks on its streams again */
    events_up(f, false);
    assert_string_equal(next(f), "reader 0: XREADGROUP GROUP g c1 COUNT 10 BLOCK 500 STREAMS s1 >");
    /* back: asked again, then event mode with a catch-up read of every stream (an XADD of the
     * outage has no event), the blocking read cut short first */
    events_up(f, true);
    events_config(f, "KEA");
    assert_string_equal(next(f), "reader svc: CLIENT UNBLOCK <reader 0>");
    answer(f, "reader 0", read_one("s1", "2-0"));
    assert_string_equal(next(f), "reader 0: XACK s1 g 2-0");
    assert_string_equal(next(f), "reader 0: XDEL s1 2-0");
    assert_string_equal(next(f), "reader 0: XREADGROUP GROUP g c1 COUNT 10 STREAMS s1 >");
    answer(f, "reader 0", rnil());
    assert_string_equal(next(f), "(none)");
    /* Redis stops publishing them (an operator's CONFIG SET): blocking lanes within 30 s */
    advance(f, 30000);
    events_config(f, "");
    assert_string_equal(next(f), "reader 0: XREADGROUP GROUP g c1 COUNT 10 BLOCK 500 STREAMS s1 >");
    assert_int_equal(f->ngot, 1);
    fake_free(f);
}

static void test_event_mode_claims_slowly_and_never_polls(void **state)
{
    (void)state;
    static const char *const env[] = {"STREAM_CLAIM_IDLE_MS", "1000", NULL};
    fake_t *f = events_fake(env);
    reader_add(f->r, 0, "q1", 2);
    assert_string_equal(next(f), "reader svc: XREAD COUNT 1 STREAMS q1 0-0");
    answer(f, "reader svc", rnil());
    s1_read_up(f);
    /* over the next 10 minutes: the parked stream is not polled again (its event wakes it), s1
     * is claimed from once per STREAM_CLAIM_IDLE_MS / 2 at most, not every turn; the
     * subscription is checked every 30 s */
    int polls = 0, claims = 0, checks = 0;
    for (int i = 0; i < 6000; i++) {
        advance(f, 100);
        for (const char *c = next(f); strcmp(c, "(none)") != 0; c = next(f)) {
            if (strcmp(c, "reader svc: XREAD COUNT 1 STREAMS q1 0-0") == 0) {
                polls++;
                answer(f, "reader svc", rnil());
            } else if (strcmp(c, "reader svc: XAUTOCLAIM s1 g c1 1000 0-0 COUNT 10") == 0) {
                claims++;
                answer(f, "reader svc", ra(2, rs("0-0"), ra(0)));
            } else if (strcmp(c, "reader svc: CONFIG GET notify-keyspace-events") == 0) {
                checks++;
                answer(f, "reader svc", ra(2, rs("notify-keyspace-events"), rs("KEA")));
            } else {
                fail_msg("unexpected %s", c);
            }
        }
    }
    assert_int_equal(polls, 0);
    assert_true(claims >= 1 && claims <= 1200);
    assert_int_equal(checks, 20);
    fake_free(f);
}

static void test_oversized_entry_is_a_dead_letter(void **state)
{
    (void)state;
    static const char *const env[] = {"STREAM_DEAD_LETTER", "dl", "STREAM_MAX_ENTRY_BYTES", "1024",
                                      NULL};
    fake_t *f = fake_new(env);
    static const char *const names[] = {"s1", NULL};
    add_fresh(f, 0, names);
    lane_start(f, "reader 0", names);
    f->publish = true;
    char big[1100];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    /* 1-0 and 3-0 are delivered; 2-0 (1,109 bytes) goes to the dead-letter stream instead */
    answer(f, "reader 0",
           read_reply("s1", ra(3, entry("1-0", "e", "d"), entry("2-0", "e", big),
                               entry("3-0", "e", "d"))));
    assert_string_equal(next(f), "reader 0: PUBLISH s1 1-0");
    expect_prefix(f, "reader 0: XADD dl * stream s1 id 2-0 reason oversized deliveries 0 bytes "
                     "1109 ts 1700000001300 field:event e field:data xxxx");
    assert_string_equal(next(f), "reader 0: PUBLISH s1 3-0");
    assert_string_equal(next(f), "reader 0: XACK s1 g 1-0 3-0");
    assert_string_equal(next(f), "reader 0: XDEL s1 1-0 3-0");
    assert_string_equal(next(f), "reader 0: XREADGROUP GROUP g c1 COUNT 10 BLOCK 500 STREAMS s1 >");
    assert_string_equal(next(f), "(none)");
    assert_int_equal(f->ngot, 2);
    assert_int_equal(STATS_GET(f->stats.dead_letters[1]), 0);
    /* acknowledged only once Redis took the dead letter */
    answer(f, "reader 0", rs("1700000001300-0"));
    assert_string_equal(next(f), "reader 0: XACK s1 g 2-0");
    assert_string_equal(next(f), "reader 0: XDEL s1 2-0");
    assert_string_equal(next(f), "(none)");
    assert_int_equal(STATS_GET(f->stats.dead_letters[1]), 1);
    assert_int_equal(STATS_GET(f->stats.messages_processed), 2);
    /* a failed XADD leaves the entry pending (claimed and moved later), never acknowledged */
    answer(f, "reader 0", read_reply("s1", ra(1, entry("4-0", "e", big))));
    expect_prefix(f, "reader 0: XADD dl * stream s1 id 4-0 reason oversized");
    assert_string_equal(next(f), "reader 0: XREADGROUP GROUP g c1 COUNT 10 BLOCK 500 STREAMS s1 >");
    answer(f, "reader 0", rerr("OOM command not allowed when used memory > 'maxmemory'"));
    assert_string_equal(next(f), "(none)");
    assert_int_equal(STATS_GET(f->stats.dead_letters[1]), 1);
    fake_free(f);
}

static void test_poison_entry_read_again_is_a_dead_letter(void **state)
{
    (void)state;
    static const char *const env[] = {"STREAM_DEAD_LETTER", "dl", "STREAM_MAX_DELIVERIES", "3",
                                      NULL};
    fake_t *f = fake_new(env);
    static const char *const names[] = {"s1", NULL};
    add_fresh(f, 0, names);
    /* a respawned worker: what it read before is pending, 5-0 already handed out 3 times */
    set_up(f, "reader 0", true);
    assert_string_equal(next(f), "reader 0: XGROUP CREATE s1 g 0");
    advance(f, 300);
    assert_string_equal(next(f), "reader 0: XPENDING s1 g - + 10 c1");
    assert_string_equal(next(f), "reader 0: XREADGROUP GROUP g c1 COUNT 10 STREAMS s1 0");
    answer(f, "reader 0", rstatus("OK"));
    answer(f, "reader 0",
           ra(2, ra(4, rs("5-0"), rs("c1"), rinteger(9000), rinteger(3)),
              ra(4, rs("6-0"), rs("c1"), rinteger(9000), rinteger(1))));
    answer(f, "reader 0", read_reply("s1", ra(2, entry("5-0", "e", "d"), entry("6-0", "e", "d"))));
    assert_string_equal(next(f), "reader 0: XADD dl * stream s1 id 5-0 reason poison deliveries 4 "
                                 "bytes 11 ts 1700000001300 field:event e field:data d");
    assert_string_equal(next(f), "reader 0: XACK s1 g 6-0");
    assert_string_equal(next(f), "reader 0: XDEL s1 6-0");
    /* the history read goes on (XPENDING first again); the marks of the last one are gone */
    assert_string_equal(next(f), "reader 0: XPENDING s1 g - + 10 c1");
    assert_string_equal(next(f), "reader 0: XREADGROUP GROUP g c1 COUNT 10 STREAMS s1 0");
    assert_int_equal(f->ngot, 1);
    assert_string_equal(f->got[0], "reader 0|s1|6-0|event=e,data=d");
    answer(f, "reader 0", rs("1700000001300-0"));
    assert_string_equal(next(f), "reader 0: XACK s1 g 5-0");
    assert_string_equal(next(f), "reader 0: XDEL s1 5-0");
    assert_int_equal(STATS_GET(f->stats.dead_letters[0]), 1);
    answer(f, "reader 0", ra(0));
    answer(f, "reader 0", read_none("s1"));
    assert_string_equal(next(f), "reader 0: XREADGROUP GROUP g c1 COUNT 10 BLOCK 500 STREAMS s1 >");
    assert_string_equal(next(f), "(none)");
    fake_free(f);
}

static void test_poison_entry_claimed_is_a_dead_letter(void **state)
{
    (void)state;
    static const char *const env[] = {"STREAM_DEAD_LETTER",
                                      "dl",
                                      "STREAM_CLAIM_IDLE_MS",
                                      "1000",
                                      "STREAM_DELETE_POLICY",
                                      "retain",
                                      NULL};
    fake_t *f = fake_new(env);
    static const char *const names[] = {"s1", NULL};
    add_fresh(f, 0, names);
    lane_start(f, "reader 0", names);
    advance(f, 200);
    /* XPENDING of every consumer's idle entries, then the claim, on the service connection */
    assert_string_equal(next(f), "reader svc: XPENDING s1 g IDLE 1000 - + 10");
    assert_string_equal(next(f), "reader svc: XAUTOCLAIM s1 g c1 1000 0-0 COUNT 10");
    expect_prefix(f, "reader svc: XTRIM s1 MINID");
    assert_string_equal(next(f), "(none)");
    /* a dead consumer's entry, handed out 10 times (STREAM_MAX_DELIVERIES' default) */
    answer(f, "reader svc", ra(1, ra(4, rs("3-0"), rs("gone"), rinteger(5000), rinteger(10))));
    answer(f, "reader svc",
           ra(3, rs("0-0"), ra(2, entry("3-0", "e", "d"), entry("4-0", "e", "d")), ra(0)));
    assert_string_equal(next(f), "reader svc: XADD dl * stream s1 id 3-0 reason poison deliveries "
                                 "11 bytes 11 ts 1700000001500 field:event e field:data d");
    assert_string_equal(next(f), "reader svc: XACK s1 g 4-0");
    assert_string_equal(next(f), "(none)"); /* retain: no XDEL, and the trim was just sent */
    answer(f, "reader svc", rs("1700000001500-0"));
    assert_string_equal(next(f), "reader svc: XACK s1 g 3-0");
    assert_string_equal(next(f), "(none)");
    assert_int_equal(f->ngot, 1);
    assert_int_equal(STATS_GET(f->stats.dead_letters[0]), 1);
    fake_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_probe_of_a_new_stream),
        cmocka_unit_test(test_probe_parks_quiet_and_missing_streams),
        cmocka_unit_test(test_probe_reads_the_ms_part),
        cmocka_unit_test(test_parked_streams_are_polled),
        cmocka_unit_test(test_blocking_read_and_acks_after_delivery),
        cmocka_unit_test(test_cluster_reads_one_slot_per_command),
        cmocka_unit_test(test_retain_policy_trims_by_age),
        cmocka_unit_test(test_sweep_of_a_large_lane),
        cmocka_unit_test(test_paced_entries_gather_for_batch_delay),
        cmocka_unit_test(test_priority_lane_never_waits),
        cmocka_unit_test(test_sweep_is_paced_per_pass),
        cmocka_unit_test(test_idle_stream_parks_and_wakes_on_key_event),
        cmocka_unit_test(test_key_events_slow_the_poll_down),
        cmocka_unit_test(test_claims_idle_pending_entries),
        cmocka_unit_test(test_reconnect_rereads_pending_entries),
        cmocka_unit_test(test_remove_stream_and_pool_mid_read),
        cmocka_unit_test(test_fence_waits_for_reads_of_removed_streams),
        cmocka_unit_test(test_deleted_streams),
        cmocka_unit_test(test_missing_only_stream_retries_later),
        cmocka_unit_test(test_stop_drains_reads_in_flight),
        cmocka_unit_test(test_event_mode_reads_only_what_events_announce),
        cmocka_unit_test(test_event_mode_coalesces_events_of_a_busy_lane),
        cmocka_unit_test(test_paced_lane_pulls_held_events),
        cmocka_unit_test(test_pull_kicks_the_other_lanes_once),
        cmocka_unit_test(test_event_mode_cluster_pipelines_one_read_per_slot),
        cmocka_unit_test(test_event_mode_cluster_catchup_polls_one_read_per_slot),
        cmocka_unit_test(test_event_mode_catchup_lost_with_svc_is_sent_again),
        cmocka_unit_test(test_event_mode_catchup_answered_is_not_sent_again),
        cmocka_unit_test(test_event_mode_follows_the_subscription),
        cmocka_unit_test(test_event_mode_claims_slowly_and_never_polls),
        cmocka_unit_test(test_oversized_entry_is_a_dead_letter),
        cmocka_unit_test(test_poison_entry_read_again_is_a_dead_letter),
        cmocka_unit_test(test_poison_entry_claimed_is_a_dead_letter),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
