/*
 * metrics: renders GET /metrics in the Prometheus text exposition format (version 0.0.4) from
 * the shared stats only, so every worker gives the same server-wide answer: server totals
 * (unlabelled families) and one series per live worker process (labels worker = the worker
 * number, pid), XREAD latency and batch-size histograms included. Never blocks, never logs.
 */
#ifndef STREAMIO_SHM_METRICS_H
#define STREAMIO_SHM_METRICS_H

#include "common/buf.h"
#include "shm/region.h"

#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* Appends the whole exposition to `out`. */
void metrics_render(buf_t *out, shm_region_t *region);

#endif
