/*
 * cluster_req: one request of this server to every member of the Redis adapter's cluster (this
 * server's workers, other streamio servers, Node servers with @socket.io/redis-adapter), the way
 * Node's adapter makes it: count the members with PUBSUB NUMSUB <prefix>-request#/# (classic) or
 * PUBSUB SHARDNUMSUB <prefix>#/# (sharded), subscribe to the response channels, publish the
 * request, then collect responses carrying its requestId until every member answered or the
 * timeout passed (Node's requestsTimeout).
 *
 * It runs in the master, which has no event loop: synchronous hiredis on two connections the
 * caller opens and frees (the subscriber one is unusable afterwards), blocking at most
 * `timeout_ms`. The master is not a member itself (it never subscribes to the request channel), so
 * every counted member is expected to answer, this server's workers included.
 */
#ifndef STREAMIO_MASTER_ADMIN_CLUSTER_REQ_H
#define STREAMIO_MASTER_ADMIN_CLUSTER_REQ_H

#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/buf.h"
#include "common/proto/cluster_msg.h"

typedef struct cluster_req {
    const char *prefix; /* SOCKETIO_REDIS_KEY */
    bool sharded;
    /* ALL_ROOMS (classic only), FETCH and SERVER_SIDE_EMIT are answered by every member;
     * JOIN, LEAVE and DISCONNECT are only published (every member applies them) */
    const cluster_request_t *request;
    unsigned timeout_ms;
    /* called once per response to this request (r and what it points to are borrowed) */
    void (*on_reply)(const cluster_reply_t *r, void *arg);
    void *arg;
} cluster_req_t;

typedef struct cluster_req_result {
    long long members;     /* counted subscribers: the responses expected */
    long long responses;   /* responses received */
    long long undecodable; /* messages on the response channels that were not readable */
} cluster_req_result_t;

/*
 * Makes the request. 0 once collection ended (complete when responses == members; fewer after
 * the timeout) or, for a request nobody answers, once published (`sub` unused, may be NULL);
 * -EINVAL (bad request), -EIO (a Redis command failed), -ENOMEM, with the reason appended to
 * err.
 */
int cluster_req_run(redisContext *sub, redisContext *pub, const cluster_req_t *req,
                    cluster_req_result_t *res, buf_t *err);

#endif
