/* streams_adapter: see streams_adapter.h. */
#include "worker/cluster/streams_adapter.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/ids.h"
#include "common/log.h"
#include "common/mpack.h"
#include "common/proto/streams_msg.h"
#include "common/redis/redis_client.h"
#include "common/xalloc.h"
#include "worker/cluster/member.h"

#define UID_LEN 16
#define ID_MAX 48     /* "<u64>-<u64>" and a NUL, with room to spare */
#define RETRY_MS 1000 /* after Redis refused a read */
#define AGAIN_MS 100  /* after a read that ended without an answer, link still up */
#define KEY_MAX 256

/* One stream of the adapter, read by a connection of its own (XREAD blocks it). */
typedef struct lane {
    streams_adapter_t *sa;
    redis_client_t *c;
    char key[KEY_MAX];
    size_t key_len;
    char last[ID_MAX]; /* the last id read; "" until pinned to the stream's end */
    bool inflight;
} lane_t;

struct streams_adapter {
    uv_loop_t *loop;
    const cfg_t *cfg;
    adapter_host_t host;
    stats_worker_t *stats;
    member_t *member;
    redis_client_t *cmd; /* subscriptions and responses */
    lane_t *lanes;
    size_t nlanes;
    char uid[UID_LEN + 1];
    char maxlen[24];
    uv_timer_t retry;
    uint64_t refusals;       /* Redis errors (log sampling) */
    buf_t msg;               /* an outgoing message */
    buf_t json;              /* a response as JSON, before msgpack */
    buf_t chan;              /* its channel */
    buf_t scratch;           /* decoded strings of an incoming message */
    buf_t bin;               /* the bytes of a base64 `data` field */
    payload_field_t *fields; /* one entry's fields, reused */
    size_t fields_cap;
    bool closing;
    size_t open_parts;
    void (*done)(void *arg);
    void *done_arg;
};

static void refused(streams_adapter_t *sa, const char *what, const redisReply *r)
{
    sa->refusals++;
    if ((sa->refusals & (sa->refusals - 1)) == 0)
        LOG_WARN("streams adapter: %s refused: %.*s (%llu so far)", what, r->str ? (int)r->len : 0,
                 r->str ? r->str : "", (unsigned long long)sa->refusals);
}

/* ---- answers ---- */

/* The member's respond callback: the ClusterAdapter response as msgpack on the requester's
 * channel, `<key>#<nsp>#<uid>#`. */
static void respond(void *arg, unsigned nsp, const adapter_msg_t *m, adapter_resp_t kind,
                    const char *body, size_t body_len, uint64_t count)
{
    streams_adapter_t *sa = arg;
    const adapter_str_t *n = &sa->host.nsps[nsp];
    buf_reset(&sa->json); /* m borrows scratch */
    int rc = adapter_msg_encode_response(&sa->json, kind, true, sa->uid, UID_LEN, n->p, n->len,
                                         &m->request_id, body, body_len, count);
    buf_reset(&sa->msg);
    if (!rc)
        rc = mpack_from_json(&sa->msg, sa->json.data, sa->json.len);
    if (rc) {
        LOG_WARN("streams adapter: cannot encode a response: %s", strerror(-rc));
        return;
    }
    buf_reset(&sa->chan);
    buf_printf(&sa->chan, "%s#%.*s#%.*s#", sa->cfg->redis_key, (int)n->len, n->p, (int)m->uid.len,
               m->uid.p);
    const char *argv[] = {"PUBLISH", sa->chan.data, sa->msg.data};
    size_t lens[] = {7, sa->chan.len, sa->msg.len};
    if (redis_client_command(sa->cmd, NULL, 0, NULL, NULL, 3, argv, lens))
        LOG_WARN("streams adapter: cannot send a response: Redis not connected");
    else
        STATS_ADD(sa->stats->adapter_out_bytes, sa->msg.len);
}

/* ---- incoming ---- */

/* The index of a served namespace, or -1. */
static int nsp_index(const streams_adapter_t *sa, const char *p, size_t len)
{
    for (size_t i = 0; i < sa->host.nnsp; i++) {
        const adapter_str_t *n = &sa->host.nsps[i];
        if (n->len == len && memcmp(n->p, p, len) == 0)
            return (int)i;
    }
    return -1;
}

static void on_message(redis_client_t *c, const redis_push_t *push, void *arg)
{
    (void)c;
    streams_adapter_t *sa = arg;
    if (sa->closing || push->type != REDIS_PUSH_MESSAGE)
        return;
    STATS_ADD(sa->stats->adapter_in_bytes, push->len);
    adapter_msg_t m;
    int rc = adapter_msg_decode_cluster((const uint8_t *)push->data, push->len, &sa->scratch, &m);
    if (rc) {
        member_drop(sa->member, member_decode_error(rc), push->channel, push->channel_len);
        return;
    }
    int nsp = nsp_index(sa, m.nsp.p, m.nsp.len);
    bool own = m.uid.len == UID_LEN && memcmp(m.uid.p, sa->uid, UID_LEN) == 0;
    if (m.op == ADAPTER_OP_NONE || nsp < 0 || own)
        return; /* a response (this worker asks nothing), another namespace, or our own */
    member_apply(sa->member, (unsigned)nsp, &m, NULL, push->channel, push->channel_len);
}

static void fields_reserve(streams_adapter_t *sa, size_t n)
{
    if (n <= sa->fields_cap)
        return;
    sa->fields = xrealloc(sa->fields, n * sizeof(*sa->fields));
    sa->fields_cap = n;
}

static bool is_str(const redisReply *r)
{
    return r->type == REDIS_REPLY_STRING;
}

/* One entry, [id, [field, value, ...]]: delivered with its id as the offset. */
static void on_entry(lane_t *l, const redisReply *e)
{
    streams_adapter_t *sa = l->sa;
    const redisReply *id = e->element[0], *fv = e->element[1];
    fields_reserve(sa, fv->elements / 2 + 1);
    size_t n = 0, bytes = 0;
    for (size_t j = 0; j + 1 < fv->elements; j += 2) {
        const redisReply *f = fv->element[j], *v = fv->element[j + 1];
        if (is_str(f) && is_str(v)) {
            sa->fields[n++] = (payload_field_t){f->str, f->len, v->str, v->len};
            bytes += f->len + v->len;
        }
    }
    STATS_ADD(sa->stats->adapter_in_bytes, bytes);
    adapter_msg_t m;
    int rc = streams_msg_decode_entry(sa->fields, n, &sa->scratch, &sa->bin, &m);
    if (rc == -ENOMSG)
        return; /* no namespace: the adapter skips those */
    if (rc) {
        member_drop(sa->member, member_decode_error(rc), l->key, l->key_len);
        return;
    }
    int nsp = nsp_index(sa, m.nsp.p, m.nsp.len);
    if (nsp < 0 || m.op == ADAPTER_OP_NONE)
        return;
    adapter_str_t offset = {id->str, id->len};
    member_apply(sa->member, (unsigned)nsp, &m, sa->cfg->connection_recovery ? &offset : NULL,
                 l->key, l->key_len);
}

static void lane_read(lane_t *l);
static void on_retry(uv_timer_t *t);

static void keep_id(lane_t *l, const redisReply *id)
{
    if (is_str(id) && id->len < sizeof(l->last)) {
        memcpy(l->last, id->str, id->len);
        l->last[id->len] = '\0';
    }
}

/* An unanswered read (lost link, expired command): again once the link is up. */
static void lane_lost(lane_t *l)
{
    streams_adapter_t *sa = l->sa;
    if (!sa->closing && redis_client_up(l->c) && !uv_is_active((uv_handle_t *)&sa->retry))
        uv_timer_start(&sa->retry, on_retry, AGAIN_MS, 0);
}

/* A lane's command came back: true when r is an answer to read; else it is tried again. */
static bool lane_answered(lane_t *l, const redisReply *r, const char *what)
{
    streams_adapter_t *sa = l->sa;
    l->inflight = false;
    if (!r) {
        lane_lost(l);
        return false;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        refused(sa, what, r);
        if (!sa->closing)
            uv_timer_start(&sa->retry, on_retry, RETRY_MS, 0);
        return false;
    }
    return true;
}

/* [[key, [[id, [f, v, ...]], ...]]] or nil (BLOCK expired). */
static void on_read(const redisReply *r, void *arg)
{
    lane_t *l = arg;
    streams_adapter_t *sa = l->sa;
    if (!lane_answered(l, r, "XREAD"))
        return;
    for (size_t s = 0; r->type == REDIS_REPLY_ARRAY && s < r->elements; s++) {
        const redisReply *st = r->element[s];
        if (st->type != REDIS_REPLY_ARRAY || st->elements != 2 ||
            st->element[1]->type != REDIS_REPLY_ARRAY)
            continue;
        const redisReply *list = st->element[1];
        for (size_t i = 0; i < list->elements && !sa->closing; i++) {
            const redisReply *e = list->element[i];
            if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 || !is_str(e->element[0]) ||
                e->element[1]->type != REDIS_REPLY_ARRAY)
                continue;
            keep_id(l, e->element[0]);
            on_entry(l, e);
        }
    }
    lane_read(l);
}

/* XREVRANGE <key> + - COUNT 1: where the adapter's `$` stands now ("0-0": nothing yet). */
static void on_pin(const redisReply *r, void *arg)
{
    lane_t *l = arg;
    if (!lane_answered(l, r, "XREVRANGE"))
        return;
    strcpy(l->last, "0-0");
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 1 &&
        r->element[0]->type == REDIS_REPLY_ARRAY && r->element[0]->elements == 2)
        keep_id(l, r->element[0]->element[0]);
    lane_read(l);
}

static void lane_read(lane_t *l)
{
    streams_adapter_t *sa = l->sa;
    if (sa->closing || l->inflight || !redis_client_up(l->c))
        return;
    int rc;
    if (!l->last[0]) {
        const char *argv[] = {"XREVRANGE", l->key, "+", "-", "COUNT", "1"};
        rc = redis_client_command(l->c, l->key, l->key_len, on_pin, l, 6, argv, NULL);
    } else {
        char count[16], block[16];
        snprintf(count, sizeof(count), "%d", STREAMS_ADAPTER_READ_COUNT);
        snprintf(block, sizeof(block), "%d", STREAMS_ADAPTER_BLOCK_MS);
        const char *argv[] = {"XREAD", "COUNT", count, "BLOCK", block, "STREAMS", l->key, l->last};
        rc = redis_client_command_blocking(l->c, l->key, l->key_len, STREAMS_ADAPTER_BLOCK_MS,
                                           on_read, l, 8, argv, NULL);
    }
    l->inflight = rc == 0;
}

static void on_retry(uv_timer_t *t)
{
    streams_adapter_t *sa = t->data;
    for (size_t i = 0; i < sa->nlanes; i++)
        lane_read(&sa->lanes[i]);
}

static void on_lane_state(redis_client_t *c, bool up, void *arg)
{
    (void)c;
    if (up)
        lane_read(arg);
    else
        LOG_WARN("streams adapter: reading %s paused: Redis connection lost; resuming after it",
                 ((lane_t *)arg)->key);
}

static void subscribe_all(streams_adapter_t *sa)
{
    for (size_t i = 0; i < sa->host.nnsp; i++) {
        const adapter_str_t *n = &sa->host.nsps[i];
        buf_reset(&sa->chan);
        buf_printf(&sa->chan, "%s#%.*s#", sa->cfg->redis_key, (int)n->len, n->p);
        redis_client_subscribe(sa->cmd, REDIS_SUB_CHANNEL, sa->chan.data, sa->chan.len);
    }
}

/* ---- outgoing ---- */

int streams_adapter_publish(streams_adapter_t *sa, adapter_send_fn send, void *send_arg,
                            const char *room, size_t room_len, const char *data_json,
                            size_t data_len)
{
    adapter_str_t r = {room, room_len};
    buf_reset(&sa->msg);
    int rc = adapter_msg_encode_broadcast_data(&sa->msg, data_json, data_len, &r, 1);
    if (rc)
        return rc;
    const lane_t *l = &sa->lanes[0]; /* the stream of "/" */
    const char *argv[] = {"XADD",  l->key, "MAXLEN", "~",    sa->maxlen, "*",    "uid",
                          sa->uid, "nsp",  "/",      "type", "3",        "data", sa->msg.data};
    size_t lens[] = {4, l->key_len, 6, 1, strlen(sa->maxlen), 1, 3, UID_LEN, 3,
                     1, 4,          1, 4, sa->msg.len};
    rc = send(14, argv, lens, send_arg);
    if (rc == 0)
        STATS_ADD(sa->stats->adapter_out_bytes, sa->msg.len);
    return rc;
}

/* ---- lifecycle ---- */

static void on_cmd_state(redis_client_t *c, bool up, void *arg)
{
    (void)c;
    (void)arg;
    if (!up)
        LOG_WARN("streams adapter: pub/sub connection lost; reconnecting");
}

static const redis_client_cbs_t cmd_cbs = {.state = on_cmd_state, .message = on_message};
static const redis_client_cbs_t lane_cbs = {.state = on_lane_state};

/* The lanes: the stream of every namespace served, each once ("/" first). */
static void make_lanes(streams_adapter_t *sa, redis_topology_t *topo)
{
    sa->lanes = xcalloc(sa->host.nnsp, sizeof(*sa->lanes));
    buf_t key;
    buf_init(&key);
    for (size_t i = 0; i < sa->host.nnsp; i++) {
        const adapter_str_t *n = &sa->host.nsps[i];
        buf_reset(&key);
        streams_msg_stream_name(&key, sa->cfg->stream_name, sa->cfg->stream_count, n->p, n->len);
        bool seen = false;
        for (size_t j = 0; j < sa->nlanes && !seen; j++)
            seen = strcmp(sa->lanes[j].key, key.data) == 0;
        if (seen || key.len >= KEY_MAX)
            continue;
        lane_t *l = &sa->lanes[sa->nlanes++];
        l->sa = sa;
        memcpy(l->key, key.data, key.len + 1);
        l->key_len = key.len;
        l->c = redis_client_new(topo, "adapter-xread", &lane_cbs, l);
        redis_client_count_reconnects(l->c, &sa->stats->redis_reconnects);
        sa->open_parts++;
    }
    buf_free(&key);
}

int streams_adapter_new(streams_adapter_t **out, redis_topology_t *topo, const cfg_t *cfg,
                        const adapter_host_t *host, stats_worker_t *stats)
{
    streams_adapter_t *sa = xcalloc(1, sizeof(*sa));
    if (ids_random(sa->uid, UID_LEN)) {
        free(sa);
        return -EIO;
    }
    sa->loop = redis_topology_loop(topo);
    sa->cfg = cfg;
    sa->stats = stats;
    sa->member = member_new(sa->loop, host, stats, respond, sa);
    sa->host = *member_host(sa->member); /* "/" filled in when the host named no namespace */
    snprintf(sa->maxlen, sizeof(sa->maxlen), "%d", cfg->stream_maxlen);
    buf_init(&sa->msg);
    buf_init(&sa->json);
    buf_init(&sa->chan);
    buf_init(&sa->scratch);
    buf_init(&sa->bin);
    uv_timer_init(sa->loop, &sa->retry);
    sa->retry.data = sa;
    sa->open_parts = 3; /* the member, the timer, the command client */
    uint64_t half[2];
    memcpy(half, sa->uid, sizeof(half));
    STATS_SET(stats->adapter_uid[0], half[0]);
    STATS_SET(stats->adapter_uid[1], half[1]);
    sa->cmd = redis_client_new(topo, "adapter", &cmd_cbs, sa);
    redis_client_count_reconnects(sa->cmd, &stats->redis_reconnects);
    subscribe_all(sa);
    make_lanes(sa, topo);
    *out = sa;
    return 0;
}

adapter_ack_t streams_adapter_client_ack(streams_adapter_t *sa, const char *sock_id,
                                         uint64_t ack_id, const char *args_json, size_t args_len)
{
    return sa ? member_client_ack(sa->member, sock_id, ack_id, args_json, args_len)
              : ADAPTER_ACK_HOST;
}

bool streams_adapter_connected(const streams_adapter_t *sa)
{
    if (!redis_client_up(sa->cmd))
        return false;
    for (size_t i = 0; i < sa->nlanes; i++) {
        if (!redis_client_up(sa->lanes[i].c) || !sa->lanes[i].last[0])
            return false;
    }
    return true;
}

/* "/" is the first namespace served: its stream is the first lane's. */
const char *streams_adapter_main_stream(const streams_adapter_t *sa)
{
    return sa->nlanes ? sa->lanes[0].key : "";
}

const char *streams_adapter_main_last(const streams_adapter_t *sa)
{
    return sa->nlanes ? sa->lanes[0].last : "";
}

const char *streams_adapter_uid(const streams_adapter_t *sa)
{
    return sa->uid;
}

static void on_part_closed(void *arg)
{
    streams_adapter_t *sa = arg;
    if (--sa->open_parts)
        return;
    void (*done)(void *) = sa->done;
    void *done_arg = sa->done_arg;
    buf_free(&sa->msg);
    buf_free(&sa->json);
    buf_free(&sa->chan);
    buf_free(&sa->scratch);
    buf_free(&sa->bin);
    free(sa->fields);
    free(sa->lanes);
    free(sa);
    if (done)
        done(done_arg);
}

static void on_timer_closed(uv_handle_t *h)
{
    on_part_closed(h->data);
}

void streams_adapter_close(streams_adapter_t *sa, void (*done)(void *arg), void *arg)
{
    sa->closing = true;
    sa->done = done;
    sa->done_arg = arg;
    uv_close((uv_handle_t *)&sa->retry, on_timer_closed);
    member_close(sa->member, on_part_closed, sa);
    /* a read blocked in Redis would hold the close for up to its BLOCK time */
    for (size_t i = 0; i < sa->nlanes; i++) {
        lane_t *l = &sa->lanes[i];
        if (l->inflight)
            (void)redis_client_unblock(sa->cmd, l->c, l->key, l->key_len);
        redis_client_close(l->c, on_part_closed, sa);
    }
    redis_client_close(sa->cmd, on_part_closed, sa);
}
