/*
 * sio_packet: the text part of Socket.IO v5 packets as they ride inside Engine.IO `4` messages
 * (protocol.md §2). The decoder splits and validates one packet without copying or allocating:
 * every pointer it returns borrows the input. The encoders append complete Engine.IO text
 * messages (`4` included) to a buf_t. Binary attachments are only counted here; collecting and
 * substituting them is the connection's job. This module never logs and never closes anything:
 * a decoding error is reported and the caller closes the Engine.IO session (§2.2).
 */
#ifndef STREAMIO_COMMON_PROTO_SIO_PACKET_H
#define STREAMIO_COMMON_PROTO_SIO_PACKET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

enum {
    SIO_CONNECT = 0,
    SIO_DISCONNECT = 1,
    SIO_EVENT = 2,
    SIO_ACK = 3,
    SIO_CONNECT_ERROR = 4,
    SIO_BINARY_EVENT = 5,
    SIO_BINARY_ACK = 6,
};

/* Most attachments a BINARY_EVENT/BINARY_ACK may announce (Node's maxAttachments). */
#define SIO_MAX_ATTACHMENTS 10

typedef struct sio_packet {
    int type;             /* SIO_CONNECT .. SIO_BINARY_ACK */
    const char *nsp;      /* "/" when absent (then a static string), else borrowed from the input */
    size_t nsp_len;       /* includes the leading '/', excludes the ',' */
    bool has_id;          /* an ack id was present */
    uint64_t id;          /* 0 when !has_id */
    unsigned attachments; /* 1..SIO_MAX_ATTACHMENTS for types 5/6, else 0 */
    const char *data;     /* JSON payload text, borrowed from the input; NULL when absent */
    size_t data_len;      /* 0 when absent */
} sio_packet_t;

/*
 * Decodes one Socket.IO packet. `in` is the Engine.IO message payload after the `4` (not
 * NUL-terminated, any bytes). Steps, as Node's parser: type digit 0..6; for 5/6 an attachment
 * count 1..10 then `-`; a namespace when the next byte is `/` (up to the first `,`, which is
 * consumed, or the end); an ack id when the next byte is a decimal digit (the whole digit run;
 * it must fit in a uint64_t); everything left is the JSON payload, which must be one JSON text
 * satisfying the type's rule: CONNECT absent or object; DISCONNECT absent; EVENT and
 * BINARY_EVENT a non-empty array whose first element is a number or a string other than the
 * reserved names (connect, connect_error, disconnect, disconnecting, newListener,
 * removeListener); ACK and BINARY_ACK an array; CONNECT_ERROR an object or a string.
 * Only CONNECT and DISCONNECT may lack a payload (Node's parser lets the other types through
 * without one; here that is a violation). An ACK without an id is accepted, as in
 * Node; the caller ignores it like any unknown ack id. On success fills *out (borrowing `in`) and
 * returns 0; on any violation returns -EPROTO and leaves *out unspecified.
 */
int sio_packet_decode(const char *in, size_t len, sio_packet_t *out);

/*
 * Appends one complete Engine.IO text message: `4`, the type digit, the namespace and `,` when
 * the namespace is not "/" (nsp NULL or nsp_len 0 also mean "/"), the decimal ack id when `id`
 * is not NULL, then `json` as given (json_len 0 for no payload; not validated). Examples:
 * 40{"sid":"x"}   44/random,{"message":"Invalid namespace"}   43456[1]
 * Types 5/6 need an attachment count: use sio_packet_encode_binary. Borrows every input.
 * Returns 0, or -EINVAL (out unchanged) for a type outside 0..4 or a namespace that does not
 * start with `/` or contains `,`.
 */
int sio_packet_encode(buf_t *out, int type, const char *nsp, size_t nsp_len, const uint64_t *id,
                      const char *json, size_t json_len);

/*
 * As sio_packet_encode for BINARY_EVENT/BINARY_ACK: `4`, the type digit, `<attachments>-`, then
 * namespace, id and JSON as above (e.g. 452-["message-back",{"_placeholder":true,"num":0},...]).
 * The attachments themselves are sent by the caller as separate binary messages.
 * Returns 0, or -EINVAL (out unchanged) for a type other than 5/6, attachments outside
 * 1..SIO_MAX_ATTACHMENTS or a bad namespace.
 */
int sio_packet_encode_binary(buf_t *out, int type, unsigned attachments, const char *nsp,
                             size_t nsp_len, const uint64_t *id, const char *json, size_t json_len);

/*
 * Appends an EVENT message without ack id: `42`, the namespace as above, then
 * [<event as a JSON string>,<args_json>] where args_json is the comma-separated JSON of the
 * arguments without the surrounding brackets (args_len 0: no arguments, giving 42["event"]).
 * `event` is a NUL-terminated string written by json_write_string (JSON.stringify's escaping;
 * invalid UTF-8 becomes U+FFFD, as a Node peer would send it). args_json is not validated. Borrows
 * every input. Returns 0, or -EINVAL (bad namespace or NULL event; out unchanged).
 */
int sio_packet_encode_event(buf_t *out, const char *nsp, size_t nsp_len, const char *event,
                            const char *args_json, size_t args_len);

#endif
