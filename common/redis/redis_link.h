/*
 * redis_link: one transport attempt to one Redis address on a libuv loop: name resolution, TCP
 * connect with TCP_NODELAY and keepalive (common/keepalive: a silent peer is found within
 * KEEPALIVE_DEAD_AFTER_MS), optional TLS through redis_tls, and a byte pipe. Writes are queued and
 * flushed once per loop iteration (a uv_prepare, Redis' beforeSleep idea), so a burst of pipelined
 * commands becomes one write, made at once (uv_try_write); only what the socket does not take
 * waits for writability. A plain link's queue that passes 256 KB with nothing in flight is written
 * at once. Reads take up to 16 KB, up to 256 KB on a link whose reads fill the buffer. It knows
 * nothing of RESP; a link is never reused: after a failure the owner closes it and opens a new
 * one. Never logs.
 */
#ifndef STREAMIO_COMMON_REDIS_LINK_H
#define STREAMIO_COMMON_REDIS_LINK_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "common/redis/redis_tls.h"

typedef struct redis_link redis_link_t;

typedef struct redis_link_cbs {
    /* Connected, TLS handshake done: bytes can flow. */
    void (*open)(redis_link_t *l, void *arg);
    /* Bytes from the server (decrypted); borrowed for the call, and the owner may write into
     * them (the link's own read buffer). */
    void (*data)(redis_link_t *l, char *p, size_t n, void *arg);
    /* The link failed or the server closed it (err: negative errno or libuv code, why: text for
     * a log line, borrowed). No callback follows; the owner still calls redis_link_close. */
    void (*error)(redis_link_t *l, int err, const char *why, void *arg);
} redis_link_cbs_t;

/*
 * Starts resolving and connecting host:port. tls NULL = plain TCP; else server_name (NULL =
 * host) is the SNI and verified name. Borrows loop, tls and cbs for the link's life; copies the
 * strings. Callbacks run later, never from this call. Aborts on out-of-memory.
 */
redis_link_t *redis_link_open(uv_loop_t *loop, const char *host, int port, redis_tls_t *tls,
                              const char *server_name, const redis_link_cbs_t *cbs, void *arg);
/* How long a silent peer is waited for before the link fails with ETIMEDOUT (keepalive_set;
 * 0 = KEEPALIVE_DEAD_AFTER_MS), now or once connected. */
void redis_link_set_dead_after(redis_link_t *l, unsigned ms);
/* Queues n bytes (copied) for the next flush; dropped silently once the link failed. */
void redis_link_write(redis_link_t *l, const char *p, size_t n);
/* The same without the copy: room for n bytes at the end of the queue (valid until the next call
 * on l), filled by the caller, then queued by redis_link_commit(l, n). */
char *redis_link_reserve(redis_link_t *l, size_t n);
void redis_link_commit(redis_link_t *l, size_t n);
/* Bytes queued and not yet accepted by the kernel (the output bound is checked against it). */
size_t redis_link_queued(const redis_link_t *l);
/*
 * Stops (hold) or resumes reading an open plain-TCP link: the bytes wait in the kernel, so a busy
 * subscription's messages come in one read instead of one wake-up each. No-op on a TLS link (its
 * session may hold decrypted bytes) and before the link is open (it then reads).
 */
void redis_link_hold_reads(redis_link_t *l, bool hold);
/*
 * Ends the link: no callback runs after this call, queued bytes are dropped, and the memory is
 * released once libuv has closed the handles. Safe from inside any of the link's callbacks.
 */
void redis_link_close(redis_link_t *l);

#endif
