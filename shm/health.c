/* health: see health.h. */
#include "shm/health.h"

#include <stdbool.h>
#include <time.h>

#include "common/version.h"
#include "shm/stats.h"

static uint64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void health_render(buf_t *out, shm_region_t *region, uint32_t slot)
{
    stats_global_t *g = shm_region_global(region);
    uint32_t n = shm_region_slots(region);
    uint64_t conns = 0, rooms = 0, deliveries = 0, processed = 0, live = 0;
    bool redis = STATS_GET(g->redis_connected) != 0;
    for (uint32_t i = 0; i < n; i++) {
        stats_worker_t *w = shm_region_slot_stats(region, i);
        if (!STATS_GET(w->pid))
            continue;
        live++;
        conns += STATS_GET(w->connections);
        rooms += STATS_GET(w->rooms);
        deliveries += STATS_GET(w->deliveries);
        processed += STATS_GET(w->messages_processed);
        redis = redis && STATS_GET(w->redis_connected);
    }
    uint64_t started = STATS_GET(g->started_ms);
    double uptime = started ? (double)(wall_ms() - started) / 1000.0 : 0.0;
    buf_printf(out,
               "{\"status\":\"healthy\",\"uptime\":%.3f,\"messagesProcessed\":%llu,"
               "\"connectedClients\":%llu,\"redisConnected\":%s,\"streams\":%llu,"
               "\"pools\":%llu,\"rooms\":%llu,\"deliveries\":%llu,\"workersAlive\":%llu,"
               "\"pid\":%llu,\"worker\":%u,\"version\":\"%s\",\"workers\":[",
               uptime, (unsigned long long)processed, (unsigned long long)conns,
               redis ? "true" : "false", (unsigned long long)STATS_GET(g->streams),
               (unsigned long long)STATS_GET(g->pools), (unsigned long long)rooms,
               (unsigned long long)deliveries, (unsigned long long)live,
               (unsigned long long)STATS_GET(g->master_pid),
               (unsigned)STATS_GET(((stats_worker_t *)shm_region_slot_stats(region, slot))->index),
               STREAMIO_VERSION);
    /* one entry per worker number: its serving process, once set up (a process still setting
     * up has no pid yet; replacements starting and predecessors draining are counted in the
     * totals above, not listed) */
    bool first = true;
    for (uint32_t i = 0; i < n; i++) {
        stats_worker_t *w = shm_region_slot_stats(region, i);
        if (STATS_GET(w->role) != STATS_ROLE_ACTIVE || !STATS_GET(w->pid))
            continue;
        buf_printf(
            out,
            "%s{\"slot\":%u,\"pid\":%llu,\"connectedClients\":%llu,\"rooms\":%llu,"
            "\"streams\":%llu,\"messagesProcessed\":%llu,\"deliveries\":%llu,"
            "\"adapterIn\":%llu,\"redisConnected\":%s}",
            first ? "" : ",", (unsigned)STATS_GET(w->index), (unsigned long long)STATS_GET(w->pid),
            (unsigned long long)STATS_GET(w->connections), (unsigned long long)STATS_GET(w->rooms),
            (unsigned long long)STATS_GET(w->streams),
            (unsigned long long)STATS_GET(w->messages_processed),
            (unsigned long long)STATS_GET(w->deliveries),
            (unsigned long long)STATS_GET(w->adapter_in),
            STATS_GET(w->redis_connected) ? "true" : "false");
        first = false;
    }
    buf_puts(out, "]");
    /* servers sharing an adapter: how many read streams, and this one's share of them */
    if (STATS_GET(g->owner_servers))
        buf_printf(out, ",\"ownership\":{\"servers\":%llu,\"buckets\":%llu}",
                   (unsigned long long)STATS_GET(g->owner_servers),
                   (unsigned long long)STATS_GET(g->owned_buckets));
    buf_puts(out, "}");
}
