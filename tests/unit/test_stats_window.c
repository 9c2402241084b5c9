/* Unit tests for shm/stats_window: snapshot rotation and the window a reader sees. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <math.h>

#include "shm/stats.h"
#include "shm/stats_window.h"

static stats_worker_t w;

static int reset(void **state)
{
    (void)state;
    memset(&w, 0, sizeof(w));
    return 0;
}

static void test_no_snapshot_no_window(void **state)
{
    (void)state;
    stats_window_t acc = {0};
    stats_window_add(&w, 10000, &acc);
    assert_int_equal(acc.workers, 0);
    /* one snapshot, but too recent for a rate */
    stats_window_tick(&w, 10000);
    stats_window_add(&w, 10000 + STATS_WINDOW_MIN_MS - 1, &acc);
    assert_int_equal(acc.workers, 0);
}

static void test_rates_over_the_window(void **state)
{
    (void)state;
    STATS_SET(w.messages_processed, 100);
    STATS_SET(w.rss_bytes, 1000);
    stats_window_tick(&w, 10000);
    /* ticks inside the window take nothing */
    stats_window_tick(&w, 12000);
    assert_int_equal(STATS_GET(w.snaps_taken), 1);
    STATS_SET(w.messages_processed, 300);
    STATS_SET(w.deliveries, 40);
    STATS_ADD(w.delivery[2], 7);
    STATS_ADD(w.delivery_us_sum, 7000);
    STATS_SET(w.rss_bytes, 1200);
    /* only the first snapshot exists: the window starts there (2 s long) */
    stats_window_t acc = {0};
    stats_window_add(&w, 12000, &acc);
    assert_int_equal(acc.workers, 1);
    assert_true(fabs(acc.messages_per_s - 100.0) < 1e-9);
    assert_true(fabs(acc.deliveries_per_s - 20.0) < 1e-9);
    assert_int_equal(acc.delivery[2], 7);
    assert_int_equal(acc.delivery_us_sum, 7000);
    assert_int_equal(acc.rss_then, 1000);
    assert_int_equal(acc.rss_now, 1200);

    /* a second snapshot: readers still use the one before the newest */
    stats_window_tick(&w, 10000 + STATS_WINDOW_MS);
    assert_int_equal(STATS_GET(w.snaps_taken), 2);
    STATS_SET(w.messages_processed, 1100);
    memset(&acc, 0, sizeof(acc));
    stats_window_add(&w, 20000, &acc);
    assert_true(fabs(acc.messages_per_s - 100.0) < 1e-9); /* (1100 - 100) / 10 s */

    /* a third: the window moves on, and the slot being rewritten is never the one read */
    stats_window_tick(&w, 10000 + 2 * STATS_WINDOW_MS);
    memset(&acc, 0, sizeof(acc));
    stats_window_add(&w, 25000, &acc);
    assert_true(fabs(acc.messages_per_s - 80.0) < 1e-9); /* (1100 - 300) / 10 s */
    assert_int_equal(acc.delivery[2], 0);
}

static void test_counters_that_went_back_count_zero(void **state)
{
    (void)state;
    STATS_SET(w.messages_processed, 500);
    stats_window_tick(&w, 1000);
    STATS_SET(w.messages_processed, 10);
    stats_window_t acc = {0};
    stats_window_add(&w, 4000, &acc);
    assert_int_equal(acc.workers, 1);
    assert_true(acc.messages_per_s == 0);
}

static void test_sums_over_workers(void **state)
{
    (void)state;
    static stats_worker_t other;
    memset(&other, 0, sizeof(other));
    stats_window_tick(&w, 1000);
    stats_window_tick(&other, 2000);
    STATS_SET(w.messages_processed, 30);
    STATS_SET(other.messages_processed, 20);
    stats_window_t acc = {0};
    stats_window_add(&w, 4000, &acc);
    stats_window_add(&other, 4000, &acc);
    assert_int_equal(acc.workers, 2);
    assert_true(fabs(acc.messages_per_s - 20.0) < 1e-9); /* 30 / 3 s + 20 / 2 s */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_no_snapshot_no_window, reset),
        cmocka_unit_test_setup(test_rates_over_the_window, reset),
        cmocka_unit_test_setup(test_counters_that_went_back_count_zero, reset),
        cmocka_unit_test_setup(test_sums_over_workers, reset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
