/*
 * conn: the transport of one accepted TCP connection in a worker's libuv loop. It owns the
 * socket, the output queue and the close sequence, and nothing of what the bytes mean: what the
 * connection speaks (HTTP/1.1, then WebSocket after an upgrade: worker/http, worker/ws) is a
 * conn_proto_t that receives the bytes read and owns its own per-connection state.
 *
 * It reads into one buffer shared by every connection of the worker (bytes are consumed inside
 * the read callback), and writes each connection's queue once per loop iteration: a uv_check_t
 * flushes every connection with pending output, with one io_uring submit for all of them where
 * the kernel allows (each connection one non-blocking send SQE; else uv_try_write, i.e. one
 * writev each), then with one uv_write of at most 4 buffers (libuv keeps those inline, so it
 * allocates nothing) for what the kernel did not take; the rest follows its callback. Queued bytes
 * are refbufs: a broadcast frame is one reference per connection, never a copy. It never logs and
 * never frees a connection inside a caller's callback: memory goes only after uv_close and every
 * pending write callback completed, right after the owner's close callback returns. Everything here
 * runs on the owning loop's thread, and the process must ignore SIGPIPE (libuv writes with plain
 * writev).
 */
#ifndef STREAMIO_WORKER_NET_CONN_H
#define STREAMIO_WORKER_NET_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "common/refbuf.h"
#include "shm/stats.h"

typedef struct conn_ctx conn_ctx_t; /* per worker: loop, read buffer, flush list, limits, stats */
typedef struct conn conn_t;

/* Limits; a 0 field takes the default below. */
typedef struct conn_limits {
    size_t max_outq_bytes;     /* queued output behind its head; over it: close (slow consumer) */
    uint64_t close_timeout_ms; /* graceful close: wait for the peer's FIN (or Close); extended
                                * while the peer keeps taking a large write */
    bool no_io_uring;          /* IO_URING=off: one write syscall per connection, never a ring */
    /* a seam for tests: every ring send goes through io_uring's worker threads, so that its
     * completion comes after the submit (the path the kernel rarely takes on its own) */
    bool ring_async;
} conn_limits_t;

#define CONN_DEFAULT_MAX_OUTQ_BYTES (4u << 20)
#define CONN_DEFAULT_CLOSE_TIMEOUT_MS 5000

/*
 * What a connection speaks. The transport hands it the bytes it reads and tells it when the
 * connection's memory goes; `state` is the protocol's own per-connection object.
 */
typedef struct conn_proto {
    /* Bytes read (borrowed for the call), only while the connection is open for input. */
    void (*on_data)(conn_t *c, void *state, const char *p, size_t n);
    /* The connection is released: free state. Runs once, after the owner's close callback. */
    void (*on_release)(conn_t *c, void *state);
} conn_proto_t;

/* The owner's notice: the socket is fully closed; the memory goes right after it returns. */
typedef void (*conn_close_fn)(conn_t *c, void *ud);

typedef struct conn_stats {
    uint64_t accepted;
    uint64_t closed;         /* connections fully released */
    uint64_t slow_consumers; /* closed for exceeding max_outq_bytes */
    uint64_t bytes_in;
    uint64_t bytes_out;
    size_t live;           /* accepted and not yet released, closing ones included */
    bool io_uring;         /* writes go out in io_uring batches */
    int io_uring_err;      /* else why: io_uring's setup error (0: turned off by no_io_uring) */
    uint64_t ring_sends;   /* sends completed through the ring */
    uint64_t ring_partial; /* of which the kernel took part or nothing: continued by uv_write */
    uint64_t ring_late;    /* of which completed after their submit (reaped from the ring's fd) */
} conn_stats_t;

/*
 * Creates the per-worker context on `loop` (lim is copied; NULL: all defaults). Allocates the
 * shared 64 KiB read buffer and, unless lim->no_io_uring, an io_uring of 256 entries; when the
 * kernel refuses one (ENOSYS, EPERM under seccomp or io_uring_disabled, ENOMEM) it writes with
 * syscalls instead, and conn_ctx_stats says which (the caller logs it). `stats` (borrowed, may
 * be NULL) counts STATS_LIMIT_OUTPUT_BUFFER. 0, -EINVAL, or a libuv error.
 */
int conn_ctx_new(conn_ctx_t **out, uv_loop_t *loop, const conn_limits_t *lim,
                 stats_worker_t *stats);
/*
 * Closes any connection still open (their close callbacks run), then the context's own
 * handles; the memory is released from close callbacks (a connection with a ring send in flight
 * once its completion is reaped), so the loop must run again before uv_loop_close(). NULL is a
 * no-op. Call it once; the context must not be used afterwards.
 */
void conn_ctx_free(conn_ctx_t *ctx);
void conn_ctx_stats(const conn_ctx_t *ctx, conn_stats_t *out);

/*
 * Accepts one pending connection from `server` (call it from the listener's connection
 * callback) and starts reading with protocol p; Nagle stays as the listening socket has it
 * (acceptor_new turns it off there, and Linux copies it to every accepted socket). Takes ownership
 * of `state`: p->on_release runs exactly once for it, also when this fails. On success *out
 * (optional) is the new connection. 0 or a libuv error (-EAGAIN, -EMFILE, ...); the close callback
 * is never called for a connection that failed here.
 */
int conn_accept(conn_ctx_t *ctx, uv_stream_t *server, const conn_proto_t *p, void *state,
                conn_t **out);
/*
 * Adopts a connected TCP socket handed over by another process (see handoff): takes ownership
 * of fd (closed on any failure) and of state, as conn_accept. The caller feeds the bytes already
 * read from it with conn_feed; Nagle is turned off. 0 or a libuv error.
 */
int conn_adopt(conn_ctx_t *ctx, int fd, const conn_proto_t *p, void *state, conn_t **out);

/* Switches the protocol (an upgrade): the old state is the caller's to free; the new one is
 * released with the connection. */
void conn_set_proto(conn_t *c, const conn_proto_t *p, void *state);
/* The state of protocol p, or NULL when c speaks another one. */
void *conn_proto_state(const conn_t *c, const conn_proto_t *p);
/* Hands p[0..n) (borrowed) to the current protocol as if just read (bytes that followed an
 * upgrade request, or that came with a handoff); nothing once the connection stopped reading. */
void conn_feed(conn_t *c, const char *p, size_t n);

/* The owner: on_close(c, ud) runs once the socket is fully closed (NULL: nobody is told). */
void conn_set_owner(conn_t *c, conn_close_fn on_close, void *ud);
void *conn_data(const conn_t *c);

/* True while the connection reads and may queue output (not draining, lingering or closed). */
bool conn_is_open(const conn_t *c);
/* True once conn_close ran. */
bool conn_is_closed(const conn_t *c);

/* True when len more bytes fit: what waits behind the head of the queue (the frame being
 * written) stays within max_outq_bytes, or nothing waits there yet (so one frame of any size is
 * taken: a large frame never makes a reading client a slow consumer; a client that reads nothing
 * is one at the next frame after it). */
bool conn_fits(const conn_t *c, size_t len);
/* Queues one reference to rb (taken over) behind what is queued; released once written or when
 * the connection closes. No copy; no allocation except when this connection's queue grows past
 * its largest size so far. Checks no limit: see conn_fits and conn_overflow. */
void conn_push(conn_t *c, refbuf_t *rb);
/* The queue is over its limit: counts a slow consumer and closes. */
void conn_overflow(conn_t *c);

/* Graceful close: flushes the queue, shuts the write side down and closes once the peer's FIN
 * arrives, within close_timeout_ms. Stops reading. Idempotent. */
void conn_drain(conn_t *c);
/* Starts the close_timeout_ms bound of a protocol's own closing handshake (a WebSocket Close);
 * armed at most once per connection, and kept by conn_drain. */
void conn_close_deadline(conn_t *c);
/* Closes the socket now, dropping queued output. Idempotent; safe inside any callback. */
void conn_close(conn_t *c);

/* The socket's descriptor (borrowed; the connection keeps it), or -EBADF once closing. */
int conn_fileno(const conn_t *c);
/* The peer's address (for per-address limits). 0 or a libuv error. */
int conn_peer(const conn_t *c, struct sockaddr_storage *out);
/* Bytes queued and not yet taken by the kernel (in-flight writes included). */
size_t conn_outq_bytes(const conn_t *c);

#endif
