/*
 * rds: one asynchronous Redis connection on a worker's libuv loop (hiredis 0.14 + its libuv
 * adapter) that keeps itself connected: AUTH [user] password and SELECT from the config on every
 * connect, and after a loss a reconnect with jittered exponential backoff (100 ms .. 5 s). hiredis
 * has no reconnect and frees its context after a disconnect, so callers never keep the
 * redisAsyncContext: they send through rds_command and learn about the link through the state
 * callback. hiredis 0.14 must not be freed from its connect/disconnect callbacks; rds defers every
 * free to a timer or to hiredis itself.
 */
#ifndef STREAMIO_COMMON_REDIS_RDS_H
#define STREAMIO_COMMON_REDIS_RDS_H

#include <hiredis/async.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "common/config.h"

typedef struct rds rds_t;

/*
 * Called on every transition: connected (AUTH accepted when REDIS_USERNAME/REDIS_PASSWORD are
 * set, SELECT sent) or lost. A refused AUTH is logged once and retried with the backoff.
 */
typedef void (*rds_state_fn)(rds_t *r, bool connected, void *arg);

/* Starts connecting at once. Borrows cfg and loop; `name` is copied (for logs). Never NULL. */
rds_t *rds_new(uv_loop_t *loop, const cfg_t *cfg, const char *name, rds_state_fn fn, void *arg);
/*
 * Queues one command (binary-safe argv). The callback runs with the reply, or with reply NULL
 * when the connection is lost first (hiredis semantics). 0, or -ENOTCONN when not connected or
 * closing (callback not called).
 */
int rds_command(rds_t *r, redisCallbackFn *cb, void *privdata, int argc, const char **argv,
                const size_t *argvlen);
bool rds_connected(const rds_t *r);
/* Counts every later successful connect after the first one into *counter (a shared stats
 * field, borrowed for the connection's life); NULL stops counting. */
void rds_count_reconnects(rds_t *r, _Atomic uint64_t *counter);
/*
 * Graceful close: replies to commands already queued are still delivered, then the connection
 * closes and done(arg) runs once; the rds is freed after. No reconnect after this.
 */
void rds_close(rds_t *r, void (*done)(void *arg), void *arg);

#endif
