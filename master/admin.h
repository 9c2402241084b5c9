/*
 * admin: the commands streamioctl runs through the master's control socket.
 *   status                          /health's document (server-wide, from the shared stats)
 *   rooms                           room counts per worker and in total; with the Redis adapter
 *                                   on, "cluster": every server's rooms (allRooms in classic
 *                                   mode, the rooms of fetchSockets in sharded mode), each server
 *                                   named (this server's workers by number, others by uid)
 *   clients [room]                  connected clients per worker and in total; with the adapter
 *                                   on, "cluster": every server's sockets (fetchSockets, in
 *                                   `room` when given); `clients <room>` needs the adapter
 *   broadcast [--nsp /ns] <event> <json>        emits <event> with the JSON argument to every
 *                                               client of the namespace (default "/")
 *   sendroom [--nsp /ns] <room> <event> <json>  emits it to the members of <room>
 *   join|leave <room> <target>      socketsJoin / socketsLeave: the sockets in <room> (a socket
 *                                   id names one) join or leave <target> on every server
 *   disconnect <room> [close]       disconnectSockets of the sockets in <room> on every server
 *   serverside <event> <json>       serverSideEmit with acks: every server's answer, named
 *   presence <room> | dead-letter list [count] | dead-letter replay <id>
 *                                   master/bridge_admin's, over a blocking connection
 * The emits are published once on Redis in @socket.io/redis-adapter format (classic, or the
 * sharded ClusterAdapter's), on the channel the workers share (so with SOCKETIO_REDIS_ADAPTER on
 * they reach every server of the cluster). The cluster requests are master/cluster_req's.
 * Synchronous and bounded (2 s Redis timeouts, SOCKETIO_REQUESTS_TIMEOUT for the cluster's
 * answers): runs in the master's loop, never in a worker.
 */
#ifndef STREAMIO_MASTER_ADMIN_H
#define STREAMIO_MASTER_ADMIN_H

#include <stddef.h>

#include "common/buf.h"
#include "common/config.h"
#include "shm/region.h"

typedef struct admin_ctx {
    const cfg_t *cfg;
    shm_region_t *region;
    const char *server_id; /* names this server's private adapter channel */
} admin_ctx_t;

/* Runs argv[0] with its arguments (a control_fn with arg = admin_ctx_t). Appends the JSON body
 * (one line) to out; on error returns -EINVAL (usage, bad JSON), -ENOTSUP, -EIO (Redis) with the
 * reason in out. */
int admin_run(int argc, char **argv, const size_t *lens, buf_t *out, void *arg);

#endif
