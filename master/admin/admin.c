/* admin: see admin.h. */
#include "master/admin/admin.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/ids.h"
#include "common/ilist.h"
#include "common/json.h"
#include "common/log.h"
#include "common/proto/adapter_msg.h"
#include "common/proto/streams_msg.h"
#include "common/redis/redis_client.h"
#include "common/redis/redis_topology.h"
#include "common/strmap.h"
#include "common/xalloc.h"
#include "master/admin/bridge_admin.h"
#include "master/admin/cluster_req.h"
#include "shm/health.h"
#include "shm/stats.h"

#define UID_LEN 16
#define ADMIN_LATER 1           /* a command answers later, with control_done */
#define PUBLISH_TIMEOUT_MS 2000 /* an emit's PUBLISH must be answered within this */

struct admin {
    const cfg_t *cfg; /* the current configuration */
    shm_region_t *region;
    const char *server_id;
    /* the master's command client; presence and dead letters too (it follows Cluster slots
     * and Sentinel: their keys may live on any primary) */
    redis_client_t *redis;
    cluster_req_t *cluster;
    ilist_t emits;         /* PUBLISHes waiting for their reply, oldest first */
    uv_timer_t emit_timer; /* the oldest one's deadline */
    void (*done)(void *arg);
    void *done_arg;
    int open; /* parts still to close */
};

/* What a command answers with: the control request and its body. */
typedef struct answer {
    control_req_t *req;
    buf_t *out;
} answer_t;

static int usage(buf_t *out, const char *what)
{
    buf_reset(out);
    buf_printf(out, "usage: %s", what);
    return -EINVAL;
}

/* {"<total>":N,"workers":[{"worker":i,"pid":p,"<per>":n}...]} from one stats field. */
static void per_worker(buf_t *out, shm_region_t *region, const char *total, size_t off)
{
    uint32_t n = shm_region_slots(region);
    uint64_t sum = 0;
    buf_t list;
    buf_init(&list);
    for (uint32_t i = 0; i < n; i++) {
        stats_worker_t *w = shm_region_slot_stats(region, i);
        if (!STATS_GET(w->pid))
            continue;
        uint64_t v =
            atomic_load_explicit((_Atomic uint64_t *)((char *)w + off), memory_order_relaxed);
        sum += v;
        buf_printf(&list, "%s{\"worker\":%llu,\"pid\":%llu,\"role\":\"%s\",\"%s\":%llu}",
                   list.len ? "," : "", (unsigned long long)STATS_GET(w->index),
                   (unsigned long long)STATS_GET(w->pid),
                   STATS_GET(w->role) == STATS_ROLE_ACTIVE ? "active" : "draining", total,
                   (unsigned long long)v);
    }
    buf_printf(out, "{\"%s\":%llu,\"workers\":[%s]}", total, (unsigned long long)sum,
               list.data ? list.data : "");
    buf_free(&list);
}

/* [event, json] as the adapter's `data`, the JSON validated first. 0, or -EINVAL with the reason
 * in out. */
static int event_array(buf_t *data, const char *event, size_t event_len, const char *json,
                       size_t json_len, buf_t *out)
{
    if (json_validate(json, json_len) != 0) {
        buf_reset(out);
        buf_puts(out, "the message argument is not valid JSON");
        return -EINVAL;
    }
    buf_putc(data, '[');
    json_write_string(data, event, event_len);
    buf_putc(data, ',');
    buf_append(data, json, json_len);
    buf_putc(data, ']');
    return 0;
}

/* ---- emits: one PUBLISH on the master's command connection ---- */

/* A PUBLISH waiting for its reply. It outlives its answer (a timeout, admin_close): the reply,
 * or the NULL one the client gives when the connection goes, frees it. */
typedef struct emit_op {
    ilist_t link; /* in a->emits while waiting */
    admin_t *a;   /* NULL once answered */
    answer_t ans;
    uint64_t deadline;
    char cmd[16];
    char *chan;
} emit_op_t;

/* Takes op out of the waiting list; its answer is the caller's to give. */
static void emit_unlink(emit_op_t *op)
{
    ilist_remove(&op->link);
    op->a = NULL;
}

/* The oldest waiting op; NULL when none waits. */
static emit_op_t *emit_oldest(const admin_t *a)
{
    ilist_t *l = ilist_first(&a->emits);
    return l ? ILIST_ENTRY(l, emit_op_t, link) : NULL;
}

static void on_emit_timeout(uv_timer_t *t)
{
    admin_t *a = t->data;
    uint64_t now = uv_now(t->loop);
    for (emit_op_t *op; (op = emit_oldest(a)) && op->deadline <= now;) {
        emit_unlink(op);
        buf_printf(op->ans.out, "redis %s:%d did not answer %s within %d ms", a->cfg->redis_host,
                   a->cfg->redis_port, op->cmd, PUBLISH_TIMEOUT_MS);
        control_done(op->ans.req, -EIO);
    }
    emit_op_t *next = emit_oldest(a);
    if (next)
        uv_timer_start(t, on_emit_timeout, next->deadline - now, 0);
}

static void on_published(const redisReply *rep, void *privdata)
{
    emit_op_t *op = privdata;
    if (op->a) {
        emit_unlink(op);
        buf_t *out = op->ans.out;
        int rc = 0;
        if (rep && rep->type == REDIS_REPLY_STRING && strcmp(op->cmd, "XADD") == 0) {
            /* the adapter's stream: every server reads it; the entry id is the offset */
            buf_puts(out, "{\"ok\":true,\"stream\":");
            json_write_string(out, op->chan, strlen(op->chan));
            buf_puts(out, ",\"id\":");
            json_write_string(out, rep->str, rep->len);
            buf_putc(out, '}');
        } else if (!rep || rep->type != REDIS_REPLY_INTEGER) {
            buf_printf(out, "%s failed: %s", op->cmd,
                       rep && rep->type == REDIS_REPLY_ERROR ? rep->str : "connection lost");
            rc = -EIO;
        } else {
            buf_printf(out, "{\"ok\":true,\"channel\":\"%s\",\"subscribers\":%lld}", op->chan,
                       rep->integer);
        }
        control_done(op->ans.req, rc);
    }
    free(op->chan);
    free(op);
}

/* Queues op (answered with -EIO by on_emit_timeout unless its reply comes first). */
static void emit_wait(admin_t *a, emit_op_t *op)
{
    op->a = a;
    op->deadline = uv_now(a->emit_timer.loop) + PUBLISH_TIMEOUT_MS;
    ilist_push_back(&a->emits, &op->link);
    if (!uv_is_active((uv_handle_t *)&a->emit_timer))
        uv_timer_start(&a->emit_timer, on_emit_timeout, PUBLISH_TIMEOUT_MS, 0);
}

/* Sends argv (argv[0] the command, argv[1] the channel or stream); the answer comes with the
 * reply (ADMIN_LATER), or now on an error. */
static int send_emit(admin_t *a, int argc, const char **argv, const size_t *lens,
                     const answer_t *ans)
{
    emit_op_t *op = xcalloc(1, sizeof(*op));
    op->chan = xstrdup(argv[1]);
    op->ans = *ans;
    snprintf(op->cmd, sizeof(op->cmd), "%s", argv[0]);
    /* routed by the channel or stream: SPUBLISH and XADD must reach the owner of its slot */
    if (redis_client_command(a->redis, argv[1], lens[1], on_published, op, argc, argv, lens)) {
        buf_printf(ans->out, "redis %s:%d unreachable: not connected", a->cfg->redis_host,
                   a->cfg->redis_port);
        free(op->chan);
        free(op);
        return -EIO;
    }
    emit_wait(a, op);
    return ADMIN_LATER;
}

/* ---- presence and dead letters (master/admin/bridge_admin) over the command client ---- */

/* bridge_admin's answer: given now unless the op timed out or the master stopped meanwhile. */
static void bridge_done(void *arg, int rc, const buf_t *body)
{
    emit_op_t *op = arg;
    if (op->a) {
        emit_unlink(op);
        buf_append(op->ans.out, body->data ? body->data : "", body->len);
        control_done(op->ans.req, rc);
    }
    free(op);
}

static int bridge_cmd(admin_t *a, int argc, char **argv, const size_t *lens, const answer_t *ans)
{
    emit_op_t *op = xcalloc(1, sizeof(*op));
    op->ans = *ans;
    snprintf(op->cmd, sizeof(op->cmd), "%s", argv[0]);
    emit_wait(a, op); /* before the run: bridge_done may come from inside it */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t wall = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
    bridge_redis_t redis = bridge_redis_over_client(a->redis);
    bridge_admin_run(&redis, a->cfg, wall, argc, argv, lens, bridge_done, op);
    return ADMIN_LATER;
}

/* Sends `cmd chan msg`. */
static int publish(admin_t *a, const char *cmd, const buf_t *chan, const buf_t *msg,
                   const answer_t *ans)
{
    const char *argv[] = {cmd, chan->data, msg->data};
    size_t lens[] = {strlen(cmd), chan->len, msg->len};
    return send_emit(a, 3, argv, lens, ans);
}

/* SOCKETIO_REDIS_ADAPTER=streams: a non-ephemeral message (a broadcast, socketsJoin/Leave,
 * disconnectSockets) is an entry of the namespace's stream, as a @socket.io/redis-streams-adapter
 * server appends it: every server, streamio or Node, reads it. data: the ClusterAdapter `data`
 * JSON of a message of that type. */
static int append(admin_t *a, const char *nsp, size_t nsp_len, int type, const buf_t *data,
                  const answer_t *ans)
{
    const cfg_t *cfg = a->cfg;
    char uid[UID_LEN + 1];
    if (ids_random(uid, UID_LEN)) {
        buf_reset(ans->out);
        buf_puts(ans->out, "no random bytes for the message's uid");
        return -EIO;
    }
    uid[UID_LEN] = '\0';
    buf_t key;
    buf_init(&key);
    streams_msg_stream_name(&key, cfg->stream_name, cfg->stream_count, nsp, nsp_len);
    char maxlen[24], t[8];
    snprintf(maxlen, sizeof(maxlen), "%d", cfg->stream_maxlen);
    snprintf(t, sizeof(t), "%d", type);
    const char *argv[] = {"XADD", key.data, "MAXLEN", "~",    maxlen, "*",    "uid",
                          uid,    "nsp",    nsp,      "type", t,      "data", data->data};
    size_t lens[] = {4,       key.len, 6,       1, strlen(maxlen), 1, 3,
                     UID_LEN, 3,       nsp_len, 4, strlen(t),      4, data->len};
    int rc = send_emit(a, 14, argv, lens, ans);
    buf_free(&key);
    return rc;
}

/* Publishes ["event", json] in namespace nsp to `room` (NULL: everyone) on the workers' adapter
 * channels, in the adapter's format (sharded: the ClusterAdapter JSON with SPUBLISH). */
static int emit(admin_t *a, const char *nsp, const char *room, size_t room_len, const char *event,
                size_t event_len, const char *json, size_t json_len, const answer_t *ans)
{
    const cfg_t *cfg = a->cfg;
    buf_t *out = ans->out;
    buf_t data, msg, chan;
    buf_init(&data);
    buf_init(&msg);
    buf_init(&chan);
    int rc = event_array(&data, event, event_len, json, json_len, out);
    char prefix[160];
    if (rc) {
        buf_free(&data);
        return rc;
    }
    if (cfg->adapter != CONFIG_ADAPTER_OFF) {
        snprintf(prefix, sizeof(prefix), "%s", cfg->redis_key);
    } else if (cfg->cluster_workers > 1) {
        snprintf(prefix, sizeof(prefix), "streamio-%s", a->server_id);
    } else {
        buf_free(&data);
        buf_reset(out);
        buf_puts(out, "emitting needs the workers to share rooms over Redis: set "
                      "SOCKETIO_REDIS_ADAPTER=true or CLUSTER_WORKERS above 1");
        return -ENOTSUP;
    }
    char uid[UID_LEN + 1];
    adapter_str_t r = {room, room_len};
    bool sharded = cfg->adapter == CONFIG_ADAPTER_SHARDED;
    size_t nsp_len = strlen(nsp);
    /* sharded: a room's own channel as the workers' dynamic subscriptions expect (protocol.md §5)
     */
    bool room_chan = room && (!sharded || (nsp_len == 1 && room_len != IDS_SID_LEN));
    if (cfg->adapter == CONFIG_ADAPTER_STREAMS) {
        rc = adapter_msg_encode_broadcast_data(&msg, data.data, data.len, &r, room ? 1 : 0);
        buf_reset(out);
        if (rc)
            buf_printf(out, "cannot encode the message: %s", strerror(-rc));
        else
            rc = append(a, nsp, nsp_len, 3, &msg, ans);
        buf_free(&data);
        buf_free(&msg);
        buf_free(&chan);
        return rc;
    }
    rc = ids_random(uid, UID_LEN);
    if (rc == 0 && sharded)
        rc = adapter_msg_encode_cluster_broadcast(&msg, uid, UID_LEN, nsp, nsp_len, data.data,
                                                  data.len, &r, room ? 1 : 0);
    else if (rc == 0)
        rc = adapter_msg_encode_broadcast(&msg, uid, UID_LEN, nsp, nsp_len, data.data, data.len, &r,
                                          room ? 1 : 0);
    buf_printf(&chan, "%s#%s#", prefix, nsp);
    if (room_chan) {
        buf_append(&chan, room, room_len);
        buf_putc(&chan, '#');
    }
    buf_reset(out);
    if (rc)
        buf_printf(out, "cannot encode the message: %s", strerror(-rc));
    else
        rc = publish(a, sharded ? "SPUBLISH" : "PUBLISH", &chan, &msg, ans);
    buf_free(&data);
    buf_free(&msg);
    buf_free(&chan);
    return rc;
}

/* ---- cluster views: requests to every server through the adapter (master/cluster_req) ---- */

enum view_kind { VIEW_ROOMS, VIEW_CLIENTS, VIEW_VALUES };

/* One cluster request in flight and the answer it builds; freed when the request ends. */
typedef struct view {
    admin_t *a;
    answer_t ans;
    enum view_kind kind; /* per server: "rooms", "sockets", or the "value" it acknowledged */
    cluster_request_t request;
    adapter_str_t room, target; /* what request points to (the bytes are the command's) */
    buf_t data;                 /* SERVER_SIDE_EMIT: [event, json] */
    buf_t head;                 /* the local part of the answer */
    buf_t list;                 /* the servers' entries, comma-separated */
    buf_t scratch;
    strmap_t *seen; /* rooms of the current server (sharded rooms come from its sockets) */
    size_t total;   /* sockets, or distinct rooms over the cluster */
    strmap_t *all;  /* rooms over the cluster */
    int rc;
} view_t;

/* This server's worker whose adapter has that uid, or -1. */
static long long own_worker(const admin_t *a, const adapter_str_t *uid)
{
    if (uid->len != sizeof(uint64_t) * 2)
        return -1;
    uint64_t want[2];
    memcpy(want, uid->p, sizeof(want));
    uint32_t n = shm_region_slots(a->region);
    for (uint32_t i = 0; i < n; i++) {
        stats_worker_t *w = shm_region_slot_stats(a->region, i);
        if (STATS_GET(w->pid) && STATS_GET(w->adapter_uid[0]) == want[0] &&
            STATS_GET(w->adapter_uid[1]) == want[1])
            return (long long)STATS_GET(w->index);
    }
    return -1;
}

static void room_seen(const char *room, size_t len, void *arg)
{
    view_t *v = arg;
    if (strmap_get(v->seen, room, len))
        return;
    strmap_put(v->seen, room, len, v);
    if (!strmap_get(v->all, room, len))
        strmap_put(v->all, room, len, v);
    buf_putc(&v->scratch, v->scratch.len ? ',' : '[');
    json_write_string(&v->scratch, room, len);
}

/* The rooms of one server as a JSON array in v->scratch: as sent (classic), or gathered from
 * its sockets (sharded). */
static int server_rooms(view_t *v, const cluster_reply_t *r)
{
    buf_t names, wrap;
    buf_init(&names);
    buf_init(&wrap);
    buf_reset(&v->scratch);
    strmap_t *seen = strmap_new();
    v->seen = seen;
    size_t n;
    int rc;
    if (r->kind == ADAPTER_RESP_ALL_ROOMS) {
        /* one pseudo-socket holding the list: the same reader, the same checks */
        buf_printf(&wrap, "[{\"rooms\":%.*s}]", (int)r->body_len, r->body);
        rc = cluster_msg_sockets_rooms(wrap.data, wrap.len, &names, &n, room_seen, v);
    } else {
        rc = cluster_msg_sockets_rooms(r->body, r->body_len, &names, &n, room_seen, v);
    }
    if (!rc && v->scratch.len)
        buf_putc(&v->scratch, ']');
    else if (!rc)
        buf_puts(&v->scratch, "[]");
    strmap_free(seen);
    v->seen = NULL;
    buf_free(&names);
    buf_free(&wrap);
    return rc;
}

static void on_reply(const cluster_reply_t *r, void *arg)
{
    view_t *v = arg;
    if (v->rc || (!r->body && v->kind != VIEW_VALUES))
        return;
    long long worker = own_worker(v->a, &r->uid);
    buf_t *l = &v->list;
    buf_puts(l, l->len ? ",{\"uid\":" : "{\"uid\":");
    if (r->uid.len)
        json_write_string(l, r->uid.p, r->uid.len);
    else
        buf_puts(l, "null");
    if (worker >= 0)
        buf_printf(l, ",\"server\":\"this\",\"worker\":%lld", worker);
    else
        buf_puts(l, ",\"server\":\"other\"");
    int rc = 0;
    if (v->kind == VIEW_VALUES) {
        /* a server-side emit's acknowledgement: its argument, null when it had none */
        v->total++;
        buf_puts(l, ",\"value\":");
        if (r->body)
            buf_append(l, r->body, r->body_len);
        else
            buf_puts(l, "null");
        buf_putc(l, '}');
    } else if (v->kind == VIEW_ROOMS) {
        rc = server_rooms(v, r);
        if (!rc)
            buf_printf(l, ",\"rooms\":%s}", v->scratch.data);
    } else {
        size_t n = 0;
        rc = cluster_msg_sockets_rooms(r->body, r->body_len, &v->scratch, &n, NULL, NULL);
        v->total += n;
        if (!rc)
            buf_printf(l, ",\"sockets\":%.*s}", (int)r->body_len, r->body);
    }
    if (rc)
        v->rc = rc;
}

static view_t *view_new(admin_t *a, enum view_kind kind, const answer_t *ans)
{
    view_t *v = xcalloc(1, sizeof(*v));
    v->all = strmap_new();
    v->a = a;
    v->ans = *ans;
    v->kind = kind;
    buf_init(&v->data);
    buf_init(&v->head);
    buf_init(&v->list);
    buf_init(&v->scratch);
    return v;
}

static void view_free(view_t *v)
{
    strmap_free(v->all);
    buf_free(&v->data);
    buf_free(&v->head);
    buf_free(&v->list);
    buf_free(&v->scratch);
    free(v);
}

/*
 * The request ended: appends {<head>, "cluster":{"mode","servers","responses","complete",
 * "<rooms|clients|answers>":N,"members":[{"uid","server":"this"|"other"[,"worker"],
 * "rooms"|"sockets"|"value"}]}} where head is the local part (an object's members without
 * braces). Requests nobody answers (join, leave, disconnect) append {"ok":true,"cluster":{"mode",
 * "servers"}}: every counted server applies them.
 */
static void on_view_done(int rc, const cluster_req_result_t *res, const char *err, void *arg)
{
    view_t *v = arg;
    buf_t *out = v->ans.out;
    const cfg_t *cfg = v->a->cfg;
    adapter_op_t op = v->request.op;
    bool answered =
        op == ADAPTER_OP_ALL_ROOMS || op == ADAPTER_OP_FETCH || op == ADAPTER_OP_SERVER_SIDE_EMIT;
    const char *mode = cfg->adapter == CONFIG_ADAPTER_SHARDED   ? "sharded"
                       : cfg->adapter == CONFIG_ADAPTER_STREAMS ? "streams"
                                                                : "classic";
    buf_reset(out);
    if (!rc && v->rc) {
        rc = v->rc;
        buf_printf(out, "cannot render the answer: %s", strerror(-rc));
    } else if (rc) {
        buf_puts(out, err);
    } else if (!answered) {
        buf_printf(out, "{\"ok\":true,\"cluster\":{\"mode\":\"%s\",\"servers\":%lld}}", mode,
                   res->members);
    } else {
        const char *head = v->head.data ? v->head.data : "";
        size_t total = v->kind == VIEW_ROOMS ? strmap_size(v->all) : v->total;
        buf_printf(out,
                   "{%s%s\"cluster\":{\"mode\":\"%s\",\"servers\":%lld,\"responses\":%lld,"
                   "\"complete\":%s,\"%s\":%zu,\"members\":[%s]}}",
                   head, *head ? "," : "", mode, res->members, res->responses,
                   res->responses >= res->members ? "true" : "false",
                   v->kind == VIEW_ROOMS     ? "rooms"
                   : v->kind == VIEW_CLIENTS ? "clients"
                                             : "answers",
                   total, v->list.data ? v->list.data : "");
    }
    control_done(v->ans.req, rc);
    view_free(v);
}

/* Makes v's request of every server of the adapter's cluster; the answer comes when it ends. */
static int cluster_view(view_t *v)
{
    admin_t *a = v->a;
    const cfg_t *cfg = a->cfg;
    cluster_req_spec_t spec = {
        .prefix = cfg->redis_key,
        .sharded = cfg->adapter == CONFIG_ADAPTER_SHARDED,
        .streams = cfg->adapter == CONFIG_ADAPTER_STREAMS,
        .request = &v->request,
        .timeout_ms = (unsigned)cfg->requests_timeout_ms,
        .on_reply = on_reply,
        .done = on_view_done,
        .arg = v,
    };
    int rc = cluster_req_run(a->cluster, &spec, v->ans.out);
    if (rc) {
        view_free(v);
        return rc;
    }
    return ADMIN_LATER;
}

/* rooms / clients [room]: this server's counts, and with the adapter on the whole cluster. */
static int listing(admin_t *a, bool want_rooms, const char *room, size_t room_len,
                   const answer_t *ans)
{
    const char *what = want_rooms ? "rooms" : "clients";
    size_t off =
        want_rooms ? offsetof(stats_worker_t, rooms) : offsetof(stats_worker_t, connections);
    if (a->cfg->adapter == CONFIG_ADAPTER_OFF) {
        if (!room) {
            per_worker(ans->out, a->region, what, off);
            return 0;
        }
        buf_reset(ans->out);
        buf_puts(ans->out, "clients <room> asks every server for its sockets through the Redis "
                           "adapter's requests: set SOCKETIO_REDIS_ADAPTER=true or sharded");
        return -ENOTSUP;
    }
    view_t *v = view_new(a, want_rooms ? VIEW_ROOMS : VIEW_CLIENTS, ans);
    buf_t *head = &v->head;
    if (room) {
        buf_puts(head, "\"room\":");
        json_write_string(head, room, room_len);
    } else {
        per_worker(head, a->region, what, off);
        /* its members, without the braces */
        head->len--;
        head->data[head->len] = '\0';
        memmove(head->data, head->data + 1, head->len);
        head->len--;
    }
    v->room = (adapter_str_t){room, room_len};
    v->request = (cluster_request_t){
        /* the cluster protocol has no allRooms: sharded rooms come from every socket's rooms */
        .op = want_rooms && a->cfg->adapter == CONFIG_ADAPTER_CLASSIC ? ADAPTER_OP_ALL_ROOMS
                                                                      : ADAPTER_OP_FETCH,
        .rooms = room ? &v->room : NULL,
        .nrooms = room ? 1 : 0,
    };
    return cluster_view(v);
}

static int needs_adapter(const admin_t *a, const char *cmd, buf_t *out)
{
    if (a->cfg->adapter != CONFIG_ADAPTER_OFF)
        return 0;
    buf_reset(out);
    buf_printf(out,
               "%s is a request to every server through the Redis adapter: set "
               "SOCKETIO_REDIS_ADAPTER=true or sharded",
               cmd);
    return -ENOTSUP;
}

/* join / leave <room> <target>, disconnect <room> [close]: socketsJoin, socketsLeave and
 * disconnectSockets of the sockets in <room> (a socket id names one socket), cluster-wide. */
static int sockets_op(admin_t *a, int argc, char **argv, const size_t *lens, const answer_t *ans)
{
    const char *cmd = argv[0];
    bool disconnect = strcmp(cmd, "disconnect") == 0;
    bool close = disconnect && argc == 3 && strcmp(argv[2], "close") == 0;
    if (disconnect ? (argc != 2 && !close) || lens[1] == 0 : argc != 3 || !lens[1] || !lens[2])
        return usage(ans->out,
                     disconnect ? "disconnect <room> [close]" : "join|leave <room> <target>");
    int rc = needs_adapter(a, cmd, ans->out);
    if (rc)
        return rc;
    view_t *v = view_new(a, VIEW_CLIENTS, ans);
    v->room = (adapter_str_t){argv[1], lens[1]};
    v->target = (adapter_str_t){argv[2], disconnect ? 0 : lens[2]};
    v->request = (cluster_request_t){
        .op = disconnect                 ? ADAPTER_OP_DISCONNECT
              : strcmp(cmd, "join") == 0 ? ADAPTER_OP_JOIN
                                         : ADAPTER_OP_LEAVE,
        .rooms = &v->room,
        .nrooms = 1,
        .targets = &v->target,
        .ntargets = disconnect ? 0 : 1,
        .close = close,
    };
    if (a->cfg->adapter == CONFIG_ADAPTER_STREAMS) {
        /* an entry of the stream in this adapter, not a pub/sub request */
        int type;
        buf_reset(ans->out);
        rc = cluster_msg_encode_request_data(&v->data, NULL, &v->request, &type);
        if (rc)
            buf_printf(ans->out, "cannot encode the request: %s", strerror(-rc));
        else
            rc = append(a, "/", 1, type, &v->data, ans);
        view_free(v);
        return rc;
    }
    return cluster_view(v);
}

/* serverside <event> <json>: serverSideEmit with an acknowledgement from every server. */
static int server_side(admin_t *a, int argc, char **argv, const size_t *lens, const answer_t *ans)
{
    if (argc != 3 || lens[1] == 0)
        return usage(ans->out, "serverside <event> <json>");
    int rc = needs_adapter(a, argv[0], ans->out);
    if (rc)
        return rc;
    view_t *v = view_new(a, VIEW_VALUES, ans);
    rc = event_array(&v->data, argv[1], lens[1], argv[2], lens[2], ans->out);
    if (rc) {
        view_free(v);
        return rc;
    }
    v->request = (cluster_request_t){
        .op = ADAPTER_OP_SERVER_SIDE_EMIT, .data_json = v->data.data, .data_len = v->data.len};
    return cluster_view(v);
}

/* Runs one command; returns its status, or ADMIN_LATER when control_done comes later. */
static int command(admin_t *a, int argc, char **argv, const size_t *lens, const answer_t *ans)
{
    buf_t *out = ans->out;
    const char *cmd = argv[0];
    if (strcmp(cmd, "status") == 0 && argc == 1) {
        health_render(out, a->region, 0);
        return 0;
    }
    if (strcmp(cmd, "rooms") == 0 && argc == 1)
        return listing(a, true, NULL, 0, ans);
    if (strcmp(cmd, "clients") == 0 && argc == 1)
        return listing(a, false, NULL, 0, ans);
    if (strcmp(cmd, "clients") == 0 && argc == 2) {
        if (lens[1] == 0)
            return usage(out, "clients [room]");
        return listing(a, false, argv[1], lens[1], ans);
    }
    if (strcmp(cmd, "join") == 0 || strcmp(cmd, "leave") == 0 || strcmp(cmd, "disconnect") == 0)
        return sockets_op(a, argc, argv, lens, ans);
    if (strcmp(cmd, "serverside") == 0)
        return server_side(a, argc, argv, lens, ans);
    if (bridge_admin_handles(cmd))
        return bridge_cmd(a, argc, argv, lens, ans);
    const char *nsp = "/";
    if ((strcmp(cmd, "broadcast") == 0 || strcmp(cmd, "sendroom") == 0) && argc > 2 &&
        strcmp(argv[1], "--nsp") == 0) {
        nsp = argv[2];
        if (lens[2] == 0 || nsp[0] != '/' || lens[2] > 63 || memchr(nsp, '#', lens[2]))
            return usage(out, "--nsp /<namespace> (at most 63 bytes, no '#')");
        argv += 2;
        lens += 2;
        argc -= 2;
    }
    if (strcmp(cmd, "broadcast") == 0) {
        if (argc != 3)
            return usage(out, "broadcast [--nsp /ns] <event> <json>");
        return emit(a, nsp, NULL, 0, argv[1], lens[1], argv[2], lens[2], ans);
    }
    if (strcmp(cmd, "sendroom") == 0) {
        if (argc != 4 || lens[1] == 0)
            return usage(out, "sendroom [--nsp /ns] <room> <event> <json>");
        return emit(a, nsp, argv[1], lens[1], argv[2], lens[2], argv[3], lens[3], ans);
    }
    return usage(out, "status | rooms | clients [room] | broadcast [--nsp /ns] <event> <json> | "
                      "sendroom [--nsp /ns] <room> <event> <json> | join|leave <room> <target> | "
                      "disconnect <room> [close] | serverside <event> <json> | presence <room> | "
                      "dead-letter list [count] | dead-letter replay <id>");
}

void admin_run(control_req_t *req, int argc, char **argv, const size_t *lens, buf_t *out, void *arg)
{
    answer_t ans = {req, out};
    int rc = command(arg, argc, argv, lens, &ans);
    if (rc != ADMIN_LATER)
        control_done(req, rc);
}

admin_t *admin_new(redis_topology_t *topo, redis_client_t *redis, const cfg_t *cfg,
                   shm_region_t *region, const char *server_id)
{
    uv_loop_t *loop = redis_topology_loop(topo);
    admin_t *a = xcalloc(1, sizeof(*a));
    ilist_init(&a->emits);
    a->cfg = cfg;
    a->region = region;
    a->server_id = server_id;
    a->redis = redis;
    a->cluster = cluster_req_new(topo, redis, cfg);
    uv_timer_init(loop, &a->emit_timer);
    a->emit_timer.data = a;
    return a;
}

void admin_set_cfg(admin_t *a, const cfg_t *cfg)
{
    a->cfg = cfg;
}

static void part_closed(admin_t *a)
{
    if (--a->open > 0)
        return;
    if (a->done)
        a->done(a->done_arg);
    free(a);
}

static void on_cluster_closed(void *arg)
{
    part_closed(arg);
}

static void on_timer_closed(uv_handle_t *h)
{
    part_closed(h->data);
}

void admin_close(admin_t *a, void (*done)(void *arg), void *arg)
{
    for (emit_op_t *op; (op = emit_oldest(a));) {
        emit_unlink(op);
        buf_puts(op->ans.out, "the master is stopping");
        control_done(op->ans.req, -ECANCELED);
    }
    a->done = done;
    a->done_arg = arg;
    a->open = 2;
    uv_close((uv_handle_t *)&a->emit_timer, on_timer_closed);
    cluster_req_close(a->cluster, on_cluster_closed, a);
}
