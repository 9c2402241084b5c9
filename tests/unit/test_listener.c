/* Unit tests for master/proc/listener: binds loopback, refuses a busy port and a bad host clearly. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "master/proc/listener.h"

static int bound_port(int fd)
{
    struct sockaddr_in sa;
    socklen_t len = sizeof(sa);
    getsockname(fd, (struct sockaddr *)&sa, &len);
    return ntohs(sa.sin_port);
}

static void test_listens_nonblocking(void **state)
{
    (void)state;
    buf_t err;
    buf_init(&err);
    int fd = listener_open("127.0.0.1", 0, &err);
    /* port 0 is outside PORT's range but lets the test take any free port */
    assert_true(fd >= 0);
    assert_true(fcntl(fd, F_GETFL) & O_NONBLOCK);
    int port = bound_port(fd);
    assert_true(port > 0);

    int fd2 = listener_open("127.0.0.1", port, &err);
    assert_true(fd2 < 0);
    assert_non_null(strstr(err.data, "cannot listen on 127.0.0.1:"));
    close(fd);
    buf_free(&err);
}

static void test_bad_host(void **state)
{
    (void)state;
    buf_t err;
    buf_init(&err);
    assert_true(listener_open("no-such-host.invalid", 3000, &err) < 0);
    assert_non_null(strstr(err.data, "HOST=\"no-such-host.invalid\""));
    buf_free(&err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_listens_nonblocking),
        cmocka_unit_test(test_bad_host),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
