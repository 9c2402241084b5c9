/*
 * ops_routes: the operations endpoints a worker serves beside Engine.IO — /health (the seed's
 * fields), /metrics (Prometheus text), seed 004's /socket-health and /socket-metrics (JSON, or
 * Prometheus text with ?format=prometheus; with the CORS headers of SOCKETIO_CORS_ORIGINS, gzip
 * when large, as the Node guide's server answers them) and, with STREAMIO_DEBUG_PAGE=1, /debug.
 * They are rows of one table in ops_routes.c: an endpoint is added with one row and its
 * handler. Each renders from the shared stats region into a buffer this module owns.
 */
#ifndef STREAMIO_WORKER_HTTP_OPS_ROUTES_H
#define STREAMIO_WORKER_HTTP_OPS_ROUTES_H

#include <stdbool.h>
#include <stdint.h>

#include "shm/region.h"
#include "worker/http/cors.h"
#include "worker/http/router.h"

typedef struct ops_routes ops_routes_t;

/* Which optional rows are served. */
typedef struct ops_routes_config {
    shm_region_t *region; /* borrowed */
    uint32_t slot;        /* this worker's */
    bool debug_page;      /* STREAMIO_DEBUG_PAGE=1 */
    const cors_t *cors;   /* borrowed; NULL: no CORS headers */
} ops_routes_config_t;

/* Adds the table's routes to r (both borrowed until ops_routes_free). Never NULL. */
ops_routes_t *ops_routes_new(router_t *r, const ops_routes_config_t *conf);
/* NULL is a no-op. Free it after the router stops dispatching (after the HTTP server). */
void ops_routes_free(ops_routes_t *o);

#endif
