/*
 * Unit tests for common/glob: the matcher (wildcards, escapes, bytes, bounded work on long
 * misses), lists from a comma-separated setting (escaped commas, blanks, bounds, empty items) and
 * from a JSON claim (string, array, bad shapes, bounds).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/glob.h"

static bool m(const char *pat, const char *s)
{
    return glob_match(pat, strlen(pat), s, strlen(s));
}

static void test_match(void **state)
{
    (void)state;
    assert_true(m("abc", "abc"));
    assert_false(m("abc", "abd"));
    assert_false(m("abc", "ab"));
    assert_false(m("ab", "abc"));
    assert_true(m("", ""));
    assert_false(m("", "a"));
    assert_true(m("*", ""));
    assert_true(m("*", "anything.at.all"));
    assert_true(m("**", "x"));
    assert_true(m("chat.*", "chat."));
    assert_true(m("chat.*.inbox", "chat.user.1.inbox"));
    assert_false(m("chat.*.inbox", "chat.user.1.inbox2"));
    assert_true(m("a*b*c", "aXbYbZc"));
    assert_false(m("a*b*c", "aXbYbZ"));
    assert_true(m("?", "x"));
    assert_false(m("?", ""));
    assert_false(m("?", "xy"));
    assert_true(m("r??", "r12"));
    assert_true(m("\\*", "*"));
    assert_false(m("\\*", "x"));
    assert_true(m("\\?", "?"));
    assert_false(m("\\?", "a"));
    assert_true(m("a\\\\b", "a\\b"));
    assert_true(m("a\\", "a\\")); /* a trailing backslash is itself */
    assert_true(m("*x", "xxxx"));
    assert_true(m("\\a", "a"));
    assert_true(glob_match("a\0b", 3, "a\0b", 3));
    assert_false(glob_match("a\0b", 3, "a", 1));
    assert_true(glob_match("*", 1, "\xff\x00", 2));
    /* many stars against a long miss: bounded work, still the right answer */
    char s[513];
    memset(s, 'a', 512);
    s[512] = '\0';
    assert_false(m("*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b", s));
    assert_true(m("*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a", s));
}

static bool lm(const glob_list_t *l, const char *s)
{
    return glob_list_match(l, s, strlen(s));
}

static void test_csv(void **state)
{
    (void)state;
    glob_list_t *l = NULL;
    assert_int_equal(glob_list_from_csv("chat.*, typing ,send-message", 8, 64, &l), 0);
    assert_int_equal(glob_list_count(l), 3);
    assert_true(lm(l, "chat.x"));
    assert_true(lm(l, "typing"));
    assert_true(lm(l, "send-message"));
    assert_false(lm(l, " typing"));
    assert_false(lm(l, "other"));
    glob_list_free(l);
    /* an escaped comma is part of the pattern; other escapes are the matcher's */
    assert_int_equal(glob_list_from_csv("a\\,b,c\\*", 8, 64, &l), 0);
    assert_int_equal(glob_list_count(l), 2);
    assert_true(lm(l, "a,b"));
    assert_false(lm(l, "a"));
    assert_true(lm(l, "c*"));
    assert_false(lm(l, "cx"));
    glob_list_free(l);
    /* empty and blank values are empty lists, which match nothing */
    assert_int_equal(glob_list_from_csv("", 8, 64, &l), 0);
    assert_int_equal(glob_list_count(l), 0);
    assert_false(lm(l, ""));
    glob_list_free(l);
    assert_int_equal(glob_list_from_csv("  \t", 8, 64, &l), 0);
    assert_int_equal(glob_list_count(l), 0);
    glob_list_free(l);
    l = (glob_list_t *)&l; /* must stay untouched on errors */
    assert_int_equal(glob_list_from_csv("a,,b", 8, 64, &l), -EINVAL);
    assert_int_equal(glob_list_from_csv("a,", 8, 64, &l), -EINVAL);
    assert_int_equal(glob_list_from_csv(",a", 8, 64, &l), -EINVAL);
    assert_int_equal(glob_list_from_csv("a, ,b", 8, 64, &l), -EINVAL);
    assert_int_equal(glob_list_from_csv("a,b,c", 2, 64, &l), -EINVAL);
    assert_int_equal(glob_list_from_csv("abcd", 2, 3, &l), -EINVAL);
    assert_ptr_equal(l, (glob_list_t *)&l);
    assert_int_equal(glob_list_from_csv("abc", 2, 3, &l), 0);
    assert_int_equal(glob_list_count(l), 1);
    glob_list_free(l);
    assert_false(glob_list_match(NULL, "x", 1));
    assert_int_equal(glob_list_count(NULL), 0);
    glob_list_free(NULL);
}

static int from_json(const char *text, size_t max_items, size_t max_len, glob_list_t **l)
{
    size_t a = json_skip_ws(text, strlen(text), 0);
    json_span_t s = {JSON_NULL, text + a, json_value_end(text, strlen(text), a) - a};
    assert_int_equal(json_validate(s.p, s.len), 0);
    assert_int_equal(json_type_of(s.p, s.len, &s.type), 0);
    return glob_list_from_json(&s, max_items, max_len, l);
}

static void test_json(void **state)
{
    (void)state;
    glob_list_t *l = NULL;
    assert_int_equal(from_json("\"caf\\u00e9.*\"", 4, 16, &l), 0);
    assert_int_equal(glob_list_count(l), 1);
    assert_true(lm(l, "caf\xc3\xa9.1"));
    glob_list_free(l);
    assert_int_equal(from_json(" [ \"a\" , \"b*\" ] ", 4, 16, &l), 0);
    assert_int_equal(glob_list_count(l), 2);
    assert_true(lm(l, "a"));
    assert_true(lm(l, "bz"));
    assert_false(lm(l, "c"));
    glob_list_free(l);
    assert_int_equal(from_json("[]", 4, 16, &l), 0);
    assert_int_equal(glob_list_count(l), 0);
    glob_list_free(l);
    assert_int_equal(from_json("[\"a\",1]", 4, 16, &l), -EINVAL);
    assert_int_equal(from_json("[\"\"]", 4, 16, &l), -EINVAL);
    assert_int_equal(from_json("\"\"", 4, 16, &l), -EINVAL);
    assert_int_equal(from_json("[[\"a\"]]", 4, 16, &l), -EINVAL);
    assert_int_equal(from_json("{\"a\":1}", 4, 16, &l), -EINVAL);
    assert_int_equal(from_json("null", 4, 16, &l), -EINVAL);
    assert_int_equal(from_json("[\"a\",\"b\",\"c\"]", 2, 16, &l), -EINVAL);
    assert_int_equal(from_json("[\"abcd\"]", 2, 3, &l), -EINVAL);
    assert_int_equal(from_json("\"abcd\"", 2, 3, &l), -EINVAL);
    /* bounds are inclusive */
    assert_int_equal(from_json("[\"abc\",\"def\"]", 2, 3, &l), 0);
    assert_int_equal(glob_list_count(l), 2);
    glob_list_free(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_match),
        cmocka_unit_test(test_csv),
        cmocka_unit_test(test_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
