/* Unit tests for shm/monitor: seed 004's /socket-health and /socket-metrics from shared stats.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "shm/region.h"
#include "shm/stats.h"
#include "shm/stats_window.h"
#include "shm/monitor.h"

static shm_region_t *r;
static buf_t out;

static uint64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Two serving workers (0, 1) of two configured, Redis up, and a dead slot 2 with stale values. */
static int setup(void **state)
{
    (void)state;
    assert_int_equal(shm_region_new(&r, 3, 4096, sizeof(stats_worker_t), sizeof(stats_global_t)),
                     0);
    stats_global_t *g = shm_region_global(r);
    STATS_SET(g->workers, 2);
    STATS_SET(g->redis_connected, 1);
    for (uint32_t i = 0; i < 2; i++) {
        stats_worker_t *w = shm_region_slot_stats(r, i);
        STATS_SET(w->pid, 200 + i);
        STATS_SET(w->index, i);
        STATS_SET(w->role, STATS_ROLE_ACTIVE);
        STATS_SET(w->connections, 10 + i);
        STATS_SET(w->rooms, 4);
        STATS_SET(w->redis_connected, 1);
        STATS_SET(w->rss_bytes, 1000000);
        STATS_SET(w->memory_high_water, 4000000);
    }
    stats_worker_t *dead = shm_region_slot_stats(r, 2);
    STATS_SET(dead->connections, 999);
    STATS_SET(dead->rss_bytes, 999999999);
    buf_init(&out);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    buf_free(&out);
    shm_region_free(r);
    return 0;
}

static void test_health_healthy_then_degraded(void **state)
{
    (void)state;
    stats_worker_t *w0 = shm_region_slot_stats(r, 0);
    STATS_ADD(w0->limit_rejections[STATS_LIMIT_RATE_EVENTS], 2);
    STATS_SET(w0->slow_clients, 1);
    int status = 0;
    monitor_socket_health(&out, r, &status);
    assert_int_equal(status, 200);
    assert_non_null(strstr(out.data, "{\"status\":\"healthy\",\"connections\":21,"
                                     "\"memory\":{\"used\":2000000,\"threshold\":8000000},"
                                     "\"performance\":{\"latency\":null,\"errors\":3},"
                                     "\"redisConnected\":true,\"workers\":{\"alive\":2,"
                                     "\"configured\":2},\"version\":\""));
    /* a worker's Redis down */
    STATS_SET(w0->redis_connected, 0);
    buf_reset(&out);
    monitor_socket_health(&out, r, &status);
    assert_int_equal(status, 503);
    assert_non_null(strstr(out.data, "{\"status\":\"degraded\","));
    /* Redis back, but worker 1 missing */
    STATS_SET(w0->redis_connected, 1);
    memset(shm_region_slot_stats(r, 1), 0, sizeof(stats_worker_t));
    buf_reset(&out);
    monitor_socket_health(&out, r, &status);
    assert_int_equal(status, 503);
    assert_non_null(strstr(out.data, "\"workers\":{\"alive\":1,\"configured\":2}"));
}

static void test_metrics_json(void **state)
{
    (void)state;
    uint64_t now = wall_ms();
    stats_worker_t *w0 = shm_region_slot_stats(r, 0);
    /* a snapshot 2 s old, then 40 entries and 10 deliveries <= 1 ms and 10 in (5, 10 ms] */
    stats_window_tick(w0, now - 2000);
    STATS_SET(w0->messages_processed, 40);
    STATS_SET(w0->deliveries, 80);
    STATS_ADD(w0->delivery[0], 10);
    STATS_ADD(w0->delivery[3], 10);
    STATS_SET(w0->rss_bytes, 1200000); /* +20 % over the window */
    monitor_socket_metrics(&out, r, false);
    uint64_t after = wall_ms(); /* the monitor read its clock in [now, after] */
    assert_non_null(strstr(out.data, "{\"performance\":{\"latency\":{\"p50\":1.0,\"p95\":9.5,"
                                     "\"p99\":9.9},\"throughput\":{\"eventsPerSecond\":"));
    assert_non_null(strstr(out.data, "\"connections\":{\"total\":21,\"byCompany\":{},"
                                     "\"byWorker\":{\"0\":10,\"1\":11}},"));
    assert_non_null(strstr(out.data, "\"memory\":{\"usage\":27.5,\"trend\":\"increasing\","
                                     "\"rooms\":8,\"used\":2200000,\"threshold\":8000000}}"));
    /* 40 entries over 2 s plus however long this took (printed to 0.1) */
    const char *eps = strstr(out.data, "\"eventsPerSecond\":") + 18;
    double v = strtod(eps, NULL);
    assert_true(v >= 40000.0 / (double)(after - now + 2000) - 0.05 && v <= 20.05);
}

static void test_metrics_prometheus(void **state)
{
    (void)state;
    stats_worker_t *w1 = shm_region_slot_stats(r, 1);
    STATS_ADD(w1->delivery[1], 4);
    STATS_ADD(w1->delivery_us_sum, 8000);
    monitor_socket_metrics(&out, r, true);
    assert_non_null(strstr(out.data, "# TYPE socketio_connections_active gauge\n"
                                     "socketio_connections_active 21\n"));
    assert_non_null(strstr(out.data, "# TYPE socketio_latency_seconds summary\n"
                                     "socketio_latency_seconds{quantile=\"0.5\"} NaN\n"));
    /* the summary's _sum and _count cover everything delivered, the quantiles only the window */
    assert_non_null(strstr(out.data, "socketio_latency_seconds_sum 0.008000\n"
                                     "socketio_latency_seconds_count 4\n"));
    assert_non_null(strstr(out.data, "socketio_memory_usage_percent 25\n"));
    assert_null(strstr(out.data, "999"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_health_healthy_then_degraded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_metrics_json, setup, teardown),
        cmocka_unit_test_setup_teardown(test_metrics_prometheus, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
