/*
 * ops_routes: the operations endpoints a worker serves beside Engine.IO — /health (the seed's
 * fields), /metrics (Prometheus text) and, with STREAMIO_DEBUG_PAGE=1, /debug. They are rows of
 * one table in ops_routes.c: an endpoint is added with one row and its handler. Each renders
 * from the shared stats region into a buffer this module owns; no state besides.
 */
#ifndef STREAMIO_WORKER_HTTP_OPS_ROUTES_H
#define STREAMIO_WORKER_HTTP_OPS_ROUTES_H

#include <stdbool.h>
#include <stdint.h>

#include "shm/region.h"
#include "worker/http/router.h"

typedef struct ops_routes ops_routes_t;

/* Which optional rows are served. */
typedef struct ops_routes_config {
    shm_region_t *region; /* borrowed */
    uint32_t slot;        /* this worker's */
    bool debug_page;      /* STREAMIO_DEBUG_PAGE=1 */
} ops_routes_config_t;

/* Adds the table's routes to r (both borrowed until ops_routes_free). Never NULL. */
ops_routes_t *ops_routes_new(router_t *r, const ops_routes_config_t *conf);
/* NULL is a no-op. Free it after the router stops dispatching (after the HTTP server). */
void ops_routes_free(ops_routes_t *o);

#endif
