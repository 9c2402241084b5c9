/* Unit tests for common/ids: alphabet, length, termination, uniqueness, rough uniformity. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/ids.h"

static int symbol_index(char c)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const char *p = c ? strchr(alphabet, c) : NULL;
    return p ? (int)(p - alphabet) : -1;
}

static void test_sid_shape(void **state)
{
    (void)state;
    char id[IDS_SID_LEN + 2];
    memset(id, '#', sizeof(id));
    assert_int_equal(ids_random(id, IDS_SID_LEN), 0);
    assert_int_equal(strlen(id), 20);
    assert_int_equal(id[IDS_SID_LEN + 1], '#'); /* nothing written past the terminator */
    for (int i = 0; i < IDS_SID_LEN; i++)
        assert_true(symbol_index(id[i]) >= 0);
}

static void test_unique(void **state)
{
    (void)state;
    enum { N = 2000 };
    static char ids[N][IDS_SID_LEN + 1];
    for (int i = 0; i < N; i++)
        assert_int_equal(ids_random(ids[i], IDS_SID_LEN), 0);
    for (int i = 0; i < N; i++) {
        for (int j = i + 1; j < N; j++)
            assert_string_not_equal(ids[i], ids[j]);
    }
}

static void test_lengths(void **state)
{
    (void)state;
    char buf[300];
    memset(buf, '#', sizeof(buf));
    assert_int_equal(ids_random(buf, 0), 0);
    assert_int_equal(buf[0], '\0');
    assert_int_equal(buf[1], '#');
    /* Longer than one internal batch of random bytes. */
    assert_int_equal(ids_random(buf, 257), 0);
    assert_int_equal(strlen(buf), 257);
    assert_int_equal(buf[258], '#');
    for (int i = 0; i < 257; i++)
        assert_true(symbol_index(buf[i]) >= 0);
    assert_int_equal(ids_random(NULL, 5), -EINVAL);
}

/* 64000 symbols, 1000 expected per symbol (sd ~31): every symbol, none wildly off. */
static void test_uniform(void **state)
{
    (void)state;
    static char buf[64000 + 1];
    unsigned counts[64] = {0};
    assert_int_equal(ids_random(buf, 64000), 0);
    for (size_t i = 0; i < 64000; i++) {
        int k = symbol_index(buf[i]);
        assert_true(k >= 0);
        counts[k]++;
    }
    for (int k = 0; k < 64; k++) {
        if (counts[k] < 750 || counts[k] > 1250)
            fail_msg("symbol %d seen %u times", k, counts[k]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sid_shape),
        cmocka_unit_test(test_unique),
        cmocka_unit_test(test_lengths),
        cmocka_unit_test(test_uniform),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
