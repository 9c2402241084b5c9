/*
 * ownership: which streamio server reads which streams, when several servers share a Redis and
 * an adapter (SOCKETIO_REDIS_ADAPTER true, sharded or streams). Each stream is read by exactly one
 * server at a time, so its entries reach a room's sockets by one path (the owner's own sockets and
 * siblings directly, every other server's through the adapter, in the order the owner published
 * them) and so keep the stream's order everywhere.
 *
 * Streams hash into OWNERSHIP_BUCKETS buckets; a bucket is the unit of ownership:
 * - Membership: every OWNERSHIP_TICK_MS each master adds itself to the sorted set
 *   `<SOCKETIO_REDIS_KEY>:owners:<scope>` (scope: a hash of the consumer group, STREAM_PATTERN and
 *   STREAM_EXCLUDE, so only servers that discover the same streams share them) with Redis' own
 * clock + STREAM_OWNER_TTL_MS as its score, drops the members whose score passed and reads the rest
 * (one Lua script, one key: any Cluster slot).
 * - Assignment: every master computes the same owner for each bucket from that set by rendezvous
 *   hashing (the member with the highest hash of (server id, bucket)), so a membership change
 *   moves only the buckets of the server that came or went.
 * - Lease: a bucket is read only under its lease `<SOCKETIO_REDIS_KEY>:owner:<scope>:<bucket>`
 * (value: the server id, PX STREAM_OWNER_TTL_MS), taken when free and renewed every tick by one
 * script (a key of its own per bucket, routed by its own slot). The assignment says who should
 * read; the lease makes sure only one does, even while two masters' views of the membership differ.
 * - Handover: a bucket assigned elsewhere is drained before its lease is given back: its streams
 *   are taken from the workers (STREAM_REMOVE, then a fence), then, once every worker has taken
 *   its descriptors and said that nothing is in flight for the removed streams (host quiet:
 *   reads and claims sent before answered, their XACKs too), XPENDING must show nothing pending
 *   for this server's consumers on any of them; or STREAM_OWNER_TTL_MS passed since the drain
 *   began (a worker that never answers; entries left pending are claimed by the next owner's
 *   XAUTOCLAIM);
 *   then the lease is replaced by a tombstone ("-", same TTL) and the next owner takes it on its
 *   next tick. Everything this server published and acknowledged reached Redis before the next
 *   owner's first read.
 * - Stop: after the workers drained (SIGTERM), ownership_leave hands over the leases it holds and
 *   deletes its membership, so the buckets move at once. A server that dies keeps them until its
 *   lease expires (STREAM_OWNER_TTL_MS); a lease taken without a tombstone is reported as one to
 *   recover (moved's recover[]): the host claims what the dead holder left pending before the
 *   streams are read, so those entries come first.
 * - Safety: a lease not confirmed for STREAM_OWNER_TTL_MS - 2 ticks (Redis out of reach) is given
 *   up locally: the streams are taken from the workers before another server may take the lease.
 *
 * Pure state machine: Redis through ownership_ops_t (commands with a reply callback, a clock),
 * the streams and the workers through ownership_host_t; tests/unit/test_ownership.c drives it
 * with fakes. Loop thread only.
 */
#ifndef STREAMIO_MASTER_DISCOVERY_OWNERSHIP_H
#define STREAMIO_MASTER_DISCOVERY_OWNERSHIP_H

#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define OWNERSHIP_BUCKETS 128
#define OWNERSHIP_TICK_MS 1000

typedef struct ownership ownership_t;

/* A reply (borrowed for the call), or NULL when the command failed without one. */
typedef void (*ownership_reply_fn)(const redisReply *reply, void *arg);

typedef struct ownership_ops {
    void *ctx;
    /* One command routed by `key`; cb runs once when 0 is returned, never when not. */
    int (*command)(void *ctx, const char *key, size_t key_len, ownership_reply_fn cb, void *arg,
                   int argc, const char **argv, const size_t *lens);
    /* Monotonic milliseconds. */
    uint64_t (*now_ms)(void *ctx);
} ownership_ops_t;

typedef void (*ownership_stream_fn)(const char *name, size_t len, void *arg);

typedef struct ownership_host {
    void *arg;
    /*
     * Buckets this server now holds (gained[b]: send their streams to the workers) and buckets
     * it no longer lets its workers read (lost[b]: take their streams back). recover[b]: gained
     * from a holder that did not hand it over (it died): entries it left pending are to be
     * claimed before the streams are read. The arrays have OWNERSHIP_BUCKETS entries; at least
     * one of gained and lost is true.
     */
    void (*moved)(void *arg, const bool *gained, const bool *lost, const bool *recover);
    /* Calls fn for every known stream whose bucket b has want[b] true. */
    void (*each_stream)(void *arg, const bool *want, ownership_stream_fn fn, void *fn_arg);
    /* True when every descriptor sent so far has been taken by its worker and each worker said
     * nothing is in flight for the streams moved() took back (a fence it acknowledged). */
    bool (*quiet)(void *arg);
} ownership_host_t;

typedef struct ownership_config {
    const char *redis_key;       /* SOCKETIO_REDIS_KEY (copied) */
    const char *server_id;       /* this server (copied) */
    const char *consumer_prefix; /* "<hostname>:<PORT>:", this server's consumers (copied) */
    const char *group;           /* STREAM_CONSUMER_GROUP (copied) */
    /* What the servers that share streams have in common (consumer group, STREAM_PATTERN,
     * exclusions): servers that discover other streams never take each other's buckets. */
    const char *scope;
    uint32_t ttl_ms; /* STREAM_OWNER_TTL_MS */
} ownership_config_t;

/* Copies *ops, *host and cfg's strings. Holds nothing until its first tick. Never NULL. */
ownership_t *ownership_new(const ownership_ops_t *ops, const ownership_host_t *host,
                           const ownership_config_t *cfg);
/* Every OWNERSHIP_TICK_MS: membership, leases, drains. */
void ownership_tick(ownership_t *o);
/* The bucket of a stream name. */
uint32_t ownership_bucket(const char *name, size_t len);
/* True when this server's workers may read `name` now. */
bool ownership_holds(const ownership_t *o, const char *name, size_t len);
/* Buckets held (being drained included) and the live servers last seen. */
uint32_t ownership_held(const ownership_t *o);
uint32_t ownership_members(const ownership_t *o);
/* The master is stopping: no bucket is taken from now on; held ones are still renewed. */
void ownership_stop(ownership_t *o);
/* The workers are gone: hands over the leases still held, deletes this server's membership. */
void ownership_leave(ownership_t *o);
/* Frees (at once, or after the last reply still due). NULL is a no-op. */
void ownership_free(ownership_t *o);

/* The owner of `bucket` among `n` server ids by rendezvous hashing (index into ids), -1 if n == 0.
 */
int ownership_assign(const char *const *ids, size_t n, uint32_t bucket);

#endif
