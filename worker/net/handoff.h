/*
 * handoff: passes an accepted TCP connection, with the request bytes already read from it, to
 * another worker of the same server (long-polling without sticky sessions: the sid names the
 * owning worker's process block). A handoff is one datagram on the owner's handoff channel
 * (local_sock: inherited socketpairs, no name) carrying the bytes and the descriptor
 * (SCM_RIGHTS). Only datagrams from live workers of this server carrying a stream socket are
 * accepted. It owns the uv_poll_t on its channel, never parses what it carries, never logs.
 */
#ifndef STREAMIO_WORKER_NET_HANDOFF_H
#define STREAMIO_WORKER_NET_HANDOFF_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "shm/local_sock.h"
#include "shm/region.h"

typedef struct handoff handoff_t;

/* Longest a handoff waits (queued, never blocking the loop) for room in the owner's queue. */
#define HANDOFF_SEND_WAIT_MS 2000

/* Largest byte payload of one handoff. */
#define HANDOFF_MAX_BYTES (192u * 1024)

/* A received connection (a stream socket): fd is owned by the callee (close it if unused); p is
 * borrowed. */
typedef void (*handoff_cb)(int fd, const char *p, size_t len, void *ud);

/*
 * Starts receiving on `slot`'s handoff channel of `socks` on `loop`. Borrows socks and region
 * (the live workers, for sender checks and targets). 0, -EINVAL, -EBADF (this process does not
 * hold that channel), or another negative errno.
 */
int handoff_new(handoff_t **out, uv_loop_t *loop, const local_sock_t *socks, shm_region_t *region,
                uint32_t slot, handoff_cb cb, void *ud);
/*
 * Sends fd (duplicated: the caller still closes its own copy) and p[0..len) to the worker in
 * `slot`. When that worker's queue is full the handoff is kept (a copy of the bytes and of the
 * descriptor) and resent from a timer, in order, for up to HANDOFF_SEND_WAIT_MS; the loop never
 * blocks. 0 (sent or queued), -E2BIG (len over HANDOFF_MAX_BYTES), -ECONNREFUSED (no live worker
 * in that block now), or another negative errno.
 */
int handoff_send(handoff_t *h, uint32_t slot, int fd, const void *p, size_t len);
/* Stops receiving and closes the socket (memory released from the close callback). NULL: no-op. */
void handoff_free(handoff_t *h);

#endif
