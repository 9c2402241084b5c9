/*
 * Unit tests for common/bridge/presence_query over a fake Redis seam: silent writers are asked
 * for first and left out of the room's query; the answer's JSON; failures at each step.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/bridge/presence_query.h"
#include "tests/unit/bridge_fake.h"

#define P "socket.io:presence"

typedef struct result {
    int n, rc;
    char text[512];
} result_t;

static void done(void *arg, int rc, const buf_t *json)
{
    result_t *r = arg;
    r->n++;
    r->rc = rc;
    snprintf(r->text, sizeof(r->text), "%s", json->data ? json->data : "");
}

static void test_query(void **state)
{
    (void)state;
    bridge_fake_t *f = bridge_fake_new();
    bridge_redis_t ops = bridge_fake_ops(f);
    result_t res = {0};
    assert_int_equal(presence_query(&ops, P, "chat.1", 6, 1700000015000ull, 15000, done, &res), 0);
    assert_string_equal(bridge_fake_next(f), P ":servers | ZRANGEBYSCORE " P ":servers -inf "
                                              "(1700000000000 LIMIT 0 1024");
    bridge_fake_answer(f, bf_arr(2, bf_str("W8"), bf_str("W9")));
    assert_string_equal(bridge_fake_next(f), P ":room:{chat.1} | EVAL <script> 1 " P
                                              ":room:{chat.1} W8 W9");
    assert_int_equal(res.n, 0);
    bridge_fake_answer(f, bf_arr(4, bf_str("alice"), bf_int(2), bf_str("bob"), bf_int(1)));
    assert_int_equal(res.n, 1);
    assert_int_equal(res.rc, 0);
    assert_string_equal(res.text, "{\"roomId\":\"chat.1\",\"users\":[{\"user\":\"alice\","
                                  "\"connections\":2},{\"user\":\"bob\",\"connections\":1}],"
                                  "\"userCount\":2,\"connectionCount\":3}");
    /* failures: a lost connection, an error reply */
    memset(&res, 0, sizeof(res));
    assert_int_equal(presence_query(&ops, P, "r", 1, 5, 15000, done, &res), 0);
    bridge_fake_next(f);
    bridge_fake_answer(f, NULL);
    assert_int_equal(res.rc, -EIO);
    assert_string_equal(res.text, "presence query failed: the Redis connection was lost");
    memset(&res, 0, sizeof(res));
    assert_int_equal(presence_query(&ops, P, "r", 1, 5, 15000, done, &res), 0);
    bridge_fake_answer(f, bf_arr(0));
    bridge_fake_answer(f, bf_err("NOSCRIPT nope"));
    assert_int_equal(res.n, 1);
    assert_string_equal(res.text, "presence query failed: NOSCRIPT nope");
    /* refused at once: no callback */
    bridge_fake_refuse(f, ENOTCONN);
    memset(&res, 0, sizeof(res));
    assert_int_equal(presence_query(&ops, P, "r", 1, 5, 15000, done, &res), -ENOTCONN);
    assert_int_equal(res.n, 0);
    bridge_fake_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_query),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
