/*
 * presence_query: who is in a room now, across every server, for `streamioctl presence <room>`
 * and GET /presence/<room>. Two commands: the writers silent for PRESENCE_TTL_MS (whose counts
 * are left out even before a live worker removed them), then the room's users summed over the
 * other writers (presence_store's query script). The answer is
 *   {"roomId":R,"users":[{"user":U,"connections":n}...],"userCount":k,"connectionCount":m}
 * Redis only through the bridge_redis seam.
 */
#ifndef STREAMIO_COMMON_BRIDGE_PRESENCE_QUERY_H
#define STREAMIO_COMMON_BRIDGE_PRESENCE_QUERY_H

#include <stddef.h>
#include <stdint.h>

#include "common/bridge/bridge_redis.h"
#include "common/buf.h"

/* Writers left out at most (more silent ones than this are still being removed). */
#define PRESENCE_QUERY_MAX_DEAD 1024

/* rc 0: json is the answer; otherwise -EIO with json holding the reason. Borrowed for the call. */
typedef void (*presence_query_fn)(void *arg, int rc, const buf_t *json);

/*
 * Asks for room (copied) with prefix "<SOCKETIO_REDIS_KEY>:presence" (copied), at wall_ms,
 * writers silent for ttl_ms being dead. 0: done runs once (possibly from this call when the
 * seam answers at once); -ENOTCONN and friends from the seam (done never runs).
 */
int presence_query(const bridge_redis_t *redis, const char *prefix, const char *room, size_t len,
                   uint64_t wall_ms, uint64_t ttl_ms, presence_query_fn done, void *arg);

#endif
