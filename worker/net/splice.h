/*
 * splice: relays one accepted client connection to another server, for requests whose session
 * lives there (long-polling behind a load balancer without sticky sessions: the sid names its
 * server). It connects to the peer's address, writes a hello and waits for the exact answer that
 * proves the peer is the server meant (common/proto/relay_hello: the address came from Redis),
 * then writes the bytes it is given first (the request, rebuilt by the HTTP layer), copies bytes
 * both ways until either side is done, and closes both. If the peer cannot be reached (refused,
 * or no connection and answer within SPLICE_CONNECT_MS) or answers anything else, the client gets
 * the `fallback` bytes instead (an HTTP answer it survives) and is closed: nothing of the
 * client's reached the peer.
 *
 * Bounded: one read buffer per direction and at most one write in flight each way (a slow side
 * pauses the other's reads); a connection idle both ways for SPLICE_IDLE_MS is closed. One
 * allocation per relayed connection. Never parses what it carries, never logs.
 */
#ifndef STREAMIO_WORKER_NET_SPLICE_H
#define STREAMIO_WORKER_NET_SPLICE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#define SPLICE_CONNECT_MS 3000
#define SPLICE_IDLE_MS 120000 /* longer than a long poll (pingInterval + pingTimeout) */
#define SPLICE_BUF 16384

/* What relaying has done, for the worker's stats (borrowed for the loop's life; may be NULL). */
typedef struct splice_stats {
    uint64_t relayed;  /* connections relayed to a peer */
    uint64_t failed;   /* peers that could not be reached or gave a wrong answer (fallback sent) */
    uint64_t bytes_in; /* bytes from the client to peers, first bytes included */
    uint64_t bytes_out;
} splice_stats_t;

/* The relays of one owner (a worker's endpoint), so that its shutdown can end them all. */
typedef struct splice_set splice_set_t;

splice_set_t *splice_set_new(uv_loop_t *loop);
/* Closes every relay still running (both connections) and frees the set; their handles finish
 * closing on the loop afterwards. NULL: no-op. */
void splice_set_free(splice_set_t *set);

/* What a relay sends and expects; every part is copied by splice_start. */
typedef struct splice_msgs {
    const void *hello; /* written to the peer once connected (may be empty) */
    size_t hello_len;
    const void *expect; /* the peer's exact answer, awaited before `first` (may be empty) */
    size_t expect_len;
    const void *first; /* written to the peer once it answered, before the client's bytes */
    size_t first_len;
    const void *fallback; /* written to the client when the relay cannot be made */
    size_t fallback_len;
} splice_msgs_t;

/*
 * Takes over client_fd (an accepted, non-blocking TCP socket: closed by the splice in every case,
 * even when this fails) and relays it to `peer` (copied), as a member of set. 0, or a negative
 * libuv error (client_fd closed then).
 */
int splice_start(splice_set_t *set, int client_fd, const struct sockaddr *peer,
                 const splice_msgs_t *m, splice_stats_t *stats);

#endif
