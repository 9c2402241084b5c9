/*
 * cluster_msg: the wire format of the requests this server makes of the Redis adapter's cluster
 * (master/admin/cluster_req sends them for streamioctl) and of the answers it reads: the same
 * messages Node's @socket.io/redis-adapter 8.x sends as a requester, classic or sharded
 * (docs/protocol.md §4.4, §5). The decoders never trust a length, count or type from the wire.
 */
#ifndef STREAMIO_COMMON_PROTO_CLUSTER_MSG_H
#define STREAMIO_COMMON_PROTO_CLUSTER_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/proto/adapter_msg.h"

#define CLUSTER_MSG_MAX_ID 64 /* longest request id taken from a response */

/* A request this server makes of the cluster. */
typedef struct cluster_request {
    adapter_op_t op;              /* ALL_ROOMS, FETCH, JOIN, LEAVE, DISCONNECT, SERVER_SIDE_EMIT */
    const adapter_str_t *rooms;   /* the sockets in any of these rooms (none: every socket); */
    size_t nrooms;                /* not for ALL_ROOMS and SERVER_SIDE_EMIT */
    const adapter_str_t *targets; /* JOIN / LEAVE: the rooms to join or leave */
    size_t ntargets;
    bool close;            /* DISCONNECT: close the transport too */
    const char *data_json; /* SERVER_SIDE_EMIT: [event, ...args] as JSON */
    size_t data_len;
} cluster_request_t;

/*
 * Appends request q as Node's adapter publishes it. Classic (on <prefix>-request#<nsp>#):
 * {"uid","requestId","type":1} (ALL_ROOMS), {"uid","requestId","type":5,"opts":{"rooms":[...],
 * "except":[]}} (FETCH), {"uid","type":2|3,"opts":{...},"rooms":[targets]} (JOIN / LEAVE),
 * {"uid","type":4,"opts":{...},"close":bool}, {"uid","requestId","type":6,"data":[...]}; sharded
 * (on <prefix>#<nsp>#): {"type":N,"data":{...},"uid":...,"nsp":...} with type 4, 5, 6, 7
 * ({opts,requestId}) or 9 ({packet,requestId}); the cluster protocol has no ALL_ROOMS.
 * request_id: required for ALL_ROOMS, FETCH and SERVER_SIDE_EMIT (answered requests), NULL for
 * the others. Borrows every input. Returns 0, -EINVAL (an op without this format, request_id
 * present or missing wrongly, more than ADAPTER_MSG_MAX_ROOMS rooms or targets, data_json not a
 * JSON array; `out` unchanged).
 */
int cluster_msg_encode_request(buf_t *out, bool sharded, const char *uid, size_t uid_len,
                               const char *nsp, size_t nsp_len, const adapter_str_t *request_id,
                               const cluster_request_t *q);

/*
 * The same request as the ClusterAdapter `data` object alone, for the Redis streams adapter,
 * which sends it as a stream entry's `data` field (SOCKETS_JOIN/LEAVE, DISCONNECT_SOCKETS) or as
 * the whole message in msgpack: {"opts":{...},"rooms":[...]}, {"opts":{...},"close":bool},
 * {"opts":{...},"requestId":...} (FETCH) or {"packet":[...],"requestId":...}; *type is its
 * ClusterAdapter type (4, 5, 6, 7, 9). Same checks and errors as cluster_msg_encode_request.
 */
int cluster_msg_encode_request_data(buf_t *out, const adapter_str_t *request_id,
                                    const cluster_request_t *q, int *type);

/* A response to one of this server's requests, whatever its format. */
typedef struct cluster_reply {
    adapter_resp_t kind; /* SOCKETS and FETCH look alike: both decode as FETCH */
    adapter_str_t request_id;
    adapter_str_t uid; /* the responder; empty when it does not say (Node in classic mode) */
    const char *body;  /* JSON text: the rooms or sockets array, or the acknowledged value; */
    size_t body_len;   /* NULL/0 when absent */
    uint64_t count;    /* CLIENT_COUNT */
} cluster_reply_t;

/*
 * Decodes a response: classic JSON ({requestId, rooms|sockets[, uid]}, type 6 and 8) or msgpack
 * (type 9), sharded JSON or msgpack ({type:8|10|11|12, data:{requestId,...}, uid, nsp}). msgpack
 * is read as its JSON rendering (mpack_to_json) in `scratch`; escaped strings are decoded into
 * `scratch` too (reset here); *out borrows p and scratch. Returns 0; -ENOMSG for a well-formed
 * message that is no response (a request, another type); -EPROTO on malformed input, a missing
 * requestId, or wrong-typed members (rooms/sockets not arrays, clientCount not an integer);
 * -E2BIG for a requestId over CLUSTER_MSG_MAX_ID bytes; -ENOTSUP for binary values.
 */
int cluster_msg_decode_response(const uint8_t *p, size_t len, buf_t *scratch, cluster_reply_t *out);

/*
 * Counts the sockets of a fetchSockets `sockets` array (JSON text, borrowed) into *nsockets and,
 * unless fn is NULL, calls fn(room) for every room of every socket, duplicates included (the name
 * is only valid during the call). `scratch` holds decoded names (reset here). Returns 0, -EPROTO
 * (not an array of objects, or "rooms" not an array of strings).
 */
int cluster_msg_sockets_rooms(const char *sockets, size_t len, buf_t *scratch, size_t *nsockets,
                              void (*fn)(const char *room, size_t len, void *arg), void *arg);

#endif
