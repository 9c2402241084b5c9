/*
 * cluster_req: one request of this server to every member of the Redis adapter's cluster (this
 * server's workers, other streamio servers, Node servers with @socket.io/redis-adapter), the way
 * Node's adapter makes it: count the members with PUBSUB NUMSUB <prefix>-request#/# (classic) or
 * PUBSUB SHARDNUMSUB <prefix>#/# (sharded), subscribe to the response channels, publish the
 * request, then collect responses carrying its requestId until every member answered or the
 * timeout passed (Node's requestsTimeout). The master is not a member itself (it never subscribes
 * to the request channel), so every counted member is expected to answer, this server's workers
 * included.
 *
 * Asynchronous, on the master's loop: commands go through the master's command connection
 * (common/redis/rds); responses come on a pub/sub connection of its own (common/redis/subconn),
 * opened by the first request that needs one and kept. Requests run one at a time, in order, and
 * each unsubscribes when it ends. Redis must confirm the subscription, count and publish within
 * 2 s; a failure or that deadline ends the request with the reason.
 */
#ifndef STREAMIO_MASTER_ADMIN_CLUSTER_REQ_H
#define STREAMIO_MASTER_ADMIN_CLUSTER_REQ_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "common/buf.h"
#include "common/config.h"
#include "common/proto/cluster_msg.h"
#include "common/redis/rds.h"

typedef struct cluster_req_result {
    long long members;     /* counted subscribers: the responses expected */
    long long responses;   /* responses received */
    long long undecodable; /* messages on the response channels that were not readable */
} cluster_req_result_t;

typedef struct cluster_req_spec {
    const char *prefix; /* SOCKETIO_REDIS_KEY */
    bool sharded;
    /* @socket.io/redis-streams-adapter: the ClusterAdapter message as msgpack, PUBLISH on
     * <prefix>#/#, responses on <prefix>#/#<uid>#, members by NUMSUB (answered requests only) */
    bool streams;
    /* ALL_ROOMS (classic only), FETCH and SERVER_SIDE_EMIT are answered by every member;
     * JOIN, LEAVE and DISCONNECT are only published (every member applies them) */
    const cluster_request_t *request;
    unsigned timeout_ms;
    /* called once per response to this request (r and what it points to are borrowed) */
    void (*on_reply)(const cluster_reply_t *r, void *arg);
    /* called once when the request ended: rc 0 once collection ended (complete when responses
     * == members; fewer after the timeout) or, for a request nobody answers, once published;
     * -EIO (Redis failed or did not answer) or -ECANCELED (closing) with the reason in err */
    void (*done)(int rc, const cluster_req_result_t *res, const char *err, void *arg);
    void *arg;
} cluster_req_spec_t;

typedef struct cluster_req cluster_req_t;

/* Borrows loop, pub (the command connection) and cfg (for the pub/sub connection's life). */
cluster_req_t *cluster_req_new(uv_loop_t *loop, rds_t *pub, const cfg_t *cfg);
/*
 * Queues a request (spec is copied; spec->request and what it points to are borrowed until
 * done runs). 0, or -EINVAL / -E2BIG (the request cannot be encoded) / -EIO (no random request
 * id) with the reason appended to err, done not called.
 */
int cluster_req_run(cluster_req_t *c, const cluster_req_spec_t *spec, buf_t *err);
/* Ends every queued request with -ECANCELED, then closes; done(arg) runs once everything is
 * released. */
void cluster_req_close(cluster_req_t *c, void (*done)(void *arg), void *arg);

#endif
