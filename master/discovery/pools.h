/*
 * pools: the master's registry of discovered streams, grouped into pools of POOL_SIZE streams
 * (at most MAX_POOLS pools; past that, pools grow instead of streams being dropped), each pool
 * owned by one worker slot. Assignment is sticky: a stream stays in its pool and a pool on its
 * slot for as long as the stream exists, so no stream is ever read by two workers at once.
 * PRIORITY_STREAMS get pools of their own, never shared with ordinary streams.
 * Pure bookkeeping: no I/O, no Redis, no ring.
 */
#ifndef STREAMIO_MASTER_DISCOVERY_POOLS_H
#define STREAMIO_MASTER_DISCOVERY_POOLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct pools pools_t;

typedef void (*pools_stream_fn)(uint32_t pool, uint32_t slot, const char *name, size_t len,
                                void *arg);

/* Never NULL. nslots >= 1. */
pools_t *pools_new(uint32_t pool_size, uint32_t max_pools, uint32_t nslots);
void pools_free(pools_t *p);

/*
 * Records that discovery saw `name` during scan cycle `cycle`. Returns 1 when the stream is new
 * (*pool and *slot tell where it went), 0 when it was known (its last-seen cycle is updated).
 */
int pools_add(pools_t *p, const char *name, size_t len, bool priority, uint64_t cycle,
              uint32_t *pool, uint32_t *slot);

/* Where `name` is read: 1 with *pool and *slot, 0 when it is not known. */
int pools_find(const pools_t *p, const char *name, size_t len, uint32_t *pool, uint32_t *slot);

/*
 * Forgets `name` at once (its key was deleted). 1 with *pool and *slot telling where it was,
 * 0 when it was not known.
 */
int pools_remove(pools_t *p, const char *name, size_t len, uint32_t *pool, uint32_t *slot);

/* Forgets every stream last seen before `min_cycle`, calling fn for each first. Returns how many.
 */
size_t pools_sweep(pools_t *p, uint64_t min_cycle, pools_stream_fn fn, void *arg);

/* Calls fn for every stream whose pool belongs to `slot` (to re-send a respawned worker's work). */
void pools_foreach_in_slot(const pools_t *p, uint32_t slot, pools_stream_fn fn, void *arg);

/* Calls fn for every stream (pool, slot, name). fn must not add or remove streams. */
void pools_foreach(const pools_t *p, pools_stream_fn fn, void *arg);

/*
 * Changes the number of worker slots (a reload with another CLUSTER_WORKERS). Growing adds empty
 * slots that new pools go to; shrinking moves every pool of a removed slot to the least loaded
 * remaining one (the only time a pool changes slot: the caller retires the removed slots' workers
 * after the new owners got the pools). 0, or -EINVAL (0 slots; nothing changed).
 */
int pools_resize(pools_t *p, uint32_t nslots);

/*
 * Applies new POOL_SIZE / MAX_POOLS (a reload) to streams discovered from now on: existing
 * assignments never move. A lower MAX_POOLS stops new pools from being created but keeps those
 * that exist. 0, or -EINVAL (zero; nothing changed).
 */
int pools_set_limits(pools_t *p, uint32_t pool_size, uint32_t max_pools);

size_t pools_streams(const pools_t *p);
/* Pools that currently hold at least one stream. */
size_t pools_count(const pools_t *p);
/* Pools holding at least one stream, per slot: out[0..n) is overwritten (slots past the pools'
 * own count get 0). */
void pools_count_by_slot(const pools_t *p, uint32_t *out, uint32_t n);

#endif
