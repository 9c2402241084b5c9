/*
 * subconn: one Redis connection dedicated to pub/sub on a worker's libuv loop, for classic
 * (SUBSCRIBE/PSUBSCRIBE) and sharded (SSUBSCRIBE) subscriptions alike. hiredis 0.14's async
 * layer knows nothing of SSUBSCRIBE and asserts on the pushes it cannot route, so this module
 * speaks RESP itself: commands are formatted with redisFormatCommandArgv and every reply, command
 * replies and pushed messages alike, is parsed with a hiredis reader and handed to one callback.
 * It keeps itself connected: AUTH/SELECT from the config on every connect, jittered exponential
 * backoff (100 ms .. 5 s) after a loss; the state callback tells the owner to subscribe again.
 * It never interprets replies and never logs a message's content.
 */
#ifndef STREAMIO_COMMON_REDIS_SUBCONN_H
#define STREAMIO_COMMON_REDIS_SUBCONN_H

#include <hiredis/hiredis.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "common/config.h"

typedef struct subconn subconn_t;

/* Every reply, in order; `r` is freed after the call. */
typedef void (*subconn_reply_fn)(const redisReply *r, void *arg);
/* connected: at every TCP connect (AUTH/SELECT already queued: subscribe now); lost: once per
 * outage, when a connection that Redis had answered without an error goes away. */
typedef void (*subconn_state_fn)(bool connected, void *arg);

/* Starts connecting at once. Borrows loop and cfg; copies name (for logs). Never NULL. */
subconn_t *subconn_new(uv_loop_t *loop, const cfg_t *cfg, const char *name,
                       subconn_reply_fn on_reply, subconn_state_fn on_state, void *arg);
/* Queues one command (binary-safe). 0, or -ENOTCONN when not connected. */
int subconn_command(subconn_t *c, int argc, const char **argv, const size_t *lens);
/* Connected and Redis answered a command without an error since (a refusing server is down). */
bool subconn_connected(const subconn_t *c);
/* Counts every later time the connection comes up (see subconn_connected) after the first one
 * into *counter (a shared stats field, borrowed for the connection's life); NULL stops counting. */
void subconn_count_reconnects(subconn_t *c, _Atomic uint64_t *counter);
/* Closes; done(arg) runs once everything is released. No callback runs after this call. */
void subconn_close(subconn_t *c, void (*done)(void *arg), void *arg);

#endif
