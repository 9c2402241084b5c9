/*
 * recovery_cell: one session's recovery state laid out in a shared-memory cell (shm/sessions.h),
 * so that it survives a worker killed without warning. It holds what a record (recovery.h)
 * holds — the sid, the send log, and per room its tag, name, first and last ids — kept current
 * as the session runs: the log and a room's last id are written in place on every send (plain
 * stores, no syscall), the rooms are rewritten on a join or a leave. A cell that another worker
 * claims after the owner died is turned back into a record and restored like one from Redis.
 *
 * The rooms area is packed (an entry of 40 bytes plus the name, 8-aligned); a session whose
 * rooms do not fit is marked incomplete and is not recovered from its cell (its client gets a
 * new session, as without a cell). A kill during a rewrite of the rooms leaves the cell
 * incomplete too: `valid` is cleared first and set last.
 */
#ifndef STREAMIO_WORKER_RECOVERY_RECOVERY_CELL_H
#define STREAMIO_WORKER_RECOVERY_RECOVERY_CELL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "shm/sessions.h"
#include "worker/recovery/recovery.h"

#define RECOVERY_CELL_SID 24 /* sid bytes kept (a Socket.IO id is 20) */

typedef struct recovery_cell {
    char pid[RECOVERY_CELL_SID]; /* whose cell this is: the claim's key, written last by init */
    uint32_t pid_len;
    char sid[RECOVERY_CELL_SID];
    uint32_t sid_len;
    uint32_t valid; /* the rooms are whole (see above) */
    uint32_t used;  /* bytes of rooms[] in use */
    uint32_t pad;
    recovery_log_t log;
    unsigned char rooms[]; /* packed entries up to the end of the cell */
} recovery_cell_t;

/* Starts the cell of session pid (1..RECOVERY_CELL_SID bytes; payload of
 * SHM_SESSIONS_CELL_BYTES, as a previous session may have left it): no sid, no rooms, an empty
 * log. Only the header is written: the rooms area is read up to `used`, so its pages are
 * committed only as rooms fill it. The pid goes last: a cell whose init a kill cut short still
 * names its previous session, and is refused for this one. */
void recovery_cell_init(recovery_cell_t *c, const char *pid, size_t pid_len);
/* Names the session of a cell: sid of 1..RECOVERY_CELL_SID bytes. A cell is recovered only once
 * it has one. */
void recovery_cell_set_sid(recovery_cell_t *c, const char *sid, size_t sid_len);
/* Rewriting the rooms: begin, add each one, end. */
void recovery_cell_rooms_begin(recovery_cell_t *c);
/*
 * Appends a room; returns a handle for recovery_cell_set_last (> 0), or 0 when it does not fit
 * (the cell is then incomplete until the next rewrite).
 */
uint32_t recovery_cell_room_add(recovery_cell_t *c, const char *name, size_t len, uint32_t tag,
                                stream_id_t first, stream_id_t last);
void recovery_cell_rooms_end(recovery_cell_t *c);
/* A send reached the room: its last id (handle from recovery_cell_room_add; 0 is ignored). */
void recovery_cell_set_last(recovery_cell_t *c, uint32_t handle, stream_id_t last);
/*
 * Appends the record (recovery_encode) of the cell of session pid, that its owner left behind. A
 * room's last id is taken as at least its logged sends' (the owner may have died between logging
 * a send and storing the room's last id). 0, or -EPROTO when the cell is another session's,
 * incomplete or malformed.
 */
int recovery_cell_encode(const recovery_cell_t *c, const char *pid, size_t pid_len, buf_t *out);

#endif
