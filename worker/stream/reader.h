/*
 * reader: reads the streams the master assigned to this worker with XREADGROUP, as consumer
 * `<host>:<port>:<slot>` of the consumer group STREAM_CONSUMER_GROUP (created at id 0 when
 * missing, so entries already in a stream are delivered, as the Node server does).
 * Streams are spread over at most MAX_CONCURRENT_POOLS lanes (one Redis connection each, a pool
 * always in one lane). A lane whose streams fit in one read blocks in Redis (BLOCK READ_BLOCK_MS);
 * a larger lane sweeps its streams MAX_STREAMS_PER_READ at a time and, when a whole sweep found
 * nothing, blocks on all of them at once: a quiet lane costs one idle connection, never a loop.
 * While entries flow (a pass found more than one), a lane's next pass begins BATCH_DELAY after
 * the last one began, so a steady load costs one read per window rather than one per entry.
 * PRIORITY_STREAMS are read by one more lane of their own (its own connection, never shared with
 * ordinary pools, never parked), so a busy ordinary lane cannot delay them.
 * Every entry is handed to the entry callback, which may queue commands (PUBLISH) on the lane's
 * connection; the reader then queues XACK and XDEL behind them on the same connection, so an
 * entry is acknowledged only after what the callback sent. Entries this consumer had read but
 * not acknowledged (a crash, a lost connection) are read again first (XREADGROUP ... 0).
 *
 * Scale and recovery, on one more "service" connection per worker:
 * - a new stream is first probed (XINFO STREAM): if its last entry is older than
 *   STREAM_INACTIVE_TTL it is parked instead of joining its lane. A stream of a lane that sees no
 *   entry for STREAM_INACTIVE_TTL is parked too. Parked streams are never in a blocking read:
 *   they are polled with non-blocking XREAD from their last id, WAKE_BATCH per 100 ms, and go
 *   back to their lane (group check and history first) as soon as one has a new entry.
 * - STREAM_KEYSPACE_EVENTS=true: the master's subscription to `__keyevent@<db>__:xadd` (on
 *   every primary) forwards each event to the worker owning the stream (reader_event) and says
 *   whether it is up (reader_events): Redis sends each notification once per server, not once
 *   per worker. While it is up and Redis publishes the events (CONFIG GET
 *   notify-keyspace-events on svc, on every (re)subscription and every 30 s: E and t), the
 *   reader is in event mode: the ordinary lanes never block; an event marks its stream dirty
 *   and a lane reads only dirty streams, one batch of non-blocking XREADGROUPs in flight (one
 *   per slot group, pipelined), paced by BATCH_DELAY while entries flow; a quiet stream costs
 *   nothing.
 *   New streams skip the probe (read at once when their event came first, else polled once
 *   from the start); parked streams are polled and active ones claimed from in a pass spread
 *   over 10 minutes, plus a fast catch-up of everything after every (re)subscription. Without
 *   event mode, a parked stream still wakes up on its event, and polling runs WAKE_SLOWDOWN
 *   times slower.
 * - every STREAM_CLAIM_IDLE_MS / 2 the active streams are swept with XAUTOCLAIM (min idle
 *   STREAM_CLAIM_IDLE_MS): entries another consumer (a dead server, a slot that no longer exists)
 *   read but never acknowledged are delivered and acknowledged by this worker.
 * - STREAM_DELETE_POLICY=retain: entries are acknowledged but not deleted, and each stream is
 *   trimmed with XTRIM MINID (now - STREAM_RETAIN_MS) at most once a second, after a delivery.
 *
 * Seams: the reader never touches a socket, a hiredis context or a loop itself. It talks to
 * Redis only through reader_redis_ops_t (commands with a reply callback, a blocking read, the
 * cut-short of a blocking read, connection state) and to time only through
 * reader_clock_ops_t, so its lane states run against fakes in tests/unit/test_reader.c. The
 * production tables (Redis layer clients, libuv timers) are in reader_io.h.
 */
#ifndef STREAMIO_WORKER_STREAM_READER_H
#define STREAMIO_WORKER_STREAM_READER_H

#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/config.h"
#include "common/proto/payload.h"
#include "shm/stats.h"

typedef struct reader reader_t;

/* ---- seams ---- */

/* One Redis connection as the ops implement it; opaque to the reader. */
typedef struct reader_conn reader_conn_t;

/* A command's reply (hiredis' parse, borrowed for the call), or NULL when the connection was
 * lost before it (the command may or may not have run). Runs once per accepted command. */
typedef void (*reader_reply_fn)(const redisReply *reply, void *arg);
/* A connection came up (ready for commands) or went down (pending replies already ran NULL). */
typedef void (*reader_state_fn)(reader_conn_t *c, bool up, void *arg);

/*
 * What the reader needs from Redis. `key` names the stream a command is about (a Cluster-aware
 * implementation routes by its slot; NULL: any). A connection keeps itself connected: state
 * runs on every transition, and after a loss the implementation reconnects by itself.
 */
typedef struct reader_redis_ops {
    void *ctx;
    /* A command connection named `name` (logs), connecting at once. Never NULL. */
    reader_conn_t *(*open)(void *ctx, const char *name, reader_state_fn state, void *arg);
    /* Queues one command (binary-safe argv); cb may be NULL. 0, or -ENOTCONN when the
     * connection is not up (cb not called). Commands on one connection run in order. */
    int (*command)(reader_conn_t *c, const char *key, size_t key_len, reader_reply_fn cb, void *arg,
                   int argc, const char **argv, const size_t *lens);
    /* The same for a read that may block up to block_ms in Redis (XREADGROUP ... BLOCK). */
    int (*command_blocking)(reader_conn_t *c, const char *key, size_t key_len, uint32_t block_ms,
                            reader_reply_fn cb, void *arg, int argc, const char **argv,
                            const size_t *lens);
    /* Ends the blocking command of `blocked` now (its reply is then empty), asking through
     * `via`. 0, or -ENOTCONN when either is down or `blocked` cannot be named yet. */
    int (*unblock)(reader_conn_t *via, reader_conn_t *blocked, const char *key, size_t key_len);
    bool (*up)(const reader_conn_t *c);
    /* A digest of the nodes c's commands go to now (its primaries' addresses), nonzero; it
     * changes when they change (a failover). NULL: not known (reader_where gives 0). */
    uint64_t (*where)(reader_conn_t *c);
    /* The hash slot of key when Redis is a Cluster, where the keys of one XREADGROUP or XREAD
     * must share a slot; -1 otherwise. NULL: never a Cluster. */
    int (*slot)(void *ctx, const char *key, size_t key_len);
    /* Graceful close: replies to commands already queued still run, then done(arg) once, never
     * from this call; c is gone after that. */
    void (*close)(reader_conn_t *c, void (*done)(void *arg), void *arg);
} reader_redis_ops_t;

typedef struct reader_timer reader_timer_t;

/* Time as the reader sees it. */
typedef struct reader_clock_ops {
    void *ctx;
    /* Monotonic milliseconds (the loop's time). */
    uint64_t (*now_ms)(void *ctx);
    /* Monotonic nanoseconds, for read latency metrics. */
    uint64_t (*now_ns)(void *ctx);
    /* Wall clock milliseconds since the epoch: stream ids carry it. */
    uint64_t (*wall_ms)(void *ctx);
    /* A stopped timer calling fire(arg). Never NULL. */
    reader_timer_t *(*timer_new)(void *ctx, void (*fire)(void *arg), void *arg);
    /* (Re)arms: first after `after_ms`, then every repeat_ms (0: once). */
    void (*timer_start)(reader_timer_t *t, uint64_t after_ms, uint64_t repeat_ms);
    void (*timer_stop)(reader_timer_t *t);
    /* Stops and releases it; done(arg) runs once, never from this call. */
    void (*timer_close)(reader_timer_t *t, void (*done)(void *arg), void *arg);
} reader_clock_ops_t;

/* ---- the reader ---- */

/*
 * One stream entry, read on `conn`. Everything is borrowed for the duration of the call. The
 * callback may queue commands behind which the entry's XACK must come with reader_send. reread:
 * it was read before and may have been delivered already: it comes from this consumer's own
 * pending list (XREADGROUP ... 0; read by this process or the one this worker replaces), or it
 * was claimed (XAUTOCLAIM) from a consumer that did not acknowledge it. The mark says only
 * "maybe": an unmarked entry is new.
 */
typedef void (*reader_entry_fn)(reader_conn_t *conn, const char *stream, size_t stream_len,
                                const char *id, size_t id_len, const payload_field_t *fields,
                                size_t nfields, bool reread, void *arg);

/* True when entries may be read now. */
typedef bool (*reader_gate_fn)(void *arg);

/* Copies *redis, *clock and consumer; borrows cfg and stats (and the ops' contexts, which must
 * outlive the reader). Never NULL. */
reader_t *reader_new(const reader_redis_ops_t *redis, const reader_clock_ops_t *clock,
                     const cfg_t *cfg, const char *consumer, stats_worker_t *stats,
                     reader_entry_fn fn, void *arg);
/*
 * From an entry callback: queues a command on the connection the entry was read on (`conn`),
 * routed by the entry's stream, so it reaches Redis before the entry's XACK; cb(reply, arg) (cb
 * may be NULL) runs once with its reply, or NULL when the connection went (or closed) with it in
 * flight. 0 or -ENOTCONN (cb not called).
 */
int reader_send(reader_t *r, reader_conn_t *conn, const char *stream, size_t stream_len,
                reader_reply_fn cb, void *arg, int argc, const char **argv, const size_t *lens);
/* Where reader_send's commands on conn go now (the ops' where; 0: not known). */
uint64_t reader_where(const reader_t *r, reader_conn_t *conn);
/* Starts reading `name` as part of `pool` (nothing to do when it is already read). */
void reader_add(reader_t *r, uint32_t pool, const char *name, size_t len);
/* Stops reading `name` (a blocking read holding it is cut short). Entries already read are
 * still delivered and acknowledged. */
void reader_remove(reader_t *r, const char *name, size_t len);
/*
 * STREAM_KEYSPACE_EVENTS: an XADD went to `key` (borrowed; any key: unknown ones are remembered
 * for a moment, a stream often being announced before the master assigns it).
 */
void reader_event(reader_t *r, const char *key, size_t len);
/*
 * Event mode while entries flow: pull(arg) is called before every event-mode batch to apply the
 * key events queued for the reader (reader_event calls made from it go into that batch).
 * reader_events_may_wait is true while a lane's batches are paced by BATCH_DELAY (its last one
 * found more than one entry): events may then wait to be pulled, for up to BATCH_DELAY, instead
 * of waking the worker one by one. NULL: nothing to pull.
 */
void reader_set_pull(reader_t *r, void (*pull)(void *arg), void *arg);
bool reader_events_may_wait(const reader_t *r);
/* STREAM_KEYSPACE_EVENTS: the master's subscription is up (again: what it missed is caught up
 * once Redis is seen to publish the events) or down (back to blocking reads). Starts down. */
void reader_events(reader_t *r, bool up);
/* Stops reading every stream of `pool`. */
void reader_remove_pool(reader_t *r, uint32_t pool);
/*
 * With an adapter (SOCKETIO_REDIS_ADAPTER, where ownership hands streams over between servers):
 * calls done(arg, seq) once nothing is in flight for the streams removed before this call: the
 * reads and claims sent before their removal are answered, and so is what their replies sent
 * (XACK, XDEL, the entry callback's commands). How: a PING routed by one removed stream of each
 * lane and slot, on that lane's connection and on the service connection, twice in a row (the
 * first comes back behind the reads, the second behind what their replies queued); a
 * connection that is down has nothing in flight. Fences run one at a time, in call order.
 */
void reader_fence(reader_t *r, uint64_t seq, void (*done)(void *arg, uint64_t seq), void *arg);
/*
 * Lanes read only while gate(arg) is true (checked before every read, retried every 100 ms): an
 * entry that could not reach every socket now is better left in Redis and read a moment later.
 * They never read in the first 300 ms after their connection came back, so other servers' pub/sub
 * connections, cut by the same Redis restart, are likely back. NULL: always.
 */
void reader_set_gate(reader_t *r, reader_gate_fn fn, void *arg);
size_t reader_streams(const reader_t *r);
/* Streams currently read by a lane (neither parked nor waiting for their probe). */
size_t reader_active(const reader_t *r);
/* Streams parked (idle past STREAM_INACTIVE_TTL, or missing). */
size_t reader_parked(const reader_t *r);
/* True when every lane's connection is up. */
bool reader_connected(const reader_t *r);
/*
 * Drain: no new reads; reads in flight finish (at most READ_BLOCK_MS), their entries are
 * delivered and acknowledged, the connections close, then done(arg) runs and the reader is freed.
 */
void reader_stop(reader_t *r, void (*done)(void *arg), void *arg);

#endif
