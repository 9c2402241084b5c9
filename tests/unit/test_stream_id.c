/* Unit tests for common/proto/stream_id: parsing, formatting and ordering of entry ids. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "common/proto/stream_id.h"

#define ID(m, s) ((stream_id_t){(m), (s)})

static void assert_id(stream_id_t got, uint64_t ms, uint64_t seq)
{
    assert_true(got.ms == ms);
    assert_true(got.seq == seq);
}

static void test_parse_format_order(void **state)
{
    (void)state;
    stream_id_t id;
    assert_true(stream_id_parse("0-0", 3, &id));
    assert_id(id, 0, 0);
    assert_true(stream_id_parse("1700000000000", 13, &id));
    assert_id(id, 1700000000000ull, 0);
    assert_true(stream_id_parse("18446744073709551615-7", 22, &id));
    assert_id(id, UINT64_MAX, 7);
    assert_false(stream_id_parse("1-", 2, &id));
    assert_false(stream_id_parse("-1", 2, &id));
    assert_false(stream_id_parse("1-2-3", 5, &id));
    assert_false(stream_id_parse("Q86IY7V", 7, &id)); /* an in-memory adapter offset */
    assert_false(stream_id_parse("18446744073709551616-0", 22, &id)); /* 2^64 */
    char text[STREAM_ID_MAX + 1];
    assert_int_equal(stream_id_format(ID(UINT64_MAX, UINT64_MAX), text), STREAM_ID_MAX);
    assert_string_equal(text, "18446744073709551615-18446744073709551615");
    assert_true(stream_id_cmp(ID(9, 0), ID(10, 0)) < 0);
    assert_true(stream_id_cmp(ID(10, 2), ID(10, 10)) < 0);
    assert_true(stream_id_cmp(ID(10, 0), ID(10, 0)) == 0);
    assert_true(stream_id_cmp(ID(11, 0), ID(10, 99)) > 0);
    /* a join at ms 1000 is after every entry of ms 999 and before the first of ms 1000 */
    id = stream_id_before_ms(1000);
    assert_true(stream_id_cmp(id, ID(999, UINT64_MAX)) == 0);
    assert_true(stream_id_cmp(id, ID(1000, 0)) < 0);
}

static void test_halves(void **state)
{
    (void)state;
    uint64_t v;
    assert_true(stream_id_parse_u64("0", 1, &v));
    assert_true(v == 0);
    assert_true(stream_id_parse_u64("18446744073709551615", 20, &v));
    assert_true(v == UINT64_MAX);
    assert_false(stream_id_parse_u64("", 0, &v));
    assert_false(stream_id_parse_u64("+1", 2, &v));
    assert_false(stream_id_parse_u64("000000000000000000001", 21, &v)); /* over 20 digits */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_format_order),
        cmocka_unit_test(test_halves),
    };
    return cmocka_run_group_tests_name("stream_id", tests, NULL, NULL);
}
