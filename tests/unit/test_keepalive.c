/*
 * Unit tests for common/keepalive: the default schedule drops a silent peer after
 * KEEPALIVE_DEAD_AFTER_MS; a longer wait keeps the idle time and interval and probes more (a
 * subscribed Redis connection, REDIS_PUBSUB_DEAD_AFTER_MS); a socket that is not TCP is refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/keepalive.h"

static int opt(int fd, int level, int name)
{
    int v = -1;
    socklen_t len = sizeof(v);
    assert_int_equal(getsockopt(fd, level, name, &v, &len), 0);
    return v;
}

static void test_schedules(void **state)
{
    (void)state;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    assert_int_equal(keepalive_set(fd, 0), 0);
    assert_int_equal(opt(fd, SOL_SOCKET, SO_KEEPALIVE), 1);
    assert_int_equal(opt(fd, IPPROTO_TCP, TCP_KEEPIDLE), 5);
    assert_int_equal(opt(fd, IPPROTO_TCP, TCP_KEEPINTVL), 2);
    assert_int_equal(opt(fd, IPPROTO_TCP, TCP_KEEPCNT), 3);
    assert_int_equal(opt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT), KEEPALIVE_DEAD_AFTER_MS);

    assert_int_equal(keepalive_set(fd, 60000), 0);
    assert_int_equal(opt(fd, IPPROTO_TCP, TCP_KEEPIDLE), 5);
    assert_int_equal(opt(fd, IPPROTO_TCP, TCP_KEEPINTVL), 2);
    assert_int_equal(opt(fd, IPPROTO_TCP, TCP_KEEPCNT), 27); /* 5 s + 27 x 2 s < 60 s */
    assert_int_equal(opt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT), 60000);
    close(fd);

    int u = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_true(u >= 0);
    assert_int_equal(keepalive_set(u, 0), -EOPNOTSUPP);
    close(u);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_schedules),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
