/* stats_window: see stats_window.h. */
#include "shm/stats_window.h"

#include <stddef.h>

static void take(stats_worker_t *w, stats_snap_t *s, uint64_t now_ms)
{
    STATS_SET(s->messages_processed, STATS_GET(w->messages_processed));
    STATS_SET(s->deliveries, STATS_GET(w->deliveries));
    STATS_SET(s->delivery_us_sum, STATS_GET(w->delivery_us_sum));
    for (size_t b = 0; b < STATS_DELIVERY_BUCKETS; b++)
        STATS_SET(s->delivery[b], STATS_GET(w->delivery[b]));
    STATS_SET(s->rss_bytes, STATS_GET(w->rss_bytes));
    STATS_SET(s->ms, now_ms);
}

void stats_window_tick(stats_worker_t *w, uint64_t now_ms)
{
    uint64_t n = STATS_GET(w->snaps_taken);
    if (n && now_ms - STATS_GET(w->snaps[(n - 1) % STATS_SNAPS].ms) < STATS_WINDOW_MS)
        return;
    take(w, &w->snaps[n % STATS_SNAPS], now_ms);
    /* release: a reader that sees the new count sees the snapshot's fields */
    atomic_store_explicit(&w->snaps_taken, n + 1, memory_order_release);
}

static uint64_t delta(uint64_t now, uint64_t then)
{
    return now > then ? now - then : 0;
}

void stats_window_add(stats_worker_t *w, uint64_t now_ms, stats_window_t *acc)
{
    uint64_t n = atomic_load_explicit(&w->snaps_taken, memory_order_acquire);
    if (n == 0)
        return;
    /* the snapshot before the newest; the newest alone while it is the only one */
    stats_snap_t *s = &w->snaps[(n >= 2 ? n - 2 : n - 1) % STATS_SNAPS];
    uint64_t then = STATS_GET(s->ms);
    if (!then || now_ms < then || now_ms - then < STATS_WINDOW_MIN_MS)
        return;
    double secs = (double)(now_ms - then) / 1000.0;
    acc->messages_per_s +=
        (double)delta(STATS_GET(w->messages_processed), STATS_GET(s->messages_processed)) / secs;
    acc->deliveries_per_s +=
        (double)delta(STATS_GET(w->deliveries), STATS_GET(s->deliveries)) / secs;
    acc->delivery_us_sum += delta(STATS_GET(w->delivery_us_sum), STATS_GET(s->delivery_us_sum));
    for (size_t b = 0; b < STATS_DELIVERY_BUCKETS; b++)
        acc->delivery[b] += delta(STATS_GET(w->delivery[b]), STATS_GET(s->delivery[b]));
    acc->rss_then += STATS_GET(s->rss_bytes);
    acc->rss_now += STATS_GET(w->rss_bytes);
    acc->workers++;
}
