/* Unit tests for common/xalloc: the wrappers' results, and the one line and abort on failure. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/xalloc.h"
#include "expect_abort.h"

static void test_wrappers_return_memory(void **state)
{
    (void)state;
    char *p = xmalloc(5);
    memcpy(p, "abcde", 5);
    p = xrealloc(p, 10);
    assert_memory_equal(p, "abcde", 5);
    free(p);
    uint32_t *z = xcalloc(4, sizeof(*z));
    for (int i = 0; i < 4; i++)
        assert_int_equal(z[i], 0);
    free(z);
}

/* Zero sizes still give a pointer to free, never a NULL to mistake for a failure. */
static void test_zero_sizes_are_not_null(void **state)
{
    (void)state;
    void *a = xmalloc(0), *b = xcalloc(0, 8), *c = xcalloc(8, 0), *d = xrealloc(NULL, 0);
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(c);
    assert_non_null(d);
    free(a);
    free(b);
    free(c);
    free(d);
}

static void test_copies_are_terminated(void **state)
{
    (void)state;
    char *s = xstrdup("room");
    assert_string_equal(s, "room");
    free(s);
    char *m = xmemdup("a\0bc", 4); /* embedded NULs kept, one more after them */
    assert_memory_equal(m, "a\0bc\0", 5);
    free(m);
    char *e = xmemdup(NULL, 0);
    assert_string_equal(e, "");
    free(e);
}

static void die_with(void *arg)
{
    xalloc_die(*(size_t *)arg);
}

static void test_die_writes_one_line_and_aborts(void **state)
{
    (void)state;
    size_t n = 4096;
    expect_abort(die_with, &n, "streamio: out of memory allocating 4096 bytes\n");
    n = 0;
    expect_abort(die_with, &n, "streamio: out of memory allocating 0 bytes\n");
    n = SIZE_MAX;
    expect_abort(die_with, &n, "streamio: out of memory allocating 18446744073709551615 bytes\n");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wrappers_return_memory),
        cmocka_unit_test(test_zero_sizes_are_not_null),
        cmocka_unit_test(test_copies_are_terminated),
        cmocka_unit_test(test_die_writes_one_line_and_aborts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
