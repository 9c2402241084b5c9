/* reader_rds: see reader_rds.h. */
#include "worker/stream/reader_rds.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "common/redis/rds.h"
#include "common/xalloc.h"

/* A reply callback of the reader and its argument, for hiredis' single privdata. Recycled
 * through a free list: reads and probes would otherwise cost a malloc each. */
typedef struct pending {
    reader_rds_t *e;
    reader_reply_fn cb;
    void *arg;
    struct pending *next; /* on the free list */
} pending_t;

struct reader_rds {
    uv_loop_t *loop;
    const cfg_t *cfg;
    stats_worker_t *stats;
    reader_redis_ops_t redis;
    reader_clock_ops_t clock;
    pending_t *spare;
};

struct reader_conn {
    reader_rds_t *e;
    rds_t *rds;
    long long client_id; /* CLIENT ID of the current connection; 0 unknown */
    reader_state_fn state;
    reader_message_fn message; /* subscription connections only */
    void *arg;
    void (*done)(void *arg);
    void *done_arg;
    char channel[];
};

struct reader_timer {
    uv_timer_t timer;
    void (*fire)(void *arg);
    void *arg;
    void (*done)(void *arg);
    void *done_arg;
};

/* ---- Redis ---- */

static void on_client_id(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    reader_conn_t *c = privdata;
    redisReply *rep = reply;
    c->client_id = rep && rep->type == REDIS_REPLY_INTEGER ? rep->integer : 0;
}

static void on_conn_state(rds_t *rds, bool up, void *arg)
{
    reader_conn_t *c = arg;
    c->client_id = 0;
    if (up) {
        const char *argv[] = {"CLIENT", "ID"};
        rds_command(rds, on_client_id, c, 2, argv, NULL);
    }
    if (c->state)
        c->state(c, up, c->arg);
}

static reader_conn_t *conn_new(reader_rds_t *e, const char *name, const char *channel,
                               rds_state_fn fn, reader_state_fn state, void *arg)
{
    size_t clen = channel ? strlen(channel) : 0;
    reader_conn_t *c = xcalloc(1, sizeof(*c) + clen + 1);
    c->e = e;
    c->state = state;
    c->arg = arg;
    if (channel)
        memcpy(c->channel, channel, clen);
    c->rds = rds_new(e->loop, e->cfg, name, fn, c);
    rds_count_reconnects(c->rds, &e->stats->redis_reconnects);
    return c;
}

static reader_conn_t *op_open(void *ctx, const char *name, reader_state_fn state, void *arg)
{
    return conn_new(ctx, name, NULL, on_conn_state, state, arg);
}

static void on_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    pending_t *p = privdata;
    reader_reply_fn cb = p->cb;
    void *arg = p->arg;
    /* back on the free list before the callback, which may send (and so reuse it) */
    p->next = p->e->spare;
    p->e->spare = p;
    cb(reply, arg);
}

static int op_command(reader_conn_t *c, const char *key, size_t key_len, reader_reply_fn cb,
                      void *arg, int argc, const char **argv, const size_t *lens)
{
    (void)key;
    (void)key_len;
    if (!cb)
        return rds_command(c->rds, NULL, NULL, argc, argv, lens);
    reader_rds_t *e = c->e;
    pending_t *p = e->spare;
    if (p)
        e->spare = p->next;
    else
        p = xmalloc(sizeof(*p));
    p->e = e;
    p->cb = cb;
    p->arg = arg;
    int rc = rds_command(c->rds, on_reply, p, argc, argv, lens);
    if (rc) {
        p->next = e->spare;
        e->spare = p;
    }
    return rc;
}

static int op_command_blocking(reader_conn_t *c, const char *key, size_t key_len, uint32_t block_ms,
                               reader_reply_fn cb, void *arg, int argc, const char **argv,
                               const size_t *lens)
{
    (void)block_ms; /* rds has no command deadline to extend */
    return op_command(c, key, key_len, cb, arg, argc, argv, lens);
}

static int op_unblock(reader_conn_t *via, reader_conn_t *blocked, const char *key, size_t key_len)
{
    (void)key;
    (void)key_len;
    if (blocked->client_id <= 0 || !rds_connected(blocked->rds))
        return -ENOTCONN;
    char id[24];
    snprintf(id, sizeof(id), "%lld", blocked->client_id);
    const char *argv[] = {"CLIENT", "UNBLOCK", id};
    size_t lens[] = {6, 7, strlen(id)};
    return rds_command(via->rds, NULL, NULL, 3, argv, lens);
}

static void on_message(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    reader_conn_t *c = privdata;
    redisReply *rep = reply;
    if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements != 3 ||
        rep->element[0]->type != REDIS_REPLY_STRING || strcmp(rep->element[0]->str, "message") ||
        rep->element[2]->type != REDIS_REPLY_STRING)
        return;
    c->message(rep->element[2]->str, rep->element[2]->len, c->arg);
}

static void on_sub_state(rds_t *rds, bool up, void *arg)
{
    reader_conn_t *c = arg;
    if (up) {
        const char *argv[] = {"SUBSCRIBE", c->channel};
        if (rds_command(rds, on_message, c, 2, argv, NULL))
            LOG_ERROR("cannot subscribe to %s", c->channel);
    }
    if (c->state)
        c->state(c, up, c->arg);
}

static reader_conn_t *op_subscribe(void *ctx, const char *name, const char *channel,
                                   reader_message_fn message, reader_state_fn state, void *arg)
{
    reader_conn_t *c = conn_new(ctx, name, channel, on_sub_state, state, arg);
    c->message = message;
    return c;
}

static bool op_up(const reader_conn_t *c)
{
    return rds_connected(c->rds);
}

/* Frees a closed connection or timer, then tells the reader (whose done may free the ops). */
static void release(void *mem, void (*done)(void *arg), void *arg)
{
    free(mem);
    if (done)
        done(arg);
}

static void on_rds_closed(void *arg)
{
    reader_conn_t *c = arg;
    release(c, c->done, c->done_arg);
}

static void op_close(reader_conn_t *c, void (*done)(void *arg), void *arg)
{
    c->done = done;
    c->done_arg = arg;
    rds_close(c->rds, on_rds_closed, c);
}

/* ---- time ---- */

static uint64_t clk_now_ms(void *ctx)
{
    reader_rds_t *e = ctx;
    return uv_now(e->loop);
}

static uint64_t clk_now_ns(void *ctx)
{
    (void)ctx;
    return uv_hrtime();
}

static uint64_t clk_wall_ms(void *ctx)
{
    (void)ctx;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void on_timer(uv_timer_t *h)
{
    reader_timer_t *t = h->data;
    t->fire(t->arg);
}

static reader_timer_t *clk_timer_new(void *ctx, void (*fire)(void *arg), void *arg)
{
    reader_rds_t *e = ctx;
    reader_timer_t *t = xcalloc(1, sizeof(*t));
    uv_timer_init(e->loop, &t->timer);
    t->timer.data = t;
    t->fire = fire;
    t->arg = arg;
    return t;
}

static void clk_timer_start(reader_timer_t *t, uint64_t after_ms, uint64_t repeat_ms)
{
    uv_timer_start(&t->timer, on_timer, after_ms, repeat_ms);
}

static void clk_timer_stop(reader_timer_t *t)
{
    uv_timer_stop(&t->timer);
}

static void on_timer_closed(uv_handle_t *h)
{
    reader_timer_t *t = h->data;
    release(t, t->done, t->done_arg);
}

static void clk_timer_close(reader_timer_t *t, void (*done)(void *arg), void *arg)
{
    t->done = done;
    t->done_arg = arg;
    uv_close((uv_handle_t *)&t->timer, on_timer_closed);
}

/* ---- public ---- */

reader_rds_t *reader_rds_new(uv_loop_t *loop, const cfg_t *cfg, stats_worker_t *stats)
{
    reader_rds_t *e = xcalloc(1, sizeof(*e));
    e->loop = loop;
    e->cfg = cfg;
    e->stats = stats;
    e->redis = (reader_redis_ops_t){
        .ctx = e,
        .open = op_open,
        .command = op_command,
        .command_blocking = op_command_blocking,
        .unblock = op_unblock,
        .subscribe = op_subscribe,
        .up = op_up,
        .close = op_close,
    };
    e->clock = (reader_clock_ops_t){
        .ctx = e,
        .now_ms = clk_now_ms,
        .now_ns = clk_now_ns,
        .wall_ms = clk_wall_ms,
        .timer_new = clk_timer_new,
        .timer_start = clk_timer_start,
        .timer_stop = clk_timer_stop,
        .timer_close = clk_timer_close,
    };
    return e;
}

const reader_redis_ops_t *reader_rds_redis(const reader_rds_t *e)
{
    return &e->redis;
}

const reader_clock_ops_t *reader_rds_clock(const reader_rds_t *e)
{
    return &e->clock;
}

void reader_rds_free(reader_rds_t *e)
{
    if (!e)
        return;
    while (e->spare) {
        pending_t *p = e->spare;
        e->spare = p->next;
        free(p);
    }
    free(e);
}
