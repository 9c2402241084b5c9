#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "common/proto/eio_payload.h"

static void test_build(void **state)
{
    (void)state;
    buf_t b;
    buf_init(&b);
    assert_int_equal(eio_payload_add_text(&b, "4hello", 6), 0);
    eio_payload_add_binary(&b, "\x01\x02\x03\x04", 4);
    assert_int_equal(eio_payload_add_text(&b, "2", 1), 0);
    assert_string_equal(b.data, "4hello\x1e"
                                "bAQIDBA==\x1e"
                                "2");
    assert_int_equal(eio_payload_add_text(&b,
                                          "4a\x1e"
                                          "b",
                                          4),
                     -EINVAL);
    assert_string_equal(b.data, "4hello\x1e"
                                "bAQIDBA==\x1e"
                                "2");
    buf_reset(&b);
    eio_payload_add_binary(&b, "\x01\x02\x03", 3);
    assert_string_equal(b.data, "bAQID");
    buf_reset(&b);
    eio_payload_add_binary(&b, "\xff\xfe", 2);
    assert_string_equal(b.data, "b//4=");
    buf_free(&b);
}

static void test_split(void **state)
{
    (void)state;
    const char *body = "4test1\x1e"
                       "4test2\x1e"
                       "bAQIDBA==";
    size_t pos = 0, n;
    const char *r;
    assert_true(eio_payload_next(body, strlen(body), &pos, &r, &n));
    assert_int_equal(n, 6);
    assert_memory_equal(r, "4test1", 6);
    assert_true(eio_payload_next(body, strlen(body), &pos, &r, &n));
    assert_memory_equal(r, "4test2", 6);
    assert_true(eio_payload_next(body, strlen(body), &pos, &r, &n));
    assert_int_equal(n, 9);
    assert_false(eio_payload_next(body, strlen(body), &pos, &r, &n));
    pos = 0;
    assert_false(eio_payload_next("", 0, &pos, &r, &n));
    pos = 0;
    assert_true(eio_payload_next("a\x1e", 2, &pos, &r, &n));
    assert_true(eio_payload_next("a\x1e", 2, &pos, &r, &n));
    assert_int_equal(n, 0);
    assert_false(eio_payload_next("a\x1e", 2, &pos, &r, &n));
}

static void test_b64(void **state)
{
    (void)state;
    buf_t b;
    buf_init(&b);
    assert_int_equal(eio_payload_b64_decode("AQIDBA==", 8, &b), 0);
    assert_int_equal(b.len, 4);
    assert_memory_equal(b.data, "\x01\x02\x03\x04", 4);
    assert_int_equal(eio_payload_b64_decode("AQID", 4, &b), 0);
    assert_int_equal(b.len, 3);
    assert_int_equal(eio_payload_b64_decode("//4", 3, &b), 0);
    assert_memory_equal(b.data, "\xff\xfe", 2);
    assert_int_equal(eio_payload_b64_decode("A", 1, &b), -EPROTO);
    assert_int_equal(eio_payload_b64_decode("AQ*D", 4, &b), -EPROTO);
    assert_int_equal(eio_payload_b64_decode("", 0, &b), 0);
    assert_int_equal(b.len, 0);
    buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_build),
        cmocka_unit_test(test_split),
        cmocka_unit_test(test_b64),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
