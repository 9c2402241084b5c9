/* Unit tests for common/strmap: put/get/del, binary keys, growth, freeing the values. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/strmap.h"

static void test_put_get_del(void **state)
{
    (void)state;
    strmap_t *m = strmap_new();
    int a = 1, b = 2;
    strmap_put(m, "a", 1, &a);
    strmap_put(m, "a\0b", 3, &b);
    assert_ptr_equal(strmap_get(m, "a", 1), &a);
    assert_ptr_equal(strmap_get(m, "a\0b", 3), &b);
    assert_null(strmap_get(m, "b", 1));
    strmap_put(m, "a", 1, &b); /* replace */
    assert_ptr_equal(strmap_get(m, "a", 1), &b);
    assert_int_equal(strmap_size(m), 2);
    assert_ptr_equal(strmap_del(m, "a", 1), &b);
    assert_null(strmap_del(m, "a", 1));
    assert_int_equal(strmap_size(m), 1);
    strmap_free(m);
}

static void count(const char *k, size_t len, void *v, void *arg)
{
    (void)k;
    (void)len;
    (void)v;
    (*(size_t *)arg)++;
}

static void test_many_keys(void **state)
{
    (void)state;
    strmap_t *m = strmap_new();
    char key[32];
    for (size_t i = 0; i < 20000; i++) {
        int n = snprintf(key, sizeof(key), "stream.%zu", i);
        strmap_put(m, key, (size_t)n, (void *)(i + 1));
    }
    for (size_t i = 0; i < 20000; i += 7) {
        int n = snprintf(key, sizeof(key), "stream.%zu", i);
        assert_ptr_equal(strmap_get(m, key, (size_t)n), (void *)(i + 1));
    }
    size_t c = 0;
    strmap_foreach(m, count, &c);
    assert_int_equal(c, 20000);
    strmap_free(m);
}

static size_t freed;

static void count_free(void *value)
{
    freed++;
    free(value);
}

static void test_free_values(void **state)
{
    (void)state;
    strmap_t *m = strmap_new();
    /* past the first growth, so several slots and chains are walked */
    for (size_t i = 0; i < 100; i++) {
        const char key[2] = {(char)('a' + i % 26), (char)('a' + i / 26)};
        strmap_put(m, key, sizeof(key), malloc(8));
    }
    freed = 0;
    strmap_free_values(m, count_free);
    assert_int_equal(freed, 100);
    /* emptied, not left pointing at freed values, and still usable */
    assert_int_equal(strmap_size(m), 0);
    assert_null(strmap_get(m, "ha", 2));
    size_t c = 0;
    strmap_foreach(m, count, &c);
    assert_int_equal(c, 0);
    strmap_put(m, "ha", 2, malloc(8));
    assert_int_equal(strmap_size(m), 1);
    strmap_free_values(m, NULL); /* plain free(); ASan reports a leak if it is skipped */
    assert_int_equal(strmap_size(m), 0);
    strmap_free(m);
    strmap_free_values(NULL, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_put_get_del),
        cmocka_unit_test(test_many_keys),
        cmocka_unit_test(test_free_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
