/*
 * redis_conn: one logical connection to one Redis server on a libuv loop, kept alive across
 * failures; the building block of redis_client, used by master and workers alike. It owns:
 *  - the transport (redis_link: TCP + keepalive, optional TLS) and hiredis' RESP reader;
 *  - the handshake, pipelined on every connect: AUTH [user] password, SELECT db, CLIENT
 *    SETNAME, CLIENT ID, and ROLE when a primary is required (Sentinel: a replica is never
 *    written to); usable ("up") only once every answer came back good;
 *  - the pipeline: commands formatted with redisFormatCommandArgv, replies matched in order to
 *    per-command callbacks, a bound on commands in flight and on bytes not yet written;
 *  - deadlines: connect (link + handshake) and command: when the oldest command gets no reply
 *    within the command timeout (+ its own BLOCK time) the connection is dropped, since RESP is
 *    ordered and one command cannot be cancelled;
 *  - reconnect with jittered exponential backoff, and re-targeting to another address;
 *  - pub/sub of the three kinds: the set of wanted subscriptions is re-sent after every
 *    reconnect, pushes go to the message callback, and a subscription the server ends (Redis'
 *    sunsubscribe when a slot moves, or an error such as MOVED) is reported, not retried.
 * It never routes (redis_client does), never interprets user replies, and logs one line per
 * outage, never a password or a message's content.
 *
 * Every function runs on the loop's thread. After redis_conn_close no event, message or
 * sub_lost callback runs; reply callbacks of commands already accepted still run exactly once.
 */
#ifndef STREAMIO_COMMON_REDIS_CONN_H
#define STREAMIO_COMMON_REDIS_CONN_H

#include <hiredis/hiredis.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "common/redis/redis_reply.h"
#include "common/redis/redis_tls.h"

typedef struct redis_conn redis_conn_t;

/*
 * A command's outcome: the reply (borrowed: freed when the callback returns; copy what you
 * keep), or NULL when the connection was lost, timed out or closed first (the command may or
 * may not have run). Runs exactly once per accepted command.
 */
typedef void (*redis_reply_fn)(const redisReply *reply, void *arg);

typedef enum redis_conn_event {
    REDIS_CONN_UP,          /* handshake done: commands are accepted */
    REDIS_CONN_DOWN,        /* an up connection was lost; pending callbacks already ran */
    REDIS_CONN_FAILED,      /* an attempt failed (connect, TLS, timeout); retried later */
    REDIS_CONN_AUTH_FAILED, /* AUTH refused, or a password is needed; retried later */
    REDIS_CONN_NOT_PRIMARY, /* require_primary and ROLE said replica (or READONLY); retried */
} redis_conn_event_t;

typedef struct redis_conn_cbs {
    void (*event)(redis_conn_t *c, redis_conn_event_t ev, void *arg);
    /* A pub/sub message (type REDIS_PUSH_MESSAGE); borrowed for the call. */
    void (*message)(redis_conn_t *c, const redis_push_t *m, void *arg);
    /* The server ended or refused a wanted subscription; it is no longer wanted here. err is the
     * error reply (e.g. MOVED) or NULL for a server-sent unsubscribe (a moved slot). */
    void (*sub_lost)(redis_conn_t *c, redis_sub_kind_t kind, const char *ch, size_t len,
                     const redisReply *err, void *arg);
    /* The server confirmed a wanted subscription (after every reconnect too): from now on its
     * messages reach this connection. */
    void (*subscribed)(redis_conn_t *c, redis_sub_kind_t kind, const char *ch, size_t len,
                       void *arg);
} redis_conn_cbs_t;

/*
 * How long a subscribed connection waits for a silent Redis. Redis keeps what it publishes to a
 * subscriber that does not read for up to 60 s (its default `client-output-buffer-limit pubsub
 * 32mb 8mb 60`), and TCP delivers it once the path heals: a subscription that outlives a shorter
 * partition misses nothing published meanwhile, where a fresh one would. Other connections give
 * up after KEEPALIVE_DEAD_AFTER_MS, and that is what reports the partition.
 */
#define REDIS_PUBSUB_DEAD_AFTER_MS 60000u

typedef struct redis_conn_opts {
    const char *name;     /* log label and CLIENT SETNAME (blanks become '-'); copied */
    const char *username; /* AUTH user; NULL or "" = the default user; copied */
    const char *password; /* AUTH password; NULL or "" = no AUTH unless a user is set; copied */
    int db;               /* SELECT when > 0 */
    redis_tls_t *tls;     /* NULL = plain TCP; borrowed for the connection's life */
    const char *tls_server_name; /* SNI and verified name; NULL or "" = the host; copied */
    bool require_primary;        /* ROLE must say master; a READONLY reply drops the link */
    uint32_t connect_timeout_ms; /* 0 = 3000 */
    uint32_t command_timeout_ms; /* 0 = 5000 */
    uint32_t backoff_min_ms;     /* 0 = 100 */
    uint32_t backoff_max_ms;     /* 0 = 5000 */
    size_t max_inflight;         /* commands awaiting replies; 0 = 65536 */
    size_t max_output;           /* bytes not yet written; 0 = 64 MiB */
} redis_conn_opts_t;

/*
 * Starts connecting to host:port (host NULL: waits for redis_conn_retarget). Borrows loop and
 * cbs; copies opts' strings. Aborts on out-of-memory; never fails otherwise.
 */
redis_conn_t *redis_conn_new(uv_loop_t *loop, const char *host, int port,
                             const redis_conn_opts_t *opts, const redis_conn_cbs_t *cbs, void *arg);

/*
 * Moves to another address: a live link is dropped (a loss: DOWN when it was up) and the next
 * attempt goes to host:port after the usual backoff, or at once when `now` (or when the
 * connection never had an address). No-op for the current address of a live link.
 */
void redis_conn_retarget(redis_conn_t *c, const char *host, int port, bool now);

/*
 * Queues one command (binary-safe argv; lens NULL = strlen). cb may be NULL (reply ignored).
 * 0; -ENOTCONN when not up (cb not called); -ENOBUFS past max_inflight or max_output;
 * -ESHUTDOWN after redis_conn_close.
 */
int redis_conn_command(redis_conn_t *c, redis_reply_fn cb, void *arg, int argc, const char **argv,
                       const size_t *lens);
/* The same for a command that may legitimately wait block_ms before answering (BLOCK, BLPOP):
 * the command timeout is extended by that much for it. */
int redis_conn_command_blocking(redis_conn_t *c, uint32_t block_ms, redis_reply_fn cb, void *arg,
                                int argc, const char **argv, const size_t *lens);
/* The same with a command already in RESP form (redis_client's retries); the bytes are copied.
 * asking: ASKING goes first, in the same admission (its reply is not reported). */
int redis_conn_send(redis_conn_t *c, const char *cmd, size_t len, uint32_t block_ms, bool asking,
                    redis_reply_fn cb, void *arg);

/*
 * Wants a subscription (one channel, pattern or shard channel; copied): sent now when up, and
 * again after every reconnect. 0, or -ESHUTDOWN. Use a connection either for subscriptions or
 * for commands: replies of other commands on a subscribed connection are not told from pushes.
 */
int redis_conn_subscribe(redis_conn_t *c, redis_sub_kind_t kind, const char *ch, size_t len);
/* No longer wants it (UNSUBSCRIBE sent when up). 0, or -ESHUTDOWN. */
int redis_conn_unsubscribe(redis_conn_t *c, redis_sub_kind_t kind, const char *ch, size_t len);
/* Whether the subscription is wanted on this connection. */
bool redis_conn_subscribed(const redis_conn_t *c, redis_sub_kind_t kind, const char *ch,
                           size_t len);

bool redis_conn_up(const redis_conn_t *c);
/* Stops or resumes reading the current link (redis_link_hold_reads); a new link reads. */
void redis_conn_hold_reads(redis_conn_t *c, bool hold);
/* CLIENT ID of the current connection (for CLIENT UNBLOCK); 0 when unknown or not up. */
long long redis_conn_id(const redis_conn_t *c);
/* The address tried or used; host "" before the first target. Borrowed. */
const char *redis_conn_host(const redis_conn_t *c);
int redis_conn_port(const redis_conn_t *c);
/* Commands awaiting a reply. */
size_t redis_conn_inflight(const redis_conn_t *c);
/* Counts each later time the connection comes up into *counter (borrowed; NULL stops). */
void redis_conn_count_reconnects(redis_conn_t *c, _Atomic uint64_t *counter);

/*
 * Closes: no new command is accepted; when up, the replies of commands already sent are
 * awaited (bounded by the command timeout), then the link closes. done(arg) runs once when
 * everything is released (never from this call). No reconnect after this.
 */
void redis_conn_close(redis_conn_t *c, void (*done)(void *arg), void *arg);

#endif
