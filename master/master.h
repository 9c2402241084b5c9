/*
 * master: the parent process. Owns the listening socket, the shared region, the worker table and
 * stream discovery; it never touches a client connection and runs no libuv loop (signals arrive
 * through a signalfd and the loop is poll(2)). It forks CLUSTER_WORKERS workers, respawns one
 * that dies (exponential backoff; a worker that exits 2 during setup is not respawned), feeds
 * each worker its pools through the worker's ring, and on SIGTERM/SIGINT drains the workers and
 * exits 0 within SHUTDOWN_TIMEOUT.
 *
 * A worker number (the owner of pools, "slot") runs in one process block of the region (ring +
 * stats); the region has twice as many blocks as worker numbers can reach, so a replacement can
 * start beside the process it replaces. SIGHUP reloads the configuration and replaces workers
 * one at a time (the new one listens, then the old one drains); a worker that starts draining
 * on its own (SIGTERM from outside, reported by SIGUSR1) is replaced at once. The master also
 * holds the pid file, the control socket (master/admin), speaks sd_notify and keeps systemd's
 * watchdog alive only while every worker's heartbeat advances.
 */
#ifndef STREAMIO_MASTER_MASTER_H
#define STREAMIO_MASTER_MASTER_H

#include "common/config.h"
#include "shm/worker_args.h"

/* Runs until shutdown. Borrows cfg. Returns the exit status (0 clean, 1 runtime, 2 setup). */
int master_run(const cfg_t *cfg, worker_main_fn worker_main);

#endif
