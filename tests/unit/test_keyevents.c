/* Unit tests for master/discovery/keyevents: the notify-keyspace-events flags it adds, event
 * parsing, pacing, and (against the scripted Redis) when events are said to be up or down. */
#include <errno.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdlib.h>
#include <strings.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>

#include "common/buf.h"
#include "common/config.h"
#include "common/redis/redis_reply.h"
#include "common/redis/redis_topology.h"
#include "master/discovery/keyevents.h"
#include "tests/unit/redis_fake.h"

static void test_flags_adds_only_what_is_missing(void **state)
{
    (void)state;
    char out[16];
    assert_int_equal(keyevents_flags("", out, sizeof(out)), 1);
    assert_string_equal(out, "Egt");
    assert_int_equal(keyevents_flags("Et", out, sizeof(out)), 1);
    assert_string_equal(out, "Etg");
    assert_int_equal(keyevents_flags("KEA", out, sizeof(out)), 0); /* A holds g and t */
    assert_string_equal(out, "KEA");
    assert_int_equal(keyevents_flags("KA", out, sizeof(out)), 1); /* keyspace only: E missing */
    assert_string_equal(out, "KAE");
    assert_int_equal(keyevents_flags("gtE", out, sizeof(out)), 0);
    assert_string_equal(out, "gtE");
    assert_int_equal(keyevents_flags("Kx", out, 4), -ENOSPC);
    assert_int_equal(keyevents_flags("gtE", out, 3), -ENOSPC);
}

static redisReply *str(const char *s)
{
    redisReply *r = calloc(1, sizeof(*r));
    r->type = REDIS_REPLY_STRING;
    r->str = strdup(s);
    r->len = strlen(s);
    return r;
}

static redisReply *msg(const char *kind, const char *chan, const char *key)
{
    redisReply *r = calloc(1, sizeof(*r));
    r->type = REDIS_REPLY_ARRAY;
    r->elements = 3;
    r->element = calloc(3, sizeof(*r->element));
    r->element[0] = str(kind);
    r->element[1] = str(chan);
    r->element[2] = str(key);
    return r;
}

/* r read as Redis' pub/sub reply (as the client hands it over), then parsed */
static int parse(int db, redisReply *r, keyevent_kind_t *kind, const char **key, size_t *len)
{
    redis_push_t p;
    redis_reply_push(r, &p); /* not a push: type NONE, refused below */
    return keyevents_parse(db, &p, kind, key, len);
}

static void test_parse_events_of_its_db_only(void **state)
{
    (void)state;
    keyevent_kind_t kind;
    const char *key;
    size_t len;
    redisReply *r = msg("message", "__keyevent@3__:xadd", "room.1");
    assert_int_equal(parse(3, r, &kind, &key, &len), 0);
    assert_int_equal(kind, KEYEVENT_XADD);
    assert_int_equal(len, 6);
    assert_memory_equal(key, "room.1", 6);
    freeReplyObject(r);
    r = msg("message", "__keyevent@3__:del", "room.2");
    assert_int_equal(parse(3, r, &kind, &key, &len), 0);
    assert_int_equal(kind, KEYEVENT_DEL);
    assert_memory_equal(key, "room.2", 6);
    freeReplyObject(r);
    r = msg("message", "__keyevent@0__:xadd", "room.1"); /* another db */
    assert_int_equal(parse(3, r, &kind, &key, &len), -EINVAL);
    freeReplyObject(r);
    r = msg("subscribe", "__keyevent@3__:xadd", "x");
    assert_int_equal(parse(3, r, &kind, &key, &len), -EINVAL);
    freeReplyObject(r);
    r = str("message");
    assert_int_equal(parse(3, r, &kind, &key, &len), -EINVAL);
    freeReplyObject(r);
    assert_int_equal(keyevents_parse(3, NULL, &kind, &key, &len), -EINVAL);
}

/* A quiet database is read at once; more than KEYEVENTS_BURST events within a window stop the
 * reads for a window; a window of 0 (BATCH_DELAY=0) never does. */
static void test_pace_holds_only_a_busy_subscription(void **state)
{
    (void)state;
    keyevents_pace_t p = {0};
    /* 100 events/s against a 5 ms window: never */
    for (uint64_t t = 1000; t < 2000; t += 10)
        assert_false(keyevents_pace_message(&p, t, 5));
    /* two within the window are still read at once; the third is a burst */
    assert_false(keyevents_pace_message(&p, 3000, 5));
    assert_false(keyevents_pace_message(&p, 3001, 5));
    assert_true(keyevents_pace_message(&p, 3002, 5));
    /* a window later it starts counting again */
    assert_false(keyevents_pace_message(&p, 3007, 5));
    /* the resumed read brings many at once: a burst again */
    assert_false(keyevents_pace_message(&p, 3012, 5));
    assert_false(keyevents_pace_message(&p, 3012, 5));
    assert_true(keyevents_pace_message(&p, 3012, 5));
    keyevents_pace_t q = {0};
    for (int i = 0; i < 100; i++)
        assert_false(keyevents_pace_message(&q, 5000, 0));
}

typedef struct ke_env {
    uv_loop_t loop;
    cfg_t cfg;
    redis_topology_t *topo;
    keyevents_t *k;
    fake_t *srv;
    int ups, downs;
} ke_env_t;

/* A Redis that publishes the events already (nothing to SET) and confirms subscriptions. */
static void ke_redis(fake_conn_t *fc, int argc, char **argv, size_t *lens, void *arg)
{
    (void)lens;
    (void)arg;
    if (fake_pubsub(fc, argc, argv))
        return;
    if (argc == 3 && strcasecmp(argv[0], "CONFIG") == 0) {
        fake_send(fc, "*2\r\n$22\r\nnotify-keyspace-events\r\n$3\r\nEgt\r\n");
        return;
    }
    fake_send(fc, ":0\r\n");
}

static void ke_fn(keyevent_kind_t kind, const char *key, size_t len, void *arg)
{
    (void)key;
    (void)len;
    ke_env_t *e = arg;
    e->ups += kind == KEYEVENT_UP;
    e->downs += kind == KEYEVENT_DOWN;
}

static const char *ke_getenv(const char *name, void *arg)
{
    return strcmp(name, "REDIS_PORT") == 0 ? arg : NULL;
}

static fake_conn_t *ke_find(ke_env_t *e, bool subscribed)
{
    fake_conn_t *found;
    assert_true(fake_named(e->srv, "keyevents", subscribed, &found) > 0);
    return found;
}

static bool ke_up(void *arg)
{
    ke_env_t *e = arg;
    return e->ups > e->downs;
}

static bool ke_down(void *arg)
{
    return !ke_up(arg);
}

static bool ke_config_asked_twice(void *arg)
{
    return fake_count(((ke_env_t *)arg)->srv, "CONFIG GET notify-keyspace-events") >= 2;
}

static void ke_done(void *arg)
{
    *(bool *)arg = true;
}

static bool ke_flag(void *arg)
{
    return *(bool *)arg;
}

/* Events arrive over the subscription's own connection: losing the command connection does not
 * stop them (nor is the subscription sent again); losing the subscription's does, until it is
 * confirmed again. */
static void test_events_follow_the_subscription_not_the_command_connection(void **state)
{
    (void)state;
    ke_env_t *e = calloc(1, sizeof(*e));
    assert_non_null(e);
    assert_int_equal(uv_loop_init(&e->loop), 0);
    e->srv = fake_new(&e->loop, ke_redis, e);
    char port[16];
    snprintf(port, sizeof(port), "%d", fake_port(e->srv));
    buf_t err;
    buf_init(&err);
    assert_int_equal(config_load(&e->cfg, ke_getenv, port, &err), 0);
    redis_topology_opts_t o;
    redis_topology_opts_from_cfg(&o, &e->cfg);
    assert_int_equal(redis_topology_new(&e->topo, &e->loop, &o, &err), 0);
    buf_free(&err);
    e->k = keyevents_new(e->topo, &e->cfg, ke_fn, e);
    assert_true(fake_run_until(&e->loop, ke_up, e, 5000));
    assert_int_equal(fake_count_prefix(e->srv, "SUBSCRIBE"), 2);

    fake_drop(ke_find(e, false));
    assert_true(fake_run_until(&e->loop, ke_config_asked_twice, e, 5000));
    fake_run_for(&e->loop, 50);
    assert_int_equal(e->downs, 0);
    assert_int_equal(e->ups, 1);
    assert_int_equal(fake_count_prefix(e->srv, "SUBSCRIBE"), 2);

    fake_drop(ke_find(e, true));
    assert_true(fake_run_until(&e->loop, ke_down, e, 5000));
    assert_true(fake_run_until(&e->loop, ke_up, e, 5000));
    assert_int_equal(e->downs, 1);
    assert_int_equal(e->ups, 2);
    assert_int_equal(fake_count_prefix(e->srv, "SUBSCRIBE"), 4);

    bool done = false;
    keyevents_close(e->k, ke_done, &done);
    assert_true(fake_run_until(&e->loop, ke_flag, &done, 5000));
    done = false;
    redis_topology_close(e->topo, ke_done, &done);
    assert_true(fake_run_until(&e->loop, ke_flag, &done, 5000));
    fake_free(e->srv);
    assert_int_equal(fake_loop_close(&e->loop), 0);
    free(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_flags_adds_only_what_is_missing),
        cmocka_unit_test(test_parse_events_of_its_db_only),
        cmocka_unit_test(test_pace_holds_only_a_busy_subscription),
        cmocka_unit_test(test_events_follow_the_subscription_not_the_command_connection),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
