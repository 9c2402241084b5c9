/* admin: see admin.h. */
#include "master/admin.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>

#include "common/ids.h"
#include "common/json.h"
#include "shm/stats.h"
#include "worker/adapter_msg.h"
#include "worker/health.h"

#define UID_LEN 16

static int usage(buf_t *out, const char *what)
{
    buf_reset(out);
    buf_printf(out, "usage: %s", what);
    return -EINVAL;
}

/* {"<total>":N,"workers":[{"worker":i,"pid":p,"<per>":n}...]} from one stats field. */
static int per_worker(buf_t *out, shm_region_t *region, const char *total, size_t off)
{
    uint32_t n = shm_region_slots(region);
    uint64_t sum = 0;
    buf_t list;
    buf_init(&list);
    int rc = 0;
    for (uint32_t i = 0; i < n && rc == 0; i++) {
        stats_worker_t *w = shm_region_slot_stats(region, i);
        if (!STATS_GET(w->pid))
            continue;
        uint64_t v =
            atomic_load_explicit((_Atomic uint64_t *)((char *)w + off), memory_order_relaxed);
        sum += v;
        rc = buf_printf(&list, "%s{\"worker\":%llu,\"pid\":%llu,\"role\":\"%s\",\"%s\":%llu}",
                        list.len ? "," : "", (unsigned long long)STATS_GET(w->index),
                        (unsigned long long)STATS_GET(w->pid),
                        STATS_GET(w->role) == STATS_ROLE_ACTIVE ? "active" : "draining", total,
                        (unsigned long long)v);
    }
    if (rc == 0)
        rc = buf_printf(out, "{\"%s\":%llu,\"workers\":[%s]}", total, (unsigned long long)sum,
                        list.data ? list.data : "");
    buf_free(&list);
    return rc;
}

static redisContext *connect_redis(const cfg_t *cfg, buf_t *out)
{
    struct timeval tv = {.tv_sec = 2};
    redisContext *rc = redisConnectWithTimeout(cfg->redis_host, cfg->redis_port, tv);
    if (!rc || rc->err) {
        buf_printf(out, "redis %s:%d unreachable: %s", cfg->redis_host, cfg->redis_port,
                   rc ? rc->errstr : "out of memory");
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

/* Publishes ["event", json] to `room` (NULL: everyone) on the workers' adapter channel. */
static int emit(const admin_ctx_t *ctx, const char *room, size_t room_len, const char *event,
                size_t event_len, const char *json, size_t json_len, buf_t *out)
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
    int rc = buf_putc(&data, '[');
    if (rc == 0)
        rc = json_write_string(&data, event, event_len);
    if (rc == 0)
        rc = buf_putc(&data, ',');
    if (rc == 0)
        rc = buf_append(&data, json, json_len);
    if (rc == 0)
        rc = buf_putc(&data, ']');
    if (rc == 0)
        rc = ids_random(uid, UID_LEN);
    if (rc == 0)
        rc = adapter_msg_encode_broadcast(&msg, uid, UID_LEN, "/", 1, data.data, data.len, &r,
                                          room ? 1 : 0);
    if (rc == 0)
        rc = buf_printf(&chan, "%s#/#", prefix);
    if (rc == 0 && room) {
        rc = buf_append(&chan, room, room_len);
        if (rc == 0)
            rc = buf_putc(&chan, '#');
    }
    buf_reset(out);
    if (rc) {
        buf_printf(out, "cannot encode the message: %s", strerror(-rc));
    } else {
        redisContext *c = connect_redis(cfg, out);
        if (!c) {
            rc = -EIO;
        } else {
            redisReply *rep =
                redisCommand(c, "PUBLISH %b %b", chan.data, chan.len, msg.data, msg.len);
            if (!rep || rep->type != REDIS_REPLY_INTEGER) {
                buf_printf(out, "PUBLISH failed: %s",
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

int admin_run(int argc, char **argv, const size_t *lens, buf_t *out, void *arg)
{
    const admin_ctx_t *ctx = arg;
    const char *cmd = argv[0];
    if (strcmp(cmd, "status") == 0 && argc == 1)
        return health_render(out, ctx->region, 0);
    if (strcmp(cmd, "rooms") == 0 && argc == 1)
        return per_worker(out, ctx->region, "rooms", offsetof(stats_worker_t, rooms));
    if (strcmp(cmd, "clients") == 0 && argc == 1)
        return per_worker(out, ctx->region, "clients", offsetof(stats_worker_t, connections));
    if (strcmp(cmd, "clients") == 0 && argc == 2) {
        buf_reset(out);
        buf_puts(out, "clients <room> is not available yet: the workers do not publish their "
                      "room membership to the master");
        return -ENOTSUP;
    }
    if (strcmp(cmd, "broadcast") == 0) {
        if (argc != 3)
            return usage(out, "broadcast <event> <json>");
        return emit(ctx, NULL, 0, argv[1], lens[1], argv[2], lens[2], out);
    }
    if (strcmp(cmd, "sendroom") == 0) {
        if (argc != 4 || lens[1] == 0)
            return usage(out, "sendroom <room> <event> <json>");
        return emit(ctx, argv[1], lens[1], argv[2], lens[2], argv[3], lens[3], out);
    }
    return usage(out, "status | rooms | clients [room] | broadcast <event> <json> | "
                      "sendroom <room> <event> <json>");
}
