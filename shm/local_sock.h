/*
 * local_sock: the datagram channels through which the workers of one server talk to each other
 * (handoff and siblings). No name anyone could bind or reach: for every process block of the
 * region and every kind, the master creates one AF_UNIX SOCK_DGRAM socketpair before its first
 * fork and holds both ends for its whole life, so a respawned or reloaded worker inherits the
 * very channel of its block, and old and new generations (different blocks) never share one.
 * The block's worker receives on one end (rx); every other worker sends on the other (tx).
 * Receivers also check each datagram's sender (SCM_CREDENTIALS: our uid, and the pid of a live
 * worker in the region, or of a block's last reaped one, whose datagrams may still be queued) as
 * defence in depth. Never logs.
 */
#ifndef STREAMIO_SHM_LOCAL_SOCK_H
#define STREAMIO_SHM_LOCAL_SOCK_H

#include <stddef.h>
#include <stdint.h>

#include "shm/region.h"

typedef enum local_kind { LOCAL_SOCK_HANDOFF, LOCAL_SOCK_SIBLINGS, LOCAL_SOCK_KINDS } local_kind_t;

typedef struct local_sock local_sock_t;

/*
 * Master, before forking: one non-blocking, close-on-exec socketpair per block and kind, with
 * SO_PASSCRED on the receiving end. 0, -EINVAL (no block), -EMFILE/-ENFILE (the fd limit
 * is raised to its hard limit first when needed) or another -errno; nothing stays open on error.
 */
int local_sock_new(local_sock_t **out, uint32_t nblocks);
/* Closes every end this process still holds; NULL is a no-op. */
void local_sock_free(local_sock_t *t);
/* Worker, right after fork: keeps only its own block's receiving ends and the other blocks'
 * sending ends. */
void local_sock_child_keep(local_sock_t *t, uint32_t block);
/* Master, once the block's process has exited: drops what was queued for it (closing the
 * descriptors those datagrams carried), so its successor starts empty. */
void local_sock_drain(local_sock_t *t, uint32_t block);
/* The block's receiving (rx) or sending (tx) end of that kind: borrowed, never closed by the
 * caller. -EINVAL for a bad block, -EBADF when this process does not hold it. */
int local_sock_rx(const local_sock_t *t, uint32_t block, local_kind_t kind);
int local_sock_tx(const local_sock_t *t, uint32_t block, local_kind_t kind);
/* Asks for socket buffers of `bytes` on every end of that kind this process holds (the kernel may
 * cap that: net.core.wmem_max / rmem_max). */
void local_sock_set_buffers(const local_sock_t *t, local_kind_t kind, int bytes);

/*
 * Sends p[0..len) as one datagram on tx, with fd attached (SCM_RIGHTS) unless fd is negative.
 * Never blocks: 0, -EAGAIN (the receiver's queue or the send buffer is full; ENOBUFS too) or
 * another negative errno (-EMSGSIZE).
 */
int local_sock_send(int tx, const void *p, size_t len, int fd);
/*
 * Receives one datagram from rx into buf (cap bytes). 0: a datagram of *len bytes from a worker
 * of `region` (the sender's uid is ours and its pid is a slot's, live or last reaped), *fd the
 * descriptor it carried (close-on-exec, owned by the caller) or -1. Else nothing is returned and
 * every descriptor it carried is closed: -EAGAIN (queue empty), -EPERM (another sender), -EMSGSIZE
 * (truncated, or more than one descriptor), another -errno.
 */
int local_sock_recv(int rx, shm_region_t *region, void *buf, size_t cap, size_t *len, int *fd);

#endif
