/*
 * Fuzzes common/redis/redis_conn on what a Redis server (or something posing as one) sends back
 * once the connection is up: the input is written as the server's answer, then the server closes.
 * The first input byte picks the connection's use, as the layer's users have them: a command
 * connection with three pipelined GETs (the input answers the first, and whatever follows is
 * taken for the others), or a pub/sub connection subscribed to a channel, a pattern and a shard
 * channel (the input arrives as pushes). Every command's callback must run exactly once (a reply
 * or NULL), messages must carry their channel and data, and the connection must close and release
 * everything. The server is the unit tests' scripted one (tests/unit/redis_fake.c) on loopback.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <uv.h>

#include "common/redis/redis_conn.h"
#include "tests/unit/redis_fake.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct run {
    const uint8_t *data;
    size_t size;
    bool pubsub, sent, up, closed;
    int subscribed;
    size_t calls;
} run_t;

static run_t *cur;

static void on_cmd(fake_conn_t *fc, int argc, char **argv, size_t *lens, void *arg)
{
    (void)lens;
    (void)arg;
    if ((cur->pubsub ? fake_pubsub(fc, argc, argv) : fake_handshake(fc, argc, argv)) ||
        strcmp(argv[0], "GET") != 0 || cur->sent)
        return;
    cur->sent = true;
    fake_send_last(fc, (const char *)cur->data, cur->size);
}

static void on_event(redis_conn_t *c, redis_conn_event_t ev, void *arg)
{
    (void)c;
    ((run_t *)arg)->up = ev == REDIS_CONN_UP;
}

static void on_message(redis_conn_t *c, const redis_push_t *m, void *arg)
{
    (void)c;
    (void)arg;
    if (m->type != REDIS_PUSH_MESSAGE || !m->channel || !m->data)
        __builtin_trap();
}

static void on_subscribed(redis_conn_t *c, redis_sub_kind_t kind, const char *ch, size_t len,
                          void *arg)
{
    (void)c;
    (void)kind;
    (void)ch;
    (void)len;
    ((run_t *)arg)->subscribed++;
}

static void on_reply(const redisReply *r, void *arg)
{
    (void)r;
    ((run_t *)arg)->calls++;
}

static void on_closed(void *arg)
{
    ((run_t *)arg)->closed = true;
}

static bool is_up(void *arg)
{
    return ((run_t *)arg)->up;
}

static bool all_subscribed(void *arg)
{
    return ((run_t *)arg)->subscribed >= 3;
}

static bool answered(void *arg)
{
    return ((run_t *)arg)->calls == 3;
}

static bool is_down(void *arg)
{
    return !((run_t *)arg)->up;
}

static bool is_closed(void *arg)
{
    return ((run_t *)arg)->closed;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uv_loop_t loop;
    static fake_t *srv;
    if (!srv) {
        if (uv_loop_init(&loop))
            __builtin_trap();
        srv = fake_new(&loop, on_cmd, NULL);
    }
    if (size < 1)
        return 0;
    run_t r = {.data = data + 1, .size = size - 1, .pubsub = data[0] & 1};
    cur = &r;
    static const redis_conn_cbs_t cbs = {
        .event = on_event, .message = on_message, .subscribed = on_subscribed};
    redis_conn_opts_t o = {.name = "fuzz",
                           .connect_timeout_ms = 1000,
                           .command_timeout_ms = 1000,
                           .backoff_min_ms = 1000,
                           .backoff_max_ms = 1000};
    redis_conn_t *c = redis_conn_new(&loop, "127.0.0.1", fake_port(srv), &o, &cbs, &r);
    if (!fake_run_until(&loop, is_up, &r, 2000))
        __builtin_trap();
    if (r.pubsub) {
        redis_conn_subscribe(c, REDIS_SUB_CHANNEL, "ch", 2);
        redis_conn_subscribe(c, REDIS_SUB_PATTERN, "p*", 2);
        redis_conn_subscribe(c, REDIS_SUB_SHARD, "{s}", 3);
        if (!fake_run_until(&loop, all_subscribed, &r, 2000))
            __builtin_trap();
        r.sent = true;
        fake_send_last(fake_last(srv), (const char *)r.data, r.size);
        (void)fake_run_until(&loop, is_down, &r, 2000);
    } else {
        const char *argv[] = {"GET", "k"};
        for (int i = 0; i < 3; i++) {
            if (redis_conn_command(c, on_reply, &r, 2, argv, NULL))
                __builtin_trap();
        }
        /* the server closes after its answer: every callback has run by then */
        if (!fake_run_until(&loop, answered, &r, 3000))
            __builtin_trap();
    }
    redis_conn_close(c, on_closed, &r);
    if (!fake_run_until(&loop, is_closed, &r, 3000) || r.calls != (r.pubsub ? 0 : 3))
        __builtin_trap();
    cur = NULL;
    return 0;
}
