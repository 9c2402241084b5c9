/*
 * member: what one member of a socket.io adapter cluster does with a message it received, whatever
 * transport and format carried it (adapter.c: the classic and sharded pub/sub of
 * @socket.io/redis-adapter; streams.c: @socket.io/redis-streams-adapter). It delivers broadcasts
 * to the host's sockets with the packet rendered once (a binary packet as its text frame and its
 * attachment frames in one shared buffer; with an offset appended when asked), keeps the
 * broadcasts whose client acks go back to their requester, and serves requests (fetchSockets,
 * allRooms, socketsJoin/Leave, disconnectSockets, serverSideEmit), answering through the
 * transport's respond callback. It never touches Redis or a socket itself: sockets are the
 * host's (adapter_host_t), answers the transport's.
 */
#ifndef STREAMIO_WORKER_CLUSTER_MEMBER_H
#define STREAMIO_WORKER_CLUSTER_MEMBER_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "common/proto/adapter_msg.h"
#include "shm/stats.h"
#include "worker/cluster/adapter.h"

typedef struct member member_t;

/* Sends one answer to m (received in namespace nsp, an index in the host's nsps); body is
 * borrowed JSON or NULL. The transport encodes it in its format. */
typedef void (*member_respond_fn)(void *arg, unsigned nsp, const adapter_msg_t *m,
                                  adapter_resp_t kind, const char *body, size_t body_len,
                                  uint64_t count);

/* Borrows loop and stats; copies *host (whose nsps must outlive the member). Never NULL. */
member_t *member_new(uv_loop_t *loop, const adapter_host_t *host, stats_worker_t *stats,
                     member_respond_fn respond, void *arg);
/* The host it acts on (its copy; nsps filled in with "/" when the host named none). */
const adapter_host_t *member_host(const member_t *mb);

/*
 * Acts on a decoded message of namespace nsp: delivers a broadcast (with `offset`, when not NULL,
 * appended to an EVENT without ack id: connection state recovery), or serves a request (requests
 * of namespaces other than "/" are answered empty: their sockets have no rooms here). `from`
 * names where it came from, for the log line of a message that cannot be delivered.
 */
void member_apply(member_t *mb, unsigned nsp, const adapter_msg_t *m, const adapter_str_t *offset,
                  const char *from, size_t from_len);
/* Socket sock_id answered ack `ack_id` (see adapter_client_ack). */
adapter_ack_t member_client_ack(member_t *mb, const char *sock_id, uint64_t ack_id,
                                const char *args_json, size_t args_len);

/* Counts a message dropped on arrival, with one sampled log line naming `from` and why. */
void member_drop(member_t *mb, const char *why, const char *from, size_t from_len);
/* The words member_drop uses for a decoder's error code. */
const char *member_decode_error(int rc);

/* Closes the ack timer; done(arg) runs once it is closed, and the member is freed after it. */
void member_close(member_t *mb, void (*done)(void *arg), void *arg);

#endif
