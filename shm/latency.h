/*
 * latency: delivery latency of stream entries, from the time in the entry's id (Redis sets it at
 * XADD) to the moment its room:message is queued to the local sockets. Counted once per entry,
 * by the worker that read it, into the shared histogram of shm/stats.h (never per recipient).
 * Also turns bucket counts back into quantiles for the readers (/socket-metrics, the debug page).
 * Ids a producer chose itself (XADD with an explicit id) carry no time: they land where their
 * number puts them, usually past the last bound.
 */
#ifndef STREAMIO_SHM_LATENCY_H
#define STREAMIO_SHM_LATENCY_H

#include <stddef.h>
#include <stdint.h>

#include "shm/stats.h"

/* Wall clock in microseconds since the epoch (the clock Redis ids use, in ms). */
uint64_t latency_now_us(void);

/*
 * Counts the entry `id` ("<ms>-<seq>", borrowed) as delivered at `now_us`: one observation in
 * w->delivery and w->delivery_us_sum. An id later than now (clocks apart) counts as 0; text that
 * is not an id is ignored.
 */
void latency_observe(stats_worker_t *w, const char *id, size_t len, uint64_t now_us);

/*
 * The q-quantile (0 < q < 1), in seconds, of observations counted per bucket of
 * STATS_DELIVERY_BOUNDS_US (not cumulative), interpolated linearly inside its bucket as
 * Prometheus's histogram_quantile does; when it falls past the last finite bound, that bound.
 * NaN when there is no observation.
 */
double latency_quantile(const uint64_t counts[STATS_DELIVERY_BUCKETS], double q);

#endif
