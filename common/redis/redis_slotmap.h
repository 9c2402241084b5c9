/*
 * redis_slotmap: which node serves each of the 16384 slots of a Redis Cluster, built from a
 * CLUSTER SLOTS reply (validated: the reply comes from the network) and patched by MOVED
 * redirections until the next full refresh. Owns its node list (masters and their replicas,
 * each address once) and a 32 KiB slot table. Knows nothing of connections; never logs.
 */
#ifndef STREAMIO_COMMON_REDIS_SLOTMAP_H
#define STREAMIO_COMMON_REDIS_SLOTMAP_H

#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/redis_url.h"

typedef struct redis_slotmap redis_slotmap_t;

/* An empty map (no slot served). Aborts on out-of-memory. */
redis_slotmap_t *redis_slotmap_new(void);
void redis_slotmap_free(redis_slotmap_t *m);

/*
 * Builds a map from CLUSTER SLOTS' reply. `asked` is the address the reply came from: a node
 * listed with an empty host is that host (Redis prints "" when it does not know its own
 * address). 0 with *out set, or -EPROTO for a malformed reply (bad ranges, ports, hosts, a
 * node listed as the master of overlapping ranges is fine; a node with host "?" is skipped).
 */
int redis_slotmap_parse(const redisReply *r, const redis_addr_t *asked, redis_slotmap_t **out);

/* The node index serving `slot`, or -1 when no node does. */
int redis_slotmap_owner(const redis_slotmap_t *m, unsigned slot);
/* True when every slot has an owner. */
bool redis_slotmap_complete(const redis_slotmap_t *m);
size_t redis_slotmap_count(const redis_slotmap_t *m);
/* Node i's address (borrowed from the map) and whether it owns slots. */
const redis_addr_t *redis_slotmap_addr(const redis_slotmap_t *m, size_t i);
bool redis_slotmap_is_master(const redis_slotmap_t *m, size_t i);
/* The index of addr, or -1. */
int redis_slotmap_find(const redis_slotmap_t *m, const redis_addr_t *addr);

/* MOVED: `slot` is now served by addr (added as a master when new). Aborts on out-of-memory. */
void redis_slotmap_move(redis_slotmap_t *m, unsigned slot, const redis_addr_t *addr);

/* True when both maps give every slot the same address (a refresh that changed nothing). */
bool redis_slotmap_same(const redis_slotmap_t *a, const redis_slotmap_t *b);

#endif
