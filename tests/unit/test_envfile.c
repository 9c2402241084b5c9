/* Unit tests for common/envfile: syntax, quoting, comments, errors, file loading. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/envfile.h"

static envfile_t *parse_ok(const char *text)
{
    envfile_t *ef = NULL;
    buf_t err;
    buf_init(&err);
    assert_int_equal(envfile_parse("t.env", text, strlen(text), &ef, &err), 0);
    assert_int_equal(err.len, 0);
    buf_free(&err);
    return ef;
}

static void test_parse_forms(void **state)
{
    (void)state;
    envfile_t *ef = parse_ok("# comment\n; also\n\nA=1\n  B = two words  \nexport C=3\r\n"
                             "D=\"quoted # not a comment\"\nE='single'\nF=\nA=again");
    assert_string_equal(envfile_get(ef, "A"), "again"); /* the last assignment wins */
    assert_string_equal(envfile_get(ef, "B"), "two words");
    assert_string_equal(envfile_get(ef, "C"), "3");
    assert_string_equal(envfile_get(ef, "D"), "quoted # not a comment");
    assert_string_equal(envfile_get(ef, "E"), "single");
    assert_string_equal(envfile_get(ef, "F"), "");
    assert_null(envfile_get(ef, "G"));
    envfile_free(ef);
    envfile_free(NULL);
}

static void expect_error(const char *text, const char *msg)
{
    envfile_t *ef = NULL;
    buf_t err;
    buf_init(&err);
    assert_int_equal(envfile_parse("t.env", text, strlen(text), &ef, &err), -EINVAL);
    assert_null(ef);
    assert_string_equal(err.data, msg);
    buf_free(&err);
}

static void test_parse_errors(void **state)
{
    (void)state;
    expect_error("A=1\nNOT A LINE\n", "t.env:2: expected KEY=VALUE");
    expect_error("=1", "t.env:1: expected KEY=VALUE");
    expect_error("1A=1", "t.env:1: expected KEY=VALUE");
    expect_error("A=\"open", "t.env:1: unterminated quoted value");
    expect_error("A='", "t.env:1: unterminated quoted value");
}

static void test_load(void **state)
{
    (void)state;
    char path[] = "/tmp/test_envfile_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *text = "STREAMIO_TEST_A=file\n";
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    envfile_t *ef = NULL;
    buf_t err;
    buf_init(&err);
    assert_int_equal(envfile_load(path, &ef, &err), 0);
    assert_string_equal(envfile_get(ef, "STREAMIO_TEST_A"), "file");
    assert_null(envfile_get(ef, "STREAMIO_TEST_B"));
    assert_null(envfile_get(NULL, "STREAMIO_TEST_A"));
    envfile_free(ef);
    unlink(path);
    /* a missing file is an empty one */
    assert_int_equal(envfile_load(path, &ef, &err), 0);
    assert_null(envfile_get(ef, "STREAMIO_TEST_A"));
    envfile_free(ef);
    /* a directory cannot be read */
    assert_int_not_equal(envfile_load("/", &ef, &err), 0);
    assert_non_null(strstr(err.data, "/: "));
    buf_free(&err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_forms),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_load),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
