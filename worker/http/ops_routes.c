/* ops_routes: see ops_routes.h. */
#include "worker/http/ops_routes.h"

#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/xalloc.h"
#include "shm/health.h"
#include "shm/metrics.h"
#include "shm/monitor.h"
#include "worker/http/debug_page.h"
#include "worker/http/http_server.h"

struct ops_routes {
    ops_routes_config_t conf;
    buf_t out;  /* the body being rendered */
    buf_t hdrs; /* its CORS headers */
    buf_t q;    /* a query parameter */
};

/* An answer as the Node guide's server gives it: CORS headers, gzip when large. */
static void answer_cors(ops_routes_t *o, conn_t *c, const http_req_t *req, int status,
                        const char *ctype)
{
    buf_reset(&o->hdrs);
    if (o->conf.cors)
        cors_headers(o->conf.cors, req, &o->hdrs);
    http_respond_gzip(c, status, ctype, o->hdrs.len ? o->hdrs.data : NULL, o->out.data, o->out.len);
}

static void health(conn_t *c, const http_req_t *req, void *arg)
{
    (void)req;
    ops_routes_t *o = arg;
    buf_reset(&o->out);
    health_render(&o->out, o->conf.region, o->conf.slot);
    http_respond(c, 200, "application/json", NULL, o->out.data, o->out.len);
}

static void metrics(conn_t *c, const http_req_t *req, void *arg)
{
    (void)req;
    ops_routes_t *o = arg;
    buf_reset(&o->out);
    metrics_render(&o->out, o->conf.region);
    http_respond(c, 200, METRICS_CONTENT_TYPE, NULL, o->out.data, o->out.len);
}

static void socket_health(conn_t *c, const http_req_t *req, void *arg)
{
    ops_routes_t *o = arg;
    int status = 200;
    buf_reset(&o->out);
    monitor_socket_health(&o->out, o->conf.region, &status);
    answer_cors(o, c, req, status, "application/json");
}

static void socket_metrics(conn_t *c, const http_req_t *req, void *arg)
{
    ops_routes_t *o = arg;
    buf_reset(&o->q);
    bool prom = http_req_query(req, "format", &o->q) == 0 && o->q.data &&
                strcmp(o->q.data, "prometheus") == 0;
    buf_reset(&o->out);
    monitor_socket_metrics(&o->out, o->conf.region, prom);
    answer_cors(o, c, req, 200, prom ? METRICS_CONTENT_TYPE : "application/json");
}

static void debug(conn_t *c, const http_req_t *req, void *arg)
{
    (void)req;
    (void)arg;
    size_t n;
    const char *html = debug_page_html(&n);
    http_respond(c, 200, "text/html; charset=utf-8", NULL, html, n);
}

static bool always(const ops_routes_config_t *conf)
{
    (void)conf;
    return true;
}

static bool debug_enabled(const ops_routes_config_t *conf)
{
    return conf->debug_page;
}

/* The endpoints: path, handler, whether this worker serves it. */
static const struct {
    const char *path;
    route_fn fn;
    bool (*enabled)(const ops_routes_config_t *conf);
} table[] = {
    {"/debug", debug, debug_enabled},
    {"/health", health, always},
    {"/metrics", metrics, always},
    {MONITOR_HEALTH_PATH, socket_health, always},
    {MONITOR_METRICS_PATH, socket_metrics, always},
};

ops_routes_t *ops_routes_new(router_t *r, const ops_routes_config_t *conf)
{
    ops_routes_t *o = xcalloc(1, sizeof(*o));
    o->conf = *conf;
    buf_init(&o->out);
    buf_init(&o->hdrs);
    buf_init(&o->q);
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
        if (table[i].enabled(&o->conf))
            router_add(r, table[i].path, table[i].fn, o);
    }
    return o;
}

void ops_routes_free(ops_routes_t *o)
{
    if (!o)
        return;
    buf_free(&o->out);
    buf_free(&o->hdrs);
    buf_free(&o->q);
    free(o);
}
