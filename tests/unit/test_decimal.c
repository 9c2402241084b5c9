/* Unit tests for common/decimal: the digit bound, the overflow rule, empty and non-digit input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "common/decimal.h"

static size_t read_str(const char *s, size_t max_digits, uint64_t *v)
{
    return decimal_read(s, strlen(s), max_digits, v);
}

static void test_reads_the_leading_digits(void **state)
{
    (void)state;
    uint64_t v = 99;
    assert_int_equal(read_str("1234", 20, &v), 4);
    assert_true(v == 1234);
    assert_int_equal(read_str("0", 20, &v), 1);
    assert_true(v == 0);
    assert_int_equal(read_str("0042:x", 20, &v), 4); /* leading zeros count as digits */
    assert_true(v == 42);
    assert_int_equal(read_str("17-3", 20, &v), 2); /* stops at the first non-digit */
    assert_true(v == 17);
    assert_int_equal(decimal_read("123456", 3, 20, &v), 3); /* never past len */
    assert_true(v == 123);
}

static void test_empty_and_non_digits(void **state)
{
    (void)state;
    uint64_t v = 99;
    assert_int_equal(decimal_read("", 0, 20, &v), 0);
    assert_true(v == 0);
    v = 99;
    assert_int_equal(decimal_read(NULL, 0, 20, &v), 0);
    assert_true(v == 0);
    static const char *const bad[] = {"x1",
                                      "-1",
                                      "+1",
                                      " 1",
                                      "/",
                                      ":",
                                      "\xb9",
                                      "\0"
                                      "1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        v = 99;
        assert_int_equal(decimal_read(bad[i], 2, 20, &v), 0);
        assert_true(v == 0);
    }
    assert_int_equal(read_str("12", 0, &v), 0); /* a bound of no digits reads none */
    assert_true(v == 0);
}

static void test_digit_bound(void **state)
{
    (void)state;
    uint64_t v;
    assert_int_equal(read_str("999999999", 9, &v), 9);
    assert_true(v == 999999999);
    assert_int_equal(read_str("1234567890", 9, &v), 9); /* the 10th digit is left */
    assert_true(v == 123456789);
    assert_int_equal(read_str("0000000001", 9, &v), 9);
    assert_true(v == 0);
    assert_int_equal(read_str("9999999999999999999", 19, &v), 19); /* 19 digits always fit */
    assert_true(v == 9999999999999999999ull);
}

static void test_overflow_stops_before_wrapping(void **state)
{
    (void)state;
    uint64_t v;
    assert_int_equal(read_str("18446744073709551615", 20, &v), 20); /* UINT64_MAX */
    assert_true(v == UINT64_MAX);
    assert_int_equal(read_str("18446744073709551616", 20, &v), 19); /* UINT64_MAX + 1 */
    assert_true(v == 1844674407370955161ull);
    assert_int_equal(read_str("99999999999999999999", 20, &v), 19);
    assert_true(v == 9999999999999999999ull);
    assert_int_equal(read_str("184467440737095516150", 30, &v), 20); /* bound above 20 */
    assert_true(v == UINT64_MAX);
    assert_int_equal(read_str("00000000000000000000018446744073709551615", 64, &v), 41);
    assert_true(v == UINT64_MAX); /* leading zeros never overflow */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reads_the_leading_digits),
        cmocka_unit_test(test_empty_and_non_digits),
        cmocka_unit_test(test_digit_bound),
        cmocka_unit_test(test_overflow_stops_before_wrapping),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
