/* Unit tests for common/base64: Node's Buffer#toString('base64') output and its strict inverse. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <string.h>

#include "common/base64.h"

static void test_encode_pads_like_node(void **state)
{
    (void)state;
    static const struct {
        const char *in, *out;
    } v[] = {{"", ""}, {"f", "Zg=="}, {"fo", "Zm8="}, {"foo", "Zm9v"}, {"foob", "Zm9vYg=="},
             {"\xff\xfe\xfd", "//79"}, {"\x01\x02\x03\x04", "AQIDBA=="}};
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        buf_t b;
        buf_init(&b);
        buf_puts(&b, "x:");
        base64_encode(&b, v[i].in, strlen(v[i].in));
        assert_string_equal(b.data + 2, v[i].out);
        char fixed[16];
        assert_int_equal(base64_encode_to(fixed, v[i].in, strlen(v[i].in)), strlen(v[i].out));
        assert_string_equal(fixed, v[i].out);
        assert_int_equal(BASE64_LEN(strlen(v[i].in)), strlen(v[i].out));
        buf_free(&b);
    }
}

static void test_decode_round_trips_every_byte(void **state)
{
    (void)state;
    uint8_t all[256];
    for (int i = 0; i < 256; i++)
        all[i] = (uint8_t)i;
    for (size_t n = 0; n <= sizeof(all); n += 37) {
        buf_t e, d;
        buf_init(&e);
        buf_init(&d);
        base64_encode(&e, all, n);
        buf_puts(&d, "keep");
        assert_int_equal(base64_decode(&d, e.data ? e.data : "", e.len), 0);
        assert_int_equal(d.len, 4 + n);
        assert_memory_equal(d.data + 4, all, n);
        buf_free(&e);
        buf_free(&d);
    }
}

static void test_decode_refuses_what_is_not_base64(void **state)
{
    (void)state;
    buf_t d;
    buf_init(&d);
    buf_puts(&d, "keep");
    assert_int_equal(base64_decode(&d, "A", 1), -EPROTO);     /* impossible length */
    assert_int_equal(base64_decode(&d, "AQ*D", 4), -EPROTO);  /* outside the alphabet */
    assert_int_equal(base64_decode(&d, "AQ-_", 4), -EPROTO);  /* the URL-safe alphabet */
    assert_int_equal(base64_decode(&d, "AQ\0D", 4), -EPROTO); /* a NUL */
    assert_int_equal(base64_decode(&d, "AQ=D", 4), -EPROTO);  /* padding inside */
    assert_string_equal(d.data, "keep");
    assert_int_equal(base64_decode(&d, "AQI", 3), 0); /* padding is optional */
    assert_memory_equal(d.data + 4, "\x01\x02", 2);
    buf_free(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encode_pads_like_node),
        cmocka_unit_test(test_decode_round_trips_every_byte),
        cmocka_unit_test(test_decode_refuses_what_is_not_base64),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
