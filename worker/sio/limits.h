/*
 * limits: the admission and rate decisions of one worker, as pure bookkeeping. It owns the
 * connection counters (total, and per client address in a seeded hash map), the per-socket token
 * buckets for events and joins with the violation count that turns a flood into a disconnect, the
 * memory high-water check, and counters of every refusal for metrics.
 *
 * It never does I/O on sockets, never closes or answers anything (the caller sends the `error`
 * event, the 503 or the disconnect), never logs, and reads time and memory only through the
 * seams in limits_config_t, so tests drive it with a fake clock and a fake RSS.
 */
#ifndef STREAMIO_WORKER_SIO_LIMITS_H
#define STREAMIO_WORKER_SIO_LIMITS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "common/config.h"

typedef struct limits limits_t;

/* Refusals of one socket inside this window count towards rate_max_violations. */
#define LIMITS_WINDOW_MS 10000
/* How long one RSS reading is trusted, so admission never reads /proc per connection. */
#define LIMITS_RSS_CACHE_MS 1000
/* IPv6 clients are counted per /64: one subscriber usually holds a whole /64. */
#define LIMITS_IPV6_PREFIX_BYTES 8

/* The `error` event's message for LIMITS_NOTIFY, and the join-room ack's error. */
#define LIMITS_ERR_RATE "Rate limit exceeded"

/* Monotonic milliseconds. */
typedef uint64_t (*limits_clock_fn)(void *arg);
/* Resident set size of this process in bytes; 0 or a negative errno. */
typedef int (*limits_rss_fn)(uint64_t *bytes, void *arg);

/* The default limits_rss_fn: this process's RSS from /proc/self/statm (arg unused). */
int limits_rss_self(uint64_t *bytes, void *arg);

/* A token bucket: per_sec tokens a second, holding at most burst; per_sec 0 = unlimited. */
typedef struct limits_rate {
    uint32_t per_sec;
    uint32_t burst;
} limits_rate_t;

typedef struct limits_config {
    uint32_t max_connections;   /* this worker; 0 = unlimited */
    uint32_t max_per_ip;        /* this worker, per address (IPv6: per /64); 0 = unlimited */
    uint64_t memory_high_bytes; /* RSS at which new connections are shed; 0 = off */
    limits_rate_t events;       /* Socket.IO packets a socket may send */
    limits_rate_t joins;        /* join-room events a socket may send */
    uint32_t max_violations;    /* refusals in LIMITS_WINDOW_MS that disconnect; 0 = never */
    uint64_t hash_seed[2];      /* SipHash key of the address map; {0,0} = from getrandom */
    limits_clock_fn clock;      /* NULL = CLOCK_MONOTONIC */
    limits_rss_fn rss;          /* NULL = /proc/self/statm */
    void *arg;                  /* passed to clock and rss */
} limits_config_t;

/*
 * Per-worker settings from the server-wide configuration: MAX_CONNECTIONS is split evenly over
 * `workers` (rounded up), the other limits apply as they are. Seams are left NULL.
 */
void limits_config_from_cfg(limits_config_t *out, const cfg_t *cfg, int workers);

/* Copies conf. Never NULL. */
limits_t *limits_new(const limits_config_t *conf);
/* NULL is a no-op. */
void limits_free(limits_t *l);

/*
 * Admits a new connection from `peer` (AF_INET or AF_INET6; other families count only towards
 * the total) and counts it. Checks in this order: memory high-water, total, per address.
 * Returns 0 (the caller must call limits_conn_release with the same address when it closes);
 * -EBUSY memory high-water reached; -ENFILE the worker is full; -EMFILE this address has too
 * many connections. Nothing is counted on error.
 */
int limits_conn_admit(limits_t *l, const struct sockaddr *peer);
/* Forgets one connection admitted for `peer`. Unknown addresses are ignored. */
void limits_conn_release(limits_t *l, const struct sockaddr *peer);
/* Connections currently admitted, in total and for the address of `peer`. */
size_t limits_conn_count(const limits_t *l);
size_t limits_conn_count_ip(const limits_t *l, const struct sockaddr *peer);

/* The clear message for a limits_conn_admit error (HTTP 503 body, log line). */
const char *limits_strerror(int rc);

/*
 * Current RSS above the high-water mark (false when the check is off or RSS cannot be read).
 * Reads RSS at most once per LIMITS_RSS_CACHE_MS.
 */
bool limits_memory_high(limits_t *l);

/* Per-socket state, embedded in the caller's socket; initialise with limits_socket_init. */
typedef struct limits_socket {
    uint64_t events_milli, joins_milli; /* tokens x 1000 */
    uint64_t events_ms, joins_ms;       /* last refill */
    uint64_t window_ms;                 /* start of the violation window */
    uint32_t violations;
} limits_socket_t;

typedef enum limits_verdict {
    LIMITS_PASS = 0,   /* handle the packet */
    LIMITS_NOTIFY = 1, /* drop it and send the `error` event (first refusal of the window) */
    LIMITS_DROP = 2,   /* drop it silently (already told in this window) */
    LIMITS_KICK = 3,   /* persistent abuse: disconnect the socket */
} limits_verdict_t;

/* Both buckets start full. */
void limits_socket_init(limits_t *l, limits_socket_t *s);
/* One Socket.IO packet from the socket (call for every packet, joins included). */
limits_verdict_t limits_event(limits_t *l, limits_socket_t *s);
/* One join-room, after limits_event passed. */
limits_verdict_t limits_join(limits_t *l, limits_socket_t *s);

typedef struct limits_stats {
    uint64_t refused_memory, refused_total, refused_ip; /* limits_conn_admit errors */
    uint64_t events_refused, joins_refused;             /* every refusal, KICK included */
    uint64_t kicked;                                    /* KICK verdicts */
} limits_stats_t;

void limits_get_stats(const limits_t *l, limits_stats_t *out);

#endif
