/* Unit tests for common/strmap: put/get/del, binary keys, growth. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_put_get_del),
        cmocka_unit_test(test_many_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
