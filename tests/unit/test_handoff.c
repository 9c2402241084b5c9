#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "worker/net/handoff.h"

typedef struct got {
    int fd;
    char bytes[64];
    size_t len;
    int calls;
} got_t;

static void on_fd(int fd, const char *p, size_t len, void *ud)
{
    got_t *g = ud;
    g->fd = fd;
    g->len = len < sizeof(g->bytes) ? len : sizeof(g->bytes);
    memcpy(g->bytes, p, g->len);
    g->calls++;
}

static void test_pass_fd_and_bytes(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    unsigned long id = (unsigned long)getpid() * 1000 + 7;
    got_t g0 = {.fd = -1}, g1 = {.fd = -1};
    handoff_t *h0, *h1, *dup;
    assert_int_equal(handoff_new(&h0, &loop, id, 0, on_fd, &g0), 0);
    assert_int_equal(handoff_new(&h1, &loop, id, 1, on_fd, &g1), 0);
    assert_int_equal(handoff_new(&dup, &loop, id, 1, on_fd, &g1), -EADDRINUSE);

    int sp[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
    assert_int_equal(handoff_send(h0, 1, sp[0], "GET / HTTP/1.1\r\n\r\n", 18), 0);
    close(sp[0]);
    assert_int_equal(handoff_send(h0, 5, sp[1], "x", 1), -ECONNREFUSED);
    static char big[HANDOFF_MAX_BYTES + 1];
    assert_int_equal(handoff_send(h0, 1, sp[1], big, sizeof(big)), -E2BIG);
    for (int i = 0; i < 100 && g1.calls == 0; i++)
        uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(g1.calls, 1);
    assert_int_equal(g0.calls, 0);
    assert_int_equal(g1.len, 18);
    assert_memory_equal(g1.bytes, "GET / HTTP/1.1\r\n\r\n", 18);
    /* the received descriptor is the same socket: bytes written to it reach the peer */
    assert_int_equal(write(g1.fd, "hi", 2), 2);
    char buf[2];
    assert_int_equal(read(sp[1], buf, 2), 2);
    assert_memory_equal(buf, "hi", 2);
    close(g1.fd);
    close(sp[1]);
    handoff_free(h0);
    handoff_free(h1);
    handoff_free(NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pass_fd_and_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
