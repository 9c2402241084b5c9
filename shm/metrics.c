/* metrics: see metrics.h. Families are written one at a time, each with HELP and TYPE first. */
#include "shm/metrics.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <time.h>

#include "common/version.h"
#include "shm/stats.h"

typedef struct family {
    const char *name;
    const char *type; /* counter or gauge */
    const char *help;
    size_t off; /* offset of the field in stats_worker_t */
} family_t;

#define F(name, type, field, help)                                                                 \
    {                                                                                              \
        name, type, help, offsetof(stats_worker_t, field)                                          \
    }

/* per-worker series, also summed into the unlabelled server family of the same name */
static const family_t worker_families[] = {
    F("streamio_connections", "gauge", connections, "Connected Engine.IO clients."),
    F("streamio_polling_held_requests", "gauge", polls_held,
      "Long-polling GET requests held open, waiting for data to answer them."),
    F("streamio_rooms", "gauge", rooms, "Rooms with at least one local member."),
    F("streamio_reading_streams", "gauge", streams, "Streams read by the worker."),
    F("streamio_handshakes_total", "counter", handshakes, "Engine.IO handshakes completed."),
    F("streamio_disconnects_total", "counter", disconnects, "Client sessions closed."),
    F("streamio_slow_clients_total", "counter", slow_clients,
      "Clients closed because their output queue overflowed."),
    F("streamio_received_bytes_total", "counter", bytes_in, "Bytes read from clients."),
    F("streamio_sent_bytes_total", "counter", bytes_out, "Bytes written to clients."),
    F("streamio_messages_processed_total", "counter", messages_processed,
      "Stream entries read and handed on."),
    F("streamio_deliveries_total", "counter", deliveries,
      "room:message frames queued to local sockets."),
    F("streamio_adapter_received_total", "counter", adapter_in,
      "Broadcasts received from other workers or servers."),
    F("streamio_adapter_published_total", "counter", adapter_out,
      "Broadcasts published to other workers or servers."),
    F("streamio_redis_reconnects_total", "counter", redis_reconnects,
      "Reconnections of the worker's Redis connections."),
    F("streamio_redis_connected", "gauge", redis_connected,
      "1 when the worker's Redis connections are up (server: all of them)."),
    F("streamio_xread_total", "counter", xread_calls, "XREADGROUP replies."),
    F("streamio_heartbeats_total", "counter", heartbeat, "Turns of the worker's 250 ms tick."),
    F("streamio_adapter_published_bytes_total", "counter", adapter_out_bytes,
      "Bytes of adapter messages published (msgpack)."),
    F("streamio_adapter_received_bytes_total", "counter", adapter_in_bytes,
      "Bytes of adapter messages received from Redis, the worker's own echoes included."),
    F("streamio_worker_pools", "gauge", pools, "Pools read by the worker (holding a stream)."),
    F("streamio_sibling_sent_total", "counter", sibling_out,
      "Entries handed to the other workers of this server over local IPC."),
    F("streamio_sibling_received_total", "counter", sibling_in,
      "Frames received from the other workers of this server over local IPC."),
    F("streamio_reread_skipped_total", "counter", reread_skipped,
      "Entries read again (a worker killed or a Redis connection lost before the XACK, a claim) "
      "that were not handed out again: every sibling worker's process, or this process itself, "
      "had noted them delivered (the ledger)."),
    F("streamio_reread_unpublished_total", "counter", reread_unpublished,
      "Entries read again that were not published to the other servers again (adapter PUBLISH, "
      "SPUBLISH or XADD): Redis had replied to their publish (the ledger)."),
    F("streamio_adapter_confirmed_total", "counter", adapter_confirmed,
      "Entries published to the other servers whose reply from Redis came, noted in the ledger."),
    F("streamio_parked_streams", "gauge", streams_parked,
      "Streams idle past STREAM_INACTIVE_TTL, polled slowly instead of read."),
    F("streamio_stream_wakeups_polled_total", "counter", wakes_polled,
      "Parked streams read again because a poll found a new entry."),
    F("streamio_stream_wakeups_event_total", "counter", wakes_event,
      "Parked streams read again because a keyspace xadd event named them."),
    F("streamio_resident_memory_bytes", "gauge", rss_bytes,
      "Resident memory of the worker processes, bytes."),
    F("streamio_memory_high_water_bytes", "gauge", memory_high_water,
      "MEMORY_HIGH_WATER_MB in bytes: a worker at it sheds new connections (0 = off)."),
    F("streamio_inbound_events_total", "counter", inbound_added,
      "Client events added to SOCKETIO_INBOUND_STREAM (Redis accepted the XADD)."),
    F("streamio_presence_users", "gauge", presence_users,
      "Users with at least one connection on the worker (server: summed over the workers)."),
    F("streamio_presence_memberships", "gauge", presence_members,
      "Distinct (room, user) pairs of the worker's sockets."),
    F("streamio_presence_events_total", "counter", presence_events,
      "presence:join and presence:leave events published."),
    F("streamio_presence_expired_total", "counter", presence_expired,
      "Users of silent servers removed from presence after PRESENCE_TTL_MS."),
};

static uint64_t field(stats_worker_t *w, size_t off)
{
    return atomic_load_explicit((_Atomic uint64_t *)((char *)w + off), memory_order_relaxed);
}

static bool live(stats_worker_t *w)
{
    return STATS_GET(w->pid) != 0;
}

static void header(buf_t *out, const char *name, const char *type, const char *help)
{
    buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void worker_family(buf_t *out, shm_region_t *region, const family_t *f)
{
    uint32_t n = shm_region_slots(region);
    bool all_up = true;
    uint64_t sum = 0;
    for (uint32_t i = 0; i < n; i++) {
        stats_worker_t *w = shm_region_slot_stats(region, i);
        if (!live(w))
            continue;
        uint64_t v = field(w, f->off);
        sum += v;
        all_up = all_up && v;
    }
    bool is_up = f->off == offsetof(stats_worker_t, redis_connected);
    header(out, f->name, f->type, f->help);
    buf_printf(out, "%s %llu\n", f->name, (unsigned long long)(is_up ? all_up : sum));
    for (uint32_t i = 0; i < n; i++) {
        stats_worker_t *w = shm_region_slot_stats(region, i);
        if (!live(w))
            continue;
        buf_printf(out, "%s{worker=\"%llu\",pid=\"%llu\"} %llu\n", f->name,
                   (unsigned long long)STATS_GET(w->index), (unsigned long long)STATS_GET(w->pid),
                   (unsigned long long)field(w, f->off));
    }
}

static void histogram_series(buf_t *out, const char *name, const char *labels,
                             const uint64_t *counts, const double *le, size_t nb, double sum)
{
    uint64_t cum = 0;
    const char *sep = *labels ? "," : "";
    for (size_t b = 0; b < nb; b++) {
        cum += counts[b];
        if (b + 1 == nb)
            buf_printf(out, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, sep,
                       (unsigned long long)cum);
        else
            buf_printf(out, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels, sep, le[b],
                       (unsigned long long)cum);
    }
    buf_printf(out, "%s_sum%s%s%s %.6f\n%s_count%s%s%s %llu\n", name, *labels ? "{" : "", labels,
               *labels ? "}" : "", sum, name, *labels ? "{" : "", labels, *labels ? "}" : "",
               (unsigned long long)cum);
}

#define HISTOGRAM_MAX_BUCKETS 16
_Static_assert(STATS_LATENCY_BUCKETS <= HISTOGRAM_MAX_BUCKETS &&
                   STATS_BATCH_BUCKETS <= HISTOGRAM_MAX_BUCKETS &&
                   STATS_DELIVERY_BUCKETS <= HISTOGRAM_MAX_BUCKETS,
               "histogram buckets");

/* One histogram family: the server's (summed buckets), then one per live worker. */
static void histogram(buf_t *out, shm_region_t *region, const char *name, const char *help,
                      size_t buckets_off, size_t nb, const double *le, size_t sum_off,
                      double sum_scale)
{
    uint32_t n = shm_region_slots(region);
    uint64_t total[HISTOGRAM_MAX_BUCKETS] = {0};
    double total_sum = 0;
    for (uint32_t i = 0; i < n; i++) {
        stats_worker_t *w = shm_region_slot_stats(region, i);
        if (!live(w))
            continue;
        for (size_t b = 0; b < nb; b++)
            total[b] += field(w, buckets_off + b * sizeof(uint64_t));
        total_sum += (double)field(w, sum_off) * sum_scale;
    }
    header(out, name, "histogram", help);
    histogram_series(out, name, "", total, le, nb, total_sum);
    for (uint32_t i = 0; i < n; i++) {
        stats_worker_t *w = shm_region_slot_stats(region, i);
        if (!live(w))
            continue;
        uint64_t counts[sizeof(total) / sizeof(total[0])];
        for (size_t b = 0; b < nb; b++)
            counts[b] = field(w, buckets_off + b * sizeof(uint64_t));
        char labels[64];
        snprintf(labels, sizeof(labels), "worker=\"%llu\",pid=\"%llu\"",
                 (unsigned long long)STATS_GET(w->index), (unsigned long long)STATS_GET(w->pid));
        histogram_series(out, name, labels, counts, le, nb, (double)field(w, sum_off) * sum_scale);
    }
}

static uint64_t depth(stats_worker_t *w)
{
    uint64_t sent = STATS_GET(w->desc_sent), done = STATS_GET(w->desc_done);
    return sent > done ? sent - done : 0;
}

static void ring_depth(buf_t *out, shm_region_t *region)
{
    const char *name = "streamio_ring_depth";
    header(out, name, "gauge", "Work descriptors sent by the master not yet handled.");
    uint32_t n = shm_region_slots(region);
    uint64_t total = 0;
    for (uint32_t i = 0; i < n; i++) {
        stats_worker_t *w = shm_region_slot_stats(region, i);
        total += live(w) ? depth(w) : 0;
    }
    buf_printf(out, "%s %llu\n", name, (unsigned long long)total);
    for (uint32_t i = 0; i < n; i++) {
        stats_worker_t *w = shm_region_slot_stats(region, i);
        if (!live(w))
            continue;
        buf_printf(out, "%s{worker=\"%llu\",pid=\"%llu\"} %llu\n", name,
                   (unsigned long long)STATS_GET(w->index), (unsigned long long)STATS_GET(w->pid),
                   (unsigned long long)depth(w));
    }
}

/* A counter family with one label (limit="...", reason="..."): one series per value,
 * server-wide, then per live worker. `off` is the offset of the field's array. */
static void labelled(buf_t *out, shm_region_t *region, const char *name, const char *help,
                     const char *label, const char *const *values, size_t nvalues, size_t off)
{
    uint32_t n = shm_region_slots(region);
    header(out, name, "counter", help);
    for (size_t l = 0; l < nvalues; l++) {
        uint64_t sum = 0;
        for (uint32_t i = 0; i < n; i++) {
            stats_worker_t *w = shm_region_slot_stats(region, i);
            if (live(w))
                sum += field(w, off + l * sizeof(_Atomic uint64_t));
        }
        buf_printf(out, "%s{%s=\"%s\"} %llu\n", name, label, values[l], (unsigned long long)sum);
    }
    for (uint32_t i = 0; i < n; i++) {
        stats_worker_t *w = shm_region_slot_stats(region, i);
        if (!live(w))
            continue;
        for (size_t l = 0; l < nvalues; l++)
            buf_printf(out, "%s{worker=\"%llu\",pid=\"%llu\",%s=\"%s\"} %llu\n", name,
                       (unsigned long long)STATS_GET(w->index),
                       (unsigned long long)STATS_GET(w->pid), label, values[l],
                       (unsigned long long)field(w, off + l * sizeof(_Atomic uint64_t)));
    }
}

static void labelled_families(buf_t *out, shm_region_t *region)
{
    static const char *const limits[STATS_LIMITS] = STATS_LIMIT_NAMES;
    static const char *const inbound[STATS_INBOUND_REASONS] = STATS_INBOUND_NAMES;
    static const char *const dead[2] = {"poison", "oversized"};
    labelled(out, region, "streamio_limit_rejections_total",
             "Connections, requests or packets refused by a limit, by limit.", "limit", limits,
             STATS_LIMITS, offsetof(stats_worker_t, limit_rejections));
    labelled(out, region, "streamio_inbound_refused_total",
             "Client events not added to SOCKETIO_INBOUND_STREAM, by reason.", "reason", inbound,
             STATS_INBOUND_REASONS, offsetof(stats_worker_t, inbound_refused));
    labelled(out, region, "streamio_dead_letters_total",
             "Stream entries moved to STREAM_DEAD_LETTER instead of being delivered, by reason.",
             "reason", dead, 2, offsetof(stats_worker_t, dead_letters));
}

static void server(buf_t *out, shm_region_t *region)
{
    stats_global_t *g = shm_region_global(region);
    uint32_t n = shm_region_slots(region);
    uint64_t alive = 0;
    for (uint32_t i = 0; i < n; i++)
        alive += live(shm_region_slot_stats(region, i));
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    const struct {
        const char *name, *type, *help;
        double v;
    } rows[] = {
        {"streamio_start_time_seconds", "gauge",
         "When the master started, seconds since the epoch.",
         (double)STATS_GET(g->started_ms) / 1000.0},
        {"streamio_workers", "gauge", "Configured worker processes (CLUSTER_WORKERS).",
         (double)STATS_GET(g->workers)},
        {"streamio_workers_alive", "gauge",
         "Live worker processes (replacements starting and workers draining included).",
         (double)alive},
        {"streamio_config_generation", "gauge", "Configuration generation, +1 per reload.",
         (double)STATS_GET(g->generation)},
        {"streamio_reloads_total", "counter", "Reloads completed.", (double)STATS_GET(g->reloads)},
        {"streamio_reload_failures_total", "counter", "Reloads refused (invalid configuration).",
         (double)STATS_GET(g->reload_failures)},
        {"streamio_worker_respawns_total", "counter", "Workers restarted after an unexpected exit.",
         (double)STATS_GET(g->respawns)},
        {"streamio_streams", "gauge", "Streams known to discovery.", (double)STATS_GET(g->streams)},
        {"streamio_pools", "gauge", "Pools holding at least one stream.",
         (double)STATS_GET(g->pools)},
        {"streamio_scan_cycles_total", "counter", "Completed SCAN passes over the keyspace.",
         (double)STATS_GET(g->scan_cycles)},
        {"streamio_discovery_redis_connected", "gauge",
         "1 when the master's discovery connection is up.", (double)STATS_GET(g->redis_connected)},
        {"streamio_discovery_redis_reconnects_total", "counter",
         "Reconnections of the master's discovery connection.",
         (double)STATS_GET(g->redis_reconnects)},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        header(out, rows[i].name, rows[i].type, rows[i].help);
        buf_printf(out, "%s %.17g\n", rows[i].name, rows[i].v);
    }
}

void metrics_render(buf_t *out, shm_region_t *region)
{
    static const uint64_t lat_us[] = STATS_LATENCY_BOUNDS_US;
    static const uint64_t batch[] = STATS_BATCH_BOUNDS;
    static const uint64_t delivery_us[] = STATS_DELIVERY_BOUNDS_US;
    double lat_le[STATS_LATENCY_BUCKETS], batch_le[STATS_BATCH_BUCKETS];
    double delivery_le[STATS_DELIVERY_BUCKETS];
    for (size_t b = 0; b < STATS_LATENCY_BUCKETS; b++)
        lat_le[b] = (double)lat_us[b] / 1e6;
    for (size_t b = 0; b < STATS_BATCH_BUCKETS; b++)
        batch_le[b] = (double)batch[b];
    for (size_t b = 0; b < STATS_DELIVERY_BUCKETS; b++)
        delivery_le[b] = (double)delivery_us[b] / 1e6;
    header(out, "streamio_build_info", "gauge", "The running build (label version); 1.");
    buf_printf(out, "streamio_build_info{version=\"%s\"} 1\n", STREAMIO_VERSION);
    server(out, region);
    for (size_t i = 0; i < sizeof(worker_families) / sizeof(worker_families[0]); i++)
        worker_family(out, region, &worker_families[i]);
    ring_depth(out, region);
    histogram(out, region, "streamio_xread_duration_seconds", "XREADGROUP round trips, seconds.",
              offsetof(stats_worker_t, xread_us), STATS_LATENCY_BUCKETS, lat_le,
              offsetof(stats_worker_t, xread_us_sum), 1e-6);
    histogram(out, region, "streamio_xread_batch_entries", "Entries per XREADGROUP reply.",
              offsetof(stats_worker_t, batch), STATS_BATCH_BUCKETS, batch_le,
              offsetof(stats_worker_t, batch_sum), 1.0);
    histogram(out, region, "streamio_delivery_latency_seconds",
              "Stream entry id time (XADD) to the send of its room:message, seconds; "
              "once per entry, by the worker that read it.",
              offsetof(stats_worker_t, delivery), STATS_DELIVERY_BUCKETS, delivery_le,
              offsetof(stats_worker_t, delivery_us_sum), 1e-6);
    labelled_families(out, region);
}
