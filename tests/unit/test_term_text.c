/* Unit tests for ctl/term_text: a server's text for the terminal, control bytes escaped. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "ctl/term_text.h"

static void test_control_bytes_escaped(void **state)
{
    (void)state;
    buf_t b;
    buf_init(&b);
    const char in[] = "a\x1b[2J\r\n\t\x7f\x00z\xc3\xa9~";
    term_text_put(&b, in, sizeof(in) - 1);
    assert_string_equal(b.data, "a\\x1b[2J\\x0d\\x0a\\x09\\x7f\\x00z\xc3\xa9~");
    buf_free(&b);
}

static void test_empty_text(void **state)
{
    (void)state;
    buf_t b;
    buf_init(&b);
    buf_puts(&b, "x");
    term_text_put(&b, NULL, 0);
    assert_string_equal(b.data, "x");
    buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_control_bytes_escaped),
        cmocka_unit_test(test_empty_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
