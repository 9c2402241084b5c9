/* admin: see admin.h. */
#include "master/admin.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "common/ids.h"
#include "common/json.h"
#include "common/proto/adapter_msg.h"
#include "common/strmap.h"
#include "common/xalloc.h"
#include "master/bridge_admin.h"
#include "master/cluster_req.h"
#include "shm/health.h"
#include "shm/stats.h"

#define UID_LEN 16

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

static redisContext *connect_redis(const cfg_t *cfg, buf_t *out)
{
    struct timeval tv = {.tv_sec = 2};
    redisContext *rc = redisConnectWithTimeout(cfg->redis_host, cfg->redis_port, tv);
    if (!rc) /* hiredis returns no context only when it cannot allocate one */
        xalloc_die(sizeof(*rc));
    if (rc->err) {
        buf_printf(out, "redis %s:%d unreachable: %s", cfg->redis_host, cfg->redis_port,
                   rc->errstr);
        redisFree(rc);
        return NULL;
    }
    redisSetTimeout(rc, tv);
    const char *fail = NULL;
    const char *auth[3];
    int nauth = config_redis_auth(cfg, auth);
    if (nauth) {
        redisReply *r = redisCommandArgv(rc, nauth, auth, NULL);
        if (!r || r->type == REDIS_REPLY_ERROR)
            fail = "AUTH failed (check REDIS_USERNAME and REDIS_PASSWORD)";
        freeReplyObject(r);
    }
    if (!fail && cfg->redis_db) {
        redisReply *r = redisCommand(rc, "SELECT %d", cfg->redis_db);
        if (!r || r->type == REDIS_REPLY_ERROR)
            fail = "SELECT failed";
        freeReplyObject(r);
    }
    if (fail) {
        buf_printf(out, "redis %s:%d: %s", cfg->redis_host, cfg->redis_port, fail);
        redisFree(rc);
        return NULL;
    }
    return rc;
}

/* Publishes ["event", json] in namespace nsp to `room` (NULL: everyone) on the workers' adapter
 * channels, in the adapter's format (sharded: the ClusterAdapter JSON with SPUBLISH). */
static int emit(const admin_ctx_t *ctx, const char *nsp, const char *room, size_t room_len,
                const char *event, size_t event_len, const char *json, size_t json_len, buf_t *out)
{
    const cfg_t *cfg = ctx->cfg;
    if (json_validate(json, json_len) != 0) {
        buf_reset(out);
        buf_puts(out, "the message argument is not valid JSON");
        return -EINVAL;
    }
    char prefix[160];
    if (cfg->adapter != CONFIG_ADAPTER_OFF)
        snprintf(prefix, sizeof(prefix), "%s", cfg->redis_key);
    else if (cfg->cluster_workers > 1)
        snprintf(prefix, sizeof(prefix), "streamio-%s", ctx->server_id);
    else {
        buf_reset(out);
        buf_puts(out, "emitting needs the workers to share rooms over Redis: set "
                      "SOCKETIO_REDIS_ADAPTER=true or CLUSTER_WORKERS above 1");
        return -ENOTSUP;
    }
    buf_t data, msg, chan;
    buf_init(&data);
    buf_init(&msg);
    buf_init(&chan);
    char uid[UID_LEN + 1];
    adapter_str_t r = {room, room_len};
    bool sharded = cfg->adapter == CONFIG_ADAPTER_SHARDED;
    size_t nsp_len = strlen(nsp);
    /* sharded: a room's own channel as the workers' dynamic subscriptions expect (protocol.md §5)
     */
    bool room_chan = room && (!sharded || (nsp_len == 1 && room_len != IDS_SID_LEN));
    buf_putc(&data, '[');
    json_write_string(&data, event, event_len);
    buf_putc(&data, ',');
    buf_append(&data, json, json_len);
    buf_putc(&data, ']');
    int rc = ids_random(uid, UID_LEN);
    if (rc == 0 && sharded)
        rc = adapter_msg_encode_cluster_broadcast(&msg, uid, UID_LEN, nsp, nsp_len, data.data,
                                                  data.len, &r, room ? 1 : 0);
    else if (rc == 0)
        rc = adapter_msg_encode_broadcast(&msg, uid, UID_LEN, nsp, nsp_len, data.data, data.len, &r,
                                          room ? 1 : 0);
    if (rc == 0) {
        buf_printf(&chan, "%s#%s#", prefix, nsp);
        if (room_chan) {
            buf_append(&chan, room, room_len);
            buf_putc(&chan, '#');
        }
    }
    buf_reset(out);
    if (rc) {
        buf_printf(out, "cannot encode the message: %s", strerror(-rc));
    } else {
        redisContext *c = connect_redis(cfg, out);
        if (!c) {
            rc = -EIO;
        } else {
            const char *cmd = sharded ? "SPUBLISH" : "PUBLISH";
            const char *argv[] = {cmd, chan.data, msg.data};
            size_t lens[] = {strlen(cmd), chan.len, msg.len};
            redisReply *rep = redisCommandArgv(c, 3, argv, lens);
            if (!rep || rep->type != REDIS_REPLY_INTEGER) {
                buf_printf(out, "%s failed: %s", cmd,
                           rep && rep->type == REDIS_REPLY_ERROR ? rep->str : c->errstr);
                rc = -EIO;
            } else {
                buf_printf(out, "{\"ok\":true,\"channel\":\"%s\",\"subscribers\":%lld}", chan.data,
                           rep->integer);
            }
            freeReplyObject(rep);
            redisFree(c);
        }
    }
    buf_free(&data);
    buf_free(&msg);
    buf_free(&chan);
    return rc;
}

/* ---- cluster views: requests to every server through the adapter (master/cluster_req) ---- */

enum view_kind { VIEW_ROOMS, VIEW_CLIENTS, VIEW_VALUES };

typedef struct view {
    const admin_ctx_t *ctx;
    enum view_kind kind; /* per server: "rooms", "sockets", or the "value" it acknowledged */
    buf_t list;          /* the servers' entries, comma-separated */
    buf_t scratch;
    strmap_t *seen; /* rooms of the current server (sharded rooms come from its sockets) */
    size_t total;   /* sockets, or distinct rooms over the cluster */
    strmap_t *all;  /* rooms over the cluster */
    int rc;
} view_t;

/* This server's worker whose adapter has that uid, or -1. */
static long long own_worker(const admin_ctx_t *ctx, const adapter_str_t *uid)
{
    if (uid->len != sizeof(uint64_t) * 2)
        return -1;
    uint64_t want[2];
    memcpy(want, uid->p, sizeof(want));
    uint32_t n = shm_region_slots(ctx->region);
    for (uint32_t i = 0; i < n; i++) {
        stats_worker_t *w = shm_region_slot_stats(ctx->region, i);
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
    long long worker = own_worker(v->ctx, &r->uid);
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

/*
 * Makes request `req` of every server of the adapter's cluster, then appends {<head>,
 * "cluster":{"mode","servers","responses","complete","<rooms|clients|answers>":N,"members":[{
 * "uid","server":"this"|"other"[,"worker"],"rooms"|"sockets"|"value"}]}} where head is the
 * local part (an object's members without braces). Requests nobody answers (join, leave,
 * disconnect) append {"ok":true,"cluster":{"mode","servers"}}: every counted server applies them.
 */
static int cluster_view(const admin_ctx_t *ctx, enum view_kind kind, const cluster_request_t *req,
                        const char *head, buf_t *out)
{
    const cfg_t *cfg = ctx->cfg;
    bool sharded = cfg->adapter == CONFIG_ADAPTER_SHARDED;
    bool answered = req->op == ADAPTER_OP_ALL_ROOMS || req->op == ADAPTER_OP_FETCH ||
                    req->op == ADAPTER_OP_SERVER_SIDE_EMIT;
    view_t v = {.ctx = ctx, .kind = kind, .all = strmap_new()};
    buf_init(&v.list);
    buf_init(&v.scratch);
    cluster_req_t q = {
        .prefix = cfg->redis_key,
        .sharded = sharded,
        .request = req,
        .timeout_ms = (unsigned)cfg->requests_timeout_ms,
        .on_reply = on_reply,
        .arg = &v,
    };
    cluster_req_result_t res;
    buf_t err;
    buf_init(&err);
    redisContext *sub = answered ? connect_redis(cfg, &err) : NULL;
    redisContext *pub = sub || !answered ? connect_redis(cfg, &err) : NULL;
    int rc = pub ? cluster_req_run(sub, pub, &q, &res, &err) : -EIO;
    if (!rc && v.rc) {
        rc = v.rc;
        buf_printf(&err, "cannot render the answer: %s", strerror(-rc));
    }
    buf_reset(out);
    const char *mode = sharded ? "sharded" : "classic";
    if (rc) {
        buf_append(out, err.data ? err.data : "failed", err.data ? err.len : 6);
    } else if (!answered) {
        buf_printf(out, "{\"ok\":true,\"cluster\":{\"mode\":\"%s\",\"servers\":%lld}}", mode,
                   res.members);
    } else {
        size_t total = kind == VIEW_ROOMS ? strmap_size(v.all) : v.total;
        buf_printf(out,
                   "{%s%s\"cluster\":{\"mode\":\"%s\",\"servers\":%lld,\"responses\":%lld,"
                   "\"complete\":%s,\"%s\":%zu,\"members\":[%s]}}",
                   head, *head ? "," : "", mode, res.members, res.responses,
                   res.responses >= res.members ? "true" : "false",
                   kind == VIEW_ROOMS     ? "rooms"
                   : kind == VIEW_CLIENTS ? "clients"
                                          : "answers",
                   total, v.list.data ? v.list.data : "");
    }
    redisFree(sub);
    redisFree(pub);
    strmap_free(v.all);
    buf_free(&v.list);
    buf_free(&v.scratch);
    buf_free(&err);
    return rc;
}

/* rooms / clients [room]: this server's counts, and with the adapter on the whole cluster. */
static int listing(const admin_ctx_t *ctx, bool want_rooms, const char *room, size_t room_len,
                   buf_t *out)
{
    const char *what = want_rooms ? "rooms" : "clients";
    size_t off =
        want_rooms ? offsetof(stats_worker_t, rooms) : offsetof(stats_worker_t, connections);
    if (ctx->cfg->adapter == CONFIG_ADAPTER_OFF) {
        if (!room) {
            per_worker(out, ctx->region, what, off);
            return 0;
        }
        buf_reset(out);
        buf_puts(out, "clients <room> asks every server for its sockets through the Redis "
                      "adapter's requests: set SOCKETIO_REDIS_ADAPTER=true or sharded");
        return -ENOTSUP;
    }
    buf_t head;
    buf_init(&head);
    if (room) {
        buf_puts(&head, "\"room\":");
        json_write_string(&head, room, room_len);
    } else {
        per_worker(&head, ctx->region, what, off);
        /* its members, without the braces */
        head.len--;
        head.data[head.len] = '\0';
        memmove(head.data, head.data + 1, head.len);
        head.len--;
    }
    adapter_str_t r = {room, room_len};
    cluster_request_t req = {
        /* the cluster protocol has no allRooms: sharded rooms come from every socket's rooms */
        .op = want_rooms && ctx->cfg->adapter == CONFIG_ADAPTER_CLASSIC ? ADAPTER_OP_ALL_ROOMS
                                                                        : ADAPTER_OP_FETCH,
        .rooms = room ? &r : NULL,
        .nrooms = room ? 1 : 0,
    };
    int rc = cluster_view(ctx, want_rooms ? VIEW_ROOMS : VIEW_CLIENTS, &req,
                          head.data ? head.data : "", out);
    buf_free(&head);
    return rc;
}

static int needs_adapter(const admin_ctx_t *ctx, const char *cmd, buf_t *out)
{
    if (ctx->cfg->adapter != CONFIG_ADAPTER_OFF)
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
static int sockets_op(const admin_ctx_t *ctx, int argc, char **argv, const size_t *lens, buf_t *out)
{
    const char *cmd = argv[0];
    bool disconnect = strcmp(cmd, "disconnect") == 0;
    bool close = disconnect && argc == 3 && strcmp(argv[2], "close") == 0;
    if (disconnect ? (argc != 2 && !close) || lens[1] == 0 : argc != 3 || !lens[1] || !lens[2])
        return usage(out, disconnect ? "disconnect <room> [close]" : "join|leave <room> <target>");
    int rc = needs_adapter(ctx, cmd, out);
    if (rc)
        return rc;
    adapter_str_t room = {argv[1], lens[1]};
    adapter_str_t target = {argv[2], disconnect ? 0 : lens[2]};
    cluster_request_t req = {
        .op = disconnect                 ? ADAPTER_OP_DISCONNECT
              : strcmp(cmd, "join") == 0 ? ADAPTER_OP_JOIN
                                         : ADAPTER_OP_LEAVE,
        .rooms = &room,
        .nrooms = 1,
        .targets = &target,
        .ntargets = disconnect ? 0 : 1,
        .close = close,
    };
    return cluster_view(ctx, VIEW_CLIENTS, &req, "", out);
}

/* serverside <event> <json>: serverSideEmit with an acknowledgement from every server. */
static int server_side(const admin_ctx_t *ctx, int argc, char **argv, const size_t *lens,
                       buf_t *out)
{
    if (argc != 3 || lens[1] == 0)
        return usage(out, "serverside <event> <json>");
    int rc = needs_adapter(ctx, argv[0], out);
    if (rc)
        return rc;
    if (json_validate(argv[2], lens[2]) != 0) {
        buf_reset(out);
        buf_puts(out, "the message argument is not valid JSON");
        return -EINVAL;
    }
    buf_t data;
    buf_init(&data);
    buf_putc(&data, '[');
    json_write_string(&data, argv[1], lens[1]);
    buf_putc(&data, ',');
    buf_append(&data, argv[2], lens[2]);
    buf_putc(&data, ']');
    cluster_request_t req = {
        .op = ADAPTER_OP_SERVER_SIDE_EMIT, .data_json = data.data, .data_len = data.len};
    rc = cluster_view(ctx, VIEW_VALUES, &req, "", out);
    buf_free(&data);
    return rc;
}

/* ---- presence and dead letters (master/bridge_admin) over this blocking connection ---- */

static int blocking_command(void *ctx, const char *key, size_t key_len, redis_reply_fn cb,
                            void *arg, int argc, const char **argv, const size_t *lens)
{
    (void)key, (void)key_len;
    redisReply *r = redisCommandArgv(ctx, argc, argv, lens);
    cb(r, arg); /* NULL: I/O error or timeout */
    freeReplyObject(r);
    return 0;
}

typedef struct bridge_result {
    int rc;
    buf_t *out;
} bridge_result_t;

static void bridge_done(void *arg, int rc, const buf_t *body)
{
    bridge_result_t *res = arg;
    res->rc = rc;
    buf_reset(res->out);
    buf_append(res->out, body->data ? body->data : "", body->len);
}

static int bridge_cmd(const admin_ctx_t *ctx, int argc, char **argv, const size_t *lens, buf_t *out)
{
    redisContext *rc = connect_redis(ctx->cfg, out);
    if (!rc)
        return -EIO;
    bridge_redis_t redis = {.ctx = rc, .command = blocking_command};
    bridge_result_t res = {-EIO, out};
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t wall = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
    bridge_admin_run(&redis, ctx->cfg, wall, argc, argv, lens, bridge_done, &res);
    redisFree(rc);
    return res.rc;
}

int admin_run(int argc, char **argv, const size_t *lens, buf_t *out, void *arg)
{
    const admin_ctx_t *ctx = arg;
    const char *cmd = argv[0];
    if (strcmp(cmd, "status") == 0 && argc == 1) {
        health_render(out, ctx->region, 0);
        return 0;
    }
    if (strcmp(cmd, "rooms") == 0 && argc == 1)
        return listing(ctx, true, NULL, 0, out);
    if (strcmp(cmd, "clients") == 0 && argc == 1)
        return listing(ctx, false, NULL, 0, out);
    if (strcmp(cmd, "clients") == 0 && argc == 2) {
        if (lens[1] == 0)
            return usage(out, "clients [room]");
        return listing(ctx, false, argv[1], lens[1], out);
    }
    if (strcmp(cmd, "join") == 0 || strcmp(cmd, "leave") == 0 || strcmp(cmd, "disconnect") == 0)
        return sockets_op(ctx, argc, argv, lens, out);
    if (strcmp(cmd, "serverside") == 0)
        return server_side(ctx, argc, argv, lens, out);
    if (bridge_admin_handles(cmd))
        return bridge_cmd(ctx, argc, argv, lens, out);
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
        return emit(ctx, nsp, NULL, 0, argv[1], lens[1], argv[2], lens[2], out);
    }
    if (strcmp(cmd, "sendroom") == 0) {
        if (argc != 4 || lens[1] == 0)
            return usage(out, "sendroom [--nsp /ns] <room> <event> <json>");
        return emit(ctx, nsp, argv[1], lens[1], argv[2], lens[2], argv[3], lens[3], out);
    }
    return usage(out, "status | rooms | clients [room] | broadcast [--nsp /ns] <event> <json> | "
                      "sendroom [--nsp /ns] <room> <event> <json> | join|leave <room> <target> | "
                      "disconnect <room> [close] | serverside <event> <json> | presence <room> | "
                      "dead-letter list [count] | dead-letter replay <id>");
}
