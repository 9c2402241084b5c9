/*
 * adapter_msg: the broadcast message of the classic @socket.io/redis-adapter (8.x), published on
 * `socket.io#<nsp>#[<room>#]` as msgpack [uid, packet, opts] (docs/protocol.md §4.2-4.3). The
 * module encodes the message this server publishes, decodes messages from any peer (Node servers,
 * the redis-emitter) into borrowed views, and renders the Engine.IO text frame a client must
 * receive.
 *
 * It never decides delivery (own-uid echo, namespace and room filtering belong to the caller),
 * never allocates except by growing the caller's buffer, and never trusts a length, count or type
 * from the wire: any byte string decodes to a message or an error, without crashing.
 */
#ifndef STREAMIO_WORKER_ADAPTER_MSG_H
#define STREAMIO_WORKER_ADAPTER_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

typedef struct adapter_str {
    const char *p;
    size_t len;
} adapter_str_t;

#define ADAPTER_MSG_MAX_ROOMS 64

/*
 * Appends msgpack [uid, {"type":2,"data":<data_json>,"nsp":nsp}, {"rooms":[...],"except":[],
 * "flags":{}}], byte-identical to what a Node server publishes for the same emit (protocol.md
 * §4.2). data_json (normally `["event",args...]`) is converted with mpack_from_json. Borrows every
 * input. Returns 0, -EINVAL if data_json is not valid JSON, -E2BIG for a string over 4 GiB,
 * -ENOMEM; `out` is unchanged on error.
 */
int adapter_msg_encode_broadcast(buf_t *out, const char *uid, size_t uid_len, const char *nsp,
                                 size_t nsp_len, const char *data_json, size_t data_len,
                                 const adapter_str_t *rooms, size_t nrooms);

typedef struct adapter_msg {
    adapter_str_t uid;
    adapter_str_t nsp; /* "/" when packet.nsp is absent */
    int packet_type;   /* packet.type, 0..6 (2 = EVENT, 5 = BINARY_EVENT ...) */
    const uint8_t *data;
    size_t data_len; /* msgpack bytes of packet.data, borrowed; NULL/0 when absent */
    bool has_id;     /* packet.id present, not nil (must not be delivered with an id) */
    size_t nrooms;
    adapter_str_t rooms[ADAPTER_MSG_MAX_ROOMS];
    size_t nexcept;
    adapter_str_t except[ADAPTER_MSG_MAX_ROOMS];
    bool flag_volatile, flag_local;
} adapter_msg_t;

/*
 * Decodes a message received on socket.io#<nsp>#[room#]. Every pointer in *out borrows p. Map key
 * order does not matter, unknown keys are skipped, a repeated key takes its last value; missing or
 * nil opts keys mean empty; flags take JavaScript truthiness. Returns 0; -EPROTO on anything
 * malformed (not exactly a 3-element array, uid/nsp/room not strings, packet/opts/flags not maps,
 * rooms/except not arrays, packet.type missing or not an integer 0..6, truncated or trailing
 * bytes); -E2BIG past ADAPTER_MSG_MAX_ROOMS rooms or except entries.
 */
int adapter_msg_decode_broadcast(const uint8_t *p, size_t len, adapter_msg_t *out);

/*
 * Appends the Engine.IO text message a client receives for a decoded message, as socket.io-parser
 * encodes it: '4', the packet type digit, the namespace and ',' unless it is "/" (or empty), then
 * packet.data as JSON (mpack_to_json) unless absent, nil or undefined. The packet id is never
 * written. E.g. `42["room:message",{"id":1,"text":"hi"}]`. Returns 0; -ENOTSUP for binary content
 * (type 5/6, or bin/ext values inside data); -EPROTO if data does not convert; -ENOMEM; `out` is
 * unchanged on error.
 */
int adapter_msg_sio_text(buf_t *out, const adapter_msg_t *m);

#endif
