/* Unit tests for common/buf. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/buf.h"
#include "expect_abort.h"

static void test_append_grows_and_terminates(void **state)
{
    (void)state;
    buf_t b;
    buf_init(&b);
    for (int i = 0; i < 1000; i++)
        buf_append(&b, "abc", 3);
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
    buf_printf(&b, "%d-%s", 42, "x");
    buf_putc(&b, '!');
    buf_puts(&b, "yz");
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

/* Text that fits the room left, fills it exactly, or is one byte over it: whole, terminated, and
 * appended behind what was there. */
static void test_printf_at_the_edge_of_the_room(void **state)
{
    (void)state;
    char want[200];
    for (size_t over = 0; over < 3; over++) {
        buf_t b;
        buf_init(&b);
        buf_puts(&b, "head:");
        size_t room = b.cap - b.len; /* the terminator takes one of these */
        size_t n = room - 2 + over;  /* fits with a byte to spare, fills it, one over */
        memset(want, 'a' + (int)over, n);
        want[n] = '\0';
        buf_printf(&b, "%s", want);
        assert_int_equal(b.len, 5 + n);
        assert_memory_equal(b.data, "head:", 5);
        assert_memory_equal(b.data + 5, want, n);
        assert_int_equal(b.data[b.len], '\0');
        assert_true(b.cap > b.len);
        buf_free(&b);
    }
}

static void reserve_everything(void *arg)
{
    buf_reserve(arg, (size_t)-1);
}

/* A size that cannot exist is refused like any failed allocation: one line, then abort. */
static void test_reserve_refuses_overflow(void **state)
{
    (void)state;
    buf_t b;
    buf_init(&b);
    expect_abort(reserve_everything, &b,
                 "streamio: out of memory allocating 18446744073709551615 bytes\n");
    buf_reserve(&b, 10);
    assert_int_equal(b.len, 0);
    assert_true(b.cap >= 11);
    buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_append_grows_and_terminates),
        cmocka_unit_test(test_printf_putc_reset),
        cmocka_unit_test(test_printf_at_the_edge_of_the_room),
        cmocka_unit_test(test_reserve_refuses_overflow),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
