/*
 * recovery: the storage format of Socket.IO connection state recovery (Socket.IO 4.6+ clients
 * send `{pid, offset}` in their CONNECT packet when they reconnect). A session's state is kept in
 * Redis under `<prefix>:recovery:<pid>` (SET ... PX window) as one record: the sid, the offset of
 * the last room:message the session was sent (a stream entry id) and its rooms. Any worker of
 * any server can restore it; the missed entries are then read back from the retained streams
 * (STREAM_DELETE_POLICY=retain) with `XRANGE <room> (<offset> +`, in order, and sent before the
 * CONNECT reply. This module owns the record encoding, the key, the stream-id order and the
 * command vectors; it does no I/O and never decides policy (window, limits) itself.
 */
#ifndef STREAMIO_WORKER_RECOVERY_H
#define STREAMIO_WORKER_RECOVERY_H

#include <stdbool.h>
#include <stddef.h>

#include "common/buf.h"

#define RECOVERY_ID_MAX 47 /* longest stream id accepted: "<u64>-<u64>" */

/* One string borrowed from a decoded record (not NUL-terminated). */
typedef struct recovery_str {
    const char *p;
    size_t len;
} recovery_str_t;

/*
 * Appends the record for (sid, offset, rooms) to out: `1` then netstrings `<len>:<bytes>,` for
 * the sid, the offset and each room. Binary-safe. 0, -EINVAL (empty sid, offset not a stream id
 * and not empty), -ENOMEM.
 */
int recovery_encode(buf_t *out, const char *sid, size_t sid_len, const char *offset,
                    size_t offset_len, const recovery_str_t *rooms, size_t nrooms);
/*
 * Decodes a record. sid and offset point into p; room(arg, name, len) is called for each room
 * (borrowed for the call). 0, or -EPROTO on anything malformed (nothing is trusted; room is not
 * called at all then).
 */
int recovery_decode(const char *p, size_t len, recovery_str_t *sid, recovery_str_t *offset,
                    void (*room)(void *arg, const char *name, size_t len), void *arg);
/* Appends `<prefix>:recovery:<pid>` to out. 0 or -ENOMEM. */
int recovery_key(buf_t *out, const char *prefix, const char *pid, size_t pid_len);
/* True when `id` is a stream id `<ms>-<seq>` (decimal u64s) or `<ms>`. */
bool recovery_id_valid(const char *id, size_t len);
/* Orders two valid stream ids like Redis: <0, 0, >0. Invalid ids order before valid ones. */
int recovery_id_cmp(const char *a, size_t alen, const char *b, size_t blen);
/*
 * Builds `XRANGE <room> (<offset> + COUNT <count>` into argv/lens (6 slots; count borrowed as a
 * decimal string): the entries of room after offset, oldest first. -EINVAL on a bad offset.
 */
int recovery_replay_argv(const char *room, size_t room_len, const char *offset, size_t offset_len,
                         const char *count, char *excl, size_t excl_cap, const char **argv,
                         size_t *lens);

#endif
