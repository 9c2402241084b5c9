/* Unit tests for common/refbuf: contents, reference counting (leaks are caught under ASan). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "common/refbuf.h"

static void test_from_copies_bytes(void **state)
{
    (void)state;
    char src[] = "frame";
    refbuf_t *rb = refbuf_from(src, 5);
    src[0] = 'X';
    assert_int_equal(refbuf_len(rb), 5);
    assert_memory_equal(refbuf_data(rb), "frame", 5);
    refbuf_unref(rb);
}

static void test_last_unref_frees(void **state)
{
    (void)state;
    refbuf_t *rb = refbuf_new(3);
    memcpy(refbuf_data(rb), "abc", 3);
    assert_ptr_equal(refbuf_ref(rb), rb);
    assert_ptr_equal(refbuf_ref(rb), rb);
    refbuf_unref(rb);
    refbuf_unref(rb);
    assert_memory_equal(refbuf_data(rb), "abc", 3); /* one reference left: still valid */
    refbuf_unref(rb);
    refbuf_unref(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_from_copies_bytes),
        cmocka_unit_test(test_last_unref_frees),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
