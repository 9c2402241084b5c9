/*
 * slots: the master's decisions about its worker processes, with no I/O of its own.
 *
 * A worker number ("worker", the owner of pools) is served by one process running in a process
 * block of the shared region ("block": ring + stats); there are twice as many blocks as worker
 * numbers, so a replacement starts beside the process it replaces. slots decides which worker to
 * start and when: a worker that dies is respawned after an exponential backoff (100 ms doubling
 * to 30 s, back to 100 ms once a worker lived 10 s); one that exits 2 during setup is not, and the
 * master ends with status 2 once no worker can run. A reload replaces the workers one at a time:
 * the new process listens before the old one is told to drain, and the next replacement waits
 * until the previous old process exited (or SHUTDOWN_TIMEOUT passed), so one worker's clients
 * reconnect at a time; a new process that does not listen within 15 s is killed and the old one
 * kept. A worker that starts draining on its own is replaced at once. A stop sends SIGTERM to
 * every process and SIGKILL once SHUTDOWN_TIMEOUT + 1 s passed. It feeds systemd's watchdog only
 * while every serving worker's heartbeat advances, and says READY=1, RELOADING=1 and STATUS=.
 *
 * Everything it does to the world goes through slots_ops_t (fork, kill, the clock, sd_notify, a
 * block's stats, handing a worker's pools to a process), so tests drive it against fakes. It
 * logs its decisions. One slots_t per master; not thread-safe.
 */
#ifndef STREAMIO_MASTER_PROC_SLOTS_H
#define STREAMIO_MASTER_PROC_SLOTS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "shm/stats.h"

typedef struct slots_ops {
    /* Starts a process for `worker` in `block`, whose stats block slots has just reset (index,
     * role and generation set). Returns its pid, or -errno. */
    pid_t (*spawn)(void *arg, uint32_t worker, uint32_t block);
    /* kill(2). */
    int (*kill)(void *arg, pid_t pid, int sig);
    /* A monotonic clock, in microseconds. */
    uint64_t (*now_us)(void *arg);
    /* One sd_notify datagram ("READY=1\nSTATUS=..."). */
    void (*notify)(void *arg, const char *state);
    /* The stats block of `block` (written by its worker: pid once it listens, heartbeat,
     * draining, connections). */
    stats_worker_t *(*stats)(void *arg, uint32_t block);
    /* `block` serves `worker` from now on: hand it every pool of the worker. */
    void (*attach)(void *arg, uint32_t worker, uint32_t block);
    /* `worker` has no serving process any more: its pools wait for the next attach. */
    void (*detach)(void *arg, uint32_t worker);
    /* The process serving `worker` stays (a replacement failed): send it the worker's pools
     * again, those a shrinking reload moved to it included. */
    void (*resend)(void *arg, uint32_t worker);
    /* `block`'s process has exited: drop what others left queued for it. */
    void (*reaped)(void *arg, uint32_t block);
} slots_ops_t;

typedef struct slots slots_t;

/*
 * `workers` worker numbers (CLUSTER_WORKERS, 1 .. capacity), up to `capacity` after a reload
 * (2 * capacity blocks). Borrows ops, arg and g (the global stats: workers, generation,
 * respawns, reloads; its `streams` goes into STATUS=). Starts nothing yet.
 */
slots_t *slots_new(const slots_ops_t *ops, void *arg, stats_global_t *g, uint32_t workers,
                   uint32_t capacity, int shutdown_timeout_ms);
void slots_free(slots_t *s);

/* Starts every worker. 0, or the -errno of the first one that could not be started. */
int slots_start(slots_t *s);
/* WATCHDOG_USEC: from now on WATCHDOG=1 goes out twice per period (at most every 600 ms) while
 * the workers make progress. 0 turns it off. */
void slots_set_watchdog(slots_t *s, uint64_t usec);

/* A child exited (waitpid's status). Unknown pids are ignored. */
void slots_exited(slots_t *s, pid_t pid, int status);
/* A worker may have started draining on its own (SIGUSR1): replace those that did. */
void slots_check_draining(slots_t *s);
/*
 * Starts a rolling reload to `workers` worker numbers (<= capacity), as generation + 1, with the
 * new SHUTDOWN_TIMEOUT. -EBUSY while a reload runs, -ECANCELED while stopping, -EINVAL above the
 * capacity: nothing changes then.
 */
int slots_reload(slots_t *s, uint32_t workers, int shutdown_timeout_ms);
/* Drains every process (SIGTERM now, SIGKILL past the deadline); `why` names the signal. */
void slots_stop(slots_t *s, const char *why);

/* Runs what is due now. Returns the milliseconds until it has something to do again (<= 1000). */
uint64_t slots_tick(slots_t *s);
/* -1 while the master runs on; then its exit status: 0 once stopped, 2 when no worker can run. */
int slots_exit_status(const slots_t *s);

bool slots_reloading(const slots_t *s);
bool slots_stopping(const slots_t *s);
/* The most worker numbers a reload may reach. */
uint32_t slots_capacity(const slots_t *s);

#endif
