/*
 * recovery: the pure logic of Socket.IO connection state recovery (Socket.IO 4.6+ clients send
 * `{pid, offset}` in their CONNECT packet when they reconnect). It does no I/O and never decides
 * policy (window, limits) itself.
 *
 * The offset of a room:message is its stream entry id, the same for every recipient. A client
 * reports only the last offset it received, from any room, and entries of different streams
 * do not reach a socket in id order, so that one id cannot say what was received in each room.
 * Each socket therefore keeps, per room, the last id it was sent (`last`) and a log of its last
 * RECOVERY_LOG_LEN sends (room tag, id, and the room's id before it). What the client received
 * is everything sent up to the earliest logged send of its offset (a transport delivers in
 * order); for each room that is the `prev` of the room's first send after that point, or the
 * room's `last` when there is none. Replaying each room after that id (`XRANGE room (id +`)
 * misses nothing; the earliest match trades a duplicate for a skip when two streams share an id.
 * An offset not in the log (older than the log, or not an entry id) cannot be placed: the
 * session is not recovered. No offset at all means nothing was received: each room starts again
 * from its `first` id (where the socket joined it).
 *
 * The record stored in Redis under `<prefix>:recovery:<pid>` (SET ... PX window) holds the sid,
 * the log and the rooms with their tag, first and last ids, so any worker of any server can
 * resolve it.
 */
#ifndef STREAMIO_WORKER_RECOVERY_RECOVERY_H
#define STREAMIO_WORKER_RECOVERY_RECOVERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/proto/stream_id.h"

#define RECOVERY_LOG_LEN 64

/* One send to a socket: the room's tag, the entry id, and the room's last id before it. */
typedef struct recovery_send {
    uint32_t tag;
    stream_id_t id, prev;
} recovery_send_t;

/* The last sends to one socket, oldest overwritten first. Zero-initialised = empty. */
typedef struct recovery_log {
    uint32_t count; /* sends recorded since the session began (not capped) */
    recovery_send_t e[RECOVERY_LOG_LEN];
} recovery_log_t;

/* One room of a record: name borrowed (not NUL-terminated). */
typedef struct recovery_room {
    const char *name;
    size_t len;
    uint32_t tag;
    stream_id_t first; /* where the room starts for this socket (its join) */
    stream_id_t last;  /* the last id the socket was sent in the room */
} recovery_room_t;

void recovery_log_add(recovery_log_t *l, uint32_t tag, stream_id_t id, stream_id_t prev);
/*
 * Places the client's offset (NULL: the client sent none): *pos = how many of the logged sends
 * it received (0 without an offset). 0, or -ENOENT when the offset cannot be placed.
 */
int recovery_log_locate(const recovery_log_t *l, const stream_id_t *offset, uint32_t *pos);
/* The last id of room r a client that received the first pos sends has: replay after it. */
stream_id_t recovery_log_received(const recovery_log_t *l, uint32_t pos, const recovery_room_t *r);
/* Forgets the sends from pos on (pos <= count, and count - pos <= RECOVERY_LOG_LEN). */
void recovery_log_truncate(recovery_log_t *l, uint32_t pos);

/*
 * Appends the record: `2`, then netstrings `<len>:<bytes>,` for the sid, the log
 * (`<count>` then `;<tag>,<id>,<prev>` per kept send) and each room (`<tag>,<first>,<last>,<name>`;
 * the name binary-safe). 0, or -EINVAL (empty sid; out unchanged).
 */
int recovery_encode(buf_t *out, const char *sid, size_t sid_len, const recovery_log_t *log,
                    const recovery_room_t *rooms, size_t nrooms);
/*
 * Decodes a record: *sid points into p, *log is filled, room(arg, r) is called for each room (r
 * borrowed for the call). 0, or -EPROTO on anything malformed (nothing is trusted; room is not
 * called at all then).
 */
int recovery_decode(const char *p, size_t len, const char **sid, size_t *sid_len,
                    recovery_log_t *log, void (*room)(void *arg, const recovery_room_t *r),
                    void *arg);
/* Appends `<prefix>:recovery:<pid>` to out. */
void recovery_key(buf_t *out, const char *prefix, const char *pid, size_t pid_len);
/*
 * Builds `XRANGE <room> (<after> + COUNT <count>` into argv/lens (6 slots; count borrowed as a
 * decimal string, excl holds the `(<id>` text: STREAM_ID_MAX + 2 bytes): the entries of room
 * after `after`, oldest first.
 */
void recovery_replay_argv(const char *room, size_t room_len, stream_id_t after, const char *count,
                          char *excl, const char **argv, size_t *lens);

#endif
