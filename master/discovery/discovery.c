/* discovery: see discovery.h. */
#include "master/discovery/discovery.h"

#include <errno.h>
#include <fnmatch.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/stream_exclude.h"
#include "common/xalloc.h"
#include "master/discovery/dispatch.h"
#include "master/discovery/keyevents.h"
#include "master/discovery/ownership.h"
#include "master/discovery/pools.h"
#include "master/discovery/scan.h"
#include "shm/stats.h"
#include "shm/workdesc.h"

#define SCAN_DUTY_FACTOR 4 /* pause >= 4 x the last pass: SCAN busy at most 20% of the time */
/* While key events announce new and deleted streams, SCAN is only the safety net: a pass every
 * DISCOVERY_SAFETY_INTERVAL, its steps SAFETY_STEP_MS apart so it never takes Redis for long. */
#define SAFETY_STEP_MS 50

struct discovery {
    uv_loop_t *loop;
    const cfg_t *first; /* the discovery settings: the start's, a reload keeps them */
    const cfg_t *cfg;   /* the current configuration: pools, PRIORITY_STREAMS */
    shm_region_t *region;
    stats_global_t *g;
    scan_t *scan;
    keyevents_t *kev; /* STREAM_KEYSPACE_EVENTS: new and deleted streams at once; else NULL */
    pools_t *pools;
    dispatch_t *dispatch;
    redis_client_t *redis;
    ownership_t *own;    /* servers sharing an adapter: the streams this one reads; else NULL */
    uv_timer_t own_tick; /* its OWNERSHIP_TICK_MS tick */
    char consumers[160]; /* "<hostname>:<PORT>:", the workers' consumer names but their number */
    char recover_idle[16];
    size_t recovering;  /* XAUTOCLAIMs in flight (see own_moved) */
    uint32_t fence_seq; /* the last WORKDESC_FENCE sent (see own_moved) */
    bool closing;
    uint32_t workers;
    uint32_t *worker_pools; /* capacity entries: pools per worker number, for the stats */
    uv_timer_t pass;        /* the next pass */
    uint64_t cycle;         /* current pass number, from 1 */
    uint64_t pass_started_ms;
    bool scanning;        /* a pass is under way */
    bool events;          /* key events subscribed and published: SCAN is the safety net */
    bool safety_pass;     /* this pass is a periodic safety pass: its steps are spread */
    bool catch_up;        /* the next pass follows a (re)subscription: not spread */
    uv_timer_t step_t;    /* the next step of a spread pass */
    size_t priority_next; /* the next PRIORITY_STREAMS entry to look up, before the first pass */
    bool priority_done;
    bool stopped;
    void (*done)(void *arg);
    void *done_arg;
    int open; /* parts still to close */
};

/* ---- what the workers are sent ---- */

static void send_stream(uint32_t pool, uint32_t worker, const char *name, size_t len, void *arg)
{
    dispatch_stream(arg, WORKDESC_POOL_ADD, pool, worker, name, len);
}

static void unassign_stream(uint32_t pool, uint32_t worker, const char *name, size_t len, void *arg)
{
    dispatch_stream(arg, WORKDESC_STREAM_REMOVE, pool, worker, name, len);
}

/* Streams, pools and each serving process's pools, in the shared stats. */
static void publish(discovery_t *d)
{
    STATS_SET(d->g->streams, pools_streams(d->pools));
    STATS_SET(d->g->pools, pools_count(d->pools));
    pools_count_by_slot(d->pools, d->worker_pools, d->workers);
    for (uint32_t i = 0; i < d->workers; i++) {
        int32_t block = dispatch_block(d->dispatch, i);
        if (block >= 0)
            STATS_SET(((stats_worker_t *)shm_region_slot_stats(d->region, (uint32_t)block))->pools,
                      d->worker_pools[i]);
    }
}

/* STREAM_KEYSPACE_EVENTS: tells `worker` whether the key events it is forwarded are complete. */
static void send_events_state(discovery_t *d, uint32_t worker)
{
    if (d->kev)
        dispatch_stream(d->dispatch, WORKDESC_EVENTS, d->events ? 1 : 0, worker, NULL, 0);
}

void discovery_attach(discovery_t *d, uint32_t worker, uint32_t block)
{
    dispatch_attach(d->dispatch, worker, block);
    pools_foreach_in_slot(d->pools, worker, send_stream, d->dispatch);
    send_events_state(d, worker);
    publish(d);
}

void discovery_detach(discovery_t *d, uint32_t worker)
{
    dispatch_detach(d->dispatch, worker);
}

void discovery_resend(discovery_t *d, uint32_t worker)
{
    pools_foreach_in_slot(d->pools, worker, send_stream, d->dispatch);
    send_events_state(d, worker);
}

/* Records that `key` exists; true when it is new (the caller publishes the stats). xadd: its key
 * event, forwarded ahead of the stream itself so that its reader reads it at once. */
static bool on_new_stream(discovery_t *d, const char *key, size_t len, bool priority, bool xadd)
{
    uint32_t pool, worker;
    if (stream_exclude_match(d->first, key, len))
        return false; /* not a room: reading it in a group would delete someone's entries */
    /* written for the back end: reading it as a room would take its entries away */
    if (config_is_own_stream(d->cfg, key, len))
        return false;
    if (pools_add(d->pools, key, len, priority, d->cycle, &pool, &worker) != 1)
        return false;
    LOG_DEBUG("stream %.*s -> pool %u on worker %u", (int)len, key, pool, worker);
    if (xadd)
        dispatch_stream(d->dispatch, WORKDESC_STREAM_EVENT, pool, worker, key, len);
    dispatch_stream(d->dispatch, WORKDESC_POOL_ADD, pool, worker, key, len);
    return true;
}

static void on_gone(uint32_t pool, uint32_t worker, const char *name, size_t len, void *arg)
{
    LOG_DEBUG("stream %.*s is gone", (int)len, name);
    dispatch_stream(arg, WORKDESC_STREAM_REMOVE, pool, worker, name, len);
}

/* ---- SCAN passes ---- */

static void step(discovery_t *d);
static void next_pass(discovery_t *d, uint64_t ms);

static void on_scan_key(const char *key, size_t len, void *arg)
{
    discovery_t *d = arg;
    on_new_stream(d, key, len, config_is_priority(d->cfg, key, len), false);
}

/* The pass is over: SCAN returns every key that existed for the whole pass, so one it did not
 * return is gone. */
static void sweep(discovery_t *d)
{
    size_t gone = pools_sweep(d->pools, d->cycle, on_gone, d->dispatch);
    if (gone)
        LOG_INFO("discovery: %zu stream%s gone since the last pass", gone, gone == 1 ? "" : "s");
    d->cycle++;
    STATS_ADD(d->g->scan_cycles, 1);
}

static void on_step_due(uv_timer_t *t)
{
    step(t->data);
}

static void on_step(int rc, void *arg)
{
    discovery_t *d = arg;
    if (d->stopped)
        return;
    if (rc == 1)
        sweep(d);
    publish(d);
    uint64_t pause = (uint64_t)d->first->discovery_interval_ms;
    if (rc != 0)
        d->scanning = false;
    if (rc == 0 && d->safety_pass) {
        uv_timer_start(&d->step_t, on_step_due, SAFETY_STEP_MS, 0);
    } else if (rc == 0) {
        step(d);
    } else if (rc < 0) {
        next_pass(d, pause); /* it restarts at cursor 0 */
    } else if (d->events) {
        next_pass(d, (uint64_t)d->first->discovery_safety_ms);
    } else {
        /* a big keyspace is not rescanned back to back: idle Redis CPU stays bounded */
        uint64_t took = uv_now(d->loop) - d->pass_started_ms;
        next_pass(d, pause < took * SCAN_DUTY_FACTOR ? took * SCAN_DUTY_FACTOR : pause);
    }
}

static void step(discovery_t *d)
{
    if (scan_step(d->scan, d->first, on_scan_key, on_step, d) != 0) {
        d->scanning = false;
        next_pass(d, (uint64_t)d->first->discovery_interval_ms);
    }
}

static void lookup_priority(discovery_t *d);

/* PRIORITY_STREAMS enter first, so they get the first (dedicated) pools. */
static void on_priority_type(int rc, void *arg)
{
    discovery_t *d = arg;
    if (d->stopped)
        return;
    if (rc < 0) { /* looked up again before the next pass */
        step(d);
        return;
    }
    if (d->priority_next < d->cfg->priority.n) {
        const char *name = d->cfg->priority.item[d->priority_next];
        if (rc == 1 && on_new_stream(d, name, strlen(name), true, false))
            publish(d);
        d->priority_next++;
    }
    lookup_priority(d);
}

static void lookup_priority(discovery_t *d)
{
    if (d->priority_next >= d->cfg->priority.n) {
        d->priority_done = true;
        step(d);
    } else if (scan_is_stream(d->scan, d->cfg->priority.item[d->priority_next], on_priority_type,
                              d)) {
        step(d);
    }
}

static void on_pass_due(uv_timer_t *t)
{
    discovery_t *d = t->data;
    d->pass_started_ms = uv_now(d->loop);
    d->scanning = true;
    /* the first pass and the one after a (re)subscription find what events could not tell
     * at full speed; the periodic ones are spread */
    d->safety_pass = d->events && d->cycle > 1 && !d->catch_up;
    d->catch_up = false;
    if (d->priority_done)
        step(d);
    else
        lookup_priority(d);
}

static void next_pass(discovery_t *d, uint64_t ms)
{
    if (!d->scanning)
        uv_timer_start(&d->pass, on_pass_due, ms, 0);
}

/* ---- key events ---- */

/* A key event: SCAN would see the same change, seconds later on a big keyspace. */
static void on_keyevent(keyevent_kind_t kind, const char *key, size_t len, void *arg)
{
    discovery_t *d = arg;
    if (d->stopped)
        return;
    if (kind == KEYEVENT_UP || kind == KEYEVENT_DOWN) {
        bool was = d->events;
        d->events = kind == KEYEVENT_UP;
        for (uint32_t i = 0; was != d->events && i < d->workers; i++)
            send_events_state(d, i);
        if (d->events)
            LOG_INFO(
                "discovery: key events on: a SCAN pass every %d ms (DISCOVERY_SAFETY_INTERVAL)",
                d->first->discovery_safety_ms);
        else
            LOG_INFO("discovery: key events off: SCAN passes every DISCOVERY_INTERVAL");
        /* up again: a pass at once finds what the outage hid; down: passes as without events */
        if (d->events && was != d->events && d->cycle > 1) {
            d->catch_up = true;
            next_pass(d, 0);
        } else if (!d->events) {
            d->safety_pass = false;
            next_pass(d, (uint64_t)d->first->discovery_interval_ms);
        }
        return;
    }
    if (kind == KEYEVENT_DEL) {
        uint32_t pool, worker;
        if (pools_remove(d->pools, key, len, &pool, &worker) == 1) {
            LOG_INFO("stream %.*s was deleted", (int)len, key);
            dispatch_stream(d->dispatch, WORKDESC_STREAM_REMOVE, pool, worker, key, len);
            publish(d);
        }
        return;
    }
    /* STREAM_PATTERN is a Redis glob; a key with a NUL byte cannot match it here */
    if (strlen(key) != len || fnmatch(d->first->stream_pattern, key, 0) != 0)
        return;
    /* the one subscription of this server: its readers learn of the entries from here */
    uint32_t pool, worker;
    if (on_new_stream(d, key, len, config_is_priority(d->cfg, key, len), true))
        publish(d);
    else if (pools_find(d->pools, key, len, &pool, &worker))
        dispatch_stream(d->dispatch, WORKDESC_STREAM_EVENT, pool, worker, key, len);
}

/* ---- one reader per stream across servers (master/discovery/ownership) ---- */

static int own_command(void *ctx, const char *key, size_t key_len, ownership_reply_fn cb, void *arg,
                       int argc, const char **argv, const size_t *lens)
{
    return redis_client_command(((discovery_t *)ctx)->redis, key, key_len, cb, arg, argc, argv,
                                lens);
}

static uint64_t own_now(void *ctx)
{
    return uv_now(((discovery_t *)ctx)->loop);
}

typedef struct moved_ctx {
    discovery_t *d;
    const bool *gained, *lost, *recover;
} moved_ctx_t;

static void part_closed(discovery_t *d);

/* A stream whose entries a dead server may have left pending, on its way to a worker. */
typedef struct recovery {
    discovery_t *d;
    uint32_t pool, worker;
    size_t len;
    char name[];
} recovery_t;

static void on_recovered(const redisReply *r, void *arg)
{
    recovery_t *q = arg;
    discovery_t *d = q->d;
    d->recovering--;
    if (d->closing) {
        free(q);
        part_closed(d);
        return;
    }
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements >= 2 && r->element[1]->elements)
        LOG_INFO("ownership: %zu entries %.*s's last reader left pending go first",
                 r->element[1]->elements, (int)q->len, q->name);
    /* whatever the answer: the reader's own XAUTOCLAIM sweep is the safety net */
    dispatch_stream(d->dispatch, WORKDESC_POOL_ADD, q->pool, q->worker, q->name, q->len);
    free(q);
}

/*
 * Entries the dead holder had read but not acknowledged become the new worker's before it reads
 * the stream: its reader reads its own pending entries first (history), so they are delivered
 * before newer ones rather than after them when its XAUTOCLAIM sweep finds them.
 */
static void recover_stream(discovery_t *d, uint32_t pool, uint32_t worker, const char *name,
                           size_t len)
{
    recovery_t *q = xmalloc(sizeof(*q) + len);
    *q = (recovery_t){d, pool, worker, len};
    memcpy(q->name, name, len);
    char consumer[192];
    snprintf(consumer, sizeof(consumer), "%s%u", d->consumers, worker);
    const char *argv[] = {
        "XAUTOCLAIM", name,    d->first->consumer_group, consumer, d->recover_idle, "0-0", "COUNT",
        "1000",       "JUSTID"};
    size_t lens[] = {10, len, strlen(argv[2]), strlen(consumer), strlen(argv[4]), 3, 5, 4, 6};
    if (redis_client_command(d->redis, name, len, on_recovered, q, 9, argv, lens)) {
        free(q);
        dispatch_stream(d->dispatch, WORKDESC_POOL_ADD, pool, worker, name, len);
        return;
    }
    d->recovering++;
}

static void move_stream(uint32_t pool, uint32_t worker, const char *name, size_t len, void *arg)
{
    moved_ctx_t *mc = arg;
    uint32_t b = ownership_bucket(name, len);
    if (mc->gained[b] && mc->recover[b])
        recover_stream(mc->d, pool, worker, name, len);
    else if (mc->gained[b])
        dispatch_stream(mc->d->dispatch, WORKDESC_POOL_ADD, pool, worker, name, len);
    else if (mc->lost[b])
        dispatch_stream(mc->d->dispatch, WORKDESC_STREAM_REMOVE, pool, worker, name, len);
}

static void own_moved(void *arg, const bool *gained, const bool *lost, const bool *recover)
{
    discovery_t *d = arg;
    moved_ctx_t mc = {d, gained, lost, recover};
    pools_foreach(d->pools, move_stream, &mc);
    for (uint32_t b = 0; b < OWNERSHIP_BUCKETS; b++) {
        if (lost[b]) {
            /* the lease goes once each worker says nothing is in flight for them (own_quiet) */
            dispatch_fence(d->dispatch, ++d->fence_seq);
            break;
        }
    }
    STATS_SET(d->g->owned_buckets, ownership_held(d->own));
}

typedef struct each_ctx {
    const bool *want;
    ownership_stream_fn fn;
    void *arg;
} each_ctx_t;

static void each_in(uint32_t pool, uint32_t worker, const char *name, size_t len, void *arg)
{
    (void)pool;
    (void)worker;
    each_ctx_t *ec = arg;
    if (ec->want[ownership_bucket(name, len)])
        ec->fn(name, len, ec->arg);
}

static void own_each_stream(void *arg, const bool *want, ownership_stream_fn fn, void *fn_arg)
{
    discovery_t *d = arg;
    each_ctx_t ec = {want, fn, fn_arg};
    pools_foreach(d->pools, each_in, &ec);
}

static bool own_quiet(void *arg)
{
    return dispatch_quiet(((discovery_t *)arg)->dispatch);
}

static bool own_keep(void *arg, const char *name, size_t len)
{
    return ownership_holds(arg, name, len);
}

static void on_own_tick(uv_timer_t *t)
{
    discovery_t *d = t->data;
    ownership_tick(d->own);
    STATS_SET(d->g->owned_buckets, ownership_held(d->own));
    STATS_SET(d->g->owner_servers, ownership_members(d->own));
}

static void own_setup(discovery_t *d, const cfg_t *cfg, const char *server_id)
{
    char host[128] = "localhost";
    gethostname(host, sizeof(host) - 1);
    host[sizeof(host) - 1] = '\0';
    /* the workers' consumer names (worker.c): <hostname>:<PORT>:<worker number> */
    snprintf(d->consumers, sizeof(d->consumers), "%s:%d:", host, cfg->port);
    /* a dead holder's entries are idle for more than half a lease when its buckets move (its
     * last renewal was at most a tick before it died) */
    int half = cfg->stream_owner_ttl_ms / 2;
    int idle = cfg->stream_claim_idle_ms < half ? cfg->stream_claim_idle_ms : half;
    snprintf(d->recover_idle, sizeof(d->recover_idle), "%d", idle);
    ownership_ops_t ops = {d, own_command, own_now};
    ownership_host_t h = {d, own_moved, own_each_stream, own_quiet};
    buf_t scope;
    buf_init(&scope);
    buf_printf(&scope, "%s\n%s\n", cfg->consumer_group, cfg->stream_pattern);
    stream_exclude_describe(cfg, &scope);
    ownership_config_t oc = {cfg->redis_key,      server_id,  d->consumers,
                             cfg->consumer_group, scope.data, (uint32_t)cfg->stream_owner_ttl_ms};
    d->own = ownership_new(&ops, &h, &oc);
    buf_free(&scope);
    dispatch_set_filter(d->dispatch, own_keep, d->own);
    uv_timer_init(d->loop, &d->own_tick);
    d->own_tick.data = d;
    uv_timer_start(&d->own_tick, on_own_tick, 0, OWNERSHIP_TICK_MS);
}

/* ---- life ---- */

discovery_t *discovery_new(redis_topology_t *topo, redis_client_t *redis, const cfg_t *cfg,
                           shm_region_t *region, uint32_t capacity, const char *server_id)
{
    uv_loop_t *loop = redis_topology_loop(topo);
    discovery_t *d = xcalloc(1, sizeof(*d));
    d->loop = loop;
    d->first = d->cfg = cfg;
    d->region = region;
    d->g = shm_region_global(region);
    d->workers = (uint32_t)cfg->cluster_workers;
    d->cycle = 1;
    d->worker_pools = xcalloc(capacity, sizeof(*d->worker_pools));
    d->pools = pools_new((uint32_t)cfg->pool_size, (uint32_t)cfg->max_pools, d->workers);
    d->scan = scan_new(redis);
    d->dispatch = dispatch_new(loop, region, capacity);
    d->redis = redis;
    if (cfg->adapter != CONFIG_ADAPTER_OFF)
        own_setup(d, cfg, server_id);
    buf_t ex;
    buf_init(&ex);
    stream_exclude_describe(cfg, &ex);
    LOG_INFO("discovery: streams matching %s, except %s", cfg->stream_pattern, ex.data);
    buf_free(&ex);
    if (cfg->keyspace_events)
        d->kev = keyevents_new(topo, cfg, on_keyevent, d);
    uv_timer_init(loop, &d->pass);
    d->pass.data = d;
    uv_timer_init(loop, &d->step_t);
    d->step_t.data = d;
    next_pass(d, 0);
    return d;
}

int discovery_reload(discovery_t *d, const cfg_t *cfg)
{
    uint32_t to = (uint32_t)cfg->cluster_workers;
    /* limits first: a refused resize (growing) then changes nothing else, and shrinking never
     * fails; config_load already refused the zeros both would refuse */
    int rc = pools_set_limits(d->pools, (uint32_t)cfg->pool_size, (uint32_t)cfg->max_pools);
    if (!rc && to > d->workers)
        rc = pools_resize(d->pools, to);
    if (rc)
        return rc;
    if (to < d->workers) {
        /* a removed worker stops reading its streams now, before their new owner starts: a
         * stream is never read by two workers at once (entries wait in Redis meanwhile) */
        for (uint32_t i = to; i < d->workers; i++)
            pools_foreach_in_slot(d->pools, i, unassign_stream, d->dispatch);
        pools_resize(d->pools, to);
    }
    d->workers = to;
    d->cfg = cfg;
    publish(d);
    return 0;
}

void discovery_stop(discovery_t *d)
{
    d->stopped = true;
    uv_timer_stop(&d->pass);
    uv_timer_stop(&d->step_t);
    /* the leases are still renewed while the workers drain: they go in discovery_close */
    if (d->own)
        ownership_stop(d->own);
}

static void part_closed(discovery_t *d)
{
    if (--d->open > 0)
        return;
    scan_free(d->scan);
    pools_free(d->pools);
    free(d->worker_pools);
    void (*done)(void *) = d->done;
    void *arg = d->done_arg;
    free(d);
    if (done)
        done(arg);
}

static void on_timer_closed(uv_handle_t *h)
{
    part_closed(h->data);
}

static void on_kev_closed(void *arg)
{
    part_closed(arg);
}

void discovery_close(discovery_t *d, void (*done)(void *arg), void *arg)
{
    discovery_stop(d);
    d->done = done;
    d->done_arg = arg;
    d->closing = true;
    /* the timers, keyevents, and each reply still due close a part */
    d->open = (d->kev ? 3 : 2) + (int)d->recovering;
    if (d->own) {
        /* the workers are gone: the next owners may read at once */
        ownership_leave(d->own);
        ownership_free(d->own);
        d->own = NULL;
        d->open++;
        uv_close((uv_handle_t *)&d->own_tick, on_timer_closed);
    }
    dispatch_close(d->dispatch);
    if (d->kev)
        keyevents_close(d->kev, on_kev_closed, d);
    uv_close((uv_handle_t *)&d->pass, on_timer_closed);
    uv_close((uv_handle_t *)&d->step_t, on_timer_closed);
}
