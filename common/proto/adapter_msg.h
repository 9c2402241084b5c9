/*
 * adapter_msg: the messages of @socket.io/redis-adapter (8.x) and of the redis-emitter (5.x), in
 * both wire formats (docs/protocol.md §4-5): the classic broadcast, msgpack [uid, packet, opts] on
 * `socket.io#<nsp>#[<room>#]`; the classic requests (JSON, msgpack for a broadcast with acks) on
 * `socket.io-request#<nsp>#` and their responses; the sharded ClusterAdapter messages
 * ({type, data, uid, nsp} as JSON). The module encodes what this server publishes, decodes what
 * any peer sends into one view (adapter_msg_t, whatever the format), and renders the Engine.IO
 * text frame a client must receive.
 *
 * It never decides delivery (own-uid echo, namespace and room filtering belong to the caller),
 * never allocates except by growing the caller's buffer, and never trusts a length, count or type
 * from the wire: any byte string decodes to a message or an error, without crashing.
 */
#ifndef STREAMIO_COMMON_PROTO_ADAPTER_MSG_H
#define STREAMIO_COMMON_PROTO_ADAPTER_MSG_H

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
 * input. Returns 0, -EINVAL if data_json is not valid JSON, -E2BIG for a string over 4 GiB;
 * `out` is unchanged on error.
 */
int adapter_msg_encode_broadcast(buf_t *out, const char *uid, size_t uid_len, const char *nsp,
                                 size_t nsp_len, const char *data_json, size_t data_len,
                                 const adapter_str_t *rooms, size_t nrooms);

/* The same, with packet.data given as msgpack (one value, copied as is: the caller built it). */
int adapter_msg_encode_broadcast_mpack(buf_t *out, const char *uid, size_t uid_len, const char *nsp,
                                       size_t nsp_len, const uint8_t *data, size_t data_len,
                                       const adapter_str_t *rooms, size_t nrooms);

/* What a decoded message asks of this server. */
typedef enum adapter_op {
    ADAPTER_OP_NONE = 0,        /* well-formed, nothing to do here (responses, heartbeats...) */
    ADAPTER_OP_BROADCAST,       /* deliver; with request_id: count and forward client acks */
    ADAPTER_OP_SOCKETS,         /* classic 0: ids of the sockets in `rooms` */
    ADAPTER_OP_ALL_ROOMS,       /* classic 1 */
    ADAPTER_OP_JOIN,            /* make the sockets of rooms/except join `targets` */
    ADAPTER_OP_LEAVE,           /* ... leave `targets` */
    ADAPTER_OP_DISCONNECT,      /* ... disconnect (`close`: close the transport too) */
    ADAPTER_OP_FETCH,           /* describe the sockets of rooms/except */
    ADAPTER_OP_SERVER_SIDE_EMIT /* event for the server itself; answer when request_id is set */
} adapter_op_t;

typedef struct adapter_msg {
    adapter_op_t op;
    adapter_str_t request_id; /* empty when absent */
    bool legacy;              /* classic 2-4 in the {sid, room, requestId} form */
    bool close;               /* DISCONNECT */
    size_t ntargets;          /* JOIN / LEAVE: the rooms to join or leave */
    adapter_str_t targets[ADAPTER_MSG_MAX_ROOMS];
    const char *data_json; /* packet.data (BROADCAST) or the event array (SERVER_SIDE_EMIT) as */
    size_t data_json_len;  /* JSON text, borrowed, for messages that arrived as JSON */
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
    uint64_t timeout_ms; /* flags.timeout of a broadcast with acks, 0 when absent */
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
 * The uid of a classic broadcast, read from its first bytes (msgpack [uid, ...]) without decoding
 * the rest, so a receiver can drop the broadcasts of its own server before paying for them.
 * `uid` borrows p. 0, or -EPROTO when the message does not start that way (decode it to know).
 */
int adapter_msg_peek_broadcast_uid(const uint8_t *p, size_t len, adapter_str_t *uid);

/* The ClusterAdapter message type of a broadcast (sharded mode). */
#define ADAPTER_CLUSTER_BROADCAST 3

/*
 * The type and uid of a sharded message laid out as Node's ClusterAdapter and this module write
 * it, {"type":N,...,"uid":"<uid>","nsp":"<nsp>"} with no escapes in uid and nsp, read from its two
 * ends without decoding the rest. For valid JSON these are the members JSON.parse keeps (the last
 * of each name closes the object). `uid` borrows p. 0, or -EPROTO when the message is laid out
 * otherwise (decode it to know).
 */
int adapter_msg_peek_cluster(const uint8_t *p, size_t len, int *type, adapter_str_t *uid);

/*
 * Decodes a classic request (socket.io-request#<nsp>#): JSON when the first byte is '{', else the
 * msgpack map of a broadcast with acks (type 7). Types 0-7 give their op; anything else decodes to
 * ADAPTER_OP_NONE. Strings with JSON escapes are decoded into `scratch` (reset here; *out borrows
 * it and p). Returns 0; -EPROTO on malformed input or missing/wrong-typed members; -E2BIG past
 * ADAPTER_MSG_MAX_ROOMS rooms.
 */
int adapter_msg_decode_request(const uint8_t *p, size_t len, buf_t *scratch, adapter_msg_t *out);

/*
 * Decodes a ClusterAdapter message {type, data, uid, nsp}: JSON (the sharded adapter), or msgpack
 * when the first byte is not '{' (the sharded adapter's messages with binary content, every pub/sub
 * message of the streams adapter). BROADCAST (3), SOCKETS_JOIN/LEAVE (4, 5), DISCONNECT_SOCKETS
 * (6), FETCH_SOCKETS (7) and SERVER_SIDE_EMIT (9) give their op; the other types (responses,
 * heartbeats) give ADAPTER_OP_NONE. Same ownership and errors as adapter_msg_decode_request; from
 * msgpack, packet.data of a BROADCAST and the event array of a SERVER_SIDE_EMIT stay msgpack
 * (`data`, borrowed from p; data_json NULL).
 */
int adapter_msg_decode_cluster(const uint8_t *p, size_t len, buf_t *scratch, adapter_msg_t *out);
/*
 * The same for a message whose uid, nsp and type came apart from its `data` (the streams adapter's
 * stream entries): data is the JSON text of `data` when it starts with '{', else its msgpack bytes
 * (one whole value); len 0 means no data. *out borrows uid, nsp, data and scratch.
 */
int adapter_msg_decode_cluster_parts(const adapter_str_t *uid, const adapter_str_t *nsp,
                                     int64_t type, const uint8_t *data, size_t len, buf_t *scratch,
                                     adapter_msg_t *out);

/*
 * Appends the `data` of a ClusterAdapter BROADCAST of an EVENT with data_json (the JSON array
 * [event, ...args], copied as compact JSON) to `rooms`, as Node's ClusterAdapter writes it:
 * {"packet":{"type":2,"data":...},"opts":{"rooms":[...],"except":[],"flags":{}}} (the streams
 * adapter's `data` field). Returns 0, or -EINVAL if data_json is not valid JSON (`out` unchanged).
 */
int adapter_msg_encode_broadcast_data(buf_t *out, const char *data_json, size_t data_len,
                                      const adapter_str_t *rooms, size_t nrooms);

/*
 * Appends the sharded BROADCAST message for an EVENT with data_json (the JSON array
 * [event, ...args], copied as compact JSON) to `rooms`:
 * {"type":3,"data":{"packet":{"type":2,"data":...},"opts":{"rooms":[...],"except":[],
 * "flags":{}}},"uid":"...","nsp":"..."} as Node's ClusterAdapter writes it. Returns 0, or -EINVAL
 * if data_json is not valid JSON (`out` unchanged).
 */
int adapter_msg_encode_cluster_broadcast(buf_t *out, const char *uid, size_t uid_len,
                                         const char *nsp, size_t nsp_len, const char *data_json,
                                         size_t data_len, const adapter_str_t *rooms,
                                         size_t nrooms);
/* The same for data_json known to be valid JSON with no whitespace outside strings (this
 * process's own encoding of an entry): copied as is, neither checked nor minified again. */
int adapter_msg_encode_cluster_broadcast_compact(buf_t *out, const char *uid, size_t uid_len,
                                                 const char *nsp, size_t nsp_len,
                                                 const char *data_json, size_t data_len,
                                                 const adapter_str_t *rooms, size_t nrooms);

/* Response kinds, named after what they answer. */
typedef enum adapter_resp {
    ADAPTER_RESP_SOCKETS,      /* classic 0 / legacy 2-4 (`body` = "[...ids]" or NULL) */
    ADAPTER_RESP_ALL_ROOMS,    /* `body` = JSON array of room names */
    ADAPTER_RESP_FETCH,        /* `body` = JSON array of socket descriptions */
    ADAPTER_RESP_SSE,          /* server-side emit ack; `body` = the argument or NULL (undefined) */
    ADAPTER_RESP_CLIENT_COUNT, /* broadcast with acks: `count` clients will answer */
    ADAPTER_RESP_BROADCAST_ACK /* one client ack; `body` = its first argument or NULL */
} adapter_resp_t;

/*
 * Appends a response in the format of the request it answers: classic as Node's RedisAdapter
 * writes it (JSON; msgpack {type:9, requestId, packet} for BROADCAST_ACK, the JSON body converted
 * with mpack_from_json), plus a last "uid" member naming the responder in SOCKETS, ALL_ROOMS,
 * FETCH and SSE responses when `uid` is not NULL (Node ignores it); or sharded as the
 * ClusterAdapter's JSON
 * {"type":N,"data":{"requestId":...,...},"uid":uid,"nsp":nsp} (`uid` required). `body` is
 * borrowed valid JSON. Returns 0, -EINVAL (invalid body, sharded without uid), -E2BIG (a
 * request id over 4 GiB); `out` unchanged on error.
 */
int adapter_msg_encode_response(buf_t *out, adapter_resp_t kind, bool sharded, const char *uid,
                                size_t uid_len, const char *nsp, size_t nsp_len,
                                const adapter_str_t *request_id, const char *body, size_t body_len,
                                uint64_t count);

/*
 * Appends the Engine.IO text message a client receives for a decoded message, as socket.io-parser
 * encodes it: '4', the packet type digit, the namespace and ',' unless it is "/" (or empty), then
 * packet.data as JSON (data_json as it came, else mpack_to_json) unless absent, nil or undefined.
 * The packet id is never written. E.g. `42["room:message",{"id":1,"text":"hi"}]`. Returns 0;
 * -ENOTSUP for binary content (type 5/6, or bin/ext values inside data); -EPROTO if data does not
 * convert; `out` is unchanged on error.
 */
int adapter_msg_sio_text(buf_t *out, const adapter_msg_t *m);

/*
 * As adapter_msg_sio_text, with an ack id after the namespace (`42<ack_id>[...]`), for a
 * broadcast whose client acks are forwarded to the requester. Same returns.
 */
int adapter_msg_sio_text_ack(buf_t *out, const adapter_msg_t *m, uint64_t ack_id);

/*
 * As adapter_msg_sio_text, with `offset` (borrowed) appended to the data array as a last string
 * argument, as a ClusterAdapter member does for an EVENT it broadcasts while connection state
 * recovery is on (the offset the client resends). Also -EPROTO when the data is not an array.
 */
int adapter_msg_sio_text_offset(buf_t *out, const adapter_msg_t *m, const char *offset,
                                size_t offset_len);

#define ADAPTER_MSG_MAX_ATTACHMENTS 256

/*
 * For the messages adapter_msg_sio_text refuses with -ENOTSUP because their msgpack data holds
 * bin values (an EVENT, type 2, or a BINARY_EVENT, type 5): appends the Engine.IO text message
 * socket.io-parser writes for them, `45<n>-[<nsp>,][<ack_id>]<data>` with each bin value
 * replaced by {"_placeholder":true,"num":i} in JavaScript key order, and appends the n
 * attachments to `atts`, each as a host-order uint32 length then its bytes, to be sent as n
 * binary messages after the text. *natt = n. Returns 0; -ENOTSUP for other packet types and ext
 * values that are no timestamps; -EPROTO for JSON or missing data, or data that does not convert;
 * -E2BIG past ADAPTER_MSG_MAX_ATTACHMENTS. Both buffers unchanged on error.
 */
int adapter_msg_sio_binary(buf_t *out, buf_t *atts, const adapter_msg_t *m, const uint64_t *ack_id,
                           unsigned *natt);
/* The same with an offset appended to the data array (see adapter_msg_sio_text_offset). */
int adapter_msg_sio_binary_offset(buf_t *out, buf_t *atts, const adapter_msg_t *m,
                                  const char *offset, size_t offset_len, unsigned *natt);

#endif
