/*
 * Fuzzes worker/stream/reader on what Redis answers it: the replies to its probes (XINFO,
 * XGROUP CREATE), reads (XREADGROUP of new and pending entries, XAUTOCLAIM), XPENDING, XACK,
 * XDEL, XTRIM and fences, as any server (or a proxy posing as one) could shape them; the entries'
 * fields are what producers XADDed, untrusted. The reader runs against a fake Redis (its
 * reader_redis_ops_t seam) and a fake clock, as in tests/unit/test_reader.c, and the input is a
 * program: each step's first byte picks an action (answer the oldest command awaiting a reply
 * with the RESP bytes that follow, parsed by hiredis; a connection lost or back; time passing; a
 * stream added, removed, or announced by a key event), so replies come in any order the reader
 * can meet. The input's first byte also picks the configuration (dead letters, key events,
 * PRIORITY_STREAMS, a Cluster's slots). The contract of the seam is kept: every command with a
 * callback gets exactly one reply, or NULL when its connection goes; closes and timers finish
 * after the call. At the end the reader is stopped and must release everything.
 */
#include <errno.h>
#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/config.h"
#include "worker/stream/reader.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAXC 16
#define MAXT 64

typedef struct fake fake_t;

struct reader_conn {
    fake_t *f;
    bool up, closing, closed;
    bool cut; /* lost, kept down until the program brings it back */
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

typedef struct pending {
    reader_conn_t *c;
    reader_reply_fn cb;
    void *arg;
} pending_t;

struct fake {
    reader_conn_t *conns[MAXC];
    size_t nconns;
    reader_timer_t *timers[MAXT];
    size_t ntimers;
    pending_t *q; /* commands awaiting their reply, oldest first */
    size_t head, n, cap;
    uint64_t now;
    bool cluster, stopped;
    reader_t *r;
};

/* ---- Redis ---- */

static reader_conn_t *f_open(void *ctx, const char *name, reader_state_fn state, void *arg)
{
    (void)name;
    fake_t *f = ctx;
    if (f->nconns == MAXC)
        __builtin_trap(); /* the reader opens a fixed number of connections */
    reader_conn_t *c = calloc(1, sizeof(*c));
    *c = (reader_conn_t){.f = f, .state = state, .arg = arg};
    f->conns[f->nconns++] = c;
    return c;
}

static int f_command(reader_conn_t *c, const char *key, size_t key_len, reader_reply_fn cb,
                     void *arg, int argc, const char **argv, const size_t *lens)
{
    (void)key;
    (void)key_len;
    (void)argc;
    (void)argv;
    (void)lens;
    fake_t *f = c->f;
    if (!c->up || c->closing)
        return -ENOTCONN;
    if (!cb)
        return 0;
    if (f->head + f->n == f->cap) {
        if (f->head) {
            memmove(f->q, f->q + f->head, f->n * sizeof(*f->q));
            f->head = 0;
        } else {
            f->cap = f->cap ? f->cap * 2 : 64;
            f->q = realloc(f->q, f->cap * sizeof(*f->q));
        }
    }
    f->q[f->head + f->n++] = (pending_t){c, cb, arg};
    return 0;
}

static int f_command_blocking(reader_conn_t *c, const char *key, size_t key_len, uint32_t block_ms,
                              reader_reply_fn cb, void *arg, int argc, const char **argv,
                              const size_t *lens)
{
    (void)block_ms;
    return f_command(c, key, key_len, cb, arg, argc, argv, lens);
}

static int f_unblock(reader_conn_t *via, reader_conn_t *blocked, const char *key, size_t key_len)
{
    (void)key;
    (void)key_len;
    return via->up && blocked->up ? 0 : -ENOTCONN;
}

static bool f_up(const reader_conn_t *c)
{
    return c->up;
}

static void f_close(reader_conn_t *c, void (*done)(void *arg), void *arg)
{
    c->closing = true;
    c->done = done;
    c->done_arg = arg;
}

static int f_slot(void *ctx, const char *key, size_t len)
{
    const fake_t *f = ctx;
    return !f->cluster ? -1 : len && (key[len - 1] & 1) ? 1 : 2;
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

/* ---- the clock ---- */

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
    return 1700000000000ull + ((fake_t *)ctx)->now;
}

static reader_timer_t *c_timer_new(void *ctx, void (*fire)(void *arg), void *arg)
{
    fake_t *f = ctx;
    if (f->ntimers == MAXT)
        __builtin_trap(); /* the reader keeps a fixed number of timers */
    reader_timer_t *t = calloc(1, sizeof(*t));
    *t = (reader_timer_t){.f = f, .fire = fire, .arg = arg};
    f->timers[f->ntimers++] = t;
    return t;
}

static void c_timer_start(reader_timer_t *t, uint64_t after_ms, uint64_t repeat_ms)
{
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

/* ---- the loop ---- */

/* The connection goes down: its commands get NULL, in order, then its state. */
static void conn_down(fake_t *f, reader_conn_t *c)
{
    if (!c->up)
        return;
    c->up = false;
    for (size_t i = 0; i < f->n; i++) {
        pending_t *p = &f->q[f->head + i];
        if (p->c == c && p->cb) {
            reader_reply_fn cb = p->cb;
            p->cb = NULL;
            cb(NULL, p->arg);
        }
    }
    if (!c->closing && c->state)
        c->state(c, false, c->arg);
}

static void conn_up(reader_conn_t *c)
{
    if (c->up || c->closing || c->cut)
        return;
    c->up = true;
    if (c->state)
        c->state(c, true, c->arg);
}

/* What the loop would run next: connections coming up, closes finishing, then due timers (one
 * pass). */
static void turn(fake_t *f)
{
    for (size_t i = 0; i < f->nconns; i++) {
        reader_conn_t *c = f->conns[i];
        conn_up(c);
        if (c->closing && !c->closed && !c->up) {
            c->closed = true;
            if (c->done)
                c->done(c->done_arg);
        }
    }
    for (size_t i = 0; i < f->ntimers; i++) {
        reader_timer_t *t = f->timers[i];
        if (t->closing) {
            t->closing = false;
            t->fire = NULL;
            if (t->done)
                t->done(t->done_arg);
        } else if (t->armed && t->fire && t->due <= f->now) {
            t->armed = t->repeat != 0;
            t->due = f->now + t->repeat;
            t->fire(t->arg);
        }
    }
}

/* The oldest command still awaiting its reply, taken off the queue (NULL: none). */
static bool take(fake_t *f, pending_t *out)
{
    while (f->n) {
        pending_t p = f->q[f->head];
        f->head++;
        f->n--;
        if (p.cb) {
            *out = p;
            return true;
        }
    }
    f->head = 0;
    return false;
}

static const char *const NAMES[] = {"s0", "s1", "p.hot", "s3"};

static const char *env_get(const char *name, void *arg)
{
    const char *const *kv = arg;
    for (; kv[0]; kv += 2) {
        if (strcmp(kv[0], name) == 0)
            return kv[1];
    }
    return NULL;
}

static void on_entry(reader_conn_t *conn, const char *stream, size_t stream_len, const char *id,
                     size_t id_len, const payload_field_t *fields, size_t nfields, bool reread,
                     void *arg)
{
    (void)conn;
    (void)reread;
    (void)arg;
    /* everything handed over is readable, as the worker reads it */
    volatile size_t sum = stream_len + id_len + (stream_len ? (size_t)stream[0] : 0) +
                          (id_len ? (size_t)id[id_len - 1] : 0);
    for (size_t i = 0; i < nfields; i++)
        sum += fields[i].name_len + fields[i].value_len +
               (fields[i].value_len ? (size_t)fields[i].value[fields[i].value_len - 1] : 0);
    (void)sum;
}

static void on_stopped(void *arg)
{
    ((fake_t *)arg)->stopped = true;
}

/* One RESP reply from the next `len` bytes (hiredis' parser), or NULL when they hold none. */
static redisReply *parse(const uint8_t *p, size_t len)
{
    redisReader *rd = redisReaderCreate();
    void *reply = NULL;
    if (redisReaderFeed(rd, (const char *)p, len) != REDIS_OK ||
        redisReaderGetReply(rd, &reply) != REDIS_OK)
        reply = NULL;
    redisReaderFree(rd);
    return reply;
}

/* The configuration of a mode, loaded at its first use. */
static const cfg_t *config_of(uint8_t mode)
{
    static cfg_t cfgs[32];
    static bool loaded[32];
    mode &= 31;
    if (loaded[mode])
        return &cfgs[mode];
    const char *kv[32];
    size_t k = 0;
#define SET(n, v) (kv[k++] = (n), kv[k++] = (v))
    SET("STREAM_CONSUMER_GROUP", "g");
    SET("MAX_MESSAGES_BATCH", "10");
    SET("READ_BLOCK_MS", "500");
    SET("BATCH_DELAY", mode & 1 ? "10" : "0");
    SET("STREAM_DEAD_LETTER", mode & 2 ? "dead" : "");
    SET("STREAM_MAX_DELIVERIES", mode & 2 ? "3" : "");
    SET("STREAM_MAX_ENTRY_BYTES", mode & 2 ? "1024" : "");
    SET("STREAM_KEYSPACE_EVENTS", mode & 4 ? "true" : "false");
    SET("PRIORITY_STREAMS", mode & 8 ? "p.*" : "");
    SET("STREAM_DELETE_POLICY", mode & 16 ? "retain" : "delete");
    SET("STREAM_CLAIM_IDLE_MS", "1000");
#undef SET
    kv[k] = NULL;
    buf_t err;
    buf_init(&err);
    if (config_load(&cfgs[mode], env_get, kv, &err)) {
        fprintf(stderr, "%s\n", err.data); /* this target's own settings must load */
        __builtin_trap();
    }
    buf_free(&err);
    loaded[mode] = true;
    return &cfgs[mode];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t mode = data[0];
    fake_t *f = calloc(1, sizeof(*f));
    f->now = 1000;
    f->cluster = mode & 32;
    reader_redis_ops_t redis = fake_redis;
    redis.ctx = f;
    reader_clock_ops_t clock = fake_clock;
    clock.ctx = f;
    stats_worker_t stats = {0};
    f->r = reader_new(&redis, &clock, config_of(mode), "c1", &stats, on_entry, f);
    if (mode & 4)
        reader_events(f->r, true);
    turn(f);

    size_t pos = 1;
    while (pos < size) {
        uint8_t op = data[pos++];
        uint8_t arg = pos < size ? data[pos] : 0;
        switch (op % 8) {
        case 0:
        case 1: { /* a reply: two length bytes, then that many RESP bytes */
            if (pos + 2 > size)
                pos = size;
            if (pos >= size)
                break;
            size_t len = (size_t)data[pos] | (size_t)data[pos + 1] << 8;
            pos += 2;
            if (len > size - pos)
                len = size - pos;
            redisReply *reply = parse(data + pos, len);
            pos += len;
            pending_t p;
            if (reply && take(f, &p))
                p.cb(reply, p.arg);
            if (reply)
                freeReplyObject(reply);
            break;
        }
        case 2: /* a connection lost, until a step 3 names it */
            pos++;
            if (f->nconns) {
                f->conns[arg % f->nconns]->cut = true;
                conn_down(f, f->conns[arg % f->nconns]);
            }
            break;
        case 3:
            pos++;
            if (f->nconns)
                f->conns[arg % f->nconns]->cut = false;
            break;
        case 4: /* time passes */
            pos++;
            f->now += (uint64_t)arg * 20;
            break;
        case 5:
            pos++;
            reader_add(f->r, arg & 1, NAMES[(arg >> 1) % 4], strlen(NAMES[(arg >> 1) % 4]));
            break;
        case 6:
            pos++;
            reader_remove(f->r, NAMES[arg % 4], strlen(NAMES[arg % 4]));
            break;
        case 7:
            pos++;
            reader_event(f->r, NAMES[arg % 4], strlen(NAMES[arg % 4]));
            break;
        }
        turn(f);
    }

    /* the drain: every reply still awaited comes back NULL (the connections go), then closes */
    reader_stop(f->r, on_stopped, f);
    for (int i = 0; i < 1000 && !f->stopped; i++) {
        for (size_t j = 0; j < f->nconns; j++) {
            f->conns[j]->cut = true;
            conn_down(f, f->conns[j]);
        }
        f->now += 100;
        turn(f);
    }
    if (!f->stopped)
        __builtin_trap(); /* a reader that never finishes its drain */
    for (size_t i = 0; i < f->nconns; i++)
        free(f->conns[i]);
    for (size_t i = 0; i < f->ntimers; i++)
        free(f->timers[i]);
    free(f->q);
    free(f);
    return 0;
}
