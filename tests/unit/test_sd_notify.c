/* Unit tests for common/sd_notify: the datagram reaches the socket; none is a no-op. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/sd_notify.h"

static void test_unset_is_noop(void **state)
{
    (void)state;
    assert_int_equal(sd_notify_send("", "READY=1"), 0);
}

static void check_socket(const char *name, bool abstract)
{
    int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    size_t n = strlen(name);
    memcpy(sa.sun_path, name, n);
    if (abstract)
        sa.sun_path[0] = '\0';
    assert_int_equal(
        bind(fd, (struct sockaddr *)&sa, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n)),
        0);
    assert_int_equal(sd_notify_send(name, "READY=1\nSTATUS=serving"), 0);
    char got[64] = {0};
    assert_int_equal(recv(fd, got, sizeof(got) - 1, 0), 22);
    assert_string_equal(got, "READY=1\nSTATUS=serving");
    close(fd);
}

static void test_path_socket(void **state)
{
    (void)state;
    char path[64];
    snprintf(path, sizeof(path), "/tmp/streamio-notify-%d", (int)getpid());
    unlink(path);
    check_socket(path, false);
    unlink(path);
}

static void test_abstract_socket(void **state)
{
    (void)state;
    char name[64];
    snprintf(name, sizeof(name), "@streamio-notify-%d", (int)getpid());
    check_socket(name, true);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unset_is_noop),
        cmocka_unit_test(test_path_socket),
        cmocka_unit_test(test_abstract_socket),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
