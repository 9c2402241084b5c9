/*
 * streams_msg: the wire format of @socket.io/redis-streams-adapter 0.3 (docs/protocol.md §3.1),
 * whose messages are socket.io-adapter's ClusterAdapter messages (§5):
 *  - stream entries, `XADD <stream> MAXLEN ~ <maxLen> * uid <uid> nsp <nsp> type <n> data <d>`,
 *    d the JSON text of the message's `data`, or the base64 of its msgpack when it holds binary;
 *    the stream of a namespace is `<name>` or, with streamCount > 1, `<name>-<hashCode(nsp) % n>`;
 *  - pub/sub messages (ephemeral requests and every response), the whole message
 *    {type, data, uid, nsp} as msgpack: decoded by adapter_msg_decode_cluster and
 *    cluster_msg_decode_response;
 *  - sessions for connection state recovery, `sio:session:<pid>` = base64 of the msgpack map
 *    {sid, pid, rooms, data}, and the adapter's rule for which stored broadcasts a restored
 *    session missed.
 * Pure codec: no I/O, no state; never trusts a length, count or type from the wire, and grows
 * only the caller's buffers.
 */
#ifndef STREAMIO_COMMON_PROTO_STREAMS_MSG_H
#define STREAMIO_COMMON_PROTO_STREAMS_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/proto/adapter_msg.h"
#include "common/proto/payload.h"

/*
 * The index of the stream a namespace's messages go to among `count` streams, as the adapter
 * computes it: Java's String#hashCode over the UTF-16 code units of nsp (UTF-8 here; an invalid
 * byte counts as U+FFFD), in 32-bit arithmetic, then JavaScript's `%`, which keeps the sign.
 * count must be >= 1.
 */
int streams_msg_stream_index(const char *nsp, size_t len, int count);
/* Appends that stream's key: `name` when count is 1, else `name-<index>`. */
void streams_msg_stream_name(buf_t *out, const char *name, int count, const char *nsp, size_t len);

/*
 * Decodes one entry of the adapter's stream (its fields, in any order): *m as
 * adapter_msg_decode_cluster_parts gives it (m->op tells what it asks), borrowing f, scratch (JSON
 * strings) and bin (the bytes of a base64 `data`); both buffers are reset here. Returns 0;
 * -ENOMSG for an entry without a non-empty `nsp` (the adapter skips those); -EPROTO when uid or
 * type is missing or `data` is neither a JSON object nor base64 of a msgpack value of the right
 * shape; -E2BIG past ADAPTER_MSG_MAX_ROOMS rooms.
 */
int streams_msg_decode_entry(const payload_field_t *f, size_t n, buf_t *scratch, buf_t *bin,
                             adapter_msg_t *m);

/* One room of a session (borrowed). */
typedef void (*streams_msg_room_fn)(const char *room, size_t len, void *arg);

/*
 * Appends a session as the adapter stores it: base64 of msgpack {sid, pid, rooms, data}. rooms
 * (borrowed, n of them) are the socket's rooms, its own id first as socket.io lists them;
 * data_mpack is socket.data as msgpack (NULL: {}). -E2BIG for a string over 4 GiB (out unchanged).
 */
int streams_msg_encode_session(buf_t *out, const char *sid, size_t sid_len, const char *pid,
                               size_t pid_len, const adapter_str_t *rooms, size_t n,
                               const uint8_t *data_mpack, size_t data_len);

/* A decoded session; everything borrows the bytes given to streams_msg_decode_session. */
typedef struct streams_session {
    adapter_str_t sid, pid;
    const uint8_t *rooms; /* the msgpack array, for streams_msg_session_rooms */
    size_t rooms_len;
    size_t nrooms;
    const uint8_t *data; /* socket.data as msgpack; NULL when absent */
    size_t data_len;
} streams_session_t;

/*
 * Decodes a stored session (the base64 text of the key's value) into *out, its bytes in bin
 * (reset here). 0; -EPROTO when it is not base64 of one msgpack map whose sid and pid are
 * strings and whose rooms is an array of strings (other keys and key order do not matter).
 */
int streams_msg_decode_session(const char *p, size_t len, buf_t *bin, streams_session_t *out);
/* Calls fn for every room of a decoded session, in order. */
void streams_msg_session_rooms(const streams_session_t *s, streams_msg_room_fn fn, void *arg);

/*
 * Whether a restored session with these rooms missed the broadcast m (the adapter's
 * shouldIncludePacket): m names no room or one of the session's, and none of the session's rooms
 * is in m's except list.
 */
bool streams_msg_session_missed(const streams_session_t *s, const adapter_msg_t *m);

#endif
