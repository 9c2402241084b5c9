/* Unit tests for common/bridge/rcmd: borrowed and written arguments, the routing key, reuse. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "common/bridge/rcmd.h"

static void test_build_and_reuse(void **state)
{
    (void)state;
    rcmd_t c;
    rcmd_init(&c);
    size_t klen;
    assert_null(rcmd_key(&c, &klen));
    rcmd_str(&c, "SET");
    rcmd_begin(&c);
    for (int i = 0; i < 200; i++) /* the text grows (and moves) while arguments are added */
        buf_putc(rcmd_text(&c), (char)('a' + i % 26));
    rcmd_end(&c);
    rcmd_mark_key(&c);
    rcmd_u64(&c, 18446744073709551615ull);
    rcmd_i64(&c, -5);
    rcmd_arg(&c, "b\0c", 3);
    rcmd_begin(&c);
    rcmd_end(&c); /* an empty written argument */
    const char **argv = rcmd_argv(&c);
    const size_t *lens = rcmd_lens(&c);
    assert_int_equal(rcmd_argc(&c), 6);
    assert_memory_equal(argv[0], "SET", 3);
    assert_int_equal(lens[1], 200);
    assert_memory_equal(argv[1], "abcdefghijklmnopqrstuvwxyzab", 28);
    assert_int_equal(lens[2], 20);
    assert_memory_equal(argv[2], "18446744073709551615", 20);
    assert_memory_equal(argv[3], "-5", 2);
    assert_int_equal(lens[4], 3);
    assert_memory_equal(argv[4], "b\0c", 3);
    assert_int_equal(lens[5], 0);
    assert_ptr_equal(rcmd_key(&c, &klen), argv[1]);
    assert_int_equal(klen, 200);
    rcmd_reset(&c);
    assert_null(rcmd_key(&c, &klen));
    rcmd_begin(&c);
    rcmd_end(&c);
    argv = rcmd_argv(&c);
    assert_int_equal(rcmd_argc(&c), 1);
    assert_non_null(argv[0]);
    rcmd_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_build_and_reuse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
