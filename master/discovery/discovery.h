/*
 * discovery: finds the stream keys matching STREAM_PATTERN with incremental
 * `SCAN cursor MATCH pattern COUNT n TYPE stream`, one step per call, so a keyspace of millions
 * of keys never blocks Redis or the master for long. Owns one synchronous Redis connection
 * (connect and command timeouts) used only by the master; reconnects on the next step after a
 * failure. Never used in a worker.
 */
#ifndef STREAMIO_MASTER_DISCOVERY_DISCOVERY_H
#define STREAMIO_MASTER_DISCOVERY_DISCOVERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/config.h"

typedef struct discovery discovery_t;

typedef void (*discovery_key_fn)(const char *key, size_t len, void *arg);

/* Borrows cfg for the discovery's lifetime. NULL on ENOMEM. Does not connect yet. */
discovery_t *discovery_new(const cfg_t *cfg);
void discovery_free(discovery_t *d);

/*
 * Runs one SCAN step, calling fn for every stream key it returns (borrowed for the call).
 * Returns 1 when this step finished a full pass over the keyspace, 0 when the pass goes on,
 * or a negative errno when Redis could not be reached or answered an error (the pass restarts
 * from cursor 0 after reconnecting).
 */
int discovery_step(discovery_t *d, discovery_key_fn fn, void *arg);

/* 1 if `key` exists and is a stream, 0 if not, negative errno on a Redis failure. */
int discovery_is_stream(discovery_t *d, const char *key);

bool discovery_connected(const discovery_t *d);
/* Connections established after the first one (each loss is followed by one). */
uint64_t discovery_reconnects(const discovery_t *d);

#endif
