/* Unit tests for worker/metrics: exact lines for totals, per-worker series and histograms. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "shm/region.h"
#include "shm/stats.h"
#include "shm/metrics.h"

static void test_render(void **state)
{
    (void)state;
    shm_region_t *r;
    assert_int_equal(shm_region_new(&r, 3, 4096, sizeof(stats_worker_t), sizeof(stats_global_t)),
                     0);
    stats_global_t *g = shm_region_global(r);
    STATS_SET(g->workers, 2);
    STATS_SET(g->streams, 7);
    STATS_SET(g->redis_reconnects, 4);
    static const uint64_t lat[] = STATS_LATENCY_BOUNDS_US, batch[] = STATS_BATCH_BOUNDS;
    for (uint32_t i = 0; i < 2; i++) {
        stats_worker_t *w = shm_region_slot_stats(r, i);
        STATS_SET(w->pid, 200 + i);
        STATS_SET(w->index, i);
        STATS_SET(w->connections, 10 + i);
        STATS_SET(w->redis_connected, 1);
        STATS_SET(w->adapter_out_bytes, 100 + i);
        STATS_SET(w->adapter_in_bytes, 1000 * (i + 1));
        STATS_SET(w->desc_sent, 5);
        STATS_SET(w->desc_done, 3 + i);
        stats_observe(w->xread_us, lat, 300);     /* le 0.0005 */
        stats_observe(w->xread_us, lat, 9999999); /* +Inf */
        STATS_ADD(w->xread_us_sum, 300 + 9999999);
        stats_observe(w->batch, batch, 0);
        STATS_ADD(w->limit_rejections[STATS_LIMIT_ORIGIN], 3 + i);
    }
    stats_worker_t *w0 = shm_region_slot_stats(r, 0), *w1 = shm_region_slot_stats(r, 1);
    STATS_SET(w0->limit_rejections[STATS_LIMIT_PER_USER], 3);
    STATS_SET(w1->inbound_refused[STATS_INBOUND_NOT_ALLOWED], 5);
    STATS_SET(w0->dead_letters[0], 1);
    STATS_SET(w0->dead_letters[1], 2);
    STATS_SET(w0->presence_users, 4);
    STATS_SET(w1->presence_users, 5);
    STATS_SET(w1->inbound_added, 12);
    /* a dead block's stale counters are ignored */
    STATS_SET(((stats_worker_t *)shm_region_slot_stats(r, 2))->connections, 999);
    buf_t out;
    buf_init(&out);
    metrics_render(&out, r);
    const char *want[] = {
        "# TYPE streamio_workers gauge\nstreamio_workers 2\n",
        "streamio_workers_alive 2\n",
        "streamio_streams 7\n",
        "# TYPE streamio_connections gauge\nstreamio_connections 21\n"
        "streamio_connections{worker=\"0\",pid=\"200\"} 10\n"
        "streamio_connections{worker=\"1\",pid=\"201\"} 11\n",
        "streamio_redis_connected 1\n",
        "# TYPE streamio_ring_depth gauge\nstreamio_ring_depth 3\n"
        "streamio_ring_depth{worker=\"0\",pid=\"200\"} 2\n"
        "streamio_ring_depth{worker=\"1\",pid=\"201\"} 1\n",
        "# TYPE streamio_xread_duration_seconds histogram\n"
        "streamio_xread_duration_seconds_bucket{le=\"0.0001\"} 0\n"
        "streamio_xread_duration_seconds_bucket{le=\"0.00025\"} 0\n"
        "streamio_xread_duration_seconds_bucket{le=\"0.0005\"} 2\n",
        "streamio_xread_duration_seconds_bucket{le=\"1\"} 2\n"
        "streamio_xread_duration_seconds_bucket{le=\"+Inf\"} 4\n"
        "streamio_xread_duration_seconds_sum 20.000598\n"
        "streamio_xread_duration_seconds_count 4\n"
        "streamio_xread_duration_seconds_bucket{worker=\"0\",pid=\"200\",le=\"0.0001\"} 0\n",
        "streamio_xread_duration_seconds_count{worker=\"1\",pid=\"201\"} 2\n",
        "streamio_xread_batch_entries_bucket{le=\"0\"} 2\n",
        "# TYPE streamio_limit_rejections_total counter\n"
        "streamio_limit_rejections_total{limit=\"per_ip\"} 0\n",
        "streamio_limit_rejections_total{limit=\"origin\"} 7\n",
        "streamio_limit_rejections_total{limit=\"token_expired\"} 0\n"
        "streamio_limit_rejections_total{limit=\"per_user\"} 3\n"
        "streamio_limit_rejections_total{worker=\"0\",pid=\"200\",limit=\"per_ip\"} 0\n",
        "# TYPE streamio_inbound_refused_total counter\n"
        "streamio_inbound_refused_total{reason=\"not_accepted\"} 0\n"
        "streamio_inbound_refused_total{reason=\"not_allowed\"} 5\n",
        "streamio_inbound_refused_total{worker=\"1\",pid=\"201\",reason=\"not_allowed\"} 5\n",
        "# TYPE streamio_dead_letters_total counter\n"
        "streamio_dead_letters_total{reason=\"poison\"} 1\n"
        "streamio_dead_letters_total{reason=\"oversized\"} 2\n",
        "streamio_dead_letters_total{worker=\"0\",pid=\"200\",reason=\"oversized\"} 2\n",
        "# TYPE streamio_presence_users gauge\nstreamio_presence_users 9\n"
        "streamio_presence_users{worker=\"0\",pid=\"200\"} 4\n",
        "streamio_inbound_events_total 12\n",
        "streamio_limit_rejections_total{worker=\"1\",pid=\"201\",limit=\"origin\"} 4\n",
        "streamio_adapter_published_bytes_total 201\n",
        "streamio_adapter_received_bytes_total 3000\n"
        "streamio_adapter_received_bytes_total{worker=\"0\",pid=\"200\"} 1000\n",
        "# TYPE streamio_discovery_redis_reconnects_total counter\n"
        "streamio_discovery_redis_reconnects_total 4\n",
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        if (!strstr(out.data, want[i]))
            fail_msg("missing:\n%s\nin:\n%s", want[i], out.data);
    }
    assert_null(strstr(out.data, "999"));
    assert_int_equal(out.data[out.len - 1], '\n');
    /* one worker's Redis down: the server's value is 0 */
    STATS_SET(((stats_worker_t *)shm_region_slot_stats(r, 1))->redis_connected, 0);
    buf_reset(&out);
    metrics_render(&out, r);
    assert_non_null(strstr(out.data, "streamio_redis_connected 0\n"));
    buf_free(&out);
    shm_region_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_render),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
