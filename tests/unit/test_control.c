/* Unit tests for master/admin/control: netstring request parsing, requests over a real socket
 * on a libuv loop, a slow client or a long command holding only its own connection, and who may
 * connect. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "master/admin/control.h"

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
    const char *bad[] = {"3:ab,", "3:abc", "3:abc;", "x:a,", ":a,", "999999999:a,", "4:abc,",
                         "000000001:a,"}; /* 9 digits, leading zeros included */
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(control_parse(bad[i], strlen(bad[i]), &store, &argc, argv, lens), -EPROTO);
    const char many[] = "1:a,1:a,1:a,1:a,1:a,1:a,1:a,1:a,1:a,";
    assert_int_equal(control_parse(many, strlen(many), &store, &argc, argv, lens), -EPROTO);
    assert_int_equal(control_parse("00000001:a,", 11, &store, &argc, argv, lens), 0); /* 8 */
    assert_string_equal(argv[0], "a");
    assert_int_equal(control_parse("", 0, &store, &argc, argv, lens), 0);
    assert_int_equal(argc, 0);
    buf_free(&store);
}

typedef struct handler {
    int calls;
    control_req_t *held; /* a request answered later */
} handler_t;

/* "hold" is answered later (the test calls control_done), "fail" fails, the rest echoes. */
static void handle(control_req_t *req, int argc, char **argv, const size_t *lens, buf_t *out,
                   void *arg)
{
    (void)lens;
    handler_t *h = arg;
    h->calls++;
    if (strcmp(argv[0], "hold") == 0) {
        h->held = req;
        buf_puts(out, "held");
        return;
    }
    if (strcmp(argv[0], "fail") == 0) {
        buf_puts(out, "it failed");
        control_done(req, -EINVAL);
        return;
    }
    buf_printf(out, "%d:%s", argc, argv[argc - 1]);
    control_done(req, 0);
}

static int dial(const char *path, const char *req, bool finish)
{
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    strcpy(sa.sun_path, path);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(write(fd, req, strlen(req)), (ssize_t)strlen(req));
    if (finish)
        shutdown(fd, SHUT_WR);
    return fd;
}

/* Turns the loop until the server closed fd's connection; the whole answer is in resp. */
static void answer(uv_loop_t *loop, int fd, char *resp, size_t cap)
{
    size_t len = 0;
    for (int spins = 0; spins < 100000; spins++) {
        uv_run(loop, UV_RUN_NOWAIT);
        ssize_t n = recv(fd, resp + len, cap - len - 1, MSG_DONTWAIT);
        if (n == 0)
            break;
        if (n > 0)
            len += (size_t)n;
        else
            usleep(100);
    }
    resp[len] = '\0';
    close(fd);
}

/* Turns the loop for `ms` milliseconds of its own clock (not a count of naps, which a loaded box
 * stretches). */
static void spin(uv_loop_t *loop, uint64_t ms)
{
    uv_update_time(loop);
    uint64_t end = uv_now(loop) + ms;
    do {
        uv_run(loop, UV_RUN_NOWAIT);
        usleep(1000);
        uv_update_time(loop);
    } while (uv_now(loop) < end);
}

typedef struct fixture {
    char path[64];
    uv_loop_t loop;
    handler_t h;
    control_t *c;
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    snprintf(f->path, sizeof(f->path), "/tmp/test_control_%d.sock", (int)getpid());
    uv_loop_init(&f->loop);
    buf_t err;
    buf_init(&err);
    assert_int_equal(control_open(&f->c, &f->loop, f->path, handle, &f->h, &err), 0);
    buf_free(&err);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(access(f->path, F_OK), -1); /* the socket file went with control_close */
    assert_int_equal(uv_loop_close(&f->loop), 0);
    free(f);
    return 0;
}

static void test_serve(void **state)
{
    fixture_t *f = *state;
    char resp[128];
    int a = dial(f->path, "6:status,3:two,", true);
    int b = dial(f->path, "4:fail,", true);
    answer(&f->loop, a, resp, sizeof(resp));
    assert_string_equal(resp, "OK\n2:two");
    answer(&f->loop, b, resp, sizeof(resp));
    assert_string_equal(resp, "ERR it failed\n");
    answer(&f->loop, dial(f->path, "garbage", true), resp, sizeof(resp));
    assert_string_equal(resp, "ERR malformed request\n");
    assert_int_equal(f->h.calls, 2); /* a malformed request never reaches the handler */
    control_close(f->c);
    control_close(NULL);
}

/* A client that sends its request a byte at a time, or a command still running, holds only its
 * own connection: the others are served meanwhile. */
static void test_a_slow_client_holds_only_its_connection(void **state)
{
    fixture_t *f = *state;
    int slow = dial(f->path, "6:", false);
    int held = dial(f->path, "4:hold,", true);
    char resp[128];
    for (int i = 0; i < 3; i++) {
        spin(&f->loop, 100);
        assert_int_equal(write(slow, "s", 1), 1); /* a byte every 0.1 s, well within the 1 s */
        answer(&f->loop, dial(f->path, "4:ping,", true), resp, sizeof(resp));
        assert_string_equal(resp, "OK\n1:ping");
    }
    assert_non_null(f->h.held);
    control_done(f->h.held, 0);
    answer(&f->loop, held, resp, sizeof(resp));
    assert_string_equal(resp, "OK\nheld");
    /* silence for a second ends the slow request */
    answer(&f->loop, slow, resp, sizeof(resp));
    assert_string_equal(resp, "ERR request timed out\n");
    assert_int_equal(f->h.calls, 4);
    /* the socket closes while a command runs: its late answer goes nowhere */
    f->h.held = NULL;
    int orphan = dial(f->path, "4:hold,", true);
    while (!f->h.held)
        spin(&f->loop, 1);
    control_close(f->c);
    spin(&f->loop, 10);
    control_done(f->h.held, 0);
    close(orphan);
}

/* The socket is private from its creation (no window between bind and a chmod), whatever the
 * umask. */
static void test_socket_is_private(void **state)
{
    fixture_t *f = *state;
    control_close(f->c);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    buf_t err;
    buf_init(&err);
    mode_t old = umask(0);
    assert_int_equal(control_open(&f->c, &f->loop, f->path, handle, &f->h, &err), 0);
    umask(old);
    struct stat st;
    assert_int_equal(stat(f->path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    control_close(f->c);
    buf_free(&err);
}

/* Another user that reaches the socket (here: made world-writable) is refused. */
static void test_other_users_are_refused(void **state)
{
    fixture_t *f = *state;
    if (geteuid() != 0) {
        control_close(f->c);
        skip();
    }
    assert_int_equal(chmod(f->path, 0666), 0);
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
        strcpy(sa.sun_path, f->path);
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
    char resp[64];
    answer(&f->loop, sv[0], resp, sizeof(resp)); /* closes sv[0] */
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_string_equal(resp, "ERR permission denied\n");
    assert_int_equal(f->h.calls, 0);
    control_close(f->c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test_setup_teardown(test_serve, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_slow_client_holds_only_its_connection, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_socket_is_private, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_users_are_refused, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
