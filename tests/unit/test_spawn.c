/*
 * Unit tests for master/proc/spawn: a child forked from a process whose libuv loop runs handles
 * and whose threadpool has threads starts with default signals and an empty mask, without the
 * parent's loop descriptors or the other blocks' wake fds, runs the entry point in its block and
 * exits with its status (an exit that joins the parent's pool threads would crash or hang).
 * Under LeakSanitizer the child warns that the parent's threads "were not suspended": they are
 * not the child's, as this test arranges on purpose.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "master/proc/signals.h"
#include "master/proc/spawn.h"
#include "shm/stats.h"

#define CAP 4096

/* What the child checks: the parent's descriptors it must not hold. */
static int parent_backend_fd = -1;
static int parent_pipe_fd = -1;

static void noop(uv_work_t *w)
{
    (void)w;
}

static bool worked;

static void after_noop(uv_work_t *w, int status)
{
    (void)w;
    (void)status;
    worked = true;
}

static void on_signal(int signo, void *arg)
{
    (void)signo;
    (void)arg;
}

/* The child's entry point: 0 when everything is as it should be, else the failed check's number. */
static int child_main(const worker_args_t *args)
{
    sigset_t mask;
    sigprocmask(SIG_SETMASK, NULL, &mask);
    if (sigismember(&mask, SIGTERM) || sigismember(&mask, SIGCHLD))
        return 10;
    struct sigaction sa;
    sigaction(SIGPIPE, NULL, &sa);
    if (sa.sa_handler != SIG_DFL)
        return 11;
    if (fcntl(parent_backend_fd, F_GETFD) != -1 || fcntl(parent_pipe_fd, F_GETFD) != -1)
        return 12;
    if (shm_region_wake_fd(args->region, args->slot) < 0)
        return 13;
    if (shm_region_wake_fd(args->region, args->slot == 0 ? 1 : 0) != -EBADF)
        return 14;
    stats_worker_t *ws = shm_region_slot_stats(args->region, args->slot);
    return STATS_GET(ws->index) == args->index ? 0 : 15;
}

static void test_a_child_keeps_nothing_of_the_parent(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    signals_t *sig = NULL;
    assert_int_equal(signals_open(&sig, &loop, on_signal, NULL), 0);
    /* the parent's pool has threads now */
    uv_work_t work;
    assert_int_equal(uv_queue_work(&loop, &work, noop, after_noop), 0);
    while (!worked)
        uv_run(&loop, UV_RUN_ONCE);
    /* and its loop watches a descriptor */
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    uv_pipe_t pipe_handle;
    uv_pipe_init(&loop, &pipe_handle, 0);
    assert_int_equal(uv_pipe_open(&pipe_handle, fds[0]), 0);
    parent_pipe_fd = fds[0];
    parent_backend_fd = uv_backend_fd(&loop);
    shm_region_t *region = NULL;
    assert_int_equal(shm_region_new(&region, 4, CAP, sizeof(stats_worker_t), 64), 0);
    STATS_SET(((stats_worker_t *)shm_region_slot_stats(region, 2))->index, 1);
    cfg_t cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.log_level = LOG_LVL_ERROR;
    spawn_req_t req = {
        .loop = &loop,
        .main = child_main,
        .args = {.cfg = &cfg, .slot = 2, .listen_fd = -1, .region = region, .index = 1},
    };
    pid_t pid = spawn_worker(&req);
    assert_true(pid > 0);
    /* the parent keeps its signals blocked; the test gives them back (a timeout must kill it) */
    sigset_t mask;
    sigprocmask(SIG_SETMASK, NULL, &mask);
    assert_true(sigismember(&mask, SIGCHLD));
    sigemptyset(&mask);
    sigprocmask(SIG_SETMASK, &mask, NULL);
    int status = 0;
    pid_t got = 0;
    for (int ms = 0; ms < 10000 && got == 0; ms += 10) {
        got = waitpid(pid, &status, WNOHANG);
        if (got == 0)
            usleep(10000);
    }
    if (got == 0) { /* a child hung in exit: joining threads it does not have */
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        fail_msg("the child did not exit");
    }
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    uv_close((uv_handle_t *)&pipe_handle, NULL);
    signals_close(sig);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    close(fds[1]);
    shm_region_free(region);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_child_keeps_nothing_of_the_parent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
