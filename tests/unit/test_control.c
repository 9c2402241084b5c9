/* Unit tests for master/control: netstring request parsing, requests over a real socket, the
 * socket's mode, peer credentials, and slow clients that must not hold anyone up. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "master/control.h"

static void test_parse(void **state)
{
    (void)state;
    buf_t store;
    buf_init(&store);
    int argc;
    char *argv[CONTROL_MAX_ARGS];
    size_t lens[CONTROL_MAX_ARGS];
    const char req[] = "9:broadcast,6:notice,0:,5:{\"a\":,";
    assert_int_equal(control_parse(req, strlen(req), &store, &argc, argv, lens), 0);
    assert_int_equal(argc, 4);
    assert_string_equal(argv[0], "broadcast");
    assert_string_equal(argv[1], "notice");
    assert_string_equal(argv[2], "");
    assert_int_equal(lens[3], 5);
    assert_string_equal(argv[3], "{\"a\":");
    /* bytes inside an argument are opaque, NUL included */
    assert_int_equal(control_parse("3:a\0b,", 6, &store, &argc, argv, lens), 0);
    assert_int_equal(lens[0], 3);
    assert_memory_equal(argv[0], "a\0b", 3);
    const char *bad[] = {"3:ab,", "3:abc", "3:abc;", "x:a,", ":a,", "999999999:a,", "4:abc,"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(control_parse(bad[i], strlen(bad[i]), &store, &argc, argv, lens), -EPROTO);
    const char many[] = "1:a,1:a,1:a,1:a,1:a,1:a,1:a,1:a,1:a,";
    assert_int_equal(control_parse(many, strlen(many), &store, &argc, argv, lens), -EPROTO);
    assert_int_equal(control_parse("", 0, &store, &argc, argv, lens), 0);
    assert_int_equal(argc, 0);
    buf_free(&store);
}

static int echo(int argc, char **argv, const size_t *lens, buf_t *out, void *arg)
{
    (void)lens;
    (*(int *)arg)++;
    if (strcmp(argv[0], "fail") == 0) {
        buf_puts(out, "it failed");
        return -EINVAL;
    }
    return buf_printf(out, "%d:%s", argc, argv[argc - 1]);
}

static int dial(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    strcpy(sa.sun_path, path);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    return fd;
}

/* Queues one request and closes; the listener is served afterwards by the caller. */
static void send_only(const char *path, const char *req)
{
    int fd = dial(path);
    assert_int_equal(write(fd, req, strlen(req)), (ssize_t)strlen(req));
    shutdown(fd, SHUT_WR);
    close(fd);
}

/* Serves as the master's loop does (poll on control_fd) until *calls reaches want. */
static void serve_until(control_t *c, int *calls, int want)
{
    for (int i = 0; i < 200 && *calls < want; i++) {
        struct pollfd p = {.fd = control_fd(c), .events = POLLIN};
        if (poll(&p, 1, 10) > 0)
            control_serve(c, echo, calls);
    }
    control_serve(c, echo, calls); /* answers written after the last call */
}

/* Reads the whole answer (the server closes after it). */
static void answer_is(control_t *c, int fd, const char *want)
{
    char resp[256];
    size_t got = 0;
    for (int i = 0; i < 200; i++) {
        ssize_t n = recv(fd, resp + got, sizeof(resp) - 1 - got, MSG_DONTWAIT);
        if (n == 0)
            break;
        if (n > 0)
            got += (size_t)n;
        else
            usleep(1000);
        control_serve(c, echo, &(int){0});
    }
    resp[got] = '\0';
    assert_string_equal(resp, want);
}

static void path_for(char *path, size_t cap, const char *what)
{
    snprintf(path, cap, "/tmp/test_control_%s_%d.sock", what, (int)getpid());
}

static void test_serve(void **state)
{
    (void)state;
    char path[64];
    path_for(path, sizeof(path), "serve");
    buf_t err;
    buf_init(&err);
    control_t *c = NULL;
    assert_int_equal(control_open(&c, path, &err), 0);
    assert_true(control_fd(c) >= 0);
    int calls = 0;
    int fds[2];
    for (int k = 0; k < 2; k++) {
        fds[k] = dial(path);
        const char *req = k == 0 ? "6:status,3:two," : "4:fail,";
        assert_int_equal(write(fds[k], req, strlen(req)), (ssize_t)strlen(req));
        shutdown(fds[k], SHUT_WR);
    }
    serve_until(c, &calls, 2);
    assert_int_equal(calls, 2);
    answer_is(c, fds[0], "OK\n2:two");
    answer_is(c, fds[1], "ERR it failed\n");
    close(fds[0]);
    close(fds[1]);
    send_only(path, "garbage");
    serve_until(c, &calls, 3);
    assert_int_equal(calls, 2); /* a malformed request never reaches the handler */
    control_close(c);
    assert_int_equal(access(path, F_OK), -1);
    control_close(NULL);
    buf_free(&err);
}

/* The socket is private from its creation (no window between bind and a chmod). */
static void test_socket_is_private(void **state)
{
    (void)state;
    char path[64];
    path_for(path, sizeof(path), "mode");
    buf_t err;
    buf_init(&err);
    control_t *c = NULL;
    mode_t old = umask(0);
    assert_int_equal(control_open(&c, path, &err), 0);
    umask(old);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    control_close(c);
    buf_free(&err);
}

/* Another user that reaches the socket (here: made world-writable) is refused. */
static void test_other_users_are_refused(void **state)
{
    (void)state;
    if (geteuid() != 0)
        skip();
    char path[64];
    path_for(path, sizeof(path), "cred");
    buf_t err;
    buf_init(&err);
    control_t *c = NULL;
    assert_int_equal(control_open(&c, path, &err), 0);
    assert_int_equal(chmod(path, 0666), 0);
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(sv[0]);
        if (setresuid(65534, 65534, 65534) != 0)
            _exit(2);
        int fd = socket(AF_UNIX, SOCK_STREAM, 0);
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        strcpy(sa.sun_path, path);
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
            _exit(3);
        (void)send(fd, "6:status,", 9, MSG_NOSIGNAL); /* it may be closed already */
        shutdown(fd, SHUT_WR);
        char resp[64] = {0};
        ssize_t n = 0, r;
        while ((r = read(fd, resp + n, sizeof(resp) - 1 - (size_t)n)) > 0)
            n += r;
        (void)write(sv[1], resp, (size_t)n);
        _exit(0);
    }
    close(sv[1]);
    int calls = 0;
    for (int i = 0; i < 1000; i++) {
        struct pollfd p[2] = {{.fd = control_fd(c), .events = POLLIN}, {.fd = sv[0], .events = POLLIN}};
        poll(p, 2, 10);
        control_serve(c, echo, &calls);
        if (p[1].revents)
            break;
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    char resp[64] = {0};
    assert_true(read(sv[0], resp, sizeof(resp) - 1) > 0);
    assert_string_equal(resp, "ERR permission denied\n");
    assert_int_equal(calls, 0);
    close(sv[0]);
    control_close(c);
    buf_free(&err);
}

/* A client that sends one byte and waits keeps its connection, and holds nobody up: another
 * client's request is answered meanwhile; past CONTROL_MAX_CLIENTS connections are refused. */
static void test_slow_client_holds_nobody_up(void **state)
{
    (void)state;
    char path[64];
    path_for(path, sizeof(path), "slow");
    buf_t err;
    buf_init(&err);
    control_t *c = NULL;
    assert_int_equal(control_open(&c, path, &err), 0);
    int slow = dial(path);
    assert_int_equal(write(slow, "6", 1), 1);
    int calls = 0;
    serve_until(c, &calls, 1); /* nothing complete yet: returns after its bounded tries */
    int fast = dial(path);
    assert_int_equal(write(fast, "6:status,", 9), 9);
    shutdown(fast, SHUT_WR);
    serve_until(c, &calls, 1);
    answer_is(c, fast, "OK\n1:status");
    close(fast);
    /* the slow one is still open: no answer, no end of file */
    char b;
    assert_int_equal(recv(slow, &b, 1, MSG_DONTWAIT), -1);
    assert_int_equal(errno, EAGAIN);
    /* it may finish its request later */
    assert_int_equal(write(slow, ":status,", 8), 8);
    shutdown(slow, SHUT_WR);
    serve_until(c, &calls, 2);
    answer_is(c, slow, "OK\n1:status");
    close(slow);
    int many[CONTROL_MAX_CLIENTS + 1];
    for (int i = 0; i <= CONTROL_MAX_CLIENTS; i++) {
        many[i] = dial(path);
        control_serve(c, echo, &calls);
    }
    answer_is(c, many[CONTROL_MAX_CLIENTS], "ERR busy\n");
    for (int i = 0; i <= CONTROL_MAX_CLIENTS; i++)
        close(many[i]);
    control_close(c);
    buf_free(&err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_serve),
        cmocka_unit_test(test_socket_is_private),
        cmocka_unit_test(test_other_users_are_refused),
        cmocka_unit_test(test_slow_client_holds_nobody_up),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
