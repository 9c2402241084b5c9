/* Unit tests for master/proc/pidfile: write, exclusive lock, holder pid, release. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "master/proc/pidfile.h"

static void test_acquire_lock_release(void **state)
{
    (void)state;
    char path[64];
    snprintf(path, sizeof(path), "/tmp/test_pidfile_%d.pid", (int)getpid());
    unlink(path);
    buf_t err;
    buf_init(&err);
    pidfile_t *pf = NULL;
    pid_t holder = -1;
    assert_int_equal(pidfile_acquire(path, &pf, &holder, &err), 0);
    assert_int_equal(pidfile_read(path), getpid());
    /* flock is per open file: a second open in a child process must be refused */
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        buf_t e2;
        buf_init(&e2);
        pidfile_t *other = NULL;
        pid_t h = 0;
        int rc = pidfile_acquire(path, &other, &h, &e2);
        char want[128];
        snprintf(want, sizeof(want), "streamio: already running (pid %d holds %s)", (int)getppid(),
                 path);
        _exit(rc == -EEXIST && h == getppid() && other == NULL && strcmp(e2.data, want) == 0 ? 0
                                                                                             : 1);
    }
    int status;
    assert_int_equal(waitpid(child, &status, 0), child);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    pidfile_release(pf);
    assert_int_equal(access(path, F_OK), -1);
    assert_int_equal(pidfile_read(path), -ENOENT);
    pidfile_release(NULL);
    /* an unwritable place is reported with the path */
    assert_int_not_equal(pidfile_acquire("/nonexistent/dir/x.pid", &pf, &holder, &err), 0);
    assert_non_null(strstr(err.data, "/nonexistent/dir/x.pid"));
    buf_free(&err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_acquire_lock_release),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
