/* redis_sentinel: see redis_sentinel.h. */
#include "common/redis/redis_sentinel.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/redis/redis_reply.h"
#include "common/xalloc.h"

#define DEF_CHECK_MS 5000
#define SWITCH_CHANNEL "+switch-master"

struct redis_sentinel {
    redis_addr_t *sentinels;
    size_t n, cur; /* the sentinel in use */
    char *name;
    redis_conn_t *cmd;
    redis_conn_t *sub;
    redis_addr_t primary;
    bool known;
    bool inflight;
    bool warned;
    bool closing;
    uint64_t switches;
    uv_timer_t tick;
    int parts;
    redis_sentinel_fn changed;
    void *arg;
    void (*done)(void *arg);
    void *done_arg;
};

static void part_closed(void *arg)
{
    redis_sentinel_t *s = arg;
    if (--s->parts)
        return;
    void (*done)(void *) = s->done;
    void *done_arg = s->done_arg;
    free(s->sentinels);
    free(s->name);
    free(s);
    if (done)
        done(done_arg);
}

static void on_handle_closed(uv_handle_t *h)
{
    part_closed(h->data);
}

/* Both connections move to the next sentinel (after their backoff). */
static void next_sentinel(redis_sentinel_t *s)
{
    s->cur = (s->cur + 1) % s->n;
    const redis_addr_t *a = &s->sentinels[s->cur];
    redis_conn_retarget(s->cmd, a->host, a->port, false);
    redis_conn_retarget(s->sub, a->host, a->port, false);
}

static void set_primary(redis_sentinel_t *s, const redis_addr_t *a)
{
    if (s->known && s->primary.port == a->port && strcmp(s->primary.host, a->host) == 0)
        return;
    if (s->known) {
        s->switches++;
        LOG_WARN("redis sentinel: primary %s is now %s:%d (was %s:%d)", s->name, a->host, a->port,
                 s->primary.host, s->primary.port);
    } else {
        LOG_INFO("redis sentinel: primary %s is %s:%d", s->name, a->host, a->port);
    }
    s->primary = *a;
    s->known = true;
    if (s->changed && !s->closing)
        s->changed(s->arg);
}

static void on_addr(const redisReply *r, void *arg)
{
    redis_sentinel_t *s = arg;
    s->inflight = false;
    if (!r || s->closing)
        return;
    redis_addr_t a;
    int rc = redis_reply_addr(r, &a);
    if (rc == 0) {
        s->warned = false;
        set_primary(s, &a);
        return;
    }
    if (!s->warned)
        LOG_WARN("redis sentinel %s:%d: %s%s", redis_conn_host(s->cmd), redis_conn_port(s->cmd),
                 rc == -ENOENT ? "does not know REDIS_SENTINEL_NAME=" : "bad answer about ",
                 s->name);
    s->warned = true;
    next_sentinel(s);
}

static void ask(redis_sentinel_t *s)
{
    if (s->inflight || s->closing)
        return;
    const char *argv[3] = {"SENTINEL", "get-master-addr-by-name", s->name};
    if (redis_conn_command(s->cmd, on_addr, s, 3, argv, NULL) == 0)
        s->inflight = true;
}

static void on_cmd_event(redis_conn_t *c, redis_conn_event_t ev, void *arg)
{
    (void)c;
    redis_sentinel_t *s = arg;
    s->inflight = false;
    if (ev == REDIS_CONN_UP)
        ask(s);
    else
        next_sentinel(s);
}

static void on_switch(redis_conn_t *c, const redis_push_t *m, void *arg)
{
    (void)c;
    redis_sentinel_t *s = arg;
    redis_addr_t a;
    if (redis_reply_switch_master(m->data, m->len, s->name, &a) == 0)
        set_primary(s, &a);
}

static void on_sub_event(redis_conn_t *c, redis_conn_event_t ev, void *arg)
{
    (void)c;
    redis_sentinel_t *s = arg;
    /* a switch may have happened while we were not listening */
    if (ev == REDIS_CONN_UP)
        ask(s);
}

static const redis_conn_cbs_t cmd_cbs = {.event = on_cmd_event};
static const redis_conn_cbs_t sub_cbs = {.event = on_sub_event, .message = on_switch};

static void on_tick(uv_timer_t *t)
{
    ask(t->data);
}

redis_sentinel_t *redis_sentinel_new(uv_loop_t *loop, const redis_addr_t *sentinels, size_t n,
                                     const char *name, const redis_conn_opts_t *opts,
                                     uint32_t check_ms, redis_sentinel_fn changed, void *arg)
{
    redis_sentinel_t *s = xcalloc(1, sizeof(*s));
    s->sentinels = xmalloc(n * sizeof(*sentinels));
    memcpy(s->sentinels, sentinels, n * sizeof(*sentinels));
    s->n = n;
    s->name = xmemdup(name, strlen(name));
    s->changed = changed;
    s->arg = arg;
    redis_conn_opts_t o = *opts;
    o.db = 0;
    o.require_primary = false;
    o.name = "sentinel";
    s->cmd = redis_conn_new(loop, sentinels[0].host, sentinels[0].port, &o, &cmd_cbs, s);
    o.name = "sentinel-events";
    s->sub = redis_conn_new(loop, sentinels[0].host, sentinels[0].port, &o, &sub_cbs, s);
    redis_conn_subscribe(s->sub, REDIS_SUB_CHANNEL, SWITCH_CHANNEL, strlen(SWITCH_CHANNEL));
    uv_timer_init(loop, &s->tick);
    s->tick.data = s;
    uint32_t every = check_ms ? check_ms : DEF_CHECK_MS;
    uv_timer_start(&s->tick, on_tick, every, every);
    s->parts = 3;
    return s;
}

const redis_addr_t *redis_sentinel_primary(const redis_sentinel_t *s)
{
    return s->known ? &s->primary : NULL;
}

void redis_sentinel_check(redis_sentinel_t *s)
{
    ask(s);
}

uint64_t redis_sentinel_switches(const redis_sentinel_t *s)
{
    return s->switches;
}

void redis_sentinel_close(redis_sentinel_t *s, void (*done)(void *arg), void *arg)
{
    if (s->closing)
        return;
    s->closing = true;
    s->done = done;
    s->done_arg = arg;
    redis_conn_close(s->cmd, part_closed, s);
    redis_conn_close(s->sub, part_closed, s);
    uv_close((uv_handle_t *)&s->tick, on_handle_closed);
}
