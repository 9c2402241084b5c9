/*
 * recovery_io: the Redis side of connection state recovery (see recovery.h), on one connection
 * of its own per worker (a redis_client: routed by key in a Cluster, following a failover): a
 * disconnected session's record is stored with `SET <prefix>:recovery:<pid> <record> PX
 * <CONNECTION_RECOVERY_WINDOW_MS>`, taken back once with GETDEL (so a pid recovers at most one
 * session, on whichever worker or server it reaches), and the entries a session missed are read
 * back with `XRANGE <room> (<id> + COUNT n`. The prefix is SOCKETIO_REDIS_KEY, shared by every
 * server of one deployment. Callbacks always run (with a failure when the connection is lost), so a
 * caller may keep its session alive until then.
 */
#ifndef STREAMIO_WORKER_RECOVERY_RECOVERY_IO_H
#define STREAMIO_WORKER_RECOVERY_RECOVERY_IO_H

#include <stddef.h>

#include "common/config.h"
#include "common/proto/payload.h"
#include "common/redis/redis_topology.h"
#include "worker/recovery/recovery.h"

#define RECOVERY_IO_PAGE 200 /* entries per XRANGE */

typedef struct recovery_io recovery_io_t;

/* The record (borrowed for the call), or NULL when there is none or it could not be read. */
typedef void (*recovery_io_take_fn)(void *arg, const char *rec, size_t len);
/* One replayed entry; everything borrowed for the call. */
typedef void (*recovery_io_entry_fn)(void *arg, const char *id, size_t id_len,
                                     const payload_field_t *fields, size_t nfields);
/* End of one XRANGE: how many entries it returned, or a negative errno when it failed. */
typedef void (*recovery_io_done_fn)(void *arg, int n);

/* Starts connecting. Borrows topo and cfg. Never NULL. */
recovery_io_t *recovery_io_new(redis_topology_t *topo, const cfg_t *cfg);
/* Stores a record for pid (both borrowed). 0 or -ENOTCONN. */
int recovery_io_save(recovery_io_t *io, const char *pid, size_t pid_len, const char *rec,
                     size_t len);
/* Takes (reads and deletes) the record of pid. 0, or -ENOTCONN (fn not called then). */
int recovery_io_take(recovery_io_t *io, const char *pid, size_t pid_len, recovery_io_take_fn fn,
                     void *arg);
/*
 * Reads up to RECOVERY_IO_PAGE entries of room after `after`, oldest first: entry() for each,
 * then done(). 0, or -ENOTCONN (no callback then).
 */
int recovery_io_range(recovery_io_t *io, const char *room, size_t len, stream_id_t after,
                      recovery_io_entry_fn entry, recovery_io_done_fn done, void *arg);
/* Replies to commands already sent are delivered, then done(arg) runs and io is freed. */
void recovery_io_close(recovery_io_t *io, void (*done)(void *arg), void *arg);

#endif
