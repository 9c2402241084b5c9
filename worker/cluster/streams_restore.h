/*
 * streams_restore: Socket.IO connection state recovery in streams mode (SOCKETIO_REDIS_ADAPTER=
 * streams with CONNECTION_RECOVERY), as @socket.io/redis-streams-adapter 0.3 does it, so that a
 * client can lose its transport on a Node server and recover on streamio, or the reverse:
 *  - every packet a client gets from the adapter's stream carries that entry's id as its offset
 *    (streams_adapter), the one offset every server agrees on;
 *  - a session whose transport is lost is stored as the adapter stores it:
 *    `SET sio:session:<pid> <base64 msgpack {sid, pid, rooms, data}> PX <window>`;
 *  - a main CONNECT with {pid, offset} takes the session back (GETDEL) when the offset is still
 *    in the stream, takes the socket id and rooms of the session, and is sent every broadcast of
 *    "/" after the offset that the session's rooms would have received (rooms and except as
 *    Node's shouldIncludePacket), offset appended, in stream order, before its CONNECT reply.
 * No packet is sent twice or skipped across the switch to live delivery: the replay reads the
 * stream up to the id the streams adapter last delivered, again while that id moves, and the
 * socket joins its rooms in the same loop turn as the read that reaches it, so every later entry
 * is the streams adapter's to deliver. A client that got ahead of this worker's reader (it came
 * from a faster server) waits for the reader to catch up, within a bound.
 * Logs failures to store a session.
 */
#ifndef STREAMIO_WORKER_CLUSTER_STREAMS_RESTORE_H
#define STREAMIO_WORKER_CLUSTER_STREAMS_RESTORE_H

#include "common/config.h"
#include "common/redis/redis_topology.h"
#include "shm/stats.h"
#include "worker/cluster/streams_adapter.h"
#include "worker/sio/sio.h"

typedef struct streams_restore streams_restore_t;

/* Observes sio; reads and stores through a Redis client of its own on topo. Borrows everything
 * (sa, topo and cfg must outlive it). Never NULL. */
streams_restore_t *streams_restore_new(const cfg_t *cfg, redis_topology_t *topo, sio_t *sio,
                                       streams_adapter_t *sa, stats_worker_t *stats);
/* The sessions stored last get their answers first; then done(arg) runs and r is freed (call it
 * once the sessions are gone: its observers must not fire any more). */
void streams_restore_close(streams_restore_t *r, void (*done)(void *arg), void *arg);

#endif
