/* Unit tests for worker/net/acceptor: accepts up to the limit, leaves the rest in the backlog
 * (never closes them), resumes below 15/16 of it, and closes every handle and descriptor. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "worker/net/acceptor.h"

#define MAXC 8

typedef struct host {
    uv_loop_t loop;
    uv_tcp_t conns[MAXC];
    size_t accepted, released;
} host_t;

static void on_conn_closed(uv_handle_t *h)
{
    (void)h;
}

static int host_accept(uv_stream_t *server, void *arg)
{
    host_t *h = arg;
    assert_true(h->accepted < MAXC);
    uv_tcp_t *c = &h->conns[h->accepted];
    uv_tcp_init(&h->loop, c);
    int rc = uv_accept(server, (uv_stream_t *)c);
    assert_int_equal(rc, 0);
    h->accepted++;
    return rc;
}

static size_t host_live(void *arg)
{
    host_t *h = arg;
    return h->accepted - h->released;
}

static int listen_socket(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(fd, 16), 0);
    socklen_t len = sizeof(sa);
    getsockname(fd, (struct sockaddr *)&sa, &len);
    *port = ntohs(sa.sin_port);
    return fd;
}

/* A client whose handshake the kernel completes whether or not anyone accepts it. */
static int connect_client(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    return fd;
}

/* Runs the loop until *count reaches want or ms pass; true when it did. */
static bool spin_until(host_t *h, const size_t *count, size_t want, int ms)
{
    for (int i = 0; i < ms; i++) {
        uv_run(&h->loop, UV_RUN_NOWAIT);
        if (*count >= want)
            return true;
        nanosleep(&(struct timespec){0, 1000000}, NULL);
    }
    return *count >= want;
}

/* The peer has not seen its connection closed (no EOF, no reset). */
static void assert_still_open(int fd)
{
    char b;
    ssize_t n = recv(fd, &b, 1, MSG_DONTWAIT);
    assert_int_equal(n, -1);
    assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
}

static void test_pauses_at_the_limit_and_resumes(void **state)
{
    (void)state;
    host_t h = {0};
    uv_loop_init(&h.loop);
    int port;
    int lfd = listen_socket(&port);
    acceptor_t *a;
    assert_int_equal(acceptor_new(&a, &h.loop, lfd, 2, host_accept, host_live, &h), 0);
    assert_false(acceptor_paused(a));

    int c1 = connect_client(port), c2 = connect_client(port);
    assert_true(spin_until(&h, &h.accepted, 2, 2000));
    assert_true(acceptor_paused(a));

    /* the third waits in the backlog, for this worker or a sibling, and is not closed */
    int c3 = connect_client(port);
    size_t none = 0;
    spin_until(&h, &none, 1, 4 * ACCEPTOR_RECHECK_MS);
    assert_int_equal(h.accepted, 2);
    assert_still_open(c3);

    /* one goes: 1 of 2 is below 15/16 of the limit, so the next check resumes */
    uv_close((uv_handle_t *)&h.conns[0], on_conn_closed);
    h.released++;
    assert_true(spin_until(&h, &h.accepted, 3, 2000));
    assert_true(acceptor_paused(a)); /* full again */
    assert_still_open(c3);

    acceptor_close(a);
    for (size_t i = 1; i < h.accepted; i++)
        uv_close((uv_handle_t *)&h.conns[i], on_conn_closed);
    uv_run(&h.loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&h.loop), 0);
    /* the listening descriptor was the acceptor's to close */
    assert_int_equal(fcntl(lfd, F_GETFD), -1);
    close(c1);
    close(c2);
    close(c3);
}

static void test_accepts_everyone_below_the_limit_without_nagle(void **state)
{
    (void)state;
    host_t h = {0};
    uv_loop_init(&h.loop);
    int port;
    int lfd = listen_socket(&port);
    acceptor_t *a;
    assert_int_equal(acceptor_new(&a, &h.loop, lfd, 100, host_accept, host_live, &h), 0);
    int fds[5];
    for (int i = 0; i < 5; i++)
        fds[i] = connect_client(port);
    assert_true(spin_until(&h, &h.accepted, 5, 2000));
    assert_false(acceptor_paused(a));
    for (size_t i = 0; i < h.accepted; i++) { /* from the listener: no setsockopt of their own */
        uv_os_fd_t fd;
        int nodelay = 0;
        socklen_t len = sizeof(nodelay);
        assert_int_equal(uv_fileno((uv_handle_t *)&h.conns[i], &fd), 0);
        assert_int_equal(getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &nodelay, &len), 0);
        assert_int_equal(nodelay, 1);
    }
    acceptor_close(a);
    acceptor_close(NULL);
    for (size_t i = 0; i < h.accepted; i++)
        uv_close((uv_handle_t *)&h.conns[i], on_conn_closed);
    uv_run(&h.loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&h.loop), 0);
    for (int i = 0; i < 5; i++)
        close(fds[i]);
}

static void test_bad_descriptor_is_an_error(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    acceptor_t *a;
    host_t h = {0};
    assert_true(acceptor_new(&a, &loop, -1, 10, host_accept, host_live, &h) < 0);
    assert_true(acceptor_paused(a));
    acceptor_close(a);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_max_live_keeps_a_reserve(void **state)
{
    (void)state;
    assert_int_equal(acceptor_max_live(20000), 19000);
    assert_int_equal(acceptor_max_live(1024), 960);
    assert_int_equal(acceptor_max_live(64), 1);
    assert_int_equal(acceptor_max_live(0), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pauses_at_the_limit_and_resumes),
        cmocka_unit_test(test_accepts_everyone_below_the_limit_without_nagle),
        cmocka_unit_test(test_bad_descriptor_is_an_error),
        cmocka_unit_test(test_max_live_keeps_a_reserve),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
