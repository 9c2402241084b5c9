/*
 * worker: see worker.h. Wiring and lifecycle only: the protocol lives in session, reading in
 * reader, sharing in adapter.
 */
#include "worker/worker.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "common/buf.h"
#include "common/log.h"
#include "shm/stats.h"
#include "shm/workdesc.h"
#include "worker/adapter.h"
#include "worker/payload.h"
#include "worker/reader.h"
#include "worker/session.h"
#include "worker/siblings.h"
#include "worker/ws_frame.h"

#define RING_BUDGET 4096    /* descriptors handled per wake-up before yielding to clients */
#define ACCEPT_GRACE_MS 250 /* after the listener closes, handshakes in flight complete first */

typedef struct worker {
    uv_loop_t loop;
    const worker_args_t *args;
    const cfg_t *cfg;
    stats_worker_t *stats;
    ring_t *ring;
    uv_tcp_t listener;
    uv_poll_t ring_poll;
    uv_signal_t sigterm, sigint;
    uv_timer_t tick;      /* stats refresh, and the shutdown deadline */
    uv_timer_t grace;     /* drain starts ACCEPT_GRACE_MS after accepting stopped */
    uv_idle_t ring_again; /* more descriptors than one budget */
    sessions_t *sessions;
    reader_t *reader;
    adapter_t *adapter;   /* NULL when there is nobody to share with */
    siblings_t *siblings; /* the other workers of this server */
    bool stopping;
    uint64_t stop_deadline;
    size_t closing; /* components still draining */
    buf_t packet;   /* 42["room:message",payload(,offset)] of one entry */
    char *rec;      /* one ring record */
    uint32_t rec_cap;
    uint32_t cur_pool;        /* pool of the record being decoded */
    uint64_t share_failures;  /* entries not shared with siblings or the adapter (log sampling) */
    uint64_t accept_failures; /* accept errors other than EAGAIN (log sampling) */
} worker_t;

static uint64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- stream entries: encode once, deliver locally, share once ---- */

static void on_entry(rds_t *conn, const char *stream, size_t stream_len, const char *id,
                     size_t id_len, const payload_field_t *fields, size_t nfields, void *arg)
{
    worker_t *w = arg;
    buf_reset(&w->packet);
    if (payload_packet(&w->packet, stream, stream_len, id, id_len, fields, nfields,
                       w->cfg->connection_recovery))
        return;
    refbuf_t *frame = ws_frame_new(0x1, w->packet.data, w->packet.len);
    if (frame) {
        adapter_str_t room = {stream, stream_len};
        sessions_broadcast(w->sessions, &room, 1, NULL, 0, frame);
        int rc =
            siblings_add(w->siblings, stream, stream_len, refbuf_data(frame), refbuf_len(frame));
        if (rc > 0)
            STATS_ADD(w->stats->sibling_out, 1);
        else if (rc < 0 && log_sampled(&w->share_failures))
            LOG_WARN("cannot hand an entry of %.*s to the other workers: %s", (int)stream_len,
                     stream, strerror(-rc));
        refbuf_unref(frame);
    }
    if (w->adapter && w->cfg->adapter != CONFIG_ADAPTER_OFF) {
        /* the packet without its Engine.IO/Socket.IO prefix is the adapter's packet.data */
        int rc = adapter_publish(w->adapter, conn, stream, stream_len, w->packet.data + 2,
                                 w->packet.len - 2);
        if (rc && log_sampled(&w->share_failures))
            LOG_WARN("cannot share an entry of %.*s: %s (%llu so far)", (int)stream_len, stream,
                     strerror(-rc), (unsigned long long)w->share_failures);
        else if (rc == 0)
            STATS_ADD(w->stats->adapter_out, 1);
    }
}

static void on_sibling_frame(const char *room, size_t room_len, refbuf_t *frame, void *arg)
{
    worker_t *w = arg;
    adapter_str_t r = {room, room_len};
    STATS_ADD(w->stats->sibling_in, 1);
    sessions_broadcast(w->sessions, &r, 1, NULL, 0, frame);
}

/* The adapter uid of another live worker of this server (see adapter_set_sibling_filter). */
static bool is_sibling_uid(const char *uid, size_t len, void *arg)
{
    worker_t *w = arg;
    uint64_t want[2];
    if (len != sizeof(want))
        return false;
    memcpy(want, uid, sizeof(want));
    uint32_t n = shm_region_slots(w->args->region);
    for (uint32_t i = 0; i < n; i++) {
        stats_worker_t *s = shm_region_slot_stats(w->args->region, i);
        if (i != w->args->slot && STATS_GET(s->pid) && STATS_GET(s->adapter_uid[0]) == want[0] &&
            STATS_GET(s->adapter_uid[1]) == want[1])
            return true;
    }
    return false;
}

/*
 * Reads wait only while the queues towards the other workers are backlogged (a sibling that
 * cannot keep up): an entry read then would be dropped for its clients, while an entry left in
 * Redis is read a moment later. Pub/sub plays no part: the siblings get entries over local IPC,
 * the PUBLISH for other servers goes on the reading connection itself, and other servers miss what
 * is published while their own pub/sub is down, as with Node's adapter.
 */
static bool siblings_keep_up(void *arg)
{
    worker_t *w = arg;
    return !siblings_backlogged(w->siblings);
}

/* ---- work descriptors from the master ---- */

static void on_desc_add(const char *name, size_t len, void *arg)
{
    worker_t *w = arg;
    if (reader_add(w->reader, w->cur_pool, name, len))
        LOG_ERROR("out of memory adding stream %.*s", (int)len, name);
}

static void on_desc_remove(const char *name, size_t len, void *arg)
{
    worker_t *w = arg;
    reader_remove(w->reader, name, len);
}

static void handle_desc(worker_t *w, uint16_t type, uint32_t len)
{
    int rc = -EPROTO;
    switch (type) {
    case WORKDESC_POOL_ADD:
        rc = workdesc_decode(w->rec, len, &w->cur_pool, on_desc_add, w);
        break;
    case WORKDESC_STREAM_REMOVE:
        rc = workdesc_decode(w->rec, len, &w->cur_pool, on_desc_remove, w);
        break;
    case WORKDESC_POOL_REMOVE:
        rc = workdesc_decode(w->rec, len, &w->cur_pool, NULL, NULL);
        if (rc == 0)
            reader_remove_pool(w->reader, w->cur_pool);
        break;
    }
    if (rc)
        LOG_ERROR("ignoring a malformed work descriptor (type %u)", type);
}

/* Pops up to a budget of descriptors; true when the ring is empty and the worker may sleep. */
static bool drain_ring(worker_t *w)
{
    for (int n = 0; n < RING_BUDGET; n++) {
        uint16_t type;
        uint32_t len;
        int rc = ring_pop(w->ring, &type, w->rec, w->rec_cap, &len);
        if (rc == -EMSGSIZE) {
            char *p = realloc(w->rec, len);
            if (!p)
                return false;
            w->rec = p;
            w->rec_cap = len;
            continue;
        }
        if (rc == -EAGAIN) {
            if (ring_prepare_sleep(w->ring))
                return true;
            ring_wake_done(w->ring);
            continue;
        }
        if (rc == -EPROTO) {
            /* a corrupted ring cannot be resynchronised here: the master resets it and respawns */
            LOG_ERROR("work ring corrupted; exiting for a respawn");
            _exit(1);
        }
        if (rc == 0)
            STATS_ADD(w->stats->desc_done, 1);
        if (rc == 0 && !w->stopping)
            handle_desc(w, type, len);
    }
    return false;
}

static void on_ring_again(uv_idle_t *h)
{
    worker_t *w = h->data;
    if (drain_ring(w))
        uv_idle_stop(h);
}

static void on_ring_wake(uv_poll_t *h, int status, int events)
{
    (void)status;
    (void)events;
    worker_t *w = h->data;
    shm_region_wake_drain(w->args->region, w->args->slot);
    ring_wake_done(w->ring);
    if (!drain_ring(w))
        uv_idle_start(&w->ring_again, on_ring_again);
}

/* ---- clients ---- */

static void on_connection(uv_stream_t *server, int status)
{
    worker_t *w = server->data;
    if (status < 0 || w->stopping)
        return;
    int rc = sessions_accept(w->sessions, server);
    /* EMFILE repeats on every wake-up of the listener while descriptors are short */
    if (rc && rc != -EAGAIN && log_sampled(&w->accept_failures))
        LOG_WARN("accept failed: %s (%llu so far)", uv_strerror(rc),
                 (unsigned long long)w->accept_failures);
}

/* ---- shutdown ---- */

static void on_closed(uv_handle_t *h)
{
    (void)h;
}

static void finish(worker_t *w)
{
    if (--w->closing)
        return;
    uv_close((uv_handle_t *)&w->tick, on_closed);
    uv_close((uv_handle_t *)&w->grace, on_closed);
    uv_close((uv_handle_t *)&w->ring_poll, on_closed);
    uv_close((uv_handle_t *)&w->ring_again, on_closed);
    uv_close((uv_handle_t *)&w->sigterm, on_closed);
    uv_close((uv_handle_t *)&w->sigint, on_closed);
    siblings_free(w->siblings);
    w->siblings = NULL;
    sessions_free(w->sessions);
    w->sessions = NULL;
}

static void on_part_closed(void *arg)
{
    finish(arg);
}

static void on_sessions_closed(void *arg)
{
    worker_t *w = arg;
    if (w->adapter) {
        w->closing++;
        sessions_set_adapter(w->sessions, NULL);
        adapter_close(w->adapter, on_part_closed, w);
        w->adapter = NULL;
    }
    finish(w);
}

/* Entries read before the stop are delivered and acknowledged first; then clients go. */
static void on_reader_stopped(void *arg)
{
    worker_t *w = arg;
    w->reader = NULL;
    sessions_close_all(w->sessions, on_sessions_closed, w);
}

static void on_grace(uv_timer_t *t)
{
    worker_t *w = t->data;
    reader_stop(w->reader, on_reader_stopped, w);
}

static void begin_stop(worker_t *w, const char *why)
{
    if (w->stopping)
        return;
    w->stopping = true;
    LOG_INFO("%s: draining", why);
    /* tells the master to start a replacement now (it ignores this when it asked itself) */
    STATS_SET(w->stats->draining, 1);
    stats_global_t *g = shm_region_global(w->args->region);
    if (g && (pid_t)STATS_GET(g->master_pid) == getppid())
        kill(getppid(), SIGUSR1);
    w->stop_deadline = uv_now(&w->loop) + (uint64_t)w->cfg->shutdown_timeout_ms;
    uv_close((uv_handle_t *)&w->listener, on_closed);
    w->closing = 1;
    /* a client accepted a moment ago gets its Socket.IO connect before the 1001, so it sees a
     * normal disconnect and reconnects rather than a failed connect */
    uv_timer_start(&w->grace, on_grace, ACCEPT_GRACE_MS, 0);
}

static void on_signal(uv_signal_t *h, int sig)
{
    begin_stop(h->data, sig == SIGTERM ? "SIGTERM" : "SIGINT");
}

static void on_tick(uv_timer_t *t)
{
    worker_t *w = t->data;
    bool up = (!w->reader || reader_connected(w->reader)) &&
              (!w->adapter || adapter_connected(w->adapter));
    STATS_SET(w->stats->redis_connected, up);
    STATS_ADD(w->stats->heartbeat, 1);
    if (w->sessions) {
        /* the transport counts in plain fields on its hot path; published here */
        conn_stats_t cs;
        sessions_conn_stats(w->sessions, &cs);
        STATS_SET(w->stats->bytes_in, cs.bytes_in);
        STATS_SET(w->stats->bytes_out, cs.bytes_out);
        STATS_SET(w->stats->slow_clients, cs.slow_consumers);
    }
    if (w->stopping && uv_now(&w->loop) >= w->stop_deadline) {
        LOG_WARN("shutdown timeout: exiting with work in progress (unacknowledged entries stay "
                 "pending for the next start)");
        _exit(0);
    }
}

/* ---- setup ---- */

static int setup(worker_t *w)
{
    const cfg_t *cfg = w->cfg;
    int rc = uv_loop_init(&w->loop);
    if (rc)
        return rc;
    signal(SIGPIPE, SIG_IGN);
    uv_signal_init(&w->loop, &w->sigterm);
    uv_signal_init(&w->loop, &w->sigint);
    w->sigterm.data = w->sigint.data = w;
    uv_signal_start(&w->sigterm, on_signal, SIGTERM);
    uv_signal_start(&w->sigint, on_signal, SIGINT);
    uv_timer_init(&w->loop, &w->tick);
    w->tick.data = w;
    uv_timer_start(&w->tick, on_tick, 0, 250);
    uv_timer_init(&w->loop, &w->grace);
    w->grace.data = w;
    if ((rc = sessions_new(&w->sessions, &w->loop, cfg, w->args->region, w->args->socks,
                           w->args->slot)))
        return rc;
    if (cfg->cluster_workers > 1 || cfg->adapter != CONFIG_ADAPTER_OFF) {
        char prefix[160];
        if (cfg->adapter == CONFIG_ADAPTER_OFF)
            snprintf(prefix, sizeof(prefix), "streamio-%s", w->args->server_id);
        else
            snprintf(prefix, sizeof(prefix), "%s", cfg->redis_key);
        adapter_mode_t mode = cfg->adapter == CONFIG_ADAPTER_OFF       ? ADAPTER_MODE_PRIVATE
                              : cfg->adapter == CONFIG_ADAPTER_SHARDED ? ADAPTER_MODE_SHARDED
                                                                       : ADAPTER_MODE_CLASSIC;
        adapter_host_t host;
        sessions_adapter_host(w->sessions, &host);
        if ((rc = adapter_new(&w->adapter, &w->loop, cfg, mode, prefix, &host, w->stats)))
            return rc;
        sessions_set_adapter(w->sessions, w->adapter);
    }
    /* also with one worker: a respawn or a reload runs two slots side by side for a while */
    if ((rc = siblings_new(&w->siblings, &w->loop, w->args->region, w->args->socks, w->args->slot,
                           on_sibling_frame, w)))
        return rc;
    if (w->adapter)
        adapter_set_sibling_filter(w->adapter, is_sibling_uid, w);
    char host[128] = "localhost";
    gethostname(host, sizeof(host) - 1);
    char consumer[256];
    snprintf(consumer, sizeof(consumer), "%s:%d:%u", host, cfg->port, w->args->index);
    if ((rc = reader_new(&w->reader, &w->loop, cfg, consumer, w->stats, on_entry, w)))
        return rc;
    reader_set_gate(w->reader, siblings_keep_up, w);
    w->ring = shm_region_ring(w->args->region, w->args->slot);
    w->rec_cap = 64 * 1024;
    w->rec = malloc(w->rec_cap);
    if (!w->ring || !w->rec)
        return -ENOMEM;
    uv_idle_init(&w->loop, &w->ring_again);
    w->ring_again.data = w;
    if ((rc = uv_poll_init(&w->loop, &w->ring_poll,
                           shm_region_wake_fd(w->args->region, w->args->slot))))
        return rc;
    w->ring_poll.data = w;
    uv_poll_start(&w->ring_poll, UV_READABLE, on_ring_wake);
    if (!drain_ring(w))
        uv_idle_start(&w->ring_again, on_ring_again);
    if ((rc = uv_tcp_init(&w->loop, &w->listener)) ||
        (rc = uv_tcp_open(&w->listener, w->args->listen_fd)))
        return rc;
    w->listener.data = w;
    return uv_listen((uv_stream_t *)&w->listener, 4096, on_connection);
}

int worker_main(const worker_args_t *args)
{
    worker_t *w = calloc(1, sizeof(*w));
    if (!w)
        return 2;
    w->args = args;
    w->cfg = args->cfg;
    w->stats = shm_region_slot_stats(args->region, args->slot);
    buf_init(&w->packet);
    int rc = setup(w);
    if (rc) {
        LOG_ERROR("worker setup failed: %s", uv_strerror(rc));
        return 2;
    }
    STATS_SET(w->stats->started_ms, wall_ms());
    STATS_SET(w->stats->pid, getpid());
    uv_run(&w->loop, UV_RUN_DEFAULT);
    int closed = uv_loop_close(&w->loop);
    if (closed)
        LOG_WARN("worker loop closed with handles still open");
    buf_free(&w->packet);
    free(w->rec);
    free(w);
    LOG_INFO("worker drained, exiting");
    return 0;
}
