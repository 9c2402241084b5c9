/* pools: see pools.h. Pool ids are indices into `pools`; an emptied pool is reused. */
#include "master/discovery/pools.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/strmap.h"
#include "common/xalloc.h"

typedef struct pool {
    uint32_t slot;
    uint32_t size;
    bool priority;
} pool_t;

typedef struct stream_rec {
    uint32_t pool;
    uint64_t seen;
} stream_rec_t;

struct pools {
    strmap_t *streams; /* name -> stream_rec_t */
    pool_t *pools;
    uint32_t npools;
    uint32_t pool_size;
    uint32_t max_pools;
    uint32_t nslots;
    uint32_t *slot_load; /* pools per slot */
};

pools_t *pools_new(uint32_t pool_size, uint32_t max_pools, uint32_t nslots)
{
    pools_t *p = xcalloc(1, sizeof(*p));
    p->pool_size = pool_size;
    p->max_pools = max_pools;
    p->nslots = nslots;
    p->streams = strmap_new();
    p->pools = xcalloc(max_pools, sizeof(*p->pools));
    p->slot_load = xcalloc(nslots, sizeof(*p->slot_load));
    return p;
}

void pools_free(pools_t *p)
{
    if (!p)
        return;
    strmap_free_values(p->streams, NULL);
    strmap_free(p->streams);
    free(p->pools);
    free(p->slot_load);
    free(p);
}

static uint32_t least_loaded_slot(const pools_t *p)
{
    uint32_t best = 0;
    for (uint32_t s = 1; s < p->nslots; s++) {
        if (p->slot_load[s] < p->slot_load[best])
            best = s;
    }
    return best;
}

/* A pool of the right class with room, else a new pool, else the smallest of the class. */
static uint32_t choose_pool(pools_t *p, bool priority)
{
    uint32_t smallest = UINT32_MAX;
    uint32_t empty = UINT32_MAX;
    for (uint32_t i = 0; i < p->npools; i++) {
        pool_t *pl = &p->pools[i];
        if (pl->size == 0) {
            if (empty == UINT32_MAX)
                empty = i;
            continue;
        }
        if (pl->priority != priority)
            continue;
        if (pl->size < p->pool_size)
            return i;
        if (smallest == UINT32_MAX || pl->size < p->pools[smallest].size)
            smallest = i;
    }
    if (empty != UINT32_MAX) {
        p->pools[empty].priority = priority;
        return empty;
    }
    if (p->npools < p->max_pools) {
        uint32_t id = p->npools++;
        pool_t *pl = &p->pools[id];
        pl->slot = least_loaded_slot(p);
        pl->priority = priority;
        p->slot_load[pl->slot]++;
        return id;
    }
    if (smallest != UINT32_MAX)
        return smallest;
    /* every pool belongs to the other class: share the smallest rather than drop the stream */
    smallest = 0;
    for (uint32_t i = 1; i < p->npools; i++) {
        if (p->pools[i].size < p->pools[smallest].size)
            smallest = i;
    }
    return smallest;
}

int pools_add(pools_t *p, const char *name, size_t len, bool priority, uint64_t cycle,
              uint32_t *pool, uint32_t *slot)
{
    stream_rec_t *rec = strmap_get(p->streams, name, len);
    if (rec) {
        rec->seen = cycle;
        return 0;
    }
    rec = xmalloc(sizeof(*rec));
    rec->pool = choose_pool(p, priority);
    rec->seen = cycle;
    strmap_put(p->streams, name, len, rec);
    p->pools[rec->pool].size++;
    *pool = rec->pool;
    *slot = p->pools[rec->pool].slot;
    return 1;
}

int pools_find(const pools_t *p, const char *name, size_t len, uint32_t *pool, uint32_t *slot)
{
    const stream_rec_t *rec = strmap_get(p->streams, name, len);
    if (!rec)
        return 0;
    *pool = rec->pool;
    *slot = p->pools[rec->pool].slot;
    return 1;
}

int pools_remove(pools_t *p, const char *name, size_t len, uint32_t *pool, uint32_t *slot)
{
    stream_rec_t *rec = strmap_del(p->streams, name, len);
    if (!rec)
        return 0;
    *pool = rec->pool;
    *slot = p->pools[rec->pool].slot;
    p->pools[rec->pool].size--;
    free(rec);
    return 1;
}

typedef struct sweep_ctx {
    const pools_t *p;
    uint64_t min_cycle;
    char **names;
    size_t *lens;
    size_t n, cap;
} sweep_ctx_t;

static void collect_stale(const char *key, size_t len, void *value, void *arg)
{
    sweep_ctx_t *sc = arg;
    const stream_rec_t *rec = value;
    if (rec->seen >= sc->min_cycle)
        return;
    if (sc->n == sc->cap) {
        sc->cap = sc->cap ? sc->cap * 2 : 16;
        sc->names = xrealloc(sc->names, sc->cap * sizeof(*sc->names));
        sc->lens = xrealloc(sc->lens, sc->cap * sizeof(*sc->lens));
    }
    /* keys are NUL-terminated copies owned by the map and stay valid until deleted */
    sc->names[sc->n] = (char *)key;
    sc->lens[sc->n++] = len;
}

size_t pools_sweep(pools_t *p, uint64_t min_cycle, pools_stream_fn fn, void *arg)
{
    sweep_ctx_t sc = {.p = p, .min_cycle = min_cycle};
    strmap_foreach(p->streams, collect_stale, &sc);
    for (size_t i = 0; i < sc.n; i++) {
        stream_rec_t *rec = strmap_get(p->streams, sc.names[i], sc.lens[i]);
        pool_t *pl = &p->pools[rec->pool];
        if (fn)
            fn(rec->pool, pl->slot, sc.names[i], sc.lens[i], arg);
        pl->size--;
        free(strmap_del(p->streams, sc.names[i], sc.lens[i]));
    }
    free(sc.names);
    free(sc.lens);
    return sc.n;
}

typedef struct slot_ctx {
    const pools_t *p;
    uint32_t slot;
    pools_stream_fn fn;
    void *arg;
} slot_ctx_t;

static void visit_slot(const char *key, size_t len, void *value, void *arg)
{
    slot_ctx_t *sc = arg;
    const stream_rec_t *rec = value;
    if (sc->p->pools[rec->pool].slot == sc->slot)
        sc->fn(rec->pool, sc->slot, key, len, sc->arg);
}

void pools_foreach_in_slot(const pools_t *p, uint32_t slot, pools_stream_fn fn, void *arg)
{
    slot_ctx_t sc = {p, slot, fn, arg};
    strmap_foreach(p->streams, visit_slot, &sc);
}

static void visit_all(const char *key, size_t len, void *value, void *arg)
{
    slot_ctx_t *sc = arg;
    const stream_rec_t *rec = value;
    sc->fn(rec->pool, sc->p->pools[rec->pool].slot, key, len, sc->arg);
}

void pools_foreach(const pools_t *p, pools_stream_fn fn, void *arg)
{
    slot_ctx_t sc = {p, 0, fn, arg};
    strmap_foreach(p->streams, visit_all, &sc);
}

size_t pools_streams(const pools_t *p)
{
    return strmap_size(p->streams);
}

size_t pools_count(const pools_t *p)
{
    size_t n = 0;
    for (uint32_t i = 0; i < p->npools; i++)
        n += p->pools[i].size > 0;
    return n;
}

void pools_count_by_slot(const pools_t *p, uint32_t *out, uint32_t n)
{
    memset(out, 0, n * sizeof(*out));
    for (uint32_t i = 0; i < p->npools; i++) {
        if (p->pools[i].size > 0 && p->pools[i].slot < n)
            out[p->pools[i].slot]++;
    }
}

int pools_resize(pools_t *p, uint32_t nslots)
{
    if (nslots == 0)
        return -EINVAL;
    if (nslots > p->nslots) {
        uint32_t *load = xrealloc(p->slot_load, nslots * sizeof(*load));
        memset(load + p->nslots, 0, (nslots - p->nslots) * sizeof(*load));
        p->slot_load = load;
        p->nslots = nslots;
        return 0;
    }
    p->nslots = nslots;
    for (uint32_t i = 0; i < p->npools; i++) {
        pool_t *pl = &p->pools[i];
        if (pl->slot < nslots)
            continue;
        pl->slot = least_loaded_slot(p);
        p->slot_load[pl->slot]++;
    }
    return 0;
}

int pools_set_limits(pools_t *p, uint32_t pool_size, uint32_t max_pools)
{
    if (pool_size == 0 || max_pools == 0)
        return -EINVAL;
    if (max_pools > p->max_pools) {
        pool_t *pl = xrealloc(p->pools, max_pools * sizeof(*pl));
        memset(pl + p->max_pools, 0, (max_pools - p->max_pools) * sizeof(*pl));
        p->pools = pl;
    }
    /* the array never shrinks: pools past a lower MAX_POOLS keep their streams, none is added */
    if (max_pools > p->max_pools || p->npools <= max_pools)
        p->max_pools = max_pools;
    else
        p->max_pools = p->npools;
    p->pool_size = pool_size;
    return 0;
}
