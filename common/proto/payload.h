/*
 * payload: the `room:message` argument the seed's Node server (MessageProcessor.processMessage)
 * builds for one Redis Stream entry, as JSON text:
 *   {"from":"service","message":{<fields>},"roomId":"<stream>","event":"<event>","messageId":"<id>"}
 * The module owns only this mapping from (stream, id, fields) to text; it never parses Socket.IO,
 * never touches Redis, and allocates nothing per call beyond growing the caller's buffer (entries
 * with more than PAYLOAD_INLINE_FIELDS fields use one temporary array).
 */
#ifndef STREAMIO_COMMON_PROTO_PAYLOAD_H
#define STREAMIO_COMMON_PROTO_PAYLOAD_H

#include <stdbool.h>
#include <stddef.h>

#include "common/buf.h"

/* Fields handled without any allocation. */
#define PAYLOAD_INLINE_FIELDS 64

/* One field/value pair of a stream entry, borrowed (bytes, not NUL-terminated). */
typedef struct payload_field {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
} payload_field_t;

/*
 * Appends the payload text for the entry `id` of `stream` with fields[0..nfields) in stream order.
 * As in Node (`obj[name] = value` for each pair): a name seen twice keeps its first position and
 * its last value; array-index names ("0", "17") come first in ascending order; a "__proto__" field
 * is dropped. The `data` value, if it is valid JSON (json_validate), is inserted minified (invalid
 * UTF-8 inside repaired), so a client's JSON.parse yields what Node's JSON.parse(data) yields;
 * otherwise it is a JSON string, like every other value. Top-level "event" is the `event` field's
 * value and is omitted when there is no such field (JSON.stringify drops undefined). All strings
 * go through json_write_string (invalid UTF-8 -> U+FFFD, as ioredis decodes it). Borrows every
 * input.
 */
void payload_build(buf_t *out, const char *stream, size_t stream_len, const char *id, size_t id_len,
                   const payload_field_t *fields, size_t nfields);

/* The Engine.IO message + Socket.IO EVENT start of the packet payload_packet builds. */
#define PAYLOAD_PACKET_PREFIX "42[\"room:message\","
/* Where the Socket.IO data (the JSON array) starts in that packet: after `4` (Engine.IO message)
 * and `2` (Socket.IO EVENT, main namespace, no ack id). */
#define PAYLOAD_PACKET_DATA_OFFSET 2
/*
 * Appends the packet that carries the entry to clients, `42["room:message",<payload>]`. With
 * `offset` (connection state recovery) the entry id follows the payload as a last string
 * argument, which Socket.IO 4.6+ clients keep as the offset to resend when they reconnect: it
 * depends on the entry only, so the packet is still built once for every recipient.
 */
void payload_packet(buf_t *out, const char *stream, size_t stream_len, const char *id,
                    size_t id_len, const payload_field_t *fields, size_t nfields, bool offset);
/*
 * Reads back the offset a packet of that shape carries (one that came from a peer: another
 * server's entries reach this one through the cluster adapter with their offset): true with
 * *id borrowed from p when p is a room:message packet whose last argument is a stream id string.
 */
bool payload_packet_offset(const char *p, size_t len, const char **id, size_t *id_len);

/*
 * payload_packet, and unless mpack is NULL also the msgpack of that packet's data appended to
 * mpack: ["room:message",<payload>(,<id>)], as notepack.encode(JSON.parse(...)) of the JSON
 * written to out would give it (invalid UTF-8 as U+FFFD, the data field converted as
 * mpack_from_json does): what a classic redis-adapter message carries as packet.data. Built from
 * the fields, with one ordering of them and one validation of `data` for both encodings.
 */
void payload_packet_pair(buf_t *out, buf_t *mpack, const char *stream, size_t stream_len,
                         const char *id, size_t id_len, const payload_field_t *fields,
                         size_t nfields, bool offset);

#endif
