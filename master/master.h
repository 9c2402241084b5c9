/*
 * master: the parent process. Owns the listening socket, the shared region, the worker table and
 * stream discovery; it never touches a client connection and runs no libuv loop (signals arrive
 * through a signalfd and the loop is poll(2)). It forks CLUSTER_WORKERS workers, respawns one
 * that dies (exponential backoff; a worker that exits 2 during setup is not respawned), feeds
 * each worker its pools through the worker's ring, and on SIGTERM/SIGINT drains the workers and
 * exits 0 within SHUTDOWN_TIMEOUT.
 */
#ifndef STREAMIO_MASTER_MASTER_H
#define STREAMIO_MASTER_MASTER_H

#include "common/config.h"

/* Runs until shutdown. Borrows cfg. Returns the process exit status (0 clean, 1 runtime, 2 setup). */
int master_run(const cfg_t *cfg);

#endif
