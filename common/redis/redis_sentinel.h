/*
 * redis_sentinel: a process's knowledge of which server is the primary of a Sentinel-managed
 * Redis. It owns two connections to one sentinel at a time (commands, and a subscription to
 * +switch-master), asks `SENTINEL get-master-addr-by-name <name>` at start, after every
 * reconnect, on request and on a timer, and moves to the next sentinel of REDIS_SENTINELS when
 * one fails or does not know the name. It only reports addresses: the data connections confirm
 * with ROLE that the address really is a primary (redis_conn's require_primary) and ask for a
 * new check when it is not. Logs each primary change once.
 */
#ifndef STREAMIO_COMMON_REDIS_SENTINEL_H
#define STREAMIO_COMMON_REDIS_SENTINEL_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "common/redis/redis_conn.h"
#include "common/redis_url.h"

typedef struct redis_sentinel redis_sentinel_t;

/* The primary's address changed (it is redis_sentinel_primary's now). */
typedef void (*redis_sentinel_fn)(void *arg);

/*
 * Starts with sentinels[0..n) (copied, n >= 1) and the primary's name (copied). opts (copied
 * like redis_conn's) carries the sentinels' own AUTH and TLS; db and require_primary are
 * ignored. Checks every check_ms (0 = 5000). Borrows loop. Aborts on out-of-memory.
 */
redis_sentinel_t *redis_sentinel_new(uv_loop_t *loop, const redis_addr_t *sentinels, size_t n,
                                     const char *name, const redis_conn_opts_t *opts,
                                     uint32_t check_ms, redis_sentinel_fn changed, void *arg);
/* The primary, NULL until a sentinel named it. Borrowed until the next change. */
const redis_addr_t *redis_sentinel_primary(const redis_sentinel_t *s);
/* Asks again now (a data connection found a replica where the primary was). */
void redis_sentinel_check(redis_sentinel_t *s);
/* Times the primary changed after the first answer (failovers followed). */
uint64_t redis_sentinel_switches(const redis_sentinel_t *s);
/* done(arg) once released (never from this call); no callback after. */
void redis_sentinel_close(redis_sentinel_t *s, void (*done)(void *arg), void *arg);

#endif
