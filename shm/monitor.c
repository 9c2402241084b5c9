/* monitor: see monitor.h. */
#include "shm/monitor.h"

#include <math.h>
#include <stdint.h>
#include <unistd.h>

#include "common/version.h"
#include "shm/latency.h"
#include "shm/stats.h"
#include "shm/stats_window.h"

/* RSS change over the window, in percent, past which memory.trend is no longer "stable". */
#define TREND_PERCENT 5.0

typedef struct view {
    uint64_t connections, rooms, rss, high_water, errors, live, active, configured;
    uint64_t delivered, delivered_us; /* since the workers started (a summary's _count, _sum) */
    bool redis;
    stats_window_t win;
    double p50, p95, p99, mean_ms; /* seconds (quantiles), ms (mean); NaN when no delivery */
    double threshold;              /* bytes */
} view_t;

static void gather(shm_region_t *region, view_t *v)
{
    stats_global_t *g = shm_region_global(region);
    uint32_t n = shm_region_slots(region);
    uint64_t now = latency_now_us() / 1000;
    *v = (view_t){.redis = STATS_GET(g->redis_connected) != 0, .configured = STATS_GET(g->workers)};
    for (uint32_t i = 0; i < n; i++) {
        stats_worker_t *w = shm_region_slot_stats(region, i);
        if (!STATS_GET(w->pid))
            continue;
        v->live++;
        v->active += STATS_GET(w->role) == STATS_ROLE_ACTIVE;
        v->connections += STATS_GET(w->connections);
        v->rooms += STATS_GET(w->rooms);
        v->rss += STATS_GET(w->rss_bytes);
        v->high_water += STATS_GET(w->memory_high_water);
        v->errors += STATS_GET(w->slow_clients);
        for (size_t l = 0; l < STATS_LIMITS; l++)
            v->errors += STATS_GET(w->limit_rejections[l]);
        v->redis = v->redis && STATS_GET(w->redis_connected);
        v->delivered_us += STATS_GET(w->delivery_us_sum);
        for (size_t b = 0; b < STATS_DELIVERY_BUCKETS; b++)
            v->delivered += STATS_GET(w->delivery[b]);
        stats_window_add(w, now, &v->win);
    }
    v->p50 = latency_quantile(v->win.delivery, 0.5);
    v->p95 = latency_quantile(v->win.delivery, 0.95);
    v->p99 = latency_quantile(v->win.delivery, 0.99);
    uint64_t count = 0;
    for (size_t b = 0; b < STATS_DELIVERY_BUCKETS; b++)
        count += v->win.delivery[b];
    v->mean_ms = count ? (double)v->win.delivery_us_sum / (double)count / 1000.0 : NAN;
    /* without a high-water mark the machine's memory is the ceiling */
    v->threshold = v->high_water ? (double)v->high_water
                                 : (double)sysconf(_SC_PHYS_PAGES) * (double)sysconf(_SC_PAGESIZE);
}

static bool healthy(const view_t *v)
{
    return v->redis && v->live > 0 && v->active >= v->configured;
}

/* A number in JSON, null for NaN. */
static void json_num(buf_t *out, double x)
{
    if (isnan(x))
        buf_puts(out, "null");
    else
        buf_printf(out, "%.1f", x);
}

void monitor_socket_health(buf_t *out, shm_region_t *region, int *status)
{
    view_t v;
    gather(region, &v);
    bool ok = healthy(&v);
    *status = ok ? 200 : 503;
    buf_printf(out,
               "{\"status\":\"%s\",\"connections\":%llu,\"memory\":{\"used\":%llu,"
               "\"threshold\":%.0f},\"performance\":{\"latency\":",
               ok ? "healthy" : "degraded", (unsigned long long)v.connections,
               (unsigned long long)v.rss, v.threshold);
    json_num(out, v.mean_ms);
    buf_printf(out,
               ",\"errors\":%llu},\"redisConnected\":%s,\"workers\":{\"alive\":%llu,"
               "\"configured\":%llu},\"version\":\"%s\"}",
               (unsigned long long)v.errors, v.redis ? "true" : "false",
               (unsigned long long)v.active, (unsigned long long)v.configured, STREAMIO_VERSION);
}

static const char *trend(const view_t *v)
{
    if (!v->win.workers || !v->win.rss_then)
        return "stable";
    double change =
        ((double)v->win.rss_now - (double)v->win.rss_then) * 100.0 / (double)v->win.rss_then;
    return change > TREND_PERCENT    ? "increasing"
           : change < -TREND_PERCENT ? "decreasing"
                                     : "stable";
}

static double usage_percent(const view_t *v)
{
    return v->threshold > 0 ? (double)v->rss * 100.0 / v->threshold : 0;
}

static void metrics_json(buf_t *out, shm_region_t *region, const view_t *v)
{
    buf_puts(out, "{\"performance\":{\"latency\":{\"p50\":");
    json_num(out, v->p50 * 1000.0);
    buf_puts(out, ",\"p95\":");
    json_num(out, v->p95 * 1000.0);
    buf_puts(out, ",\"p99\":");
    json_num(out, v->p99 * 1000.0);
    buf_printf(out,
               "},\"throughput\":{\"eventsPerSecond\":%.1f,\"deliveriesPerSecond\":%.1f}},"
               "\"connections\":{\"total\":%llu,\"byCompany\":{},\"byWorker\":{",
               v->win.messages_per_s, v->win.deliveries_per_s, (unsigned long long)v->connections);
    /* the serving process of each worker number, as /health lists them */
    uint32_t n = shm_region_slots(region);
    bool first = true;
    for (uint32_t i = 0; i < n; i++) {
        stats_worker_t *w = shm_region_slot_stats(region, i);
        if (STATS_GET(w->role) != STATS_ROLE_ACTIVE || !STATS_GET(w->pid))
            continue;
        buf_printf(out, "%s\"%llu\":%llu", first ? "" : ",",
                   (unsigned long long)STATS_GET(w->index),
                   (unsigned long long)STATS_GET(w->connections));
        first = false;
    }
    buf_printf(out,
               "}},\"memory\":{\"usage\":%.1f,\"trend\":\"%s\",\"rooms\":%llu,"
               "\"used\":%llu,\"threshold\":%.0f}}",
               usage_percent(v), trend(v), (unsigned long long)v->rooms, (unsigned long long)v->rss,
               v->threshold);
}

/* A Prometheus sample value; NaN as the text format spells it. */
static void prom_num(buf_t *out, double x)
{
    if (isnan(x))
        buf_puts(out, "NaN\n");
    else
        buf_printf(out, "%.17g\n", x);
}

static void metrics_prometheus(buf_t *out, const view_t *v)
{
    const struct {
        const char *name, *help;
        double x;
    } gauges[] = {
        {"socketio_connections_active", "Active connections.", (double)v->connections},
        {"socketio_events_per_second", "Stream entries read per second, last 5-10 s.",
         v->win.messages_per_s},
        {"socketio_rooms", "Rooms with a local member, summed over the workers.", (double)v->rooms},
        {"socketio_memory_used_bytes", "Resident memory of the workers, bytes.", (double)v->rss},
        {"socketio_memory_usage_percent",
         "Resident memory as a percentage of the high-water mark (or of the machine's memory).",
         usage_percent(v)},
    };
    for (size_t i = 0; i < sizeof(gauges) / sizeof(gauges[0]); i++) {
        buf_printf(out, "# HELP %s %s\n# TYPE %s gauge\n%s ", gauges[i].name, gauges[i].help,
                   gauges[i].name, gauges[i].name);
        prom_num(out, gauges[i].x);
    }
    const char *q[] = {"0.5", "0.95", "0.99"};
    const double qv[] = {v->p50, v->p95, v->p99};
    buf_puts(out, "# HELP socketio_latency_seconds Delivery latency (XADD to send): "
                  "quantiles of the last 5-10 s.\n"
                  "# TYPE socketio_latency_seconds summary\n");
    for (size_t i = 0; i < 3; i++) {
        buf_printf(out, "socketio_latency_seconds{quantile=\"%s\"} ", q[i]);
        prom_num(out, qv[i]);
    }
    buf_printf(out, "socketio_latency_seconds_sum %.6f\nsocketio_latency_seconds_count %llu\n",
               (double)v->delivered_us / 1e6, (unsigned long long)v->delivered);
}

void monitor_socket_metrics(buf_t *out, shm_region_t *region, bool prometheus)
{
    view_t v;
    gather(region, &v);
    if (prometheus)
        metrics_prometheus(out, &v);
    else
        metrics_json(out, region, &v);
}
