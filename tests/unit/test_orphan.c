/* Unit tests for master/proc/orphan: a child armed by orphan_guard dies with its parent. */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "master/proc/orphan.h"

/*
 * A "master" forks a "worker" that arms the guard; the master is then SIGKILLed: so is the
 * worker. This process is their subreaper, so the orphaned worker is reparented here and its
 * end is seen by cause: SIGKILL from the guard, not the SIGALRM that bounds it if the guard
 * failed (no clock involved).
 */
static void test_child_dies_with_its_parent(void **state)
{
    (void)state;
    assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
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
            pid_t self = getpid();
            (void)write(p[1], &self, sizeof(self));
            alarm(10); /* never an orphan for long, even if the guard failed */
            for (;;)
                pause();
        }
        close(p[1]);
        for (;;)
            pause();
    }
    close(p[1]);
    pid_t worker;
    assert_int_equal(read(p[0], &worker, sizeof(worker)), sizeof(worker));
    close(p[0]);
    assert_int_equal(kill(master, SIGKILL), 0);
    assert_int_equal(waitpid(master, NULL, 0), master);
    int status;
    assert_int_equal(waitpid(worker, &status, 0), worker);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGKILL);
    assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, 0), 0);
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
