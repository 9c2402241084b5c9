/*
 * Unit tests for master/admin/bridge_admin over a fake Redis seam: usage errors and features
 * that are off (answered at once, nothing sent), `presence <room>`, `dead-letter list` (the exact
 * XREVRANGE, its JSON, an entry someone else wrote), `dead-letter replay` (XRANGE, the XADD of the
 * original fields into their stream, then XDEL, in that order), a missing or foreign dead letter,
 * and Redis errors, lost replies and refused sends at each step.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "master/admin/bridge_admin.h"
#include "tests/unit/bridge_fake.h"

typedef struct fix {
    bridge_fake_t *fake;
    cfg_t cfg;
    int rc;
    int answers;
    char out[4096];
} fix_t;

static const char *const ON[] = {"PRESENCE", "true", "STREAM_DEAD_LETTER", "streamio:dead", NULL};

static fix_t *fix_new(const char *const *env)
{
    fix_t *x = calloc(1, sizeof(*x));
    bridge_fake_config(&x->cfg, env);
    x->fake = bridge_fake_new();
    return x;
}

static void fix_free(fix_t *x)
{
    bridge_fake_free(x->fake);
    free(x);
}

static void done(void *arg, int rc, const buf_t *out)
{
    fix_t *x = arg;
    x->rc = rc;
    x->answers++;
    snprintf(x->out, sizeof(x->out), "%.*s", (int)out->len, out->data ? out->data : "");
}

/* Runs the command given as words (NULL-terminated). */
static void run(fix_t *x, ...)
{
    char *argv[8];
    size_t lens[8];
    int argc = 0;
    va_list ap;
    va_start(ap, x);
    for (char *a; (a = va_arg(ap, char *)) != NULL && argc < 8; argc++) {
        argv[argc] = a;
        lens[argc] = strlen(a);
    }
    va_end(ap);
    bridge_redis_t ops = bridge_fake_ops(x->fake);
    bridge_admin_run(&ops, &x->cfg, 1700000000000ull, argc, argv, lens, done, x);
}

/* One dead letter as XRANGE/XREVRANGE return it: [dlid, [field, value, ...]]. */
static redisReply *dead_letter_entry(const char *dlid)
{
    return bf_arr(2, bf_str(dlid),
                  bf_arr(16, bf_str("stream"), bf_str("chat.1"), bf_str("id"), bf_str("5-0"),
                         bf_str("reason"), bf_str("poison"), bf_str("deliveries"), bf_str("11"),
                         bf_str("bytes"), bf_str("20"), bf_str("ts"), bf_str("1700000000000"),
                         bf_str("field:event"), bf_str("user.message"), bf_str("field:data"),
                         bf_str("{\"a\":1}")));
}

static void test_usage_and_features_off(void **state)
{
    (void)state;
    assert_true(bridge_admin_handles("presence"));
    assert_true(bridge_admin_handles("dead-letter"));
    assert_false(bridge_admin_handles("rooms"));
    fix_t *x = fix_new(ON);
    run(x, "presence", NULL);
    assert_int_equal(x->rc, -EINVAL);
    assert_string_equal(x->out, "usage: streamioctl presence <room>");
    run(x, "dead-letter", "list", "0", NULL);
    assert_int_equal(x->rc, -EINVAL);
    assert_string_equal(x->out, "usage: streamioctl dead-letter list [count: 1 to 1000]");
    run(x, "dead-letter", "list", "1001", NULL);
    assert_int_equal(x->rc, -EINVAL);
    run(x, "dead-letter", "list", "1x", NULL);
    assert_int_equal(x->rc, -EINVAL);
    run(x, "dead-letter", "forget", "1-0", NULL);
    assert_int_equal(x->rc, -EINVAL);
    assert_string_equal(x->out,
                        "usage: streamioctl dead-letter list [count] | dead-letter replay <id>");
    run(x, "dead-letter", "replay", NULL);
    assert_int_equal(x->rc, -EINVAL);
    assert_int_equal(x->answers, 6);
    assert_string_equal(bridge_fake_next(x->fake), "(none)");
    fix_free(x);

    static const char *const none[] = {NULL};
    x = fix_new(none);
    run(x, "presence", "chat.1", NULL);
    assert_int_equal(x->rc, -ENOTSUP);
    assert_string_equal(x->out, "PRESENCE is off on this server (set PRESENCE)");
    run(x, "dead-letter", "list", NULL);
    assert_int_equal(x->rc, -ENOTSUP);
    assert_string_equal(x->out,
                        "STREAM_DEAD_LETTER is off on this server (set STREAM_DEAD_LETTER)");
    assert_string_equal(bridge_fake_next(x->fake), "(none)");
    fix_free(x);
}

static void test_presence_reaches_redis(void **state)
{
    (void)state;
    fix_t *x = fix_new(ON);
    run(x, "presence", "chat.1", NULL);
    assert_int_equal(x->answers, 0);
    /* presence_query's first command (its own tests check them all), under the key prefix */
    assert_non_null(strstr(bridge_fake_next(x->fake), "socket.io:presence"));
    assert_int_equal(bridge_fake_waiting(x->fake), 1);
    bridge_fake_answer(x->fake, NULL); /* the connection was lost */
    assert_int_equal(x->answers, 1);
    assert_int_equal(x->rc, -EIO);
    bridge_fake_refuse(x->fake, ENOTCONN);
    run(x, "presence", "chat.1", NULL);
    assert_int_equal(x->answers, 2);
    assert_int_equal(x->rc, -EIO);
    assert_string_equal(x->out, "Redis cannot be reached now");
    fix_free(x);
}

/* list's count: 1 to 7 digits, leading zeros allowed, a value from 1 to 1000 */
static void test_list_count(void **state)
{
    (void)state;
    fix_t *x = fix_new(ON);
    static const char *const ok[][2] = {{"0001000", "1000"}, {"01", "1"}};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        run(x, "dead-letter", "list", ok[i][0], NULL);
        char want[64];
        snprintf(want, sizeof(want), "streamio:dead | XREVRANGE streamio:dead + - COUNT %s",
                 ok[i][1]);
        assert_string_equal(bridge_fake_next(x->fake), want);
        bridge_fake_answer(x->fake, bf_arr(0));
        assert_int_equal(x->rc, 0);
    }
    static const char *const bad[] = {"00001000", "", "-1", "+1", " 1", "1 ", "00", "1.0"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        run(x, "dead-letter", "list", bad[i], NULL);
        assert_int_equal(x->rc, -EINVAL);
        assert_string_equal(x->out, "usage: streamioctl dead-letter list [count: 1 to 1000]");
    }
    assert_string_equal(bridge_fake_next(x->fake), "(none)");
    fix_free(x);
}

static void test_list(void **state)
{
    (void)state;
    fix_t *x = fix_new(ON);
    run(x, "dead-letter", "list", "2", NULL);
    assert_string_equal(bridge_fake_next(x->fake),
                        "streamio:dead | XREVRANGE streamio:dead + - COUNT 2");
    bridge_fake_answer(x->fake,
                       bf_arr(2, dead_letter_entry("9-0"),
                              bf_arr(2, bf_str("8-0"), bf_arr(2, bf_str("x"), bf_str("y")))));
    assert_int_equal(x->rc, 0);
    assert_string_equal(
        x->out, "{\"stream\":\"streamio:dead\",\"entries\":[{\"id\":\"9-0\",\"stream\":\"chat.1\","
                "\"entryId\":\"5-0\",\"reason\":\"poison\",\"deliveries\":11,\"bytes\":20,"
                "\"ts\":1700000000000,\"fields\":{\"event\":\"user.message\",\"data\":"
                "\"{\\\"a\\\":1}\"}},{\"id\":\"8-0\",\"invalid\":true}]}");
    run(x, "dead-letter", "list", NULL);
    assert_string_equal(bridge_fake_next(x->fake),
                        "streamio:dead | XREVRANGE streamio:dead + - COUNT 10");
    bridge_fake_answer(x->fake, bf_err("ERR boom"));
    assert_int_equal(x->rc, -EIO);
    assert_string_equal(x->out, "dead-letter list failed: ERR boom");
    bridge_fake_refuse(x->fake, ENOTCONN);
    run(x, "dead-letter", "list", NULL);
    assert_int_equal(x->rc, -EIO);
    assert_string_equal(x->out, "Redis cannot be reached now");
    assert_int_equal(x->answers, 3);
    fix_free(x);
}

static void test_replay(void **state)
{
    (void)state;
    fix_t *x = fix_new(ON);
    run(x, "dead-letter", "replay", "9-0", NULL);
    assert_string_equal(bridge_fake_next(x->fake), "streamio:dead | XRANGE streamio:dead 9-0 9-0");
    bridge_fake_answer(x->fake, bf_arr(1, dead_letter_entry("9-0")));
    /* the original fields, as they were, into their own stream (routed by it) */
    assert_string_equal(bridge_fake_next(x->fake),
                        "chat.1 | XADD chat.1 * event user.message data {\"a\":1}");
    assert_int_equal(x->answers, 0);
    bridge_fake_answer(x->fake, bf_str("12-0"));
    assert_string_equal(bridge_fake_next(x->fake), "streamio:dead | XDEL streamio:dead 9-0");
    assert_int_equal(x->answers, 0);
    bridge_fake_answer(x->fake, bf_int(1));
    assert_int_equal(x->answers, 1);
    assert_int_equal(x->rc, 0);
    assert_string_equal(x->out, "{\"replayed\":\"9-0\",\"stream\":\"chat.1\",\"id\":\"12-0\"}");
    fix_free(x);
}

static void test_replay_failures(void **state)
{
    (void)state;
    fix_t *x = fix_new(ON);
    /* no such dead letter */
    run(x, "dead-letter", "replay", "1-1", NULL);
    bridge_fake_next(x->fake);
    bridge_fake_answer(x->fake, bf_arr(0));
    assert_int_equal(x->rc, -ENOENT);
    assert_string_equal(x->out, "no dead letter 1-1 in streamio:dead");
    /* an entry streamio did not write: never replayed */
    run(x, "dead-letter", "replay", "8-0", NULL);
    bridge_fake_next(x->fake);
    bridge_fake_answer(x->fake,
                       bf_arr(1, bf_arr(2, bf_str("8-0"), bf_arr(2, bf_str("x"), bf_str("y")))));
    assert_int_equal(x->rc, -EINVAL);
    assert_string_equal(x->out, "8-0 in streamio:dead is not a dead letter streamio wrote");
    assert_string_equal(bridge_fake_next(x->fake), "(none)");
    /* the XADD refused: nothing deleted */
    run(x, "dead-letter", "replay", "9-0", NULL);
    bridge_fake_next(x->fake);
    bridge_fake_answer(x->fake, bf_arr(1, dead_letter_entry("9-0")));
    bridge_fake_next(x->fake);
    bridge_fake_answer(x->fake, bf_err("OOM command not allowed"));
    assert_int_equal(x->rc, -EIO);
    assert_string_equal(x->out, "dead-letter replay failed: OOM command not allowed");
    assert_string_equal(bridge_fake_next(x->fake), "(none)");
    /* replayed, but the XDEL reply was lost: said so, since a second replay would add it twice */
    run(x, "dead-letter", "replay", "9-0", NULL);
    bridge_fake_next(x->fake);
    bridge_fake_answer(x->fake, bf_arr(1, dead_letter_entry("9-0")));
    bridge_fake_next(x->fake);
    bridge_fake_answer(x->fake, bf_str("13-0"));
    bridge_fake_next(x->fake);
    bridge_fake_answer(x->fake, NULL);
    assert_int_equal(x->rc, -EIO);
    assert_string_equal(x->out,
                        "replayed, but the dead letter could not be deleted (replaying it again "
                        "would add the entry twice): the Redis connection was lost");
    assert_int_equal(x->answers, 4);
    fix_free(x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_usage_and_features_off),
        cmocka_unit_test(test_presence_reaches_redis),
        cmocka_unit_test(test_list_count),
        cmocka_unit_test(test_list),
        cmocka_unit_test(test_replay),
        cmocka_unit_test(test_replay_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
