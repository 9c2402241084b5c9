/* Unit tests for master/discovery/keyevents: the notify-keyspace-events flags it adds, event
 * parsing. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>

#include "common/redis/redis_reply.h"
#include "master/discovery/keyevents.h"

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_flags_adds_only_what_is_missing),
        cmocka_unit_test(test_parse_events_of_its_db_only),
        cmocka_unit_test(test_pace_holds_only_a_busy_subscription),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
