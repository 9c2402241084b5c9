/* Unit tests for shm/latency: an entry id's time against the clock, buckets and quantiles. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <math.h>

#include "shm/stats.h"
#include "shm/latency.h"

static uint64_t count(const stats_worker_t *w)
{
    uint64_t n = 0;
    for (size_t b = 0; b < STATS_DELIVERY_BUCKETS; b++)
        n += STATS_GET(((stats_worker_t *)w)->delivery[b]);
    return n;
}

static void test_observe_buckets(void **state)
{
    (void)state;
    static stats_worker_t w;
    memset(&w, 0, sizeof(w));
    uint64_t now = 1700000000123ull * 1000 + 400;    /* 1700000000123.4 ms */
    latency_observe(&w, "1700000000123-0", 15, now); /* 0.4 ms: first bucket (<= 1 ms) */
    latency_observe(&w, "1700000000120-7", 15, now); /* 3.4 ms: <= 5 ms */
    latency_observe(&w, "1700000000000-0", 15, now); /* 123.4 ms: <= 250 ms */
    latency_observe(&w, "1700000000999-0", 15, now); /* in the future: 0 */
    latency_observe(&w, "1-1", 3, now);              /* an explicit id: past every bound */
    assert_int_equal(STATS_GET(w.delivery[0]), 2);
    assert_int_equal(STATS_GET(w.delivery[2]), 1);
    assert_int_equal(STATS_GET(w.delivery[7]), 1);
    assert_int_equal(STATS_GET(w.delivery[STATS_DELIVERY_BUCKETS - 1]), 1);
    assert_int_equal(count(&w), 5);
    assert_true(STATS_GET(w.delivery_us_sum) >= 400 + 3400 + 123400);
}

static void test_observe_ignores_non_ids(void **state)
{
    (void)state;
    static stats_worker_t w;
    memset(&w, 0, sizeof(w));
    const char *bad[] = {"", "abc", "12-x", "-5", "99999999999999999999999-0"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        latency_observe(&w, bad[i], strlen(bad[i]), 1000000);
    assert_int_equal(count(&w), 0);
    assert_int_equal(STATS_GET(w.delivery_us_sum), 0);
}

static void test_quantiles(void **state)
{
    (void)state;
    uint64_t c[STATS_DELIVERY_BUCKETS] = {0};
    assert_true(isnan(latency_quantile(c, 0.5)));
    /* 100 observations <= 1 ms: linear inside [0, 1 ms] */
    c[0] = 100;
    assert_true(fabs(latency_quantile(c, 0.5) - 0.0005) < 1e-9);
    assert_true(fabs(latency_quantile(c, 0.99) - 0.00099) < 1e-9);
    /* 90 in (0, 1 ms], 10 in (5, 10 ms]: p95 halfway through (5, 10 ms] */
    c[0] = 90;
    c[3] = 10;
    assert_true(fabs(latency_quantile(c, 0.95) - 0.0075) < 1e-9);
    assert_true(latency_quantile(c, 0.5) <= 0.001);
    /* past the last bound: the last finite bound (30 s) */
    memset(c, 0, sizeof(c));
    c[STATS_DELIVERY_BUCKETS - 1] = 3;
    assert_true(fabs(latency_quantile(c, 0.5) - 30.0) < 1e-9);
}

static void test_now_is_the_wall_clock(void **state)
{
    (void)state;
    uint64_t a = latency_now_us(), b = latency_now_us();
    assert_true(b >= a);
    assert_true(a > 1600000000ull * 1000000); /* after 2020: the epoch clock, not uptime */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_observe_buckets),
        cmocka_unit_test(test_observe_ignores_non_ids),
        cmocka_unit_test(test_quantiles),
        cmocka_unit_test(test_now_is_the_wall_clock),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
