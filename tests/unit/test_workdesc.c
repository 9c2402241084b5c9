/* Unit tests for shm/workdesc: round trip, and every truncation rejected before any callback. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "shm/workdesc.h"

typedef struct seen {
    int n;
    char names[4][32];
} seen_t;

static void collect(const char *name, size_t len, void *arg)
{
    seen_t *s = arg;
    memcpy(s->names[s->n], name, len);
    s->names[s->n][len] = '\0';
    s->n++;
}

static void test_round_trip(void **state)
{
    (void)state;
    buf_t b;
    buf_init(&b);
    workdesc_begin(&b, 7);
    assert_int_equal(workdesc_add(&b, "chat.user.1", 11), 0);
    assert_int_equal(workdesc_add(&b, "", 0), 0);
    assert_int_equal(workdesc_add(&b, "x", 1), 0);
    assert_int_equal(workdesc_count(&b), 3);
    seen_t s = {0};
    uint32_t pool = 0;
    assert_int_equal(workdesc_decode(b.data, b.len, &pool, collect, &s), 0);
    assert_int_equal(pool, 7);
    assert_int_equal(s.n, 3);
    assert_string_equal(s.names[0], "chat.user.1");
    assert_string_equal(s.names[1], "");
    assert_string_equal(s.names[2], "x");
    buf_free(&b);
}

static void test_truncated_records_are_rejected_whole(void **state)
{
    (void)state;
    buf_t b;
    buf_init(&b);
    workdesc_begin(&b, 1);
    workdesc_add(&b, "alpha", 5);
    workdesc_add(&b, "beta", 4);
    for (size_t cut = 0; cut < b.len; cut++) {
        seen_t s = {0};
        uint32_t pool;
        assert_int_equal(workdesc_decode(b.data, cut, &pool, collect, &s), -EPROTO);
        assert_int_equal(s.n, 0);
    }
    /* trailing garbage is an error too */
    buf_putc(&b, 'z');
    uint32_t pool;
    assert_int_equal(workdesc_decode(b.data, b.len, &pool, NULL, NULL), -EPROTO);
    buf_free(&b);
}

static void test_name_too_long(void **state)
{
    (void)state;
    buf_t b;
    buf_init(&b);
    workdesc_begin(&b, 1);
    static char big[WORKDESC_MAX_NAME + 1];
    assert_int_equal(workdesc_add(&b, big, sizeof(big)), -E2BIG);
    assert_int_equal(workdesc_count(&b), 0);
    buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_truncated_records_are_rejected_whole),
        cmocka_unit_test(test_name_too_long),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
