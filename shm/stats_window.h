/*
 * stats_window: rates and recent latency over a sliding window of the shared counters, the same
 * whichever process reads them. Each worker takes a snapshot of its own counters (shm/stats.h
 * stats_snap_t) every STATS_WINDOW_MS from its tick; a reader compares a worker's live counters
 * with its snapshot before the newest, so the window is 1x to 2x STATS_WINDOW_MS long. Snapshots
 * rotate through STATS_SNAPS slots, so the one a reader uses is never the one being rewritten.
 * Never blocks, never allocates, no syscall.
 */
#ifndef STREAMIO_SHM_STATS_WINDOW_H
#define STREAMIO_SHM_STATS_WINDOW_H

#include <stdint.h>

#include "shm/stats.h"

#define STATS_WINDOW_MS 5000
/* A window shorter than this (a worker that just started) gives no rate. */
#define STATS_WINDOW_MIN_MS 1000

/* Sums over workers; zero it before the first stats_window_add. */
typedef struct stats_window {
    double messages_per_s;   /* stream entries read */
    double deliveries_per_s; /* room:message frames queued to sockets */
    uint64_t delivery_us_sum;
    uint64_t delivery[STATS_DELIVERY_BUCKETS]; /* observations in the window, per bucket */
    uint64_t rss_then;                         /* resident memory at the window's start */
    uint64_t rss_now;
    uint64_t workers; /* workers that had a window */
} stats_window_t;

/*
 * Called by the worker that owns `w` (only by it) with the wall clock: takes a snapshot of its
 * counters when none exists or the newest is STATS_WINDOW_MS old.
 */
void stats_window_tick(stats_worker_t *w, uint64_t now_ms);

/* Adds the window of worker `w` (any process may read) to *acc. A worker without a snapshot
 * yet, or whose window is under STATS_WINDOW_MIN_MS, adds nothing. */
void stats_window_add(stats_worker_t *w, uint64_t now_ms, stats_window_t *acc);

#endif
