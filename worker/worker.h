/*
 * worker: one forked process serving clients on one libuv loop. It accepts connections on the
 * inherited listening socket, speaks Engine.IO/Socket.IO over WebSocket, reads the streams of the
 * pools the master assigns it (through its ring), delivers entries to local sockets, hands them
 * to the other workers of this server over local IPC (siblings) and shares them with other
 * servers over Redis pub/sub.
 */
#ifndef STREAMIO_WORKER_WORKER_H
#define STREAMIO_WORKER_WORKER_H

#include "shm/worker_args.h"

/* Runs the worker until it has drained after SIGTERM/SIGINT. Returns the exit status:
 * 0 after a clean drain, 2 when setup failed (the master does not respawn that). */
int worker_main(const worker_args_t *args);

#endif
