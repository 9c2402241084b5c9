/* Unit tests for common/redis/redis_slotmap: CLUSTER SLOTS replies (Redis 6 and 7 forms, with
 * empty and unknown hosts, malformed ones), lookups, MOVED patches and comparisons. */
#include <errno.h>
#include <hiredis/hiredis.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/redis/redis_slot.h"
#include "common/redis/redis_slotmap.h"

static redisReply *resp(const char *text)
{
    redisReader *rd = redisReaderCreate();
    void *r = NULL;
    redisReaderFeed(rd, text, strlen(text));
    assert_int_equal(redisReaderGetReply(rd, &r), REDIS_OK);
    redisReaderFree(rd);
    assert_non_null(r);
    return r;
}

static const redis_addr_t asked = {.host = "10.0.0.1", .port = 7000};

static redis_slotmap_t *parse(const char *text, int want)
{
    redisReply *r = resp(text);
    redis_slotmap_t *m = NULL;
    assert_int_equal(redis_slotmap_parse(r, &asked, &m), want);
    freeReplyObject(r);
    return m;
}

/* Three masters (one with a replica), Redis 7 form (node metadata map as an array). */
static const char three[] = "*3\r\n"
                            "*4\r\n:0\r\n:5460\r\n"
                            "*4\r\n$9\r\n127.0.0.1\r\n:7000\r\n$2\r\nid\r\n*0\r\n"
                            "*4\r\n$9\r\n127.0.0.1\r\n:7003\r\n$2\r\nir\r\n*0\r\n"
                            "*3\r\n:5461\r\n:10922\r\n"
                            "*3\r\n$0\r\n\r\n:7001\r\n$2\r\nie\r\n"
                            "*3\r\n:10923\r\n:16383\r\n"
                            "*2\r\n$9\r\n127.0.0.1\r\n:7002\r\n";

static void test_parse_three_masters(void **state)
{
    (void)state;
    redis_slotmap_t *m = parse(three, 0);
    assert_true(redis_slotmap_complete(m));
    assert_int_equal(redis_slotmap_count(m), 4);
    int a = redis_slotmap_owner(m, 0), b = redis_slotmap_owner(m, 5461),
        c = redis_slotmap_owner(m, 16383);
    assert_string_equal(redis_slotmap_addr(m, (size_t)a)->host, "127.0.0.1");
    assert_int_equal(redis_slotmap_addr(m, (size_t)a)->port, 7000);
    /* an empty host is the node we asked */
    assert_string_equal(redis_slotmap_addr(m, (size_t)b)->host, "10.0.0.1");
    assert_int_equal(redis_slotmap_addr(m, (size_t)b)->port, 7001);
    assert_int_equal(redis_slotmap_addr(m, (size_t)c)->port, 7002);
    assert_int_equal(redis_slotmap_owner(m, 5460), a);
    assert_int_equal(redis_slotmap_owner(m, 16384), -1);
    redis_addr_t rep = {.host = "127.0.0.1", .port = 7003};
    int r = redis_slotmap_find(m, &rep);
    assert_true(r >= 0);
    assert_false(redis_slotmap_is_master(m, (size_t)r));
    assert_true(redis_slotmap_is_master(m, (size_t)a));
    redis_slotmap_free(m);
}

static void test_incomplete_and_unknown_endpoint(void **state)
{
    (void)state;
    /* "?" = unknown endpoint: that range has no usable owner */
    redis_slotmap_t *m = parse("*2\r\n*3\r\n:0\r\n:99\r\n*2\r\n$1\r\n?\r\n:7000\r\n"
                               "*3\r\n:100\r\n:16383\r\n*2\r\n$1\r\nh\r\n:7001\r\n",
                               0);
    assert_false(redis_slotmap_complete(m));
    assert_int_equal(redis_slotmap_owner(m, 5), -1);
    assert_true(redis_slotmap_owner(m, 100) >= 0);
    redis_slotmap_free(m);
    m = parse("*0\r\n", 0);
    assert_false(redis_slotmap_complete(m));
    assert_int_equal(redis_slotmap_count(m), 0);
    redis_slotmap_free(m);
}

static void test_malformed(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "-ERR This instance has cluster support disabled\r\n",
        ":1\r\n",
        "*1\r\n:1\r\n",
        "*1\r\n*2\r\n:0\r\n:1\r\n",
        "*1\r\n*3\r\n:5\r\n:4\r\n*2\r\n$1\r\nh\r\n:1\r\n",
        "*1\r\n*3\r\n:0\r\n:16384\r\n*2\r\n$1\r\nh\r\n:1\r\n",
        "*1\r\n*3\r\n:-1\r\n:3\r\n*2\r\n$1\r\nh\r\n:1\r\n",
        "*1\r\n*3\r\n$1\r\n0\r\n:3\r\n*2\r\n$1\r\nh\r\n:1\r\n",
        "*1\r\n*3\r\n:0\r\n:3\r\n*1\r\n$1\r\nh\r\n",
        "*1\r\n*3\r\n:0\r\n:3\r\n*2\r\n:1\r\n:1\r\n",
        "*1\r\n*3\r\n:0\r\n:3\r\n*2\r\n$1\r\nh\r\n:70000\r\n",
        "*1\r\n*3\r\n:0\r\n:3\r\n*2\r\n$1\r\nh\r\n$4\r\n6379\r\n",
        "*1\r\n*3\r\n:0\r\n:3\r\n*2\r\n$3\r\nh h\r\n:1\r\n",
        "*1\r\n*3\r\n:0\r\n:3\r\n$1\r\nh\r\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        redisReply *r = resp(bad[i]);
        redis_slotmap_t *m = NULL;
        if (redis_slotmap_parse(r, &asked, &m) != -EPROTO)
            fail_msg("accepted: %s", bad[i]);
        assert_null(m);
        freeReplyObject(r);
    }
    redis_slotmap_t *m = NULL;
    assert_int_equal(redis_slotmap_parse(NULL, &asked, &m), -EPROTO);
}

static void test_moved_patch_and_compare(void **state)
{
    (void)state;
    redis_slotmap_t *m = parse(three, 0);
    redis_slotmap_t *same = parse(three, 0);
    assert_true(redis_slotmap_same(m, same));
    unsigned s = redis_slot("foo", 3);
    redis_addr_t fresh = {.host = "127.0.0.9", .port = 7009};
    redis_slotmap_move(m, s, &fresh);
    int o = redis_slotmap_owner(m, s);
    assert_string_equal(redis_slotmap_addr(m, (size_t)o)->host, "127.0.0.9");
    assert_true(redis_slotmap_is_master(m, (size_t)o));
    assert_false(redis_slotmap_same(m, same));
    redis_slotmap_move(m, 20000, &fresh); /* out of range: ignored */
    redis_slotmap_t *empty = redis_slotmap_new();
    assert_false(redis_slotmap_same(empty, same));
    redis_slotmap_move(empty, 7, &fresh);
    assert_int_equal(redis_slotmap_owner(empty, 7), 0);
    redis_slotmap_free(empty);
    redis_slotmap_free(same);
    redis_slotmap_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_three_masters),
        cmocka_unit_test(test_incomplete_and_unknown_endpoint),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_moved_patch_and_compare),
    };
    return cmocka_run_group_tests_name("redis_slotmap", tests, NULL, NULL);
}
