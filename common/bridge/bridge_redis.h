/*
 * bridge_redis: the one Redis seam of the features that carry data between clients and back ends
 * (client events, presence, per-user limits, their admin queries): send one command, routed by
 * the key it names, and get its reply once. Production code passes bridge_redis_over_client (a
 * redis_client, so every command follows Cluster slots, Sentinel failovers and TLS); tests pass
 * a table that records commands and answers them by hand.
 */
#ifndef STREAMIO_COMMON_BRIDGE_BRIDGE_REDIS_H
#define STREAMIO_COMMON_BRIDGE_BRIDGE_REDIS_H

#include <stddef.h>

#include "common/redis/redis_client.h"
#include "common/redis/redis_conn.h"

typedef struct bridge_redis {
    void *ctx;
    /*
     * Sends one command (binary-safe argv) to the node serving key (NULL: any). cb(reply, arg)
     * runs exactly once for an accepted command: the reply, borrowed for the call, or NULL when
     * the connection was lost first. 0, or a negative errno (cb never runs then).
     */
    int (*command)(void *ctx, const char *key, size_t key_len, redis_reply_fn cb, void *arg,
                   int argc, const char **argv, const size_t *lens);
} bridge_redis_t;

/* The table over a redis_client (borrowed: it must outlive every use of the table). */
bridge_redis_t bridge_redis_over_client(redis_client_t *c);

#endif
