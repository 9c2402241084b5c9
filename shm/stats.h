/*
 * stats: the layout of the counters that live in the shared region, one block per worker slot
 * (written by that worker) and one global block (written by the master). Every field is a
 * relaxed atomic: readers want a recent value, never a consistent snapshot across fields, and
 * no process may ever block another to read them. /health and the metrics read these.
 */
#ifndef STREAMIO_SHM_STATS_H
#define STREAMIO_SHM_STATS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

enum stats_role {
    STATS_ROLE_FREE = 0,     /* no process on this block */
    STATS_ROLE_STARTING = 1, /* a new generation, not serving yet in /health */
    STATS_ROLE_ACTIVE = 2,   /* the current process of its worker number */
    STATS_ROLE_RETIRING = 3, /* replaced; draining */
};

/* Histogram upper bounds (the last bucket is +Inf). Shared by writers and /metrics. */
#define STATS_LATENCY_BUCKETS 12
#define STATS_LATENCY_BOUNDS_US                                                                    \
    {                                                                                              \
        100, 250, 500, 1000, 2500, 5000, 10000, 25000, 100000, 500000, 1000000, UINT64_MAX         \
    }
#define STATS_BATCH_BUCKETS 9
#define STATS_BATCH_BOUNDS                                                                         \
    {                                                                                              \
        0, 1, 2, 5, 10, 25, 50, 100, UINT64_MAX                                                    \
    }

/* Delivery latency (stream entry id time -> the send of its room:message), microseconds. The id
 * has millisecond resolution, so nothing finer than 1 ms is told apart. */
#define STATS_DELIVERY_BUCKETS 15
#define STATS_DELIVERY_BOUNDS_US                                                                   \
    {                                                                                              \
        1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000, 2500000, 5000000,  \
            10000000, 30000000, UINT64_MAX                                                         \
    }

/* Refusals by a limit (README "Limits"): one counter per kind, label limit="<name>" in /metrics. */
enum stats_limit {
    STATS_LIMIT_PER_IP,               /* 503: MAX_CONNECTIONS_PER_IP */
    STATS_LIMIT_TOTAL,                /* 503: MAX_CONNECTIONS */
    STATS_LIMIT_MEMORY,               /* 503: MEMORY_HIGH_WATER_MB */
    STATS_LIMIT_HEADER_SIZE,          /* 431 */
    STATS_LIMIT_BODY_SIZE,            /* 413 */
    STATS_LIMIT_WS_MESSAGE,           /* Close 1009 */
    STATS_LIMIT_RATE_EVENTS,          /* a packet refused by the events bucket */
    STATS_LIMIT_RATE_JOINS,           /* a join-room refused by the joins bucket */
    STATS_LIMIT_OUTPUT_BUFFER,        /* closed: output queue overflow */
    STATS_LIMIT_HEADER_TIMEOUT,       /* 408: HTTP_HEADER_TIMEOUT_MS */
    STATS_LIMIT_BODY_TIMEOUT,         /* 408: HTTP_BODY_TIMEOUT_MS */
    STATS_LIMIT_FIRST_PACKET_TIMEOUT, /* no CONNECT within SOCKETIO_CONNECT_TIMEOUT */
    STATS_LIMIT_ORIGIN,               /* 403: WebSocket Origin not allowed */
    STATS_LIMIT_AUTH,                 /* CONNECT_ERROR: token missing or refused */
    STATS_LIMIT_TOKEN_EXPIRED,        /* disconnected when its token expired */
    STATS_LIMIT_PER_USER,             /* CONNECT_ERROR: MAX_CONNECTIONS_PER_USER */
    STATS_LIMITS
};
#define STATS_LIMIT_NAMES                                                                          \
    {                                                                                              \
        "per_ip", "total", "memory", "header_size", "body_size", "ws_message", "rate_events",      \
            "rate_joins", "output_buffer", "header_timeout", "body_timeout",                       \
            "first_packet_timeout", "origin", "auth", "token_expired", "per_user"                  \
    }

/* Client events not added to SOCKETIO_INBOUND_STREAM, by reason (label reason="<name>"). */
enum stats_inbound {
    STATS_INBOUND_NOT_ACCEPTED, /* outside SOCKETIO_INBOUND_EVENTS */
    STATS_INBOUND_NOT_ALLOWED,  /* refused by the token's publish claim */
    STATS_INBOUND_BINARY,       /* binary attachments */
    STATS_INBOUND_BUSY,         /* too many XADDs waiting for Redis */
    STATS_INBOUND_REDIS,        /* Redis refused it or could not be reached */
    STATS_INBOUND_REASONS
};
#define STATS_INBOUND_NAMES                                                                        \
    {                                                                                              \
        "not_accepted", "not_allowed", "binary", "busy", "redis"                                   \
    }

/*
 * A worker's counters as they were at one moment, for rates and recent quantiles over a window
 * (shm/stats_window.h). Written by the worker, read by any process.
 */
typedef struct stats_snap {
    _Atomic uint64_t ms; /* wall clock when taken; 0 = never */
    _Atomic uint64_t messages_processed;
    _Atomic uint64_t deliveries;
    _Atomic uint64_t delivery_us_sum;
    _Atomic uint64_t delivery[STATS_DELIVERY_BUCKETS];
    _Atomic uint64_t rss_bytes;
} stats_snap_t;

/* Snapshots kept per worker: the newest, the one before it (what readers use), and the one being
 * rewritten, so a reader never sees a snapshot change under it. */
#define STATS_SNAPS 3

typedef struct stats_worker {
    _Atomic uint64_t pid;
    _Atomic uint64_t started_ms;         /* wall clock, ms since the epoch */
    _Atomic uint64_t connections;        /* connected Engine.IO clients */
    _Atomic uint64_t polls_held;         /* long-polling GETs held open, waiting for data */
    _Atomic uint64_t rooms;              /* rooms with at least one local member */
    _Atomic uint64_t streams;            /* streams this worker reads */
    _Atomic uint64_t messages_processed; /* stream entries read and handed on */
    _Atomic uint64_t deliveries;         /* room:message frames queued to local sockets */
    _Atomic uint64_t adapter_in;         /* broadcasts received from other workers/servers */
    _Atomic uint64_t redis_connected;    /* 1 when its reading connections are up */

    /* lifecycle, written by the master at spawn (index, role, generation) or by the worker */
    _Atomic uint64_t index;      /* the worker number (pool owner) this process serves */
    _Atomic uint64_t role;       /* enum stats_role */
    _Atomic uint64_t generation; /* configuration generation it was started with, from 1 */
    _Atomic uint64_t heartbeat;  /* bumped by the worker's loop; the watchdog checks it */
    _Atomic uint64_t draining;   /* 1 once the worker stopped accepting (SIGTERM) */
    /* the pid of the block's last process, set when the master reaps it and kept when the block
     * is reused: what it sent before it died is still heard (shm/local_sock.h) */
    _Atomic uint64_t exited_pid;

    /* traffic, for /metrics; monotonic unless noted */
    _Atomic uint64_t handshakes;       /* Engine.IO handshakes completed */
    _Atomic uint64_t disconnects;      /* sessions closed, any reason */
    _Atomic uint64_t slow_clients;     /* sessions closed because their output queue overflowed */
    _Atomic uint64_t bytes_in;         /* bytes read from clients */
    _Atomic uint64_t bytes_out;        /* bytes written to clients */
    _Atomic uint64_t adapter_out;      /* broadcasts published to other workers/servers */
    _Atomic uint64_t redis_reconnects; /* reconnections of any of its Redis connections */
    _Atomic uint64_t desc_sent;        /* ring records pushed by the master (ring depth = */
    _Atomic uint64_t desc_done;        /* desc_sent - desc_done, popped by the worker) */
    _Atomic uint64_t fence_done;       /* the last WORKDESC_FENCE acknowledged (shm/workdesc.h) */
    _Atomic uint64_t xread_calls;      /* XREADGROUP replies */
    _Atomic uint64_t xread_us_sum;     /* total XREADGROUP round-trip, microseconds */
    _Atomic uint64_t xread_us[STATS_LATENCY_BUCKETS]; /* per bucket, not cumulative */
    _Atomic uint64_t batch_sum;                       /* entries over all replies */
    _Atomic uint64_t batch[STATS_BATCH_BUCKETS];      /* entries per reply, per bucket */

    /* the 16 bytes of its adapter's uid (0 while none): streamioctl names this server's workers
     * among the responders of a cluster request */
    _Atomic uint64_t adapter_uid[2];
    /* 1 while its redis-adapter broadcast subscription is confirmed: it may be the one worker that
     * receives other servers' broadcasts and relays them to its siblings
     * (worker/cluster/relay_role) */
    _Atomic uint64_t adapter_relay;
    /* limit refusals, indexed by enum stats_limit; monotonic */
    _Atomic uint64_t limit_rejections[STATS_LIMITS];
    /* adapter traffic in bytes (the counts are adapter_in/adapter_out above) */
    _Atomic uint64_t adapter_out_bytes; /* messages published, msgpack bytes */
    _Atomic uint64_t adapter_in_bytes;  /* messages received from Redis, own echoes included */
    _Atomic uint64_t pools;             /* pools it reads (set by the master; 0 once retiring) */
    /* entries shared with the other workers of this server over local IPC (worker/siblings) */
    _Atomic uint64_t sibling_out; /* entries this worker read and handed over */
    _Atomic uint64_t sibling_in;  /* frames received from the others */
    /* entries read again (a pending list, a claim) that the ledger proved delivered already, by
     * every sibling or by this process (worker/fanout: not handed out again there) */
    _Atomic uint64_t reread_skipped;
    /* entries read again that were not published to the other servers again: Redis had replied
     * to their publish (worker/cluster/publish_proof) */
    _Atomic uint64_t reread_unpublished;
    /* publishes of entries whose reply came from Redis, noted so in the ledger (same module) */
    _Atomic uint64_t adapter_confirmed;
    /* delivery latency of the entries this worker read, once per entry (never per recipient) */
    _Atomic uint64_t delivery_us_sum;
    _Atomic uint64_t delivery[STATS_DELIVERY_BUCKETS]; /* per bucket, not cumulative */
    _Atomic uint64_t rss_bytes;                        /* resident memory, refreshed by its tick */
    _Atomic uint64_t memory_high_water; /* its MEMORY_HIGH_WATER_MB in bytes; 0 = off */
    /* streams idle past STREAM_INACTIVE_TTL (a gauge), and what brought parked ones back */
    _Atomic uint64_t streams_parked;
    _Atomic uint64_t wakes_polled; /* an XREAD poll of the parked streams found an entry */
    _Atomic uint64_t wakes_event;  /* a keyspace xadd event named it */
    stats_snap_t snaps[STATS_SNAPS];
    _Atomic uint64_t snaps_taken; /* the newest is snaps[(snaps_taken - 1) % STATS_SNAPS] */

    /* both directions: client events, presence, dead letters; monotonic unless noted */
    _Atomic uint64_t inbound_added;                          /* events XADDed */
    _Atomic uint64_t inbound_refused[STATS_INBOUND_REASONS]; /* events not added */
    _Atomic uint64_t presence_users;   /* gauge: distinct users connected to this worker */
    _Atomic uint64_t presence_members; /* gauge: (room, user) pairs of its sockets */
    _Atomic uint64_t presence_events;  /* presence:join / presence:leave published */
    _Atomic uint64_t presence_expired; /* entries of silent servers this worker removed */
    _Atomic uint64_t dead_letters[2];  /* entries moved to STREAM_DEAD_LETTER: poison, oversized */
} stats_worker_t;

typedef struct stats_global {
    _Atomic uint64_t master_pid;
    _Atomic uint64_t started_ms;
    _Atomic uint64_t streams; /* streams known to discovery */
    _Atomic uint64_t pools;
    _Atomic uint64_t redis_connected; /* the master's discovery connection */
    _Atomic uint64_t scan_cycles;     /* completed SCAN passes over the keyspace */
    _Atomic uint64_t workers;         /* configured worker count (CLUSTER_WORKERS) */
    _Atomic uint64_t generation;      /* configuration generation, from 1; +1 per reload */
    _Atomic uint64_t reloads;         /* reloads completed */
    _Atomic uint64_t reload_failures; /* reloads refused (invalid configuration) */
    _Atomic uint64_t respawns;        /* workers restarted after an unexpected exit */

    _Atomic uint64_t redis_reconnects; /* reconnections of the discovery connection */
    _Atomic uint64_t owner_servers;    /* live servers sharing the streams (0: ownership off) */
    _Atomic uint64_t owned_buckets;    /* stream buckets this server reads (of OWNERSHIP_BUCKETS) */
} stats_global_t;

#define STATS_SET(field, v) atomic_store_explicit(&(field), (uint64_t)(v), memory_order_relaxed)
#define STATS_ADD(field, v) atomic_fetch_add_explicit(&(field), (uint64_t)(v), memory_order_relaxed)
#define STATS_SUB(field, v) atomic_fetch_sub_explicit(&(field), (uint64_t)(v), memory_order_relaxed)
#define STATS_GET(field) atomic_load_explicit(&(field), memory_order_relaxed)

/* Counts `v` in the first bucket whose bound is >= v. `bounds` ends with UINT64_MAX, e.g.
 * static const uint64_t b[] = STATS_LATENCY_BOUNDS_US; stats_observe(w->xread_us, b, us); */
static inline void stats_observe(_Atomic uint64_t *buckets, const uint64_t *bounds, uint64_t v)
{
    size_t i = 0;
    while (v > bounds[i])
        i++;
    STATS_ADD(buckets[i], 1);
}

#endif
