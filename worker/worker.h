/*
 * worker: one forked process serving clients on one libuv loop. It accepts connections on the
 * inherited listening socket, speaks Engine.IO/Socket.IO over WebSocket, reads the streams of the
 * pools the master assigns it (through its ring), delivers entries to local sockets, hands them
 * to the other workers of this server over local IPC (siblings) and shares them with other
 * servers over Redis pub/sub.
 */
#ifndef STREAMIO_WORKER_WORKER_H
#define STREAMIO_WORKER_WORKER_H

#include <stdint.h>

#include "common/config.h"
#include "shm/region.h"
#include "worker/local_sock.h"

typedef struct worker_args {
    const cfg_t *cfg;
    uint32_t slot;
    int listen_fd;
    shm_region_t *region;
    const char *server_id;     /* random per master run: names this server's private channels */
    uint32_t index;            /* worker number: owner of pools, names the consumer; `slot` is the
                                * process block in the region (ring, wake fd, stats) */
    const local_sock_t *socks; /* the workers' channels (handoff, siblings), inherited */
} worker_args_t;

/* Runs the worker until it has drained after SIGTERM/SIGINT. Returns the exit status:
 * 0 after a clean drain, 2 when setup failed (the master does not respawn that). */
int worker_main(const worker_args_t *args);

#endif
