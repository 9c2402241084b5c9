/*
 * worker: see worker.h. Wiring and lifecycle only: each layer beneath (worker/net ...
 * worker/cluster, see docs/architecture.md) does its own work; this file creates them bottom-up,
 * connects each to the next through its handler or observer table, and takes them down in order on
 * SIGTERM.
 */
#include "worker/worker.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "common/bridge/bridge_redis.h"
#include "common/bridge/presence_store.h"
#include "common/buf.h"
#include "common/log.h"
#include "common/proto/payload.h"
#include "common/redis/redis_client.h"
#include "common/redis/redis_topology.h"
#include "common/xalloc.h"
#include "shm/latency.h"
#include "shm/stats.h"
#include "shm/stats_window.h"
#include "shm/workdesc.h"
#include "worker/bridge/bridge_hooks.h"
#include "worker/bridge/inbound.h"
#include "worker/bridge/presence.h"
#include "worker/bridge/presence_route.h"
#include "worker/cluster/adapter.h"
#include "worker/cluster/publish_proof.h"
#include "worker/cluster/relay_cut.h"
#include "worker/cluster/relay_role.h"
#include "worker/cluster/room_sync.h"
#include "worker/cluster/streams_adapter.h"
#include "worker/cluster/streams_restore.h"
#include "worker/eio/eio_echo.h"
#include "worker/eio/eio_endpoint.h"
#include "worker/fanout/adapter_host.h"
#include "worker/fanout/fanout.h"
#include "worker/http/cors.h"
#include "worker/http/http_server.h"
#include "worker/http/ops_routes.h"
#include "worker/http/router.h"
#include "worker/net/acceptor.h"
#include "worker/net/peer_dir.h"
#include "worker/recovery/restore.h"
#include "worker/sio/conformance.h"
#include "worker/sio/limits.h"
#include "worker/sio/seed_events.h"
#include "worker/sio/sio.h"
#include "worker/stream/reader.h"
#include "worker/stream/reader_io.h"

#define RING_BUDGET 4096      /* descriptors handled per wake-up before yielding to clients */
#define ACCEPT_GRACE_MS 250   /* after the listener closes, handshakes in flight complete first */
#define CONNECT_GRACE_MS 3000 /* and a CONNECT still on its way, at most this much longer */
#define CONNECT_POLL_MS 50
/* A relay handover marker not back by then is given up; a draining holder waits as long for its
 * successor's (see worker/cluster/relay_cut.h). */
#define RELAY_CUT_TIMEOUT_MS 3000
#define UPGRADE_TIMEOUT_MS 10000 /* Node's upgradeTimeout */
/* packets waiting for a polling GET; past it more are dropped */
#define POLL_QUEUE_MAX (4u << 20)

typedef struct worker {
    uv_loop_t loop;
    const worker_args_t *args;
    const cfg_t *cfg;
    stats_worker_t *stats;
    ring_t *ring;
    acceptor_t *acceptor; /* this worker's share of the listening socket */
    uv_poll_t ring_poll;
    uv_signal_t sigterm, sigint;
    uv_timer_t tick;      /* stats refresh, and the shutdown deadline */
    uv_timer_t grace;     /* drain starts ACCEPT_GRACE_MS after accepting stopped */
    uv_idle_t ring_again; /* more descriptors than one budget */
    uv_timer_t ring_hold; /* bounds how long records wait while the reader pulls them */
    bool draining;        /* in drain_ring */
    router_t *router;
    cors_t *cors; /* SOCKETIO_CORS_ORIGINS, for the Engine.IO endpoint and seed 004's routes */
    http_server_t *http;
    ops_routes_t *ops;
    eio_endpoint_t *eio;
    eio_echo_t *echo; /* STREAMIO_CONFORMANCE=1: the /engine.io/ echo */
    sio_t *sio;
    seed_events_t *seed;
    conformance_t *conformance; /* STREAMIO_CONFORMANCE=1 */
    fanout_t *fanout;
    restore_t *restore; /* CONNECTION_RECOVERY; NULL when off */
    reader_t *reader;
    redis_topology_t *topology;  /* where Redis is: every Redis client of this worker uses it */
    reader_io_t *reader_io;      /* the reader's Redis connections and timers */
    adapter_t *adapter;          /* NULL when there is nobody to share with */
    room_sync_t *rsync;          /* sharded adapter: the siblings' rooms, for the relay holder */
    relay_cut_t *cut;            /* with an adapter: where the relay role moves (see relay_cut.h) */
    uint64_t adapter_close_at;   /* draining holder: closes its adapter once handed over, or then */
    peer_dir_t *peers;           /* the other servers sharing the adapter, for relayed requests */
    streams_adapter_t *streams;  /* SOCKETIO_REDIS_ADAPTER=streams: the adapter; else NULL */
    publish_proof_t *proof;      /* which entries' publishes Redis executed (see publish_proof.h) */
    streams_restore_t *srestore; /* ... and its CONNECTION_RECOVERY; else NULL */
    /* client events, presence and per-user limits: their Redis client, NULL when all are off */
    redis_client_t *bridge;
    bool bridge_up;
    inbound_t *inbound;
    presence_t *presence;
    bridge_hooks_t *hooks;
    presence_route_t *presence_route;
    buf_t presence_channel;
    char writer[256]; /* <host>:<port>:<slot>:<pid>: this process in presence and inbound */
    bool stopping;
    uint64_t stop_deadline;
    uint64_t connect_grace_until; /* the drain waits for CONNECTs on their way until then */
    size_t closing;               /* components still draining */
    buf_t packet;                 /* the text of one entry's packet, while it is built */
    buf_t mpack;                  /* its data as msgpack, for a classic adapter */
    char *rec;                    /* one ring record */
    uint32_t rec_cap;
    uint32_t cur_pool;        /* pool of the record being decoded */
    uint64_t share_failures;  /* entries not shared with siblings or the adapter (log sampling) */
    uint64_t accept_failures; /* accept errors other than EAGAIN (log sampling) */
    uint64_t mark_failures;   /* relay handover markers not published at once (log sampling) */
} worker_t;

static uint64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- stream entries: one packet, delivered here, to the siblings and to other servers ---- */

/* Where an entry's PUBLISH (or the streams adapter's XADD) goes: the connection it was read on,
 * ahead of its XACK, routed by the channel or stream (argv[1]): on a Redis Cluster SPUBLISH must
 * reach the channel's slot owner, which is not the stream's in general (on one server it is the
 * same connection, so the order holds). */
typedef struct entry_link {
    reader_t *reader;
    reader_conn_t *conn;
    reader_reply_fn cb; /* the publish's reply: see publish_proof.h */
    void *cb_arg;
} entry_link_t;

static int send_before_ack(int argc, const char **argv, const size_t *lens, void *arg)
{
    entry_link_t *l = arg;
    return reader_send(l->reader, l->conn, argv[1], lens[1], l->cb, l->cb_arg, argc, argv, lens);
}

/* Before an entry's publish (data: the adapter's packet.data): false when it was read again and
 * Redis executed its publish already (nothing to send); else the link to send it on, its reply
 * noted. */
static bool publish_link(worker_t *w, reader_conn_t *conn, const char *stream, size_t stream_len,
                         const char *id, size_t id_len, const char *data, size_t data_len,
                         bool reread, entry_link_t *link)
{
    *link = (entry_link_t){w->reader, conn, NULL, NULL};
    shm_ledger_entry_t e;
    if (!publish_proof_entry(w->proof, &e, reader_where(w->reader, conn), stream, stream_len, id,
                             id_len, data, data_len))
        return true;
    if (reread && publish_proof_done(w->proof, &e))
        return false;
    publish_proof_begin(w->proof, &e, &link->cb, &link->cb_arg);
    return true;
}

/* After the publish was sent (rc 0) or refused (no reply will come). */
static void publish_sent(const entry_link_t *link, int rc)
{
    if (rc)
        publish_proof_cancel(link->cb_arg);
}

/* Streams mode: the entry is appended to the adapter's stream once and delivered from there,
 * by every worker of every server (see streams_adapter.h), with that entry's id as the offset. */
static void share_entry(worker_t *w, reader_conn_t *conn, const char *stream, size_t stream_len,
                        const char *id, size_t id_len, const payload_field_t *fields,
                        size_t nfields, bool reread)
{
    buf_reset(&w->packet);
    payload_packet(&w->packet, stream, stream_len, id, id_len, fields, nfields, false);
    /* the packet without its Engine.IO/Socket.IO prefix is the adapter's packet.data */
    const char *data = w->packet.data + 2;
    size_t data_len = w->packet.len - 2;
    entry_link_t link;
    if (!publish_link(w, conn, stream, stream_len, id, id_len, data, data_len, reread, &link))
        return;
    int rc = streams_adapter_publish(w->streams, send_before_ack, &link, stream, stream_len, data,
                                     data_len);
    publish_sent(&link, rc);
    if (rc && log_sampled(&w->share_failures))
        LOG_WARN("cannot append an entry of %.*s to the adapter's stream: %s (%llu so far)",
                 (int)stream_len, stream, strerror(-rc), (unsigned long long)w->share_failures);
    else if (rc == 0)
        STATS_ADD(w->stats->adapter_out, 1);
}

static void on_entry(reader_conn_t *conn, const char *stream, size_t stream_len, const char *id,
                     size_t id_len, const payload_field_t *fields, size_t nfields, bool reread,
                     void *arg)
{
    worker_t *w = arg;
    if (w->streams) {
        share_entry(w, conn, stream, stream_len, id, id_len, fields, nfields, reread);
        return;
    }
    bool share = w->adapter && w->cfg->adapter != CONFIG_ADAPTER_OFF;
    bool mpack = share && adapter_wants_mpack(w->adapter);
    /* a classic adapter's msgpack is built with the packet: one ordering, one validation */
    buf_reset(&w->mpack);
    fanout_packet_t pk;
    fanout_packet_entry(&pk, &w->packet, mpack ? &w->mpack : NULL, stream, stream_len, id, id_len,
                        fields, nfields, w->cfg->connection_recovery);
    pk.reread = reread;
    fanout_publish(w->fanout, &pk);
    latency_observe(w->stats, id, id_len, latency_now_us());
    adapter_data_t data = {0};
    entry_link_t link;
    if (share) {
        data.json = fanout_packet_data(&pk, &data.json_len); /* the adapter's packet.data */
        share = publish_link(w, conn, stream, stream_len, id, id_len, data.json, data.json_len,
                             reread, &link);
    }
    if (share) {
        data.json_compact = true; /* payload_packet's own JSON */
        if (mpack) {
            data.mpack = (const uint8_t *)w->mpack.data;
            data.mpack_len = w->mpack.len;
        }
        int rc = adapter_publish(w->adapter, send_before_ack, &link, stream, stream_len, &data);
        publish_sent(&link, rc);
        if (rc && log_sampled(&w->share_failures))
            LOG_WARN("cannot share an entry of %.*s: %s (%llu so far)", (int)stream_len, stream,
                     strerror(-rc), (unsigned long long)w->share_failures);
        else if (rc == 0)
            STATS_ADD(w->stats->adapter_out, 1);
    }
    fanout_packet_release(&pk);
}

/* The proof of this process's publishes, bound to where they go: the settings a reload may
 * change (adapter, its key or stream, the Redis server), so a proof of the old ones never skips
 * a publish to the new ones. */
static publish_proof_t *proof_new(worker_t *w)
{
    const cfg_t *c = w->cfg;
    buf_t target;
    buf_init(&target);
    buf_printf(&target, "%d\n%s\n%s\n%d\n%s\n%d\n%d\n%s", (int)c->adapter, c->redis_key,
               c->stream_name, c->stream_count, c->redis_host, c->redis_port, c->redis_db,
               c->redis_sentinel_name);
    publish_proof_t *p = publish_proof_new(w->args->ledger, w->args->slot, (int32_t)getpid(),
                                           target.data, target.len, w->stats);
    buf_free(&target);
    return p;
}

/* ---- what the sockets tell the cluster adapter (a sio observer) ---- */

static void on_room_created(void *arg, const char *room, size_t len)
{
    worker_t *w = arg;
    if (w->rsync)
        room_sync_own(w->rsync, room, len, true);
    else
        adapter_room_created(w->adapter, room, len);
}

static void on_room_deleted(void *arg, const char *room, size_t len)
{
    worker_t *w = arg;
    if (w->rsync)
        room_sync_own(w->rsync, room, len, false);
    else
        adapter_room_deleted(w->adapter, room, len);
}

static void on_client_ack(void *arg, sio_socket_t *s, uint64_t id, const char *json, size_t len)
{
    worker_t *w = arg;
    if (w->streams)
        streams_adapter_client_ack(w->streams, sio_socket_id(s), id, json, len);
    else
        adapter_client_ack(w->adapter, sio_socket_id(s), id, json, len);
}

/* The adapter uid of another worker of this server that is set up (or, `starting`, whose block
 * is taken: it may subscribe before its setup ends). */
static bool sibling_uid(worker_t *w, const char *uid, size_t len, bool starting)
{
    uint64_t want[2];
    if (len != sizeof(want))
        return false;
    memcpy(want, uid, sizeof(want));
    uint32_t n = shm_region_slots(w->args->region);
    for (uint32_t i = 0; i < n; i++) {
        stats_worker_t *s = shm_region_slot_stats(w->args->region, i);
        bool live = starting ? STATS_GET(s->role) != STATS_ROLE_FREE : STATS_GET(s->pid) != 0;
        if (i != w->args->slot && live && STATS_GET(s->adapter_uid[0]) == want[0] &&
            STATS_GET(s->adapter_uid[1]) == want[1])
            return true;
    }
    return false;
}

/* The adapter uid of another live worker of this server (see adapter_set_sibling_filter). */
static bool is_sibling_uid(const char *uid, size_t len, void *arg)
{
    return sibling_uid(arg, uid, len, false);
}

/* ---- one broadcast subscriber per server (see relay_role.h) ---- */

/* The subscription is confirmed and, sharded, covered every sibling's rooms when it came up (a
 * sibling that restarts later starts with no room: the holder stays while it sends its list). */
static bool relay_ready(worker_t *w)
{
    return adapter_relay_up(w->adapter) &&
           (!w->rsync || STATS_GET(w->stats->adapter_relay) || room_sync_complete(w->rsync));
}

static void relay_view(uint32_t i, relay_slot_t *out, void *arg)
{
    worker_t *w = arg;
    stats_worker_t *s = shm_region_slot_stats(w->args->region, i);
    /* The master marks a block taken before it forks (its pid comes only after the setup): a
     * sibling still starting already counts, so two workers starting together never both
     * subscribe and both apply what arrives while their subscriptions overlap. */
    out->live = i == w->args->slot || STATS_GET(s->role) != STATS_ROLE_FREE;
    out->draining = STATS_GET(s->draining) != 0;
    uint64_t held = STATS_GET(s->adapter_relay);
    out->up = held == RELAY_CUT_HOLDS_ALL;
    out->holds = held != RELAY_CUT_HOLDS_NONE;
}

static void mark_failed(worker_t *w, int rc)
{
    if (log_sampled(&w->mark_failures))
        LOG_WARN("cannot publish a relay handover marker yet: %s (%llu so far)", strerror(-rc),
                 (unsigned long long)w->mark_failures);
}

/* Sharded mode: the marker of one channel (see relay_cut.h). */
static int mark_channel(const char *chan, size_t len, void *arg)
{
    worker_t *w = arg;
    int rc = adapter_relay_mark_channel(w->adapter, chan, len);
    if (rc)
        mark_failed(w, rc);
    return rc;
}

/* The cut follows the subscription (`on`: this worker wants it), and the siblings see what this
 * worker holds. */
static void relay_settle(worker_t *w, bool on)
{
    uint32_t n = shm_region_slots(w->args->region);
    relay_others_t others;
    relay_role_others(n, w->args->slot, relay_view, w, &others);
    relay_cut_input_t in = {
        .up = on && relay_ready(w),
        .candidate = relay_role_candidate(n, w->args->slot, relay_view, w),
        .others = others.all   ? RELAY_CUT_HOLDS_ALL
                  : others.any ? RELAY_CUT_HOLDS_SOME
                               : RELAY_CUT_HOLDS_NONE,
    };
    relay_cut_step_t step = relay_cut_update(w->cut, &in, uv_now(&w->loop));
    /* before any marker goes out: a sibling subscribing to a channel after this worker's marker
     * on it must see that this worker takes channels over (see relay_cut.h) */
    STATS_SET(w->stats->adapter_relay, relay_cut_holds(w->cut));
    int rc = 0;
    switch (step) {
    case RELAY_CUT_MARK:
        if (w->rsync) {
            relay_cut_each_mark(w->cut, mark_channel, w); /* unsent ones: asked again */
            break;
        }
        if ((rc = adapter_relay_mark(w->adapter)) == 0)
            break;
        relay_cut_unsent(w->cut); /* sent again on the next update */
        mark_failed(w, rc);
        break;
    case RELAY_CUT_TIMEOUT:
        LOG_WARN("no relay handover marker came back within %d ms: taking the broadcasts over "
                 "without it (one arriving meanwhile may be applied twice)",
                 RELAY_CUT_TIMEOUT_MS);
        break;
    case RELAY_CUT_YIELD:
        LOG_WARN("another worker took the broadcasts over without a relay handover marker "
                 "seen here: letting go (one arriving meanwhile may be applied twice)");
        break;
    case RELAY_CUT_NONE:
        break;
    }
}

/* The holder hands a broadcast of another server to the siblings and applies it; any other
 * subscribed worker (a handover under way) leaves it to the holder. */
static bool relay_broadcast(unsigned nsp, const char *chan, size_t chan_len, const uint8_t *msg,
                            size_t msg_len, void *arg)
{
    worker_t *w = arg;
    uint32_t n = shm_region_slots(w->args->region);
    /* taken as soon as confirmed, not only from the next tick: no broadcast waits for it */
    if (relay_cut_holds(w->cut) != RELAY_CUT_HOLDS_ALL)
        relay_settle(w, relay_role_subscribe(n, w->args->slot, relay_view, w));
    bool mine = w->rsync ? relay_cut_channel_applies(w->cut, chan, chan_len)
                         : relay_cut_applies(w->cut, nsp);
    if (!mine)
        return false;
    int rc = fanout_relay(w->fanout, chan, chan_len, msg, msg_len);
    if (rc < 0 && log_sampled(&w->share_failures))
        LOG_WARN("cannot relay a broadcast on %.*s to the other workers: %s (%llu so far)",
                 (int)chan_len, chan, strerror(-rc), (unsigned long long)w->share_failures);
    return true;
}

/* A relay handover marker of this worker or a sibling (another server's is none of ours). */
static void relay_marked(unsigned nsp, const char *chan, size_t chan_len, const char *uid,
                         size_t uid_len, bool mine, void *arg)
{
    worker_t *w = arg;
    if (!mine && !sibling_uid(w, uid, uid_len, true))
        return;
    if (chan)
        relay_cut_channel_marker(w->cut, chan, chan_len, mine);
    else
        relay_cut_marker(w->cut, nsp, mine);
    STATS_SET(w->stats->adapter_relay, relay_cut_holds(w->cut));
}

/* Sharded mode: a channel of the holder's subscription changed; one confirmed may be marked at
 * once (a room created during a handover is the successor's from its marker on). */
static void relay_channel(const char *chan, size_t len, relay_cut_chan_t ev, void *arg)
{
    worker_t *w = arg;
    uint32_t n = shm_region_slots(w->args->region);
    if (ev != RELAY_CUT_CHAN_CONFIRMED) {
        relay_cut_channel(w->cut, chan, len, ev);
        STATS_SET(w->stats->adapter_relay, relay_cut_holds(w->cut));
        return;
    }
    /* whether a new channel is held at once depends on what the siblings hold now */
    relay_settle(w, relay_role_subscribe(n, w->args->slot, relay_view, w));
    relay_cut_channel(w->cut, chan, len, ev);
    relay_settle(w, relay_role_subscribe(n, w->args->slot, relay_view, w));
}

static void on_relayed(const char *chan, size_t chan_len, const uint8_t *msg, size_t msg_len,
                       void *arg)
{
    worker_t *w = arg;
    if (w->adapter)
        adapter_receive_relayed(w->adapter, chan, chan_len, msg, msg_len);
}

static void on_part_closed(void *arg);

/* Draining: this worker still applies other servers' broadcasts for some namespace (sharded: some
 * channel) and a sibling will take them at its markers, which come through this worker's
 * subscription too. */
static bool relay_hands_over(worker_t *w)
{
    relay_others_t others;
    relay_role_others(shm_region_slots(w->args->region), w->args->slot, relay_view, w, &others);
    return relay_cut_holds(w->cut) != RELAY_CUT_HOLDS_NONE && others.successor;
}

static void close_adapter(worker_t *w)
{
    adapter_t *a = w->adapter;
    w->adapter = NULL; /* the sockets' hooks stop reaching it */
    w->adapter_close_at = 0;
    STATS_SET(w->stats->adapter_relay, 0); /* a sibling takes the broadcasts over */
    adapter_close(a, on_part_closed, w);
    relay_cut_free(w->cut);
    w->cut = NULL;
}

/* Takes or gives up the broadcast subscription (every tick), says what this worker holds, and
 * closes a draining holder's adapter once it handed over. */
static void relay_tick(worker_t *w)
{
    if (!w->adapter)
        return;
    if (w->rsync)
        room_sync_tick(w->rsync, uv_now(&w->loop));
    bool on = relay_role_subscribe(shm_region_slots(w->args->region), w->args->slot, relay_view, w);
    adapter_relay_subscribe(w->adapter, on);
    relay_settle(w, on);
    if (w->adapter_close_at && (!relay_hands_over(w) || uv_now(&w->loop) >= w->adapter_close_at))
        close_adapter(w);
}

/* ---- the siblings' rooms, for the sharded relay holder (see room_sync.h) ---- */

static void sync_send(void *arg, char kind, uint64_t seq, const char *room, size_t len)
{
    worker_t *w = arg;
    int rc = fanout_notice(w->fanout, kind, seq, room, len);
    if (rc < 0 && log_sampled(&w->share_failures))
        LOG_WARN("cannot tell the other workers of room %.*s: %s (%llu so far)", (int)len, room,
                 strerror(-rc), (unsigned long long)w->share_failures);
}

static void sync_own_rooms(void *arg, void (*fn)(const char *room, size_t len, void *fnarg),
                           void *fnarg)
{
    sio_each_room(((worker_t *)arg)->sio, fn, fnarg);
}

static void sync_room(void *arg, uint32_t slot, const char *room, size_t len, bool on)
{
    adapter_relay_room(((worker_t *)arg)->adapter, slot, room, len, on);
}

static void sync_forget(void *arg, uint32_t slot)
{
    adapter_relay_forget(((worker_t *)arg)->adapter, slot);
}

static void sync_doubt(void *arg, uint32_t slot, bool sweep)
{
    adapter_relay_doubt(((worker_t *)arg)->adapter, slot, sweep);
}

static bool sync_live(void *arg, uint32_t slot)
{
    worker_t *w = arg;
    stats_worker_t *st = shm_region_slot_stats(w->args->region, slot);
    return STATS_GET(st->pid) != 0;
}

static void on_notice(uint32_t from, char kind, uint64_t seq, const char *room, size_t len,
                      void *arg)
{
    worker_t *w = arg;
    if (w->rsync)
        room_sync_notice(w->rsync, from, kind, seq, room, len, uv_now(&w->loop));
}

/*
 * Reads wait only while the queues towards the other workers are backlogged (a sibling that
 * cannot keep up): an entry read then would be dropped for its clients, while an entry left in
 * Redis is read a moment later. Pub/sub plays no part: the siblings get entries over local IPC,
 * the PUBLISH for other servers goes on the reading connection itself, and other servers miss what
 * is published while their own subscription is closed (a partition outlives it only past
 * REDIS_PUBSUB_DEAD_AFTER_MS), as with Node's adapter.
 */
static bool siblings_keep_up(void *arg)
{
    worker_t *w = arg;
    return !fanout_backlogged(w->fanout);
}

/* ---- work descriptors from the master ---- */

static void on_desc_add(const char *name, size_t len, void *arg)
{
    worker_t *w = arg;
    reader_add(w->reader, w->cur_pool, name, len);
}

static void on_desc_remove(const char *name, size_t len, void *arg)
{
    worker_t *w = arg;
    reader_remove(w->reader, name, len);
}

static void on_desc_event(const char *name, size_t len, void *arg)
{
    worker_t *w = arg;
    reader_event(w->reader, name, len);
}

static void on_fenced(void *arg, uint64_t seq)
{
    worker_t *w = arg;
    STATS_SET(w->stats->fence_done, seq);
}

static void handle_desc(worker_t *w, uint16_t type, uint32_t len)
{
    int rc = -EPROTO;
    uint32_t seq;
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
    case WORKDESC_STREAM_EVENT: {
        uint32_t pool; /* the stream's pool, not a pool being listed */
        rc = workdesc_decode(w->rec, len, &pool, on_desc_event, w);
        break;
    }
    case WORKDESC_EVENTS: {
        uint32_t up;
        rc = workdesc_decode(w->rec, len, &up, NULL, NULL);
        if (rc == 0)
            reader_events(w->reader, up != 0);
        break;
    }
    case WORKDESC_FENCE:
        rc = workdesc_decode(w->rec, len, &seq, NULL, NULL);
        if (rc == 0)
            reader_fence(w->reader, seq, on_fenced, w);
        break;
    }
    if (rc)
        LOG_ERROR("ignoring a malformed work descriptor (type %u)", type);
}

static void on_ring_hold(uv_timer_t *t);

/*
 * Pops up to a budget of descriptors; true when the ring is empty and the worker may sleep.
 * While the reader's batches are paced (entries flow), it does not sleep on the ring: the master
 * then pushes key events without waking it (no eventfd write, no wake-up per event) and the
 * reader pulls them before its next batch; the hold timer bounds the wait to BATCH_DELAY.
 */
static bool drain_ring(worker_t *w)
{
    w->draining = true;
    bool empty = false;
    for (int n = 0; n < RING_BUDGET && !empty; n++) {
        uint16_t type;
        uint32_t len;
        int rc = ring_pop(w->ring, &type, w->rec, w->rec_cap, &len);
        if (rc == -EMSGSIZE) {
            w->rec = xrealloc(w->rec, len);
            w->rec_cap = len;
            continue;
        }
        if (rc == -EAGAIN) {
            if (!w->stopping && reader_events_may_wait(w->reader)) {
                ring_wake_done(w->ring);
                uv_timer_start(&w->ring_hold, on_ring_hold, (uint64_t)w->cfg->batch_delay_ms, 0);
                empty = true;
            } else if (ring_prepare_sleep(w->ring)) {
                uv_timer_stop(&w->ring_hold);
                empty = true;
            } else {
                ring_wake_done(w->ring);
            }
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
    w->draining = false;
    return empty;
}

static void on_ring_again(uv_idle_t *h)
{
    worker_t *w = h->data;
    if (drain_ring(w))
        uv_idle_stop(h);
}

static void on_ring_hold(uv_timer_t *t)
{
    worker_t *w = t->data;
    if (!drain_ring(w))
        uv_idle_start(&w->ring_again, on_ring_again);
}

/* The reader's next batch is due: the key events held in the ring go into it. */
static void on_reader_pull(void *arg)
{
    worker_t *w = arg;
    if (w->draining)
        return; /* called from a record being applied: the drain goes on */
    if (!drain_ring(w))
        uv_idle_start(&w->ring_again, on_ring_again);
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

static int on_connection(uv_stream_t *server, void *arg)
{
    worker_t *w = arg;
    if (w->stopping)
        return 0;
    int rc = http_server_accept(w->http, server, NULL);
    /* EMFILE repeats on every wake-up of the listener while descriptors are short */
    if (rc && rc != -EAGAIN && log_sampled(&w->accept_failures))
        LOG_WARN("accept failed: %s (%llu so far)", uv_strerror(rc),
                 (unsigned long long)w->accept_failures);
    return rc;
}

static size_t live_connections(void *arg)
{
    worker_t *w = arg;
    http_stats_t hs;
    http_server_stats(w->http, &hs);
    return hs.conn.live;
}

/* Every descriptor the hard limit allows (a connection is one), and the connections that fit. */
static size_t connection_budget(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return acceptor_max_live(1024);
    if (rl.rlim_cur < rl.rlim_max) {
        rlim_t soft = rl.rlim_cur;
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            rl.rlim_cur = soft;
    }
    return acceptor_max_live(rl.rlim_cur == RLIM_INFINITY ? 1u << 20 : (size_t)rl.rlim_cur);
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
    uv_close((uv_handle_t *)&w->ring_hold, on_closed);
    uv_close((uv_handle_t *)&w->sigterm, on_closed);
    uv_close((uv_handle_t *)&w->sigint, on_closed);
    /* top-down: what is left are connections closing and the layers' own handles */
    fanout_free(w->fanout);
    publish_proof_free(w->proof); /* the reader is closed: no publish reply is left to come */
    http_server_free(w->http);
    eio_endpoint_free(w->eio);
    conformance_free(w->conformance);
    seed_events_free(w->seed);
    sio_free(w->sio);
    bridge_hooks_free(w->hooks);
    presence_free(w->presence);
    inbound_free(w->inbound);
    presence_route_free(w->presence_route);
    buf_free(&w->presence_channel);
    w->hooks = NULL;
    w->presence = NULL;
    w->inbound = NULL;
    w->presence_route = NULL;
    eio_echo_free(w->echo);
    ops_routes_free(w->ops);
    router_free(w->router);
    cors_free(w->cors);
    w->fanout = NULL;
    w->http = NULL;
    w->eio = NULL;
    w->sio = NULL;
    /* every Redis client (reader, adapter, recovery, bridge) is closed by now */
    redis_topology_close(w->topology, NULL, NULL);
    w->topology = NULL;
}

static void on_part_closed(void *arg)
{
    finish(arg);
}

/* No relay starts once the sessions are closed: the directory goes (the topology goes last, in
 * finish). */
static void on_streams_closed(void *arg)
{
    worker_t *w = arg;
    peer_dir_t *pd = w->peers;
    w->peers = NULL;
    if (w->eio)
        eio_endpoint_relay(w->eio, NULL); /* a late request on a kept-alive connection */
    if (pd)
        peer_dir_close(pd, on_part_closed, w);
    else
        on_part_closed(w);
}

/* The records of the sessions just closed are saved: the adapter may go now. */
static void on_restore_closed(void *arg)
{
    worker_t *w = arg;
    w->restore = NULL;
    if (w->streams) {
        streams_adapter_t *sa = w->streams;
        w->closing++;
        w->streams = NULL; /* the sockets' hooks stop reaching it */
        streams_adapter_close(sa, on_streams_closed, w);
    } else if (w->peers) {
        w->closing++;
        on_streams_closed(w);
    }
    if (w->adapter) {
        w->closing++;
        /* a holder whose successor is subscribing keeps applying until its marker (or timeout) */
        if (relay_hands_over(w))
            w->adapter_close_at = uv_now(&w->loop) + RELAY_CUT_TIMEOUT_MS;
        else
            close_adapter(w);
    }
    finish(w);
}

static void on_srestore_closed(void *arg)
{
    worker_t *w = arg;
    w->srestore = NULL;
    on_restore_closed(w);
}

static void on_sessions_closed(void *arg)
{
    worker_t *w = arg;
    if (w->bridge) {
        /* the sockets' counts are sent: this writer goes, after what is queued */
        presence_stop(w->presence);
        w->closing++;
        redis_client_close(w->bridge, on_part_closed, w);
        w->bridge = NULL;
    }
    if (w->srestore)
        streams_restore_close(w->srestore, on_srestore_closed, w);
    else if (w->restore)
        restore_close(w->restore, on_restore_closed, w);
    else
        on_restore_closed(w);
}

/* Entries read before the stop are delivered and acknowledged first; then clients go. */
static void on_reader_stopped(void *arg)
{
    worker_t *w = arg;
    w->reader = NULL;
    reader_io_free(w->reader_io);
    w->reader_io = NULL;
    eio_close_all(eio_endpoint_sessions(w->eio), on_sessions_closed, w);
}

static void on_grace(uv_timer_t *t)
{
    worker_t *w = t->data;
    /* a client whose engine opened here and whose CONNECT is delayed (a busy client or box) would
     * otherwise see a close before any connect: a failed connect, not a disconnect */
    if (w->sio && sio_connecting(w->sio) && uv_now(&w->loop) < w->connect_grace_until) {
        uv_timer_start(&w->grace, on_grace, CONNECT_POLL_MS, 0);
        return;
    }
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
    acceptor_close(w->acceptor);
    w->acceptor = NULL;
    w->closing = 1;
    /* a client accepted a moment ago gets its Socket.IO connect before the 1001, so it sees a
     * normal disconnect and reconnects rather than a failed connect */
    w->connect_grace_until = uv_now(&w->loop) + ACCEPT_GRACE_MS + CONNECT_GRACE_MS;
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
              (!w->adapter || adapter_connected(w->adapter)) &&
              (!w->streams || streams_adapter_connected(w->streams));
    STATS_SET(w->stats->redis_connected, up);
    STATS_ADD(w->stats->heartbeat, 1);
    relay_tick(w);
    uint64_t rss;
    if (limits_rss_self(&rss, NULL) == 0)
        STATS_SET(w->stats->rss_bytes, rss);
    stats_window_tick(w->stats, wall_ms());
    if (w->bridge)
        presence_tick(w->presence, wall_ms());
    if (w->http) {
        /* the transport counts in plain fields on its hot path; published here */
        http_stats_t hs;
        http_server_stats(w->http, &hs);
        STATS_SET(w->stats->bytes_in, hs.conn.bytes_in);
        STATS_SET(w->stats->bytes_out, hs.conn.bytes_out);
        STATS_SET(w->stats->slow_clients, hs.conn.slow_consumers);
    }
    if (w->stopping && uv_now(&w->loop) >= w->stop_deadline) {
        LOG_WARN("shutdown timeout: exiting with work in progress (unacknowledged entries stay "
                 "pending for the next start)");
        _exit(0);
    }
}

/* ---- setup ---- */

/* ---- client events, presence and per-user limits ---- */

static void on_bridge_state(redis_client_t *c, bool up, void *arg)
{
    (void)c;
    worker_t *w = arg;
    /* Redis may have lost this worker's counts, or missed changes meanwhile: rewrite them */
    if (up && !w->bridge_up)
        presence_resync(w->presence, wall_ms());
    w->bridge_up = up;
}

static void on_bridge_message(redis_client_t *c, const redis_push_t *m, void *arg)
{
    (void)c;
    worker_t *w = arg;
    if (m->channel_len == w->presence_channel.len &&
        memcmp(m->channel, w->presence_channel.data, m->channel_len) == 0)
        bridge_hooks_presence_event(w->hooks, m->data, m->len);
}

static int bridge_setup(worker_t *w)
{
    const cfg_t *cfg = w->cfg;
    if (!cfg->inbound_stream[0] && !cfg->presence && cfg->max_connections_per_user <= 0)
        return 0;
    char host[128] = "localhost";
    gethostname(host, sizeof(host) - 1);
    snprintf(w->writer, sizeof(w->writer), "%s:%d:%u:%ld", host, cfg->port, w->args->index,
             (long)getpid());
    int rc;
    static const redis_client_cbs_t cbs = {.state = on_bridge_state, .message = on_bridge_message};
    w->bridge = redis_client_new(w->topology, "bridge", &cbs, w);
    bridge_redis_t ops = bridge_redis_over_client(w->bridge);
    w->inbound = inbound_new(&ops, cfg, w->writer, w->stats);
    w->presence = presence_new(&ops, cfg, w->writer, w->stats);
    if ((rc = bridge_hooks_new(&w->hooks, w->sio, w->fanout, w->presence, w->inbound)))
        return rc;
    if (cfg->presence) {
        presence_channel(&w->presence_channel, cfg->redis_key);
        redis_client_subscribe(w->bridge, REDIS_SUB_CHANNEL, w->presence_channel.data,
                               w->presence_channel.len);
        w->presence_route = presence_route_new(w->router, &ops, cfg);
    }
    return 0;
}

/* Which way client writes go, once per start (the first worker's line stands for the others:
 * they run on the same kernel with the same settings). */
static void log_write_path(const worker_t *w)
{
    http_stats_t st;
    http_server_stats(w->http, &st);
    if (w->args->slot != 0)
        return;
    if (st.conn.io_uring)
        LOG_INFO("client writes: batched through io_uring (IO_URING=auto)");
    else if (st.conn.io_uring_err)
        LOG_INFO("client writes: one syscall per connection (io_uring unavailable: %s)",
                 strerror(-st.conn.io_uring_err));
    else
        LOG_INFO("client writes: one syscall per connection (IO_URING=off)");
}

/* The layers that serve clients, bottom-up: HTTP, Engine.IO, Socket.IO, fanout, recovery. */
static int clients_setup(worker_t *w)
{
    const cfg_t *cfg = w->cfg;
    bool conformance = cfg->conformance;
    http_limits_t lim = {
        .max_header_bytes = HTTP_DEFAULT_MAX_HEADER_BYTES,
        .max_body = (size_t)cfg->max_payload,
        .header_timeout_ms = (uint64_t)cfg->http_header_timeout_ms,
        .body_timeout_ms = (uint64_t)cfg->http_body_timeout_ms,
        .keepalive_timeout_ms = (uint64_t)cfg->http_keepalive_timeout_ms,
        .max_ws_message = (size_t)cfg->max_payload,
        .max_outq_bytes = 4u << 20,
        .close_timeout_ms = 1000,
        .per_message_deflate = cfg->per_message_deflate,
        .no_io_uring = !cfg->io_uring,
    };
    /* sids name this server too: another server relays a request for one of them here */
    char relay_tag[RELAY_HELLO_TAG_LEN + 1];
    snprintf(relay_tag, sizeof(relay_tag), "%.*s", RELAY_HELLO_TAG_LEN, w->args->server_id);
    w->router = router_new();
    int rc = http_server_new(&w->http, &w->loop, &lim, relay_tag, w->router, w->stats);
    if (rc)
        return rc;
    log_write_path(w);
    w->cors = cors_new(cfg->cors_origins);
    ops_routes_config_t ops = {w->args->region, w->args->slot, cfg->debug_page, w->cors};
    w->ops = ops_routes_new(w->router, &ops);
    eio_endpoint_config_t ec = {
        .sessions =
            {
                .ping_interval_ms = (uint64_t)cfg->ping_interval_ms,
                .ping_timeout_ms = (uint64_t)cfg->ping_timeout_ms,
                .upgrade_timeout_ms = UPGRADE_TIMEOUT_MS,
                .ready_timeout_ms = (uint64_t)cfg->connect_timeout_ms,
                .max_payload = cfg->max_payload,
                .slot = w->args->slot,
                .max_poll_queue = POLL_QUEUE_MAX,
            },
        .polling = (cfg->transports & CONFIG_TRANSPORT_POLLING) != 0,
        .websocket = (cfg->transports & CONFIG_TRANSPORT_WEBSOCKET) != 0,
        .cors = w->cors,
        .workers = cfg->cluster_workers,
        .socks = w->args->socks,
        .region = w->args->region,
    };
    snprintf(ec.sessions.tag, sizeof(ec.sessions.tag), "%.*s", EIO_SID_TAG_LEN, w->args->server_id);
    if ((rc = eio_endpoint_new(&w->eio, &w->loop, &ec, w->http, w->stats)))
        return rc;
    if ((rc = sio_new(&w->sio, &w->loop, cfg, conformance && !cfg->namespaces_set, w->stats)))
        return rc;
    if (conformance && (rc = conformance_new(&w->conformance, &w->loop, w->sio)))
        return rc;
    w->seed = seed_events_new(w->sio);
    eio_endpoint_serve(w->eio, w->router, "/socket.io/", sio_handlers(w->sio));
    if (conformance) {
        w->echo = eio_echo_new();
        eio_endpoint_serve(w->eio, w->router, "/engine.io/", eio_echo_handlers(w->echo));
    }
    /* also with one worker: a respawn or a reload runs two slots side by side for a while */
    if ((rc = fanout_new(&w->fanout, &w->loop, w->sio, w->args->region, w->args->socks,
                         w->args->slot, w->stats)))
        return rc;
    fanout_keep_ledger(w->fanout, w->args->ledger, (int32_t)getpid());
    w->proof = proof_new(w);
    /* before recovery: a CONNECT over the per-user limit is refused before a session is restored */
    if ((rc = bridge_setup(w)))
        return rc;
    /* streams mode: the offsets are the adapter stream's ids, not the rooms' */
    if (cfg->connection_recovery && cfg->adapter != CONFIG_ADAPTER_STREAMS)
        w->restore = restore_new(w->topology, cfg, w->sio, w->fanout, w->stats, w->args->kept,
                                 w->args->slot);
    return 0;
}

/* Servers that share an adapter share a Redis: each announces itself there, so that a request
 * for one's session that a load balancer sends to another is relayed to it. */
static void servers_setup(worker_t *w)
{
    _Static_assert(PEER_DIR_TAG_LEN == EIO_SID_TAG_LEN, "the tag announced is the sid's");
    w->peers = peer_dir_new(w->topology, w->cfg, w->args->server_id);
    eio_endpoint_relay(w->eio, w->peers);
}

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
    redis_topology_opts_t o;
    redis_topology_opts_from_cfg(&o, cfg);
    buf_t err;
    buf_init(&err);
    rc = redis_topology_new(&w->topology, &w->loop, &o, &err);
    if (rc)
        LOG_ERROR("%s", err.data ? err.data : "cannot set up the Redis topology");
    buf_free(&err);
    if (rc)
        return rc;
    if ((rc = clients_setup(w)))
        return rc;
    if (cfg->adapter != CONFIG_ADAPTER_OFF)
        servers_setup(w);
    if (cfg->adapter == CONFIG_ADAPTER_STREAMS) {
        adapter_host_t host;
        adapter_host_init(&host, w->fanout);
        if ((rc = streams_adapter_new(&w->streams, w->topology, cfg, &host, w->stats)))
            return rc;
        if (cfg->connection_recovery)
            w->srestore = streams_restore_new(cfg, w->topology, w->sio, w->streams, w->stats);
        sio_observe(w->sio, &(sio_observer_t){.arg = w, .client_ack = on_client_ack});
    } else if (cfg->cluster_workers > 1 || cfg->adapter != CONFIG_ADAPTER_OFF) {
        char prefix[160];
        if (cfg->adapter == CONFIG_ADAPTER_OFF)
            snprintf(prefix, sizeof(prefix), "streamio-%s", w->args->server_id);
        else
            snprintf(prefix, sizeof(prefix), "%s", cfg->redis_key);
        adapter_mode_t mode = cfg->adapter == CONFIG_ADAPTER_OFF       ? ADAPTER_MODE_PRIVATE
                              : cfg->adapter == CONFIG_ADAPTER_SHARDED ? ADAPTER_MODE_SHARDED
                                                                       : ADAPTER_MODE_CLASSIC;
        adapter_host_t host;
        adapter_host_init(&host, w->fanout);
        if ((rc = adapter_new(&w->adapter, w->topology, cfg, mode, prefix, &host, w->stats)))
            return rc;
        adapter_set_sibling_filter(w->adapter, is_sibling_uid, w);
        w->cut =
            relay_cut_new((unsigned)host.nnsp,
                          mode == ADAPTER_MODE_SHARDED ? RELAY_CUT_CHANNELS : RELAY_CUT_NAMESPACES,
                          RELAY_CUT_TIMEOUT_MS);
        adapter_set_relay(w->adapter, relay_broadcast, relay_marked, relay_channel, w);
        fanout_on_relayed(w->fanout, on_relayed, w);
        if (mode == ADAPTER_MODE_SHARDED) {
            room_sync_io_t io = {sync_send,  sync_own_rooms, sync_room, sync_forget,
                                 sync_doubt, sync_live,      w};
            /* numbered from the pid: a successor in this slot never continues these numbers */
            w->rsync = room_sync_new(shm_region_slots(w->args->region), w->args->slot,
                                     (uint64_t)getpid() << 32 | 1, &io);
            fanout_on_notice(w->fanout, on_notice, w);
        }
        relay_tick(w);
        sio_observe(w->sio, &(sio_observer_t){.arg = w,
                                              .room_created = on_room_created,
                                              .room_deleted = on_room_deleted,
                                              .client_ack = on_client_ack});
    }
    char host[128] = "localhost";
    gethostname(host, sizeof(host) - 1);
    char consumer[256];
    snprintf(consumer, sizeof(consumer), "%s:%d:%u", host, cfg->port, w->args->index);
    w->reader_io = reader_io_new(w->topology, w->stats);
    w->reader = reader_new(reader_io_redis(w->reader_io), reader_io_clock(w->reader_io), cfg,
                           consumer, w->stats, on_entry, w);
    reader_set_gate(w->reader, siblings_keep_up, w);
    w->ring = shm_region_ring(w->args->region, w->args->slot);
    w->rec_cap = 64 * 1024;
    w->rec = xmalloc(w->rec_cap);
    if (!w->ring)
        return -EINVAL;
    uv_idle_init(&w->loop, &w->ring_again);
    w->ring_again.data = w;
    uv_timer_init(&w->loop, &w->ring_hold);
    w->ring_hold.data = w;
    reader_set_pull(w->reader, on_reader_pull, w);
    if ((rc = uv_poll_init(&w->loop, &w->ring_poll,
                           shm_region_wake_fd(w->args->region, w->args->slot))))
        return rc;
    w->ring_poll.data = w;
    uv_poll_start(&w->ring_poll, UV_READABLE, on_ring_wake);
    if (!drain_ring(w))
        uv_idle_start(&w->ring_again, on_ring_again);
    return acceptor_new(&w->acceptor, &w->loop, w->args->listen_fd, connection_budget(),
                        on_connection, live_connections, w);
}

int worker_main(const worker_args_t *args)
{
    worker_t *w = xcalloc(1, sizeof(*w));
    w->args = args;
    w->cfg = args->cfg;
    w->stats = shm_region_slot_stats(args->region, args->slot);
    buf_init(&w->packet);
    buf_init(&w->mpack);
    buf_init(&w->presence_channel);
    int rc = setup(w);
    if (rc) {
        LOG_ERROR("worker setup failed: %s", uv_strerror(rc));
        return 2;
    }
    STATS_SET(w->stats->started_ms, wall_ms());
    STATS_SET(w->stats->memory_high_water, (uint64_t)w->cfg->memory_high_water_mb << 20);
    STATS_SET(w->stats->pid, getpid());
    if (w->rsync) /* the siblings accept datagrams from a slot once its pid is set */
        room_sync_start(w->rsync);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    room_sync_free(w->rsync);
    int closed = uv_loop_close(&w->loop);
    if (closed)
        LOG_WARN("worker loop closed with handles still open");
    buf_free(&w->packet);
    buf_free(&w->mpack);
    free(w->rec);
    free(w);
    LOG_INFO("worker drained, exiting");
    return 0;
}
