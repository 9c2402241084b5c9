/*
 * worker_args: what the master hands a worker process it forks, and the entry point it calls in
 * the child. Defined here, below both, so that master/ never includes worker/: the program
 * (master/main.c) passes worker_main to master_run.
 */
#ifndef STREAMIO_SHM_WORKER_ARGS_H
#define STREAMIO_SHM_WORKER_ARGS_H

#include <stdint.h>

#include "common/config.h"
#include "shm/ledger.h"
#include "shm/local_sock.h"
#include "shm/region.h"
#include "shm/sessions.h"

typedef struct worker_args {
    const cfg_t *cfg;
    uint32_t slot;
    int listen_fd;
    shm_region_t *region;
    const char *server_id; /* random per master run: names this server's private channels */
    uint32_t index;        /* worker number: owner of pools, names the consumer; `slot` is the
                            * process block in the region (ring, wake fd, stats) */
    local_sock_t *socks;   /* the workers' channels (handoff, siblings), inherited */
    shm_sessions_t *kept;  /* sessions that outlive their worker (recovery); NULL: none */
    shm_ledger_t *ledger;  /* the entries each process delivered (see shm/ledger.h) */
} worker_args_t;

/* Runs a worker until it has drained; returns its exit status (2: setup failed, not respawned). */
typedef int (*worker_main_fn)(const worker_args_t *args);

#endif
