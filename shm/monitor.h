/*
 * monitor: the monitoring endpoints of the Node guide streamio's users follow (seed 004), so their
 * dashboards keep polling the same URLs: GET /socket-health and GET /socket-metrics (JSON, or
 * the Prometheus text format with ?format=prometheus). Rendered from the shared stats only,
 * like /health and /metrics, so every worker answers for the whole server. Rates and latency
 * quantiles cover the last 5-10 s (shm/stats_window.h). Never blocks, never logs.
 */
#ifndef STREAMIO_SHM_MONITOR_H
#define STREAMIO_SHM_MONITOR_H

#include <stdbool.h>

#include "common/buf.h"
#include "shm/region.h"

#define MONITOR_HEALTH_PATH "/socket-health"
#define MONITOR_METRICS_PATH "/socket-metrics"

/*
 * Appends the /socket-health document: {status, connections, memory:{used, threshold},
 * performance:{latency, errors}} plus streamio's own fields. *status is the HTTP status: 200
 * ("healthy") or 503 ("degraded": a worker missing or Redis unreachable).
 */
void monitor_socket_health(buf_t *out, shm_region_t *region, int *status);

/*
 * Appends /socket-metrics: the JSON document {performance:{latency:{p50,p95,p99},
 * throughput:{eventsPerSecond}}, connections:{total, byCompany, byWorker}, memory:{usage, trend,
 * rooms}}, or with `prometheus` the socketio_* families in the text format 0.0.4 (content type
 * METRICS_CONTENT_TYPE).
 */
void monitor_socket_metrics(buf_t *out, shm_region_t *region, bool prometheus);

#endif
