/* presence_query: see presence_query.h. */
#include "common/bridge/presence_query.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/bridge/presence_store.h"
#include "common/bridge/rcmd.h"
#include "common/xalloc.h"

typedef struct query {
    bridge_redis_t redis;
    presence_query_fn done;
    void *arg;
    char *prefix;
    size_t len;
    char *room;
} query_t;

static void finish(query_t *q, int rc, const char *why, const redisReply *r)
{
    buf_t out;
    buf_init(&out);
    if (rc)
        buf_printf(&out, "%s: %s", why,
                   !r                             ? "the Redis connection was lost"
                   : r->type == REDIS_REPLY_ERROR ? r->str
                                                  : "unexpected reply");
    q->done(q->arg, rc, &out);
    buf_free(&out);
    free(q->prefix);
    free(q->room);
    free(q);
}

static void on_users(const redisReply *r, void *arg)
{
    query_t *q = arg;
    buf_t json;
    buf_init(&json);
    if (presence_reply_users(r, q->room, q->len, &json) == 0) {
        q->done(q->arg, 0, &json);
        buf_free(&json);
        free(q->prefix);
        free(q->room);
        free(q);
        return;
    }
    buf_free(&json);
    finish(q, -EIO, "presence query failed", r);
}

typedef struct dead_list {
    const char **names;
    size_t n;
} dead_list_t;

static void add_dead(const char *p, size_t len, void *arg)
{
    dead_list_t *d = arg;
    d->names[d->n++] = xmemdup(p, len);
}

static void on_dead(const redisReply *r, void *arg)
{
    query_t *q = arg;
    size_t max = r && r->type == REDIS_REPLY_ARRAY ? r->elements : 0;
    dead_list_t d = {xcalloc(max ? max : 1, sizeof(char *)), 0};
    if (presence_reply_names(r, add_dead, &d) != 0) {
        free(d.names);
        finish(q, -EIO, "presence query failed", r);
        return;
    }
    rcmd_t c;
    rcmd_init(&c);
    presence_cmd_room_query(&c, q->prefix, q->room, q->len, d.names, d.n);
    size_t klen;
    const char **argv = rcmd_argv(&c);
    const char *key = rcmd_key(&c, &klen);
    int rc =
        q->redis.command(q->redis.ctx, key, klen, on_users, q, rcmd_argc(&c), argv, rcmd_lens(&c));
    rcmd_free(&c);
    for (size_t i = 0; i < d.n; i++)
        free((char *)d.names[i]);
    free(d.names);
    if (rc)
        finish(q, -EIO, "presence query failed", NULL);
}

int presence_query(const bridge_redis_t *redis, const char *prefix, const char *room, size_t len,
                   uint64_t wall_ms, uint64_t ttl_ms, presence_query_fn done, void *arg)
{
    query_t *q = xcalloc(1, sizeof(*q));
    q->redis = *redis;
    q->done = done;
    q->arg = arg;
    q->prefix = xstrdup(prefix);
    q->room = xmemdup(room, len);
    q->len = len;
    rcmd_t c;
    rcmd_init(&c);
    presence_cmd_expired(&c, prefix, wall_ms > ttl_ms ? wall_ms - ttl_ms : 0,
                         PRESENCE_QUERY_MAX_DEAD);
    size_t klen;
    const char **argv = rcmd_argv(&c);
    const char *key = rcmd_key(&c, &klen);
    int rc = redis->command(redis->ctx, key, klen, on_dead, q, rcmd_argc(&c), argv, rcmd_lens(&c));
    rcmd_free(&c);
    if (rc) {
        free(q->prefix);
        free(q->room);
        free(q);
    }
    return rc;
}
