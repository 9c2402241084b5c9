/* Unit tests for master/admin/control: netstring request parsing, and one request over a real socket. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
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

/* Queues one request and closes; the listener is served afterwards by the caller. */
static void send_only(const char *path, const char *req)
{
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    strcpy(sa.sun_path, path);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(write(fd, req, strlen(req)), (ssize_t)strlen(req));
    shutdown(fd, SHUT_WR);
    close(fd);
}

static void test_serve(void **state)
{
    (void)state;
    char path[64];
    snprintf(path, sizeof(path), "/tmp/test_control_%d.sock", (int)getpid());
    buf_t err;
    buf_init(&err);
    control_t *c = NULL;
    assert_int_equal(control_open(&c, path, &err), 0);
    assert_true(control_fd(c) >= 0);
    int calls = 0;
    int fds[2];
    for (int k = 0; k < 2; k++) {
        fds[k] = socket(AF_UNIX, SOCK_STREAM, 0);
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        strcpy(sa.sun_path, path);
        assert_int_equal(connect(fds[k], (struct sockaddr *)&sa, sizeof(sa)), 0);
        const char *req = k == 0 ? "6:status,3:two," : "4:fail,";
        assert_int_equal(write(fds[k], req, strlen(req)), (ssize_t)strlen(req));
        shutdown(fds[k], SHUT_WR);
    }
    control_serve(c, echo, &calls);
    assert_int_equal(calls, 2);
    char resp[128];
    ssize_t n = read(fds[0], resp, sizeof(resp) - 1);
    resp[n > 0 ? n : 0] = '\0';
    assert_string_equal(resp, "OK\n2:two");
    n = read(fds[1], resp, sizeof(resp) - 1);
    resp[n > 0 ? n : 0] = '\0';
    assert_string_equal(resp, "ERR it failed\n");
    close(fds[0]);
    close(fds[1]);
    send_only(path, "garbage");
    control_serve(c, echo, &calls);
    assert_int_equal(calls, 2); /* a malformed request never reaches the handler */
    control_close(c);
    assert_int_equal(access(path, F_OK), -1);
    control_close(NULL);
    buf_free(&err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_serve),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
