/*
 * local_sock: the abstract AF_UNIX datagram sockets through which the workers of one server talk
 * to each other, named "\0streamio.<server_id>.<slot><kind>" (no file: the name goes with the last
 * process holding it). Used by handoff (kind "") and siblings (kind ".b"). Never logs.
 */
#ifndef STREAMIO_WORKER_NET_LOCAL_SOCK_H
#define STREAMIO_WORKER_NET_LOCAL_SOCK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/un.h>

/* Fills *a with the name of `slot`'s socket of that kind; returns the address length. */
socklen_t local_sock_addr(struct sockaddr_un *a, unsigned long server_id, uint32_t slot,
                          const char *kind);
/*
 * Opens two non-blocking close-on-exec datagram sockets: *rx bound to this slot's name (receives),
 * *tx unbound (sends to any slot), their buffers asked to hold `bufsize` bytes (the kernel may
 * cap that). 0 or a negative errno (-EADDRINUSE: another process holds the name); on failure
 * nothing stays open.
 */
int local_sock_open(int *rx, int *tx, unsigned long server_id, uint32_t slot, const char *kind,
                    int bufsize);
/*
 * Sends p[0..len) as one datagram from tx to `slot`'s socket of that kind, with fd attached
 * (SCM_RIGHTS) unless fd is negative. Never blocks: 0, -EAGAIN (the receiver's queue is full) or
 * another negative errno (-ECONNREFUSED, -ENOENT: nobody holds that name).
 */
int local_sock_send(int tx, unsigned long server_id, uint32_t slot, const char *kind, const void *p,
                    size_t len, int fd);

#endif
