/*
 * spawn: forks a worker process into a process block of the shared region. The block's ring is
 * emptied first (what a dead worker left in it is resent by the caller). The fork runs with every
 * signal blocked. The child resets the master's signals, closes every descriptor the master's
 * libuv loop watches and the loop's own (a child never uses its parent's loop), the pid file and
 * the other blocks' wake fds, starts a libuv threadpool of its own (the master's does not survive
 * fork), then runs the worker's entry point and exits with its status.
 */
#ifndef STREAMIO_MASTER_PROC_SPAWN_H
#define STREAMIO_MASTER_PROC_SPAWN_H

#include <sys/types.h>
#include <uv.h>

#include "master/proc/pidfile.h"
#include "shm/worker_args.h"

typedef struct spawn_req {
    uv_loop_t *loop;    /* the master's loop (borrowed) */
    pidfile_t *pidfile; /* closed in the child; NULL when there is none */
    worker_main_fn main;
    worker_args_t args; /* args.region and args.slot: the block the child runs in */
} spawn_req_t;

/* In the master: the child's pid, or -errno when fork failed. Never returns in the child. */
pid_t spawn_worker(const spawn_req_t *req);

#endif
