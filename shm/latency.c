/* latency: see latency.h. */
#include "shm/latency.h"

#include <math.h>
#include <time.h>

#include "common/proto/stream_id.h"

uint64_t latency_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

void latency_observe(stats_worker_t *w, const char *id, size_t len, uint64_t now_us)
{
    static const uint64_t bounds[] = STATS_DELIVERY_BOUNDS_US;
    stream_id_t rid;
    if (!stream_id_parse(id, len, &rid) || rid.ms > UINT64_MAX / 1000)
        return;
    uint64_t at = rid.ms * 1000;
    uint64_t us = now_us > at ? now_us - at : 0;
    stats_observe(w->delivery, bounds, us);
    STATS_ADD(w->delivery_us_sum, us);
}

double latency_quantile(const uint64_t counts[STATS_DELIVERY_BUCKETS], double q)
{
    static const uint64_t bounds[] = STATS_DELIVERY_BOUNDS_US;
    uint64_t total = 0;
    for (size_t b = 0; b < STATS_DELIVERY_BUCKETS; b++)
        total += counts[b];
    if (total == 0)
        return NAN;
    double rank = q * (double)total, cum = 0;
    for (size_t b = 0; b < STATS_DELIVERY_BUCKETS; b++) {
        double next = cum + (double)counts[b];
        if (counts[b] && next >= rank) {
            if (b + 1 == STATS_DELIVERY_BUCKETS)
                return (double)bounds[b - 1] / 1e6;
            double lo = b ? (double)bounds[b - 1] : 0, hi = (double)bounds[b];
            return (lo + (hi - lo) * (rank - cum) / (double)counts[b]) / 1e6;
        }
        cum = next;
    }
    return (double)bounds[STATS_DELIVERY_BUCKETS - 2] / 1e6;
}
