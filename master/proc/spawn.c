/* spawn: see spawn.h. */
#include "master/proc/spawn.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include "common/log.h"
#include "master/proc/orphan.h"
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
    local_sock_child_keep(req->args.socks, req->args.slot);
}

static void noop(uv_work_t *w)
{
    (void)w;
}

/* libuv keeps its threadpool's bookkeeping across fork but not the threads (the master's loop
 * can start them: the Redis layer resolves host names there), and joins them at exit: threads that
 * do not exist in the child. Its fork handler re-arms the pool's start, so one no-op work item
 * starts this process's own pool, and the join at exit finds real threads. */
static void restart_threadpool(void)
{
    uv_loop_t loop;
    uv_work_t work;
    if (uv_loop_init(&loop))
        return;
    if (uv_queue_work(&loop, &work, noop, NULL) == 0)
        uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
}

pid_t spawn_worker(const spawn_req_t *req)
{
    ring_reset(shm_region_ring(req->args.region, req->args.slot));
    sigset_t all, old;
    sigfillset(&all);
    sigprocmask(SIG_SETMASK, &all, &old);
    pid_t master = getpid();
    pid_t pid = fork();
    if (pid != 0) {
        int rc = pid < 0 ? -errno : pid;
        sigprocmask(SIG_SETMASK, &old, NULL);
        return rc;
    }
    if (orphan_guard(master))
        _exit(1);
    signals_child_reset();
    forget_parent(req);
    restart_threadpool();
    log_setup(req->args.cfg->log_level, "worker", (int)req->args.index);
    exit(req->main(&req->args)); /* exit, not _exit: sanitizers check the worker at exit */
}
