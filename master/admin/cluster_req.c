/* cluster_req: see cluster_req.h. */
#include "master/admin/cluster_req.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/ids.h"
#include "common/mpack.h"
#include "common/redis/subconn.h"
#include "common/xalloc.h"

#define UID_LEN 16
#define RID_LEN 16
#define REDIS_TIMEOUT_MS 2000 /* to subscribe, count and publish */
#define CHAN_SIZE 192

typedef enum phase { QUEUED, SUBSCRIBING, COUNTING, PUBLISHING, COLLECTING } phase_t;

/* One request. It outlives its requester while rds still owes it a reply: that reply frees it. */
typedef struct job {
    struct job *next;
    cluster_req_t *c; /* NULL once ended */
    cluster_req_spec_t spec;
    phase_t phase;
    bool answered; /* members answer it: responses are collected */
    int rds_pending;
    bool subscribed; /* SUBSCRIBE went out: UNSUBSCRIBE at the end */
    int confirms;    /* subscribe confirmations still to come */
    char rid[RID_LEN + 1];
    char chan[CHAN_SIZE];    /* where the request goes */
    char resp[2][CHAN_SIZE]; /* where responses come */
    int nresp;
    buf_t msg, err, scratch;
    cluster_req_result_t res;
} job_t;

struct cluster_req {
    uv_loop_t *loop;
    rds_t *pub;
    const cfg_t *cfg;
    subconn_t *sub; /* NULL until a request needs it */
    uv_timer_t timer;
    job_t *head, *tail; /* head runs */
    bool closing;
    void (*done)(void *arg);
    void *done_arg;
    int open; /* the timer, and the subscriber once created */
};

static void start(cluster_req_t *c);

static void job_free(job_t *j)
{
    buf_free(&j->msg);
    buf_free(&j->err);
    buf_free(&j->scratch);
    free(j);
}

/* ---- the two connections: the only calls that know them ---- */

static int sub_command(cluster_req_t *c, int argc, const char **argv)
{
    return subconn_command(c->sub, argc, argv, NULL);
}

static int pub_command(cluster_req_t *c, job_t *j, redisCallbackFn *cb, int argc, const char **argv,
                       const size_t *lens)
{
    int rc = rds_command(c->pub, cb, j, argc, argv, lens);
    j->rds_pending += rc == 0;
    return rc;
}

/* A reply to one of j's commands: its requester, or NULL (and j freed when nothing else is owed)
 * when j ended meanwhile. */
static cluster_req_t *owner(job_t *j)
{
    j->rds_pending--;
    if (j->c)
        return j->c;
    if (j->rds_pending == 0)
        job_free(j);
    return NULL;
}

/* ---- ending ---- */

static void fail(cluster_req_t *c, const char *what, const char *why);

/* The requester of j once `cmd` answered without an error; NULL when j ended meanwhile or when
 * the reply is a failure (which ends the request: j is gone then). */
static cluster_req_t *accepted(job_t *j, const redisReply *r, const char *cmd)
{
    cluster_req_t *c = owner(j);
    if (c && (!r || r->type == REDIS_REPLY_ERROR)) {
        fail(c, cmd, r ? r->str : "connection lost");
        return NULL;
    }
    return c;
}

/* Ends the running request with rc (the reason in its err), then starts the next one. */
static void finish(cluster_req_t *c, int rc)
{
    job_t *j = c->head;
    uv_timer_stop(&c->timer);
    if (j->subscribed) {
        const char *argv[] = {j->spec.sharded ? "SUNSUBSCRIBE" : "UNSUBSCRIBE", j->resp[0],
                              j->resp[1]};
        sub_command(c, 1 + j->nresp, argv);
    }
    c->head = j->next;
    if (!c->head)
        c->tail = NULL;
    j->c = NULL;
    j->spec.done(rc, &j->res, j->err.data ? j->err.data : "failed", j->spec.arg);
    if (j->rds_pending == 0)
        job_free(j);
    if (!c->closing)
        start(c);
}

static void fail(cluster_req_t *c, const char *what, const char *why)
{
    buf_printf(&c->head->err, "%s failed: %s", what, why);
    finish(c, -EIO);
}

static void fail_unreachable(cluster_req_t *c, const char *why)
{
    buf_printf(&c->head->err, "redis %s:%d unreachable: %s", c->cfg->redis_host, c->cfg->redis_port,
               why);
    finish(c, -EIO);
}

/* ---- the phases ---- */

static void on_timeout(uv_timer_t *t)
{
    cluster_req_t *c = t->data;
    if (!c->head)
        return;
    if (c->head->phase == COLLECTING)
        finish(c, 0); /* what came so far is the answer */
    else
        fail_unreachable(c, "no answer within 2 s");
}

static void on_published(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    job_t *j = privdata;
    cluster_req_t *c = accepted(j, reply, j->spec.sharded ? "SPUBLISH" : "PUBLISH");
    if (!c)
        return;
    /* responses may have come first, on the other connection */
    if (!j->answered || j->res.responses >= j->res.members) {
        finish(c, 0);
        return;
    }
    j->phase = COLLECTING;
    uv_timer_start(&c->timer, on_timeout, j->spec.timeout_ms, 0);
}

static void publish(cluster_req_t *c, job_t *j)
{
    j->phase = PUBLISHING;
    const char *argv[] = {j->spec.sharded ? "SPUBLISH" : "PUBLISH", j->chan, j->msg.data};
    size_t lens[] = {strlen(argv[0]), strlen(j->chan), j->msg.len};
    if (pub_command(c, j, on_published, 3, argv, lens))
        fail_unreachable(c, "not connected");
}

static void on_counted(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    job_t *j = privdata;
    const redisReply *r = reply;
    const char *cmd = j->spec.sharded ? "PUBSUB SHARDNUMSUB" : "PUBSUB NUMSUB";
    cluster_req_t *c = accepted(j, r, cmd);
    if (!c)
        return;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        r->element[1]->type != REDIS_REPLY_INTEGER) {
        fail(c, cmd, "unexpected reply");
        return;
    }
    j->res.members = r->element[1]->integer;
    publish(c, j);
}

static void count(cluster_req_t *c, job_t *j)
{
    j->phase = COUNTING;
    const char *argv[] = {"PUBSUB", j->spec.sharded ? "SHARDNUMSUB" : "NUMSUB", j->chan};
    if (pub_command(c, j, on_counted, 3, argv, NULL))
        fail_unreachable(c, "not connected");
}

/* Sends the SUBSCRIBE; -ENOTCONN while the subscriber is not connected (on_sub_state retries). */
static int subscribe(cluster_req_t *c, job_t *j)
{
    const char *argv[] = {j->spec.sharded ? "SSUBSCRIBE" : "SUBSCRIBE", j->resp[0], j->resp[1]};
    int rc = sub_command(c, 1 + j->nresp, argv);
    if (rc == 0) {
        j->subscribed = true;
        j->confirms = j->nresp;
    }
    return rc;
}

static bool is_str(const redisReply *r, const char *s)
{
    return r->type == REDIS_REPLY_STRING && strcmp(r->str, s) == 0;
}

/* A message on a response channel while the request is out. */
static void on_message(job_t *j, const redisReply *payload)
{
    cluster_reply_t r;
    int rc =
        cluster_msg_decode_response((const uint8_t *)payload->str, payload->len, &j->scratch, &r);
    if (rc == 0 && r.request_id.len == RID_LEN && memcmp(r.request_id.p, j->rid, RID_LEN) == 0) {
        j->res.responses++;
        j->spec.on_reply(&r, j->spec.arg);
    } else if (rc != 0 && rc != -ENOMSG) {
        j->res.undecodable++;
    }
}

static void on_sub_reply(const redisReply *r, void *arg)
{
    cluster_req_t *c = arg;
    job_t *j = c->head;
    if (!j || !j->answered)
        return;
    if (r->type == REDIS_REPLY_ERROR && j->phase == SUBSCRIBING) {
        fail(c, j->spec.sharded ? "SSUBSCRIBE" : "SUBSCRIBE", r->str);
        return;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 ||
        r->element[0]->type != REDIS_REPLY_STRING)
        return;
    const redisReply *kind = r->element[0], *chan = r->element[1];
    if (j->phase == SUBSCRIBING && (is_str(kind, "subscribe") || is_str(kind, "ssubscribe"))) {
        for (int i = 0; i < j->nresp; i++) {
            if (is_str(chan, j->resp[i]) && --j->confirms == 0) {
                count(c, j);
                return;
            }
        }
        return;
    }
    if ((j->phase == PUBLISHING || j->phase == COLLECTING) &&
        (is_str(kind, "message") || is_str(kind, "smessage")) &&
        r->element[2]->type == REDIS_REPLY_STRING) {
        on_message(j, r->element[2]);
        if (j->phase == COLLECTING && j->res.responses >= j->res.members)
            finish(c, 0);
    }
}

static void on_sub_state(bool connected, void *arg)
{
    cluster_req_t *c = arg;
    job_t *j = c->head;
    if (!j || !j->answered)
        return;
    if (connected && j->phase == SUBSCRIBING)
        subscribe(c, j); /* again: a new connection knows nothing of the last one */
    else if (!connected && j->phase == COLLECTING)
        finish(c, 0); /* what came so far is the answer */
    else if (!connected)
        fail_unreachable(c, "pub/sub connection lost");
}

/* Runs the head request, if any. */
static void start(cluster_req_t *c)
{
    job_t *j = c->head;
    if (!j || j->phase != QUEUED)
        return;
    uv_timer_start(&c->timer, on_timeout, REDIS_TIMEOUT_MS, 0);
    if (!j->answered) {
        count(c, j);
        return;
    }
    j->phase = SUBSCRIBING;
    if (!c->sub) {
        c->sub = subconn_new(c->loop, c->cfg, "cluster-requests", on_sub_reply, on_sub_state, c);
        c->open++;
    }
    subscribe(c, j); /* not connected yet: on_sub_state sends it */
}

/* ---- the API ---- */

cluster_req_t *cluster_req_new(uv_loop_t *loop, rds_t *pub, const cfg_t *cfg)
{
    cluster_req_t *c = xcalloc(1, sizeof(*c));
    c->loop = loop;
    c->pub = pub;
    c->cfg = cfg;
    uv_timer_init(loop, &c->timer);
    c->timer.data = c;
    c->open = 1;
    return c;
}

/* Fills in j's ids, channels and encoded request. 0, or -errno with the reason in err. */
static int prepare(job_t *j, buf_t *err)
{
    const cluster_req_spec_t *q = &j->spec;
    char uid[UID_LEN + 1];
    if (ids_random(uid, UID_LEN) || ids_random(j->rid, RID_LEN)) {
        buf_puts(err, "no random bytes for the request id");
        return -EIO;
    }
    adapter_op_t op = q->request->op;
    j->answered =
        op == ADAPTER_OP_ALL_ROOMS || op == ADAPTER_OP_FETCH || op == ADAPTER_OP_SERVER_SIDE_EMIT;
    adapter_str_t request_id = {j->rid, RID_LEN};
    int rc = cluster_msg_encode_request(&j->msg, q->sharded || q->streams, uid, UID_LEN, "/", 1,
                                        j->answered ? &request_id : NULL, q->request);
    if (rc == 0 && q->streams) {
        /* the same message, as the streams adapter's members read it */
        buf_reset(&j->scratch);
        rc = mpack_from_json(&j->scratch, j->msg.data, j->msg.len);
        buf_reset(&j->msg);
        buf_append(&j->msg, j->scratch.data, j->scratch.len);
    }
    if (rc) {
        buf_printf(err, "cannot encode the request: %s", strerror(-rc));
        return rc;
    }
    if (q->sharded || q->streams) {
        snprintf(j->chan, sizeof(j->chan), "%s#/#", q->prefix);
        snprintf(j->resp[0], sizeof(j->resp[0]), "%s#/#%s#", q->prefix, uid);
        j->nresp = 1;
    } else {
        /* the shared channel, and the requester's own (publishOnSpecificResponseChannel) */
        snprintf(j->chan, sizeof(j->chan), "%s-request#/#", q->prefix);
        snprintf(j->resp[0], sizeof(j->resp[0]), "%s-response#/#", q->prefix);
        snprintf(j->resp[1], sizeof(j->resp[1]), "%s-response#/#%s#", q->prefix, uid);
        j->nresp = 2;
    }
    return 0;
}

int cluster_req_run(cluster_req_t *c, const cluster_req_spec_t *spec, buf_t *err)
{
    job_t *j = xcalloc(1, sizeof(*j));
    j->spec = *spec;
    j->c = c;
    buf_init(&j->msg);
    buf_init(&j->err);
    buf_init(&j->scratch);
    int rc = prepare(j, err);
    if (rc) {
        job_free(j);
        return rc;
    }
    if (c->tail)
        c->tail->next = j;
    else
        c->head = j;
    c->tail = j;
    start(c);
    return 0;
}

static void part_closed(cluster_req_t *c)
{
    if (--c->open > 0)
        return;
    if (c->done)
        c->done(c->done_arg);
    free(c);
}

static void on_timer_closed(uv_handle_t *h)
{
    part_closed(h->data);
}

static void on_sub_closed(void *arg)
{
    part_closed(arg);
}

void cluster_req_close(cluster_req_t *c, void (*done)(void *arg), void *arg)
{
    c->closing = true;
    c->done = done;
    c->done_arg = arg;
    while (c->head) {
        buf_puts(&c->head->err, "the master is stopping");
        finish(c, -ECANCELED);
    }
    uv_close((uv_handle_t *)&c->timer, on_timer_closed);
    if (c->sub)
        subconn_close(c->sub, on_sub_closed, c);
}
