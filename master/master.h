/*
 * master: the parent process. Owns the listening socket, the shared region and the pid file, and
 * wires the master's parts onto one libuv loop that waits only on signals, child exits, sockets
 * and timers, never on Redis: the worker processes (master/proc: which worker to start and when,
 * fork, signals), stream discovery (master/discovery) and streamioctl's control socket
 * (master/admin). It never touches a client connection. It forks CLUSTER_WORKERS workers,
 * respawns one that dies (exponential backoff; a worker that exits 2 during setup is not
 * respawned), feeds each worker its pools through the worker's ring, replaces the workers one at
 * a time on SIGHUP (the configuration loaded by master/settings, as at start), and on
 * SIGTERM/SIGINT/SIGQUIT drains the workers and exits 0 within SHUTDOWN_TIMEOUT. It speaks
 * sd_notify and keeps systemd's watchdog fed only while every worker's heartbeat advances.
 */
#ifndef STREAMIO_MASTER_MASTER_H
#define STREAMIO_MASTER_MASTER_H

#include "common/config.h"
#include "shm/worker_args.h"

/* Runs until shutdown. Borrows cfg. Returns the exit status (0 clean, 1 runtime, 2 setup). */
int master_run(const cfg_t *cfg, worker_main_fn worker_main);

#endif
