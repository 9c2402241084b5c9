/* Unit tests for common/ids: alphabet, length, termination, uniqueness, rough uniformity, and the
 * same for ids drawn from a pool. */
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

/* Ids from a pool: the shape, unique across refills, ids that straddle a refill, bytes wiped. */
static void test_pool(void **state)
{
    (void)state;
    ids_pool_t p;
    ids_pool_init(&p);
    enum { N = 1000 };
    static char ids[N][IDS_SID_LEN + 2];
    for (int i = 0; i < N; i++) {
        memset(ids[i], '#', sizeof(ids[i]));
        /* 18 characters (an Engine.IO sid's random part) do not divide the pool's bytes */
        size_t n = i % 2 ? IDS_SID_LEN : IDS_SID_LEN - 2;
        assert_int_equal(ids_pool_random(&p, ids[i], n), 0);
        assert_int_equal(strlen(ids[i]), n);
        assert_int_equal(ids[i][n + 1], '#');
        for (size_t k = 0; k < n; k++)
            assert_true(symbol_index(ids[i][k]) >= 0);
        /* what was handed out is zero in the pool */
        for (size_t k = 0; k < IDS_POOL_BYTES - p.left; k++)
            assert_int_equal(p.b[k], 0);
    }
    for (int i = 0; i < N; i++) {
        for (int j = i + 1; j < N; j++)
            assert_string_not_equal(ids[i], ids[j]);
    }
    /* longer than the pool */
    static char big[2 * IDS_POOL_BYTES + 101];
    assert_int_equal(ids_pool_random(&p, big, 2 * IDS_POOL_BYTES + 100), 0);
    assert_int_equal(strlen(big), 2 * IDS_POOL_BYTES + 100);
    assert_int_equal(ids_pool_random(NULL, big, 1), -EINVAL);
    assert_int_equal(ids_pool_random(&p, NULL, 1), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sid_shape), cmocka_unit_test(test_unique),
        cmocka_unit_test(test_lengths),   cmocka_unit_test(test_uniform),
        cmocka_unit_test(test_pool),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
