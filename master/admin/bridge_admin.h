/*
 * bridge_admin: the streamioctl commands about what streamio keeps for back ends.
 *   presence <room>             who is in <room> on every server: {"roomId","users":[{"user",
 *                               "connections"}],"userCount","connectionCount"} (PRESENCE)
 *   dead-letter list [count]    the newest dead letters, newest first (default 10, at most 1000):
 *                               {"stream":<STREAM_DEAD_LETTER>,"entries":[{"id","stream",
 *                               "entryId","reason","deliveries","bytes","ts","fields"}]}
 *   dead-letter replay <id>     puts dead letter <id> back into its stream as a new entry (its
 *                               fields as they were), then deletes it from the dead-letter
 *                               stream: {"replayed":<id>,"stream":…,"id":<the new entry id>}
 * Redis only through the bridge_redis seam (any implementation: the master's, or a blocking one
 * that answers from inside the call).
 */
#ifndef STREAMIO_MASTER_ADMIN_BRIDGE_ADMIN_H
#define STREAMIO_MASTER_ADMIN_BRIDGE_ADMIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/bridge/bridge_redis.h"
#include "common/buf.h"
#include "common/config.h"

#define BRIDGE_ADMIN_LIST_MAX 1000

/* rc 0 with one JSON line in out; or -EINVAL (usage), -ENOTSUP (feature off), -ENOENT (no such
 * dead letter), -EIO (Redis) with the reason in out. out is borrowed for the call. */
typedef void (*bridge_admin_fn)(void *arg, int rc, const buf_t *out);

/* Whether cmd is one of these commands. */
bool bridge_admin_handles(const char *cmd);
/* Runs argv (copied as needed) at wall_ms; done runs exactly once. Borrows cfg and redis' ctx
 * until then. */
void bridge_admin_run(const bridge_redis_t *redis, const cfg_t *cfg, uint64_t wall_ms, int argc,
                      char **argv, const size_t *lens, bridge_admin_fn done, void *arg);

#endif
