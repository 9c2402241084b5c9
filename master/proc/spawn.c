/* spawn: see spawn.h. */
#include "master/proc/spawn.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include "common/log.h"
#include "master/proc/signals.h"

static void close_fd(uv_handle_t *h, void *arg)
{
    (void)arg;
    uv_os_fd_t fd;
    if (uv_fileno(h, &fd) == 0)
        close(fd);
}

/* The parent's loop stays untouched in memory; only its descriptors go. libuv's internal wake-up
 * eventfd has no public handle and stays open, unused. */
static void forget_parent(const spawn_req_t *req)
{
    uv_walk(req->loop, close_fd, NULL);
    close(uv_backend_fd(req->loop));
    pidfile_forget(req->pidfile);
    shm_region_child_keep(req->args.region, req->args.slot);
}

pid_t spawn_worker(const spawn_req_t *req)
{
    ring_reset(shm_region_ring(req->args.region, req->args.slot));
    sigset_t all, old;
    sigfillset(&all);
    sigprocmask(SIG_SETMASK, &all, &old);
    pid_t pid = fork();
    if (pid != 0) {
        int rc = pid < 0 ? -errno : pid;
        sigprocmask(SIG_SETMASK, &old, NULL);
        return rc;
    }
    signals_child_reset();
    forget_parent(req);
    log_setup(req->args.cfg->log_level, "worker", (int)req->args.index);
    exit(req->main(&req->args)); /* exit, not _exit: sanitizers check the worker at exit */
}
