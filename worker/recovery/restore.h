/*
 * restore: Socket.IO connection state recovery (CONNECTION_RECOVERY; the scheme is in
 * recovery.h) for the sockets of this worker, attached from outside: it observes sio (a main
 * CONNECT that carries a pid of ours, the CONNECT reply that hands out a pid, joins and leaves, a
 * lost transport) and fanout (every entry a socket is sent, through the membership that reached
 * it), and keeps its per-socket state — the send log, the pid, the replay — in the socket's slot
 * for it. When a transport is lost it saves the record (recovery_io); a CONNECT with the pid takes
 * the record back, rejoins the rooms, replays what was missed (held live entries back meanwhile)
 * and then replies. Logs failures to save or replay.
 *
 * A worker killed without warning saves nothing, so each connected session also lives in a cell
 * of shared memory (recovery_cell in shm/sessions), written in place as it runs: a send costs a
 * few stores there and no syscall. When the master reaps this process it turns the cells into
 * orphans for CONNECTION_RECOVERY_WINDOW_MS; a CONNECT with the pid, on any worker of this
 * server, claims the orphan and restores it as it would a record from Redis.
 */
#ifndef STREAMIO_WORKER_RECOVERY_RESTORE_H
#define STREAMIO_WORKER_RECOVERY_RESTORE_H

#include "common/config.h"
#include "common/redis/redis_topology.h"
#include "shm/sessions.h"
#include "shm/stats.h"
#include "worker/fanout/fanout.h"
#include "worker/sio/sio.h"

typedef struct restore restore_t;

/* Observes sio and f (borrowed) and connects its Redis side on topo (borrowed, as cfg). Keeps
 * sessions in cells (borrowed; NULL: none) as process block `block`. Never NULL. */
restore_t *restore_new(redis_topology_t *topo, const cfg_t *cfg, sio_t *sio, fanout_t *f,
                       stats_worker_t *stats, shm_sessions_t *cells, uint32_t block);
/* The records of sessions just lost are sent first; then done(arg) runs and r is freed (its
 * observers must not fire any more: call it once the sessions are gone). */
void restore_close(restore_t *r, void (*done)(void *arg), void *arg);

#endif
