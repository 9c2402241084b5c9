/*
 * scan: the Redis side of stream discovery, over the master's command client
 * (common/redis/redis_client): incremental `SCAN cursor MATCH pattern COUNT n TYPE stream`, one
 * step per call, so a keyspace of millions of keys never blocks Redis or the master for long, and
 * `TYPE key` for the streams named in advance. A pass scans every primary the client knows when
 * it starts (a Redis Cluster's masters one after the other; the one server otherwise); TYPE goes
 * to the primary serving the key. Asynchronous: each call returns at once and its callback runs
 * on the master's loop with the reply. After a failure the pass restarts from the first primary
 * at cursor 0.
 * Never logs (the caller knows what a failure means).
 */
#ifndef STREAMIO_MASTER_DISCOVERY_SCAN_H
#define STREAMIO_MASTER_DISCOVERY_SCAN_H

#include <stddef.h>

#include "common/config.h"
#include "common/redis/redis_client.h"

typedef struct scan scan_t;

/* One stream key of a SCAN reply (borrowed for the call). */
typedef void (*scan_key_fn)(const char *key, size_t len, void *arg);
/* A step ended: 1 when it finished a full pass over the keyspace (every primary's), 0 when the pass
 * goes on, or a negative errno when Redis failed or the connection was lost. */
typedef void (*scan_step_fn)(int rc, void *arg);
/* TYPE answered: 1 when the key is a stream, 0 when not, or a negative errno. */
typedef void (*scan_type_fn)(int rc, void *arg);

/* Borrows the client (for the scan's whole life). */
scan_t *scan_new(redis_client_t *redis);
/* Frees now: callbacks still due from Redis are dropped. NULL is a no-op. */
void scan_free(scan_t *s);

/*
 * Sends the next SCAN step with STREAM_PATTERN and SCAN_COUNT from cfg (borrowed for the call).
 * key runs for every stream key of the reply, then done once. One step at a time. 0, or
 * -ENOTCONN / -EBUSY (a step is in flight), callbacks not called.
 */
int scan_step(scan_t *s, const cfg_t *cfg, scan_key_fn key, scan_step_fn done, void *arg);
/* Sends TYPE key; done runs once. 0, or -ENOTCONN (done not called). */
int scan_is_stream(scan_t *s, const char *key, scan_type_fn done, void *arg);

#endif
