/* cluster_req: see cluster_req.h. */
#include "master/admin/cluster_req.h"

#include <errno.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "common/ids.h"

#define UID_LEN 16
#define RID_LEN 16

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static bool is_str(const redisReply *r)
{
    return r->type == REDIS_REPLY_STRING;
}

/* Runs a command whose reply must not be an error; the reply is returned (caller frees). */
static redisReply *command(redisContext *c, buf_t *err, int argc, const char **argv,
                           const size_t *lens)
{
    redisReply *r = redisCommandArgv(c, argc, argv, lens);
    if (!r || r->type == REDIS_REPLY_ERROR) {
        buf_printf(err, "%s failed: %s", argv[0], r ? r->str : c->errstr);
        freeReplyObject(r);
        return NULL;
    }
    return r;
}

/* The subscriber count PUBSUB NUMSUB/SHARDNUMSUB gives for chan, or -1. */
static long long members(redisContext *pub, bool sharded, const char *chan, buf_t *err)
{
    const char *argv[] = {"PUBSUB", sharded ? "SHARDNUMSUB" : "NUMSUB", chan};
    size_t lens[] = {6, strlen(argv[1]), strlen(chan)};
    redisReply *r = command(pub, err, 3, argv, lens);
    long long n = -1;
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
        r->element[1]->type == REDIS_REPLY_INTEGER)
        n = r->element[1]->integer;
    else if (r)
        buf_printf(err, "unexpected PUBSUB reply");
    freeReplyObject(r);
    return n;
}

/* Subscribes sub to the channels responses come on; every confirmation is read. */
static int subscribe(redisContext *sub, const cluster_req_t *q, const char *uid, buf_t *err)
{
    char a[192], b[192];
    const char *argv[3];
    size_t lens[3];
    int n;
    if (q->sharded) {
        snprintf(a, sizeof(a), "%s#/#%s#", q->prefix, uid);
        argv[0] = "SSUBSCRIBE";
        n = 2;
    } else {
        /* the shared channel, and the requester's own (publishOnSpecificResponseChannel) */
        snprintf(a, sizeof(a), "%s-response#/#", q->prefix);
        snprintf(b, sizeof(b), "%s-response#/#%s#", q->prefix, uid);
        argv[0] = "SUBSCRIBE";
        argv[2] = b;
        lens[2] = strlen(b);
        n = 3;
    }
    argv[1] = a;
    lens[0] = strlen(argv[0]);
    lens[1] = strlen(a);
    redisReply *r = command(sub, err, n, argv, lens);
    for (int i = 1; r && i < n - 1; i++) {
        freeReplyObject(r);
        void *next = NULL;
        if (redisGetReply(sub, &next) != REDIS_OK) {
            buf_printf(err, "%s failed: %s", argv[0], sub->errstr);
            return -EIO;
        }
        r = next;
    }
    freeReplyObject(r);
    return r ? 0 : -EIO;
}

/* The payload of a pub/sub message reply, or NULL for anything else. */
static const redisReply *payload(const redisReply *r)
{
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 3 || !is_str(r->element[0]))
        return NULL;
    const char *kind = r->element[0]->str;
    if (strcmp(kind, "message") != 0 && strcmp(kind, "smessage") != 0)
        return NULL;
    return is_str(r->element[2]) ? r->element[2] : NULL;
}

static int collect(redisContext *sub, const cluster_req_t *q, const char *rid,
                   cluster_req_result_t *res)
{
    buf_t scratch;
    buf_init(&scratch);
    uint64_t deadline = now_ms() + q->timeout_ms;
    while (res->responses < res->members) {
        uint64_t now = now_ms();
        if (now >= deadline)
            break;
        uint64_t left = deadline - now;
        struct timeval tv = {.tv_sec = (time_t)(left / 1000),
                             .tv_usec = (suseconds_t)(left % 1000) * 1000};
        redisSetTimeout(sub, tv);
        void *raw = NULL;
        if (redisGetReply(sub, &raw) != REDIS_OK)
            break; /* the timeout (or a lost connection): what came so far is the answer */
        const redisReply *p = payload(raw);
        cluster_reply_t r;
        int rc = p ? cluster_msg_decode_response((const uint8_t *)p->str, p->len, &scratch, &r)
                   : -ENOMSG;
        if (rc == 0 && r.request_id.len == RID_LEN && memcmp(r.request_id.p, rid, RID_LEN) == 0) {
            res->responses++;
            q->on_reply(&r, q->arg);
        } else if (p && rc != 0 && rc != -ENOMSG) {
            res->undecodable++;
        }
        freeReplyObject(raw);
    }
    buf_free(&scratch);
    return 0;
}

int cluster_req_run(redisContext *sub, redisContext *pub, const cluster_req_t *q,
                    cluster_req_result_t *res, buf_t *err)
{
    memset(res, 0, sizeof(*res));
    char uid[UID_LEN + 1], rid[RID_LEN + 1];
    if (ids_random(uid, UID_LEN) || ids_random(rid, RID_LEN)) {
        buf_puts(err, "no random bytes for the request id");
        return -EIO;
    }
    adapter_str_t request_id = {rid, RID_LEN};
    adapter_op_t op = q->request->op;
    bool answered =
        op == ADAPTER_OP_ALL_ROOMS || op == ADAPTER_OP_FETCH || op == ADAPTER_OP_SERVER_SIDE_EMIT;
    buf_t msg;
    buf_init(&msg);
    int rc = cluster_msg_encode_request(&msg, q->sharded, uid, UID_LEN, "/", 1,
                                        answered ? &request_id : NULL, q->request);
    if (rc) {
        buf_printf(err, "cannot encode the request: %s", strerror(-rc));
        buf_free(&msg);
        return rc;
    }
    char chan[192];
    if (q->sharded)
        snprintf(chan, sizeof(chan), "%s#/#", q->prefix);
    else
        snprintf(chan, sizeof(chan), "%s-request#/#", q->prefix);
    rc = answered ? subscribe(sub, q, uid, err) : 0;
    if (rc == 0 && (res->members = members(pub, q->sharded, chan, err)) < 0)
        rc = -EIO;
    if (rc == 0) {
        const char *argv[] = {q->sharded ? "SPUBLISH" : "PUBLISH", chan, msg.data};
        size_t lens[] = {strlen(argv[0]), strlen(chan), msg.len};
        redisReply *r = command(pub, err, 3, argv, lens);
        rc = r ? 0 : -EIO;
        freeReplyObject(r);
    }
    if (rc == 0 && answered)
        rc = collect(sub, q, rid, res);
    buf_free(&msg);
    return rc;
}
