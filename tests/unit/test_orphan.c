/* Unit tests for master/proc/orphan: a child armed by orphan_guard dies with its parent. */
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "master/proc/orphan.h"

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* A "master" forks a "worker" that arms the guard; the master is then SIGKILLed: so is the
 * worker, seen here as the end of its pipe. */
static void test_child_dies_with_its_parent(void **state)
{
    (void)state;
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t master = fork();
    assert_true(master >= 0);
    if (master == 0) {
        close(p[0]);
        pid_t me = getpid();
        pid_t worker = fork();
        if (worker == 0) {
            if (orphan_guard(me) != 0)
                _exit(3);
            (void)write(p[1], "r", 1);
            alarm(10); /* never an orphan for long, even if the guard failed */
            for (;;)
                pause();
        }
        close(p[1]);
        for (;;)
            pause();
    }
    close(p[1]);
    char c;
    assert_int_equal(read(p[0], &c, 1), 1);
    uint64_t t0 = now_ms();
    assert_int_equal(kill(master, SIGKILL), 0);
    assert_int_equal(waitpid(master, NULL, 0), master);
    struct pollfd pf = {.fd = p[0], .events = POLLIN};
    assert_int_equal(poll(&pf, 1, 5000), 1);
    assert_int_equal(read(p[0], &c, 1), 0); /* every holder of the write end is gone */
    assert_true(now_ms() - t0 < 1000);
    close(p[0]);
}

/* The parent died before the guard was armed (its pid no longer our parent's): said at once. */
static void test_parent_gone_before_the_guard(void **state)
{
    (void)state;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(orphan_guard(getppid() + 1) == -ESRCH ? 0 : 1);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_child_dies_with_its_parent),
        cmocka_unit_test(test_parent_gone_before_the_guard),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
