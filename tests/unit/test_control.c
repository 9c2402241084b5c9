/* Unit tests for master/admin/control: netstring request parsing, requests over a real socket
 * on a libuv loop, a slow client or a long command holding only its own connection. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
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
    const char *bad[] = {"3:ab,", "3:abc", "3:abc;", "x:a,", ":a,", "999999999:a,", "4:abc,"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(control_parse(bad[i], strlen(bad[i]), &store, &argc, argv, lens), -EPROTO);
    const char many[] = "1:a,1:a,1:a,1:a,1:a,1:a,1:a,1:a,1:a,";
    assert_int_equal(control_parse(many, strlen(many), &store, &argc, argv, lens), -EPROTO);
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

/* Turns the loop for about `ms` milliseconds. */
static void spin(uv_loop_t *loop, int ms)
{
    for (int i = 0; i < ms; i++) {
        uv_run(loop, UV_RUN_NOWAIT);
        usleep(1000);
    }
}

static void test_serve(void **state)
{
    (void)state;
    char path[64];
    snprintf(path, sizeof(path), "/tmp/test_control_%d.sock", (int)getpid());
    uv_loop_t loop;
    uv_loop_init(&loop);
    buf_t err;
    buf_init(&err);
    handler_t h = {0};
    control_t *c = NULL;
    assert_int_equal(control_open(&c, &loop, path, handle, &h, &err), 0);
    char resp[128];
    int a = dial(path, "6:status,3:two,", true);
    int b = dial(path, "4:fail,", true);
    answer(&loop, a, resp, sizeof(resp));
    assert_string_equal(resp, "OK\n2:two");
    answer(&loop, b, resp, sizeof(resp));
    assert_string_equal(resp, "ERR it failed\n");
    answer(&loop, dial(path, "garbage", true), resp, sizeof(resp));
    assert_string_equal(resp, "ERR malformed request\n");
    assert_int_equal(h.calls, 2); /* a malformed request never reaches the handler */
    control_close(c);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(access(path, F_OK), -1);
    assert_int_equal(uv_loop_close(&loop), 0);
    control_close(NULL);
    buf_free(&err);
}

/* A client that sends its request a byte at a time, or a command still running, holds only its
 * own connection: the others are served meanwhile. */
static void test_a_slow_client_holds_only_its_connection(void **state)
{
    (void)state;
    char path[64];
    snprintf(path, sizeof(path), "/tmp/test_control_slow_%d.sock", (int)getpid());
    uv_loop_t loop;
    uv_loop_init(&loop);
    buf_t err;
    buf_init(&err);
    handler_t h = {0};
    control_t *c = NULL;
    assert_int_equal(control_open(&c, &loop, path, handle, &h, &err), 0);
    int slow = dial(path, "6:", false);
    int held = dial(path, "4:hold,", true);
    char resp[128];
    for (int i = 0; i < 3; i++) {
        spin(&loop, 300);
        assert_int_equal(write(slow, "s", 1), 1); /* a byte every 0.3 s */
        answer(&loop, dial(path, "4:ping,", true), resp, sizeof(resp));
        assert_string_equal(resp, "OK\n1:ping");
    }
    assert_non_null(h.held);
    control_done(h.held, 0);
    answer(&loop, held, resp, sizeof(resp));
    assert_string_equal(resp, "OK\nheld");
    /* silence for a second ends the slow request */
    answer(&loop, slow, resp, sizeof(resp));
    assert_string_equal(resp, "ERR request timed out\n");
    assert_int_equal(h.calls, 4);
    /* the socket closes while a command runs: its late answer goes nowhere */
    h.held = NULL;
    int orphan = dial(path, "4:hold,", true);
    while (!h.held)
        spin(&loop, 1);
    control_close(c);
    spin(&loop, 10);
    control_done(h.held, 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    close(orphan);
    assert_int_equal(uv_loop_close(&loop), 0);
    buf_free(&err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_serve),
        cmocka_unit_test(test_a_slow_client_holds_only_its_connection),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
