/* Unit tests for worker/recovery: record bytes, bad records, keys, stream-id order, replay argv. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <string.h>

#include "worker/recovery.h"

typedef struct rooms_seen {
    char names[8][32];
    size_t n;
} rooms_seen_t;

static void on_room(void *arg, const char *name, size_t len)
{
    rooms_seen_t *s = arg;
    if (s->n < 8 && len < 32) {
        memcpy(s->names[s->n], name, len);
        s->names[s->n][len] = '\0';
    }
    s->n++;
}

static void test_encode_exact_bytes_and_round_trip(void **state)
{
    (void)state;
    buf_t b;
    buf_init(&b);
    recovery_str_t rooms[] = {{"chat.user.1", 11}, {"a,b:c", 5}, {"", 0}};
    assert_int_equal(recovery_encode(&b, "sid12", 5, "1700000000000-3", 15, rooms, 3), 0);
    const char want[] = "15:sid12,15:1700000000000-3,11:chat.user.1,5:a,b:c,0:,";
    assert_int_equal(b.len, sizeof(want) - 1);
    assert_memory_equal(b.data, want, b.len);
    recovery_str_t sid, off;
    rooms_seen_t seen = {0};
    assert_int_equal(recovery_decode(b.data, b.len, &sid, &off, on_room, &seen), 0);
    assert_int_equal(sid.len, 5);
    assert_memory_equal(sid.p, "sid12", 5);
    assert_int_equal(off.len, 15);
    assert_int_equal(seen.n, 3);
    assert_string_equal(seen.names[0], "chat.user.1");
    assert_string_equal(seen.names[1], "a,b:c");
    assert_string_equal(seen.names[2], "");
    buf_free(&b);
}

static void test_encode_refuses_bad_input(void **state)
{
    (void)state;
    buf_t b;
    buf_init(&b);
    assert_int_equal(recovery_encode(&b, "", 0, "1-1", 3, NULL, 0), -EINVAL);
    assert_int_equal(recovery_encode(&b, "s", 1, "abc", 3, NULL, 0), -EINVAL);
    assert_int_equal(recovery_encode(&b, "s", 1, "", 0, NULL, 0), 0); /* nothing sent yet */
    assert_memory_equal(b.data, "11:s,0:,", 8);
    buf_free(&b);
}

static void test_decode_rejects_malformed_records(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",                     /* empty */
        "2" "1:s,0:,",          /* unknown version */
        "1" "1:s,0:",           /* truncated after the offset */
        "1" "0:,0:,",           /* empty sid */
        "1" "1:s,3:abc,",       /* offset not an id */
        "1" "1:s,0:,5:ab,",     /* room shorter than its length */
        "1" "1:s,0:,2:ab;",     /* wrong terminator */
        "1" "1:s,0:,x:ab,",     /* no length */
        "1" "1:s,0:,9999999999:a,", /* absurd length */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        recovery_str_t sid, off;
        rooms_seen_t seen = {0};
        assert_int_equal(recovery_decode(bad[i], strlen(bad[i]), &sid, &off, on_room, &seen),
                         -EPROTO);
        assert_int_equal(seen.n, 0);
    }
}

static void test_key(void **state)
{
    (void)state;
    buf_t b;
    buf_init(&b);
    assert_int_equal(recovery_key(&b, "socket.io", "pid-xyz", 7), 0);
    assert_string_equal(b.data, "socket.io:recovery:pid-xyz");
    buf_free(&b);
}

static void test_id_order(void **state)
{
    (void)state;
    assert_true(recovery_id_valid("0-0", 3));
    assert_true(recovery_id_valid("1700000000000", 13));
    assert_false(recovery_id_valid("1-", 2));
    assert_false(recovery_id_valid("-1", 2));
    assert_false(recovery_id_valid("18446744073709551616-0", 22)); /* 2^64 */
    assert_true(recovery_id_cmp("9-0", 3, "10-0", 4) < 0);
    assert_true(recovery_id_cmp("10-2", 4, "10-10", 5) < 0);
    assert_true(recovery_id_cmp("10-0", 4, "10", 2) == 0);
    assert_true(recovery_id_cmp("11-0", 4, "10-99", 5) > 0);
    assert_true(recovery_id_cmp("x", 1, "0-0", 3) < 0);
}

static void test_replay_argv(void **state)
{
    (void)state;
    const char *argv[6];
    size_t lens[6];
    char excl[RECOVERY_ID_MAX + 2];
    assert_int_equal(recovery_replay_argv("room", 4, "5-1", 3, "100", excl, sizeof(excl), argv,
                                          lens),
                     0);
    assert_string_equal(argv[0], "XRANGE");
    assert_memory_equal(argv[1], "room", lens[1]);
    assert_string_equal(argv[2], "(5-1");
    assert_int_equal(lens[2], 4);
    assert_string_equal(argv[3], "+");
    assert_string_equal(argv[4], "COUNT");
    assert_string_equal(argv[5], "100");
    assert_int_equal(recovery_replay_argv("room", 4, "bad", 3, "1", excl, sizeof(excl), argv, lens),
                     -EINVAL);
    assert_int_equal(recovery_replay_argv("room", 4, "5-1", 3, "1", excl, 4, argv, lens), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encode_exact_bytes_and_round_trip),
        cmocka_unit_test(test_encode_refuses_bad_input),
        cmocka_unit_test(test_decode_rejects_malformed_records),
        cmocka_unit_test(test_key),
        cmocka_unit_test(test_id_order),
        cmocka_unit_test(test_replay_argv),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
