/* Unit tests for worker/health: server-wide sums from the shared stats, dead slots skipped. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/version.h"
#include "shm/region.h"
#include "shm/stats.h"
#include "shm/health.h"

static void test_sums_live_workers(void **state)
{
    (void)state;
    shm_region_t *r;
    assert_int_equal(shm_region_new(&r, 3, 4096, sizeof(stats_worker_t), sizeof(stats_global_t)),
                     0);
    stats_global_t *g = shm_region_global(r);
    STATS_SET(g->master_pid, 100);
    STATS_SET(g->streams, 7);
    STATS_SET(g->pools, 2);
    STATS_SET(g->redis_connected, 1);
    for (uint32_t i = 0; i < 2; i++) {
        stats_worker_t *w = shm_region_slot_stats(r, i);
        STATS_SET(w->pid, 200 + i);
        STATS_SET(w->index, i);
        STATS_SET(w->role, STATS_ROLE_ACTIVE);
        STATS_SET(w->connections, 10 + i);
        STATS_SET(w->messages_processed, 5);
        STATS_SET(w->deliveries, 50);
        STATS_SET(w->rooms, 3);
        STATS_SET(w->redis_connected, 1);
    }
    /* slot 2 is dead (pid 0): its stale counters must not count */
    stats_worker_t *dead = shm_region_slot_stats(r, 2);
    STATS_SET(dead->connections, 999);
    buf_t out;
    buf_init(&out);
    health_render(&out, r, 1);
    assert_non_null(strstr(out.data, "{\"status\":\"healthy\",\"uptime\":"));
    assert_non_null(strstr(out.data, "\"messagesProcessed\":10,\"connectedClients\":21,"
                                     "\"redisConnected\":true,\"streams\":7,\"pools\":2,"
                                     "\"rooms\":6,\"deliveries\":100,\"workersAlive\":2,"
                                     "\"pid\":100,\"worker\":1,\"version\":\"" STREAMIO_VERSION
                                     "\",\"workers\":["));
    assert_non_null(strstr(out.data, "{\"slot\":1,\"pid\":201,\"connectedClients\":11,"));
    assert_int_equal(out.data[out.len - 1], '}');

    /* a retiring process of worker 1 counts in the totals but is not listed */
    stats_worker_t *old = shm_region_slot_stats(r, 2);
    STATS_SET(old->pid, 300);
    STATS_SET(old->index, 1);
    STATS_SET(old->role, STATS_ROLE_RETIRING);
    STATS_SET(old->connections, 0);
    buf_reset(&out);
    health_render(&out, r, 2);
    assert_non_null(strstr(out.data, "\"workersAlive\":3,\"pid\":100,\"worker\":1,"));
    assert_null(strstr(out.data, "\"pid\":300"));
    assert_null(strstr(out.data, "\"slot\":2"));
    memset(old, 0, sizeof(*old));

    /* one worker's Redis down makes the server's redisConnected false */
    STATS_SET(((stats_worker_t *)shm_region_slot_stats(r, 0))->redis_connected, 0);
    buf_reset(&out);
    health_render(&out, r, 0);
    assert_non_null(strstr(out.data, "\"redisConnected\":false,\"streams\""));

    /* servers sharing the streams: how many, and this one's buckets, after the workers */
    assert_null(strstr(out.data, "\"ownership\""));
    STATS_SET(g->owner_servers, 2);
    STATS_SET(g->owned_buckets, 64);
    buf_reset(&out);
    health_render(&out, r, 0);
    size_t n = strlen(out.data);
    const char *tail = "],\"ownership\":{\"servers\":2,\"buckets\":64}}";
    assert_true(n > strlen(tail));
    assert_string_equal(out.data + n - strlen(tail), tail);
    buf_free(&out);
    shm_region_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sums_live_workers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
