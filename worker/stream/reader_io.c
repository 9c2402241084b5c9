/* reader_io: see reader_io.h. */
#include "worker/stream/reader_io.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/redis/redis_client.h"
#include "common/redis/redis_slot.h"
#include "common/xalloc.h"
#include "shm/ledger.h"

struct reader_io {
    redis_topology_t *topo;
    uv_loop_t *loop;
    stats_worker_t *stats;
    reader_redis_ops_t redis;
    reader_clock_ops_t clock;
};

struct reader_conn {
    redis_client_t *cl;
    uint64_t where;         /* op_where's digest, while the primaries are unchanged: */
    uint64_t where_changes; /* ... redis_client_primaries_changed when it was taken */
    reader_state_fn state;
    void *arg;
    void (*done)(void *arg);
    void *done_arg;
};

struct reader_timer {
    uv_timer_t timer;
    void (*fire)(void *arg);
    void *arg;
    void (*done)(void *arg);
    void *done_arg;
};

/* ---- Redis ---- */

static void on_state(redis_client_t *cl, bool up, void *arg)
{
    (void)cl;
    reader_conn_t *c = arg;
    if (c->state)
        c->state(c, up, c->arg);
}

static const redis_client_cbs_t conn_cbs = {.state = on_state};

static reader_conn_t *conn_new(reader_io_t *e, const char *name, reader_state_fn state, void *arg)
{
    reader_conn_t *c = xcalloc(1, sizeof(*c));
    c->state = state;
    c->arg = arg;
    c->cl = redis_client_new(e->topo, name, &conn_cbs, c);
    redis_client_count_reconnects(c->cl, &e->stats->redis_reconnects);
    return c;
}

static reader_conn_t *op_open(void *ctx, const char *name, reader_state_fn state, void *arg)
{
    return conn_new(ctx, name, state, arg);
}

static int op_command(reader_conn_t *c, const char *key, size_t key_len, reader_reply_fn cb,
                      void *arg, int argc, const char **argv, const size_t *lens)
{
    return redis_client_command(c->cl, key, key_len, cb, arg, argc, argv, lens);
}

static int op_command_blocking(reader_conn_t *c, const char *key, size_t key_len, uint32_t block_ms,
                               reader_reply_fn cb, void *arg, int argc, const char **argv,
                               const size_t *lens)
{
    return redis_client_command_blocking(c->cl, key, key_len, block_ms, cb, arg, argc, argv, lens);
}

static int op_unblock(reader_conn_t *via, reader_conn_t *blocked, const char *key, size_t key_len)
{
    return redis_client_unblock(via->cl, blocked->cl, key, key_len);
}

static bool op_up(const reader_conn_t *c)
{
    return redis_client_up(c->cl);
}

static void add_primary(redis_node_t *n, void *arg)
{
    const char *addr = redis_node_addr(n);
    *(uint64_t *)arg += shm_ledger_digest(addr, strlen(addr));
}

/* The sum of the primaries' address digests (their order does not matter), taken again only
 * when they changed; 1 while none is known, so that 0 stays "not tracked". */
static uint64_t op_where(reader_conn_t *c)
{
    uint64_t changes = redis_client_primaries_changed(c->cl);
    if (!c->where || changes != c->where_changes) {
        uint64_t sum = 0;
        redis_client_each_master(c->cl, add_primary, &sum);
        c->where = sum ? sum : 1;
        c->where_changes = changes;
    }
    return c->where;
}

static int op_slot(void *ctx, const char *key, size_t key_len)
{
    reader_io_t *e = ctx;
    return redis_topology_mode(e->topo) == REDIS_MODE_CLUSTER ? (int)redis_slot(key, key_len) : -1;
}

/* Frees a closed connection or timer, then tells the reader (whose done may free the ops). */
static void release(void *mem, void (*done)(void *arg), void *arg)
{
    free(mem);
    if (done)
        done(arg);
}

static void on_client_closed(void *arg)
{
    reader_conn_t *c = arg;
    release(c, c->done, c->done_arg);
}

static void op_close(reader_conn_t *c, void (*done)(void *arg), void *arg)
{
    c->done = done;
    c->done_arg = arg;
    redis_client_close(c->cl, on_client_closed, c);
}

/* ---- time ---- */

static uint64_t clk_now_ms(void *ctx)
{
    reader_io_t *e = ctx;
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
    reader_io_t *e = ctx;
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

reader_io_t *reader_io_new(redis_topology_t *topo, stats_worker_t *stats)
{
    reader_io_t *e = xcalloc(1, sizeof(*e));
    e->topo = topo;
    e->loop = redis_topology_loop(topo);
    e->stats = stats;
    e->redis = (reader_redis_ops_t){
        .ctx = e,
        .open = op_open,
        .command = op_command,
        .command_blocking = op_command_blocking,
        .unblock = op_unblock,
        .up = op_up,
        .where = op_where,
        .slot = op_slot,
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

const reader_redis_ops_t *reader_io_redis(const reader_io_t *e)
{
    return &e->redis;
}

const reader_clock_ops_t *reader_io_clock(const reader_io_t *e)
{
    return &e->clock;
}

void reader_io_free(reader_io_t *e)
{
    free(e);
}
