/*
 * expect_abort: a death test for the out-of-memory policy (common/xalloc.h). Runs fn(arg) in a
 * child process and asserts that it was killed by SIGABRT after writing exactly `want` to stderr.
 * Include after cmocka.h.
 */
#ifndef STREAMIO_TESTS_EXPECT_ABORT_H
#define STREAMIO_TESTS_EXPECT_ABORT_H

#include <signal.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

static void expect_abort(void (*fn)(void *arg), void *arg, const char *want)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct rlimit no_core = {0, 0};
        setrlimit(RLIMIT_CORE, &no_core);
        signal(SIGABRT, SIG_DFL);
        dup2(fds[1], STDERR_FILENO);
        close(fds[0]);
        fn(arg);
        _exit(0); /* it returned: the parent sees no SIGABRT */
    }
    close(fds[1]);
    char got[256];
    size_t n = 0;
    ssize_t r;
    while (n < sizeof(got) - 1 && (r = read(fds[0], got + n, sizeof(got) - 1 - n)) > 0)
        n += (size_t)r;
    got[n] = '\0';
    close(fds[0]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGABRT);
    assert_string_equal(got, want);
}

#endif
