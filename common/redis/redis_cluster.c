/* redis_cluster: see redis_cluster.h. */
#include "common/redis/redis_cluster.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/xalloc.h"

#define DEF_REFRESH_MS 10000

struct redis_cluster {
    uv_loop_t *loop;
    redis_addr_t *seeds;
    size_t nseeds;
    redis_conn_t *ctl;
    redis_slotmap_t *map;
    uv_timer_t tick;   /* periodic refresh */
    uv_timer_t notify; /* 0 ms: one "changed" for any number of patches in a loop turn */
    size_t cand;       /* next node to try for the control connection */
    bool inflight;     /* CLUSTER SLOTS sent, no answer yet */
    bool again;        /* asked for during that one */
    bool warned;
    bool closing;
    int parts; /* control connection + 2 timers */
    uint64_t changes;
    redis_cluster_fn changed;
    void *arg;
    void (*done)(void *arg);
    void *done_arg;
};

static void send_slots(redis_cluster_t *cl);

static void part_closed(redis_cluster_t *cl)
{
    if (--cl->parts)
        return;
    void (*done)(void *) = cl->done;
    void *done_arg = cl->done_arg;
    redis_slotmap_free(cl->map);
    free(cl->seeds);
    free(cl);
    if (done)
        done(done_arg);
}

static void on_handle_closed(uv_handle_t *h)
{
    part_closed(h->data);
}

static void on_ctl_closed(void *arg)
{
    part_closed(arg);
}

static void on_notify(uv_timer_t *t)
{
    redis_cluster_t *cl = t->data;
    if (!cl->closing && cl->changed)
        cl->changed(cl->arg);
}

static void changed_soon(redis_cluster_t *cl)
{
    cl->changes++;
    if (!uv_is_active((uv_handle_t *)&cl->notify))
        uv_timer_start(&cl->notify, on_notify, 0, 0);
}

/* The next address for the control connection: known nodes first (masters before replicas),
 * then the seeds, round robin. */
static const redis_addr_t *next_candidate(redis_cluster_t *cl)
{
    size_t known = cl->map ? redis_slotmap_count(cl->map) : 0;
    size_t total = known + cl->nseeds;
    size_t i = cl->cand++ % total;
    if (i >= known)
        return &cl->seeds[i - known];
    /* masters first: index i among masters, then among replicas */
    size_t k = 0;
    for (int pass = 0; pass < 2; pass++) {
        for (size_t j = 0; j < known; j++) {
            if (redis_slotmap_is_master(cl->map, j) == (pass == 0) && k++ == i)
                return redis_slotmap_addr(cl->map, j);
        }
    }
    return &cl->seeds[0];
}

static void try_next(redis_cluster_t *cl)
{
    const redis_addr_t *a = next_candidate(cl);
    redis_conn_retarget(cl->ctl, a->host, a->port, false);
}

static void install(redis_cluster_t *cl, redis_slotmap_t *m)
{
    if (cl->map && redis_slotmap_same(cl->map, m)) {
        redis_slotmap_free(m);
        return;
    }
    redis_slotmap_free(cl->map);
    cl->map = m;
    changed_soon(cl);
}

static void on_slots(const redisReply *r, void *arg)
{
    redis_cluster_t *cl = arg;
    cl->inflight = false;
    if (!r || cl->closing)
        return; /* the connection went: its event moves on to the next node */
    redis_addr_t asked;
    snprintf(asked.host, sizeof(asked.host), "%s", redis_conn_host(cl->ctl));
    asked.port = redis_conn_port(cl->ctl);
    redis_slotmap_t *m = NULL;
    if (r->type == REDIS_REPLY_ERROR || redis_slotmap_parse(r, &asked, &m)) {
        if (!cl->warned)
            LOG_WARN("redis cluster: %s:%d cannot give the slot map: %.200s", asked.host,
                     asked.port, r->type == REDIS_REPLY_ERROR ? r->str : "malformed reply");
        cl->warned = true;
        try_next(cl);
        return;
    }
    cl->warned = false;
    install(cl, m);
    if (cl->again) {
        cl->again = false;
        send_slots(cl);
    }
}

static void send_slots(redis_cluster_t *cl)
{
    if (cl->closing)
        return;
    if (cl->inflight) {
        cl->again = true;
        return;
    }
    const char *argv[2] = {"CLUSTER", "SLOTS"};
    if (redis_conn_command(cl->ctl, on_slots, cl, 2, argv, NULL) == 0)
        cl->inflight = true;
    /* not up: the UP event asks */
}

static void on_ctl_event(redis_conn_t *c, redis_conn_event_t ev, void *arg)
{
    (void)c;
    redis_cluster_t *cl = arg;
    if (ev == REDIS_CONN_UP) {
        cl->again = false;
        send_slots(cl);
        return;
    }
    cl->inflight = false;
    try_next(cl);
}

static const redis_conn_cbs_t ctl_cbs = {.event = on_ctl_event};

static void on_tick(uv_timer_t *t)
{
    send_slots(t->data);
}

redis_cluster_t *redis_cluster_new(uv_loop_t *loop, const redis_addr_t *seeds, size_t n,
                                   const redis_conn_opts_t *opts, uint32_t refresh_ms,
                                   redis_cluster_fn changed, void *arg)
{
    redis_cluster_t *cl = xcalloc(1, sizeof(*cl));
    cl->loop = loop;
    cl->seeds = xmalloc(n * sizeof(*seeds));
    memcpy(cl->seeds, seeds, n * sizeof(*seeds));
    cl->nseeds = n;
    cl->changed = changed;
    cl->arg = arg;
    redis_conn_opts_t o = *opts;
    o.name = "cluster-map";
    o.db = 0;
    o.require_primary = false;
    cl->ctl = redis_conn_new(loop, seeds[0].host, seeds[0].port, &o, &ctl_cbs, cl);
    cl->cand = 1;
    uv_timer_init(loop, &cl->tick);
    uv_timer_init(loop, &cl->notify);
    cl->tick.data = cl->notify.data = cl;
    cl->parts = 3;
    uint32_t every = refresh_ms ? refresh_ms : DEF_REFRESH_MS;
    uv_timer_start(&cl->tick, on_tick, every, every);
    return cl;
}

const redis_slotmap_t *redis_cluster_map(const redis_cluster_t *cl)
{
    return cl->map;
}

void redis_cluster_refresh(redis_cluster_t *cl)
{
    send_slots(cl);
}

void redis_cluster_moved(redis_cluster_t *cl, const redis_redirect_t *r, const char *from_host)
{
    if (cl->closing)
        return;
    redis_addr_t a = r->addr;
    if (!a.host[0])
        snprintf(a.host, sizeof(a.host), "%s", from_host);
    if (!cl->map)
        cl->map = redis_slotmap_new();
    int owner = redis_slotmap_owner(cl->map, r->slot);
    if (owner < 0 || redis_slotmap_find(cl->map, &a) != owner) {
        redis_slotmap_move(cl->map, r->slot, &a);
        changed_soon(cl);
    }
    send_slots(cl);
}

uint64_t redis_cluster_changes(const redis_cluster_t *cl)
{
    return cl->changes;
}

void redis_cluster_close(redis_cluster_t *cl, void (*done)(void *arg), void *arg)
{
    if (cl->closing)
        return;
    cl->closing = true;
    cl->done = done;
    cl->done_arg = arg;
    redis_conn_close(cl->ctl, on_ctl_closed, cl);
    uv_close((uv_handle_t *)&cl->tick, on_handle_closed);
    uv_close((uv_handle_t *)&cl->notify, on_handle_closed);
}
