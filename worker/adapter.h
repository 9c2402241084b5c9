/*
 * adapter: shares broadcasts between this worker and every other process that serves the same
 * rooms (the other workers of this server, other streamio servers, Node socket.io servers),
 * using the @socket.io/redis-adapter classic wire format: msgpack [uid, packet, opts] published
 * on `<prefix>#/#<room>#`, received through `PSUBSCRIBE <prefix>#/#*`. The prefix is the
 * adapter key (SOCKETIO_REDIS_ADAPTER=true) or a private per-server one when the adapter is off,
 * so the workers of one server still share rooms without talking to anyone else.
 * Only the main namespace is served; requests (socket.io-request#) are not subscribed to, so
 * Node peers never count or wait for this process.
 */
#ifndef STREAMIO_WORKER_ADAPTER_H
#define STREAMIO_WORKER_ADAPTER_H

#include <stdbool.h>
#include <uv.h>

#include "common/config.h"
#include "shm/stats.h"
#include "worker/rds.h"
#include "worker/session.h"

typedef struct adapter adapter_t;

/* Subscribes at once (and again after every reconnect). Borrows loop, cfg, sessions, stats;
 * copies prefix. 0 or -ENOMEM. */
int adapter_new(adapter_t **out, uv_loop_t *loop, const cfg_t *cfg, const char *prefix,
                sessions_t *sessions, stats_worker_t *stats);
/*
 * Publishes an EVENT with `data_json` (the JSON array [event, ...args]) to one room, on `conn`
 * so it is ordered before the caller's later commands on that connection. 0, -ENOTCONN, -EINVAL
 * (data not convertible), -ENOMEM.
 */
int adapter_publish(adapter_t *a, rds_t *conn, const char *room, size_t room_len,
                    const char *data_json, size_t data_len);
bool adapter_connected(const adapter_t *a);
/* Unsubscribes and closes; done(arg) runs once closed and the adapter is freed after it. */
void adapter_close(adapter_t *a, void (*done)(void *arg), void *arg);

#endif
