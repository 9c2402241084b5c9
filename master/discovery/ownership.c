/* ownership: see ownership.h. */
#include "master/discovery/ownership.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/strmap.h"
#include "common/xalloc.h"

#define KEY_MAX 300
#define DRAIN_CONFIRMS 1 /* XPENDING checks with nothing pending, once the workers said so */

/* Membership: Redis' clock, so the servers' clocks never have to agree. */
static const char HEARTBEAT_LUA[] =
    "local t = redis.call('TIME') local now = t[1] * 1000 + math.floor(t[2] / 1000) "
    "redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now) "
    "redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1]) "
    "redis.call('PEXPIRE', KEYS[1], 2 * tonumber(ARGV[2])) "
    "return redis.call('ZRANGE', KEYS[1], 0, -1)";
/*
 * Renew ours or take one handed over (the tombstone RELEASE_LUA leaves): 1; take one that expired
 * or never was (its last holder may have left entries pending): 2; someone else's: 0.
 */
static const char CLAIM_LUA[] =
    "local v = redis.call('GET', KEYS[1]) "
    "if v == ARGV[1] or v == '-' then "
    "redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1 end "
    "if v == false then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 2 end "
    "return 0";
/* Hands ours over: a tombstone tells the next holder nothing was left pending. */
static const char RELEASE_LUA[] =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then "
    "return redis.call('SET', KEYS[1], '-', 'PX', ARGV[2]) end return 0";

typedef enum bstate { B_FREE, B_TAKING, B_HELD, B_DRAINING } bstate_t;

typedef struct bucket {
    bstate_t state;
    bool busy;          /* a CLAIM in flight */
    bool checking;      /* part of the drain check in flight */
    bool check_bad;     /* that check found something pending, or could not tell */
    int confirms;       /* drain checks passed in a row */
    uint64_t confirmed; /* when the last CLAIM answered 1 was sent */
    uint64_t drain_since;
} bucket_t;

typedef enum req_kind { R_HEARTBEAT, R_CLAIM, R_PENDING, R_OTHER } req_kind_t;

typedef struct req {
    ownership_t *o;
    req_kind_t kind;
    uint32_t bucket;
    uint64_t sent;
} req_t;

struct ownership {
    ownership_ops_t ops;
    ownership_host_t host;
    char *id, *prefix, *group;
    char key[KEY_MAX - 16]; /* <SOCKETIO_REDIS_KEY>:owner:<scope>, a bucket number to add */
    char members_key[KEY_MAX];
    char ttl[16];
    uint32_t ttl_ms;
    bucket_t b[OWNERSHIP_BUCKETS];
    bool gained[OWNERSHIP_BUCKETS], lost[OWNERSHIP_BUCKETS], recover[OWNERSHIP_BUCKETS];
    bool any_moved;
    size_t claims;   /* CLAIM replies due: moved() waits for the whole round */
    size_t checks;   /* XPENDING replies due */
    size_t inflight; /* every reply due */
    char **members;
    size_t nmembers;
    bool heartbeat_busy;
    bool stopping, left, freed;
};

/* ---- hashing ---- */

static uint64_t mix(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

uint32_t ownership_bucket(const char *name, size_t len)
{
    return (uint32_t)(mix(strmap_hash(name, len)) % OWNERSHIP_BUCKETS);
}

int ownership_assign(const char *const *ids, size_t n, uint32_t bucket)
{
    int best = -1;
    uint64_t best_h = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t h = mix(strmap_hash(ids[i], strlen(ids[i])) ^
                         ((uint64_t)(bucket + 1) * 0x9e3779b97f4a7c15ULL));
        /* equal hashes: the smaller id, so every server picks the same one */
        if (best < 0 || h > best_h || (h == best_h && strcmp(ids[i], ids[best]) < 0)) {
            best = (int)i;
            best_h = h;
        }
    }
    return best;
}

/* ---- commands ---- */

static void on_reply(const redisReply *r, void *arg);

static int send_cmd(ownership_t *o, req_kind_t kind, uint32_t bucket, const char *key, int argc,
                    const char **argv)
{
    req_t *q = xmalloc(sizeof(*q));
    *q = (req_t){o, kind, bucket, o->ops.now_ms(o->ops.ctx)};
    int rc = o->ops.command(o->ops.ctx, key, strlen(key), on_reply, q, argc, argv, NULL);
    if (rc) {
        free(q);
        return rc;
    }
    o->inflight++;
    return 0;
}

static void lease_key(const ownership_t *o, uint32_t b, char *out)
{
    snprintf(out, KEY_MAX, "%s:%u", o->key, b);
}

static void send_claim(ownership_t *o, uint32_t b)
{
    char key[KEY_MAX];
    lease_key(o, b, key);
    const char *argv[] = {"EVAL", CLAIM_LUA, "1", key, o->id, o->ttl};
    if (send_cmd(o, R_CLAIM, b, key, 6, argv) == 0) {
        o->b[b].busy = true;
        o->claims++;
    } else if (o->b[b].state == B_TAKING) {
        o->b[b].state = B_FREE;
    }
}

static void send_release(ownership_t *o, uint32_t b)
{
    char key[KEY_MAX];
    lease_key(o, b, key);
    const char *argv[] = {"EVAL", RELEASE_LUA, "1", key, o->id, o->ttl};
    (void)send_cmd(o, R_OTHER, b, key, 6, argv);
    o->b[b].state = B_FREE;
}

/* Tells the host what moved in the round that just ended. */
static void flush(ownership_t *o)
{
    if (o->claims || !o->any_moved || o->left)
        return;
    o->any_moved = false;
    o->host.moved(o->host.arg, o->gained, o->lost, o->recover);
    memset(o->gained, 0, sizeof(o->gained));
    memset(o->lost, 0, sizeof(o->lost));
    memset(o->recover, 0, sizeof(o->recover));
}

static void mark(ownership_t *o, bool *set, uint32_t b)
{
    /* gained then lost in one round (or the reverse) cancel out */
    bool *other = set == o->gained ? o->lost : o->gained;
    if (other[b])
        other[b] = o->recover[b] = false;
    else
        set[b] = true;
    o->any_moved = true;
}

/* ---- membership and assignment ---- */

static void set_members(ownership_t *o, const redisReply *r)
{
    for (size_t i = 0; i < o->nmembers; i++)
        free(o->members[i]);
    o->nmembers = 0;
    o->members = xrealloc(o->members, (r->elements + 1) * sizeof(*o->members));
    bool self = false;
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *e = r->element[i];
        if (e->type != REDIS_REPLY_STRING)
            continue;
        self |= strlen(o->id) == e->len && memcmp(o->id, e->str, e->len) == 0;
        char *m = xmalloc(e->len + 1);
        memcpy(m, e->str, e->len);
        m[e->len] = '\0';
        o->members[o->nmembers++] = m;
    }
    if (!self) /* the script added us; a reply without us is not one to act on alone */
        o->members[o->nmembers++] = xstrdup(o->id);
}

static void reassign(ownership_t *o)
{
    uint64_t now = o->ops.now_ms(o->ops.ctx);
    for (uint32_t b = 0; b < OWNERSHIP_BUCKETS; b++) {
        int who = ownership_assign((const char *const *)o->members, o->nmembers, b);
        bool mine = who >= 0 && strcmp(o->members[who], o->id) == 0;
        bucket_t *k = &o->b[b];
        if (mine && k->state == B_FREE && !k->busy) {
            k->state = B_TAKING;
            send_claim(o, b);
        } else if (!mine && k->state == B_HELD) {
            /* assigned elsewhere: the workers stop, then the lease goes once drained */
            k->state = B_DRAINING;
            k->drain_since = now;
            k->confirms = 0;
            mark(o, o->lost, b);
        } else if (mine && k->state == B_DRAINING) {
            k->state = B_HELD; /* the membership changed back before the lease went */
            mark(o, o->gained, b);
        }
    }
}

static void on_heartbeat(ownership_t *o, const redisReply *r)
{
    o->heartbeat_busy = false;
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        if (r && r->type == REDIS_REPLY_ERROR)
            LOG_WARN("ownership: membership update refused: %s", r->str);
        return;
    }
    size_t before = o->nmembers;
    set_members(o, r);
    if (before != o->nmembers)
        LOG_INFO("ownership: %zu live server%s", o->nmembers, o->nmembers == 1 ? "" : "s");
    if (!o->stopping)
        reassign(o);
    flush(o); /* drains begin now, unless this round's claims are still due */
}

/* ---- leases ---- */

static void on_claim(ownership_t *o, const req_t *q, const redisReply *r)
{
    bucket_t *k = &o->b[q->bucket];
    k->busy = false;
    o->claims--;
    bool ok = r && r->type == REDIS_REPLY_INTEGER;
    if (ok && (r->integer == 1 || r->integer == 2)) {
        if (k->state == B_TAKING) {
            k->state = B_HELD;
            mark(o, o->gained, q->bucket);
            o->recover[q->bucket] = r->integer == 2;
        }
        if (k->state != B_FREE)
            k->confirmed = q->sent;
    } else if (k->state == B_TAKING) {
        k->state = B_FREE; /* held by another server (or no answer): asked again next tick */
    } else if (ok && k->state != B_FREE) {
        /* the lease went to another server (it expired while Redis was out of reach) */
        LOG_WARN("ownership: lost the lease of bucket %u", q->bucket);
        if (k->state == B_HELD)
            mark(o, o->lost, q->bucket);
        k->state = B_FREE;
    }
    flush(o);
}

/* ---- drains ---- */

static bool own_consumer(const ownership_t *o, const redisReply *name)
{
    size_t n = strlen(o->prefix);
    return name->type == REDIS_REPLY_STRING && name->len >= n &&
           memcmp(name->str, o->prefix, n) == 0;
}

/* XPENDING summary: [count, min, max, [[consumer, count]...] or nil]. */
static bool pending_here(const ownership_t *o, const redisReply *r)
{
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 4 || r->element[3]->type != REDIS_REPLY_ARRAY)
        return false;
    const redisReply *cs = r->element[3];
    for (size_t i = 0; i < cs->elements; i++) {
        const redisReply *c = cs->element[i];
        if (c->type != REDIS_REPLY_ARRAY || c->elements < 2 || !own_consumer(o, c->element[0]))
            continue;
        const redisReply *n = c->element[1];
        if ((n->type == REDIS_REPLY_STRING && strcmp(n->str, "0") != 0) ||
            (n->type == REDIS_REPLY_INTEGER && n->integer > 0))
            return true;
    }
    return false;
}

/* A drain that took a whole lease ends anyway: the next owner claims what is left pending. */
static bool drain_overdue(ownership_t *o, uint32_t b, uint64_t now)
{
    if (now - o->b[b].drain_since < o->ttl_ms)
        return false;
    send_release(o, b);
    return true;
}

static void check_done(ownership_t *o)
{
    uint64_t now = o->ops.now_ms(o->ops.ctx);
    for (uint32_t b = 0; b < OWNERSHIP_BUCKETS; b++) {
        bucket_t *k = &o->b[b];
        if (!k->checking)
            continue;
        k->checking = false;
        if (k->state != B_DRAINING)
            continue;
        k->confirms = k->check_bad ? 0 : k->confirms + 1;
        if (k->confirms >= DRAIN_CONFIRMS)
            send_release(o, b);
        else if (drain_overdue(o, b, now))
            LOG_WARN("ownership: bucket %u still has entries pending after %u ms; handing it "
                     "over (its next owner claims them)",
                     b, o->ttl_ms);
    }
}

static void on_pending(ownership_t *o, const req_t *q, const redisReply *r)
{
    /* an error reply (no group, no key) means nothing can be pending there */
    if (!r || (r->type != REDIS_REPLY_ERROR && pending_here(o, r)))
        o->b[q->bucket].check_bad = true;
    if (--o->checks == 0)
        check_done(o);
}

static void ask_pending(const char *name, size_t len, void *arg)
{
    ownership_t *o = arg;
    uint32_t b = ownership_bucket(name, len);
    if (!o->b[b].checking)
        return;
    req_t *q = xmalloc(sizeof(*q));
    *q = (req_t){o, R_PENDING, b, 0};
    const char *argv[] = {"XPENDING", name, o->group};
    size_t lens[] = {8, len, strlen(o->group)};
    if (o->ops.command(o->ops.ctx, name, len, on_reply, q, 3, argv, lens)) {
        free(q);
        o->b[b].check_bad = true;
        return;
    }
    o->inflight++;
    o->checks++;
}

static void start_check(ownership_t *o)
{
    if (o->checks)
        return;
    uint64_t now = o->ops.now_ms(o->ops.ctx);
    if (!o->host.quiet(o->host.arg)) {
        /* a worker may still read (descriptors on their way, or no word from it yet) */
        uint32_t n = 0;
        for (uint32_t b = 0; b < OWNERSHIP_BUCKETS; b++)
            n += o->b[b].state == B_DRAINING && drain_overdue(o, b, now);
        if (n)
            LOG_WARN("ownership: a worker did not say nothing is in flight within %u ms: %u "
                     "bucket%s handed over anyway (the next owner claims what is left pending)",
                     o->ttl_ms, n, n == 1 ? "" : "s");
        return;
    }
    bool want[OWNERSHIP_BUCKETS] = {0};
    bool any = false;
    for (uint32_t b = 0; b < OWNERSHIP_BUCKETS; b++) {
        bucket_t *k = &o->b[b];
        /* o->lost[b]: the host was not told yet, its workers may read on */
        if (k->state == B_DRAINING && !o->lost[b]) {
            want[b] = k->checking = any = true;
            k->check_bad = false;
        }
    }
    if (!any)
        return;
    o->host.each_stream(o->host.arg, want, ask_pending, o);
    if (o->checks == 0)
        check_done(o);
}

/* ---- replies ---- */

static void on_reply(const redisReply *r, void *arg)
{
    req_t *q = arg;
    ownership_t *o = q->o;
    o->inflight--;
    if (!o->freed) {
        switch (q->kind) {
        case R_HEARTBEAT:
            on_heartbeat(o, r);
            break;
        case R_CLAIM:
            on_claim(o, q, r);
            break;
        case R_PENDING:
            on_pending(o, q, r);
            break;
        case R_OTHER:
            break;
        }
    }
    free(q);
    if (o->freed && o->inflight == 0)
        ownership_free(o);
}

/* ---- life ---- */

ownership_t *ownership_new(const ownership_ops_t *ops, const ownership_host_t *host,
                           const ownership_config_t *cfg)
{
    ownership_t *o = xcalloc(1, sizeof(*o));
    o->ops = *ops;
    o->host = *host;
    o->id = xstrdup(cfg->server_id);
    o->prefix = xstrdup(cfg->consumer_prefix);
    o->group = xstrdup(cfg->group);
    o->ttl_ms = cfg->ttl_ms;
    uint64_t scope = strmap_hash(cfg->scope, strlen(cfg->scope));
    snprintf(o->key, sizeof(o->key), "%s:owner:%016llx", cfg->redis_key, (unsigned long long)scope);
    snprintf(o->members_key, sizeof(o->members_key), "%s:owners:%016llx", cfg->redis_key,
             (unsigned long long)scope);
    snprintf(o->ttl, sizeof(o->ttl), "%u", cfg->ttl_ms);
    return o;
}

void ownership_tick(ownership_t *o)
{
    if (o->left)
        return;
    uint64_t now = o->ops.now_ms(o->ops.ctx);
    /* unconfirmed for nearly a lease: another server may take it soon, so stop reading now */
    uint64_t limit =
        o->ttl_ms > 3 * OWNERSHIP_TICK_MS ? o->ttl_ms - 2 * OWNERSHIP_TICK_MS : o->ttl_ms / 2;
    uint32_t expired = 0;
    for (uint32_t b = 0; b < OWNERSHIP_BUCKETS; b++) {
        bucket_t *k = &o->b[b];
        if ((k->state == B_HELD || k->state == B_DRAINING) && now - k->confirmed > limit) {
            if (k->state == B_HELD)
                mark(o, o->lost, b);
            k->state = B_FREE;
            expired++;
        }
    }
    if (expired)
        LOG_WARN("ownership: %u lease%s not renewed for %llu ms (Redis out of reach?): their "
                 "streams are no longer read here",
                 expired, expired == 1 ? "" : "s", (unsigned long long)limit);
    if (!o->heartbeat_busy) {
        const char *argv[] = {"EVAL", HEARTBEAT_LUA, "1", o->members_key, o->id, o->ttl};
        o->heartbeat_busy = send_cmd(o, R_HEARTBEAT, 0, o->members_key, 6, argv) == 0;
    }
    for (uint32_t b = 0; b < OWNERSHIP_BUCKETS; b++) {
        bucket_t *k = &o->b[b];
        if ((k->state == B_HELD || k->state == B_DRAINING) && !k->busy)
            send_claim(o, b);
    }
    start_check(o);
    flush(o);
}

bool ownership_holds(const ownership_t *o, const char *name, size_t len)
{
    return o->b[ownership_bucket(name, len)].state == B_HELD;
}

uint32_t ownership_held(const ownership_t *o)
{
    uint32_t n = 0;
    for (uint32_t b = 0; b < OWNERSHIP_BUCKETS; b++)
        n += o->b[b].state == B_HELD || o->b[b].state == B_DRAINING;
    return n;
}

uint32_t ownership_members(const ownership_t *o)
{
    return (uint32_t)o->nmembers;
}

void ownership_stop(ownership_t *o)
{
    o->stopping = true;
}

void ownership_leave(ownership_t *o)
{
    if (o->left)
        return;
    for (uint32_t b = 0; b < OWNERSHIP_BUCKETS; b++) {
        bstate_t s = o->b[b].state;
        if (s == B_HELD || s == B_DRAINING || s == B_TAKING)
            send_release(o, b);
    }
    const char *argv[] = {"ZREM", o->members_key, o->id};
    (void)send_cmd(o, R_OTHER, 0, o->members_key, 3, argv);
    o->left = true;
}

void ownership_free(ownership_t *o)
{
    if (!o)
        return;
    o->freed = true;
    if (o->inflight)
        return; /* the last reply frees it */
    for (size_t i = 0; i < o->nmembers; i++)
        free(o->members[i]);
    free(o->members);
    free(o->id);
    free(o->prefix);
    free(o->group);
    free(o);
}
