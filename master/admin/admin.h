/*
 * admin: the commands streamioctl runs through the master's control socket (master/admin/control).
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
 *                                   master/admin/bridge_admin's, over a redis_client made when
 *                                   PRESENCE or STREAM_DEAD_LETTER is set (Cluster slots and
 *                                   Sentinel followed; the command connection until it is up)
 * The emits are published once on Redis in @socket.io/redis-adapter format (classic, or the
 * sharded ClusterAdapter's), on the channel the workers share (so with SOCKETIO_REDIS_ADAPTER on
 * they reach every server of the cluster). The cluster requests are master/admin/cluster_req's.
 * Asynchronous on the master's loop, over the master's command connection: a command answers
 * when Redis replied (or said it cannot), never holding the loop.
 */
#ifndef STREAMIO_MASTER_ADMIN_ADMIN_H
#define STREAMIO_MASTER_ADMIN_ADMIN_H

#include <stddef.h>
#include <uv.h>

#include "common/buf.h"
#include "common/config.h"
#include "common/redis/redis_client.h"
#include "master/admin/control.h"
#include "shm/region.h"

typedef struct admin admin_t;

/* Borrows topo (its loop), redis (the master's command client), cfg (until admin_set_cfg; the
 * cluster requests' pub/sub connection keeps it), region and server_id (names this server's private
 * adapter channel). */
admin_t *admin_new(redis_topology_t *topo, redis_client_t *redis, const cfg_t *cfg,
                   shm_region_t *region, const char *server_id);
/* A reload's configuration, for the commands from now on (borrowed until the next one). */
void admin_set_cfg(admin_t *a, const cfg_t *cfg);
/*
 * A control_fn (arg: the admin_t): runs argv[0] with its arguments and answers with control_done,
 * now or when Redis replied: the JSON body (one line) in out, or the reason with -EINVAL (usage,
 * bad JSON), -ENOTSUP, -EIO (Redis).
 */
void admin_run(control_req_t *req, int argc, char **argv, const size_t *lens, buf_t *out,
               void *arg);
/* Answers every command still running with -ECANCELED, then frees; done(arg) runs once
 * everything is released. */
void admin_close(admin_t *a, void (*done)(void *arg), void *arg);

#endif
