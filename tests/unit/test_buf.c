/* Unit tests for common/buf. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"

static void test_append_grows_and_terminates(void **state)
{
    (void)state;
    buf_t b;
    buf_init(&b);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(buf_append(&b, "abc", 3), 0);
    assert_int_equal(b.len, 3000);
    assert_true(b.cap > b.len);
    assert_int_equal(b.data[b.len], '\0');
    assert_memory_equal(b.data + 2997, "abc", 3);
    buf_free(&b);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
}

static void test_printf_putc_reset(void **state)
{
    (void)state;
    buf_t b;
    buf_init(&b);
    assert_int_equal(buf_printf(&b, "%d-%s", 42, "x"), 0);
    assert_int_equal(buf_putc(&b, '!'), 0);
    assert_int_equal(buf_puts(&b, "yz"), 0);
    assert_string_equal(b.data, "42-x!yz");
    size_t cap = b.cap;
    buf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_string_equal(b.data, "");
    assert_int_equal(b.cap, cap); /* storage kept for reuse */
    char *p = buf_steal(&b);
    assert_non_null(p);
    assert_null(b.data);
    free(p);
}

static void test_reserve_refuses_overflow(void **state)
{
    (void)state;
    buf_t b;
    buf_init(&b);
    assert_int_equal(buf_reserve(&b, (size_t)-1), -ENOMEM);
    assert_int_equal(buf_reserve(&b, 10), 0);
    buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_append_grows_and_terminates),
        cmocka_unit_test(test_printf_putc_reset),
        cmocka_unit_test(test_reserve_refuses_overflow),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
