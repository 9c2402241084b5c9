#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "shm/stats.h"
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

typedef struct fixture {
    uv_loop_t loop;
    shm_region_t *region;
    local_sock_t *socks;
} fixture_t;

static void fixture_init(fixture_t *f, uint32_t nblocks)
{
    assert_int_equal(uv_loop_init(&f->loop), 0);
    assert_int_equal(shm_region_new(&f->region, nblocks, 4096, sizeof(stats_worker_t), 0), 0);
    assert_int_equal(local_sock_new(&f->socks, nblocks), 0);
}

static void set_pid(fixture_t *f, uint32_t block, pid_t pid)
{
    stats_worker_t *st = shm_region_slot_stats(f->region, block);
    STATS_SET(st->pid, pid);
}

static void fixture_free(fixture_t *f)
{
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    local_sock_free(f->socks);
    shm_region_free(f->region);
}

static void spin(uv_loop_t *loop, const int *calls, int want)
{
    for (int i = 0; i < 200 && *calls < want; i++) {
        uv_run(loop, UV_RUN_NOWAIT);
        usleep(500);
    }
}

/* Two blocks, this process the live worker of block 1, which receives with a handoff. */
typedef struct receiver {
    fixture_t f;
    got_t g1;
    handoff_t *h1;
} receiver_t;

static void receiver_init(receiver_t *r)
{
    fixture_init(&r->f, 2);
    set_pid(&r->f, 1, getpid());
    r->g1 = (got_t){.fd = -1};
    assert_int_equal(handoff_new(&r->h1, &r->f.loop, r->f.socks, r->f.region, 1, on_fd, &r->g1), 0);
}

static void receiver_free(receiver_t *r)
{
    handoff_free(r->h1);
    fixture_free(&r->f);
}

static void test_pass_fd_and_bytes(void **state)
{
    (void)state;
    fixture_t f;
    fixture_init(&f, 4);
    set_pid(&f, 0, getpid());
    set_pid(&f, 1, getpid());
    got_t g0 = {.fd = -1}, g1 = {.fd = -1};
    handoff_t *h0, *h1;
    assert_int_equal(handoff_new(&h0, &f.loop, f.socks, f.region, 0, on_fd, &g0), 0);
    assert_int_equal(handoff_new(&h1, &f.loop, f.socks, f.region, 1, on_fd, &g1), 0);

    int sp[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
    assert_int_equal(handoff_send(h0, 1, sp[0], "GET / HTTP/1.1\r\n\r\n", 18), 0);
    close(sp[0]);
    /* block 2 has no live worker, block 9 does not exist */
    assert_int_equal(handoff_send(h0, 2, sp[1], "x", 1), -ECONNREFUSED);
    assert_int_equal(handoff_send(h0, 9, sp[1], "x", 1), -ECONNREFUSED);
    static char big[HANDOFF_MAX_BYTES + 1];
    assert_int_equal(handoff_send(h0, 1, sp[1], big, sizeof(big)), -E2BIG);
    spin(&f.loop, &g1.calls, 1);
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
    fixture_free(&f);
}

/* What the audit sent: a regular file (libuv cannot poll it) or a datagram socket. Dropped and
 * closed; the next real handoff still arrives. */
static void test_only_stream_sockets_are_accepted(void **state)
{
    (void)state;
    receiver_t r;
    receiver_init(&r);
    set_pid(&r.f, 0, getpid());
    int tx = local_sock_tx(r.f.socks, 1, LOCAL_SOCK_HANDOFF);
    assert_true(tx >= 0);
    int file = open("/dev/null", O_RDONLY | O_CLOEXEC);
    int dg[2], sp[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_DGRAM, 0, dg), 0);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
    assert_int_equal(local_sock_send(tx, "GET /a HTTP/1.1\r\n\r\n", 19, file), 0);
    assert_int_equal(local_sock_send(tx, "GET /b HTTP/1.1\r\n\r\n", 19, dg[0]), 0);
    assert_int_equal(local_sock_send(tx, "no descriptor", 13, -1), 0);
    assert_int_equal(local_sock_send(tx, "GET /c HTTP/1.1\r\n\r\n", 19, sp[0]), 0);
    spin(&r.f.loop, &r.g1.calls, 1);
    for (int i = 0; i < 20; i++)
        uv_run(&r.f.loop, UV_RUN_NOWAIT);
    assert_int_equal(r.g1.calls, 1);
    assert_memory_equal(r.g1.bytes, "GET /c", 6);
    close(r.g1.fd);
    close(file);
    close(dg[0]);
    close(dg[1]);
    close(sp[0]);
    close(sp[1]);
    receiver_free(&r);
}

/* A child sends a socket on block 1's channel, after dropping to `uid` when not negative. */
static void send_from_child(fixture_t *f, pid_t *child_pid, int uid)
{
    int go[2];
    assert_int_equal(pipe(go), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char c;
        close(go[1]);
        if (read(go[0], &c, 1) != 1)
            _exit(3);
        if (uid >= 0 && setresuid((uid_t)uid, (uid_t)uid, (uid_t)uid) != 0)
            _exit(4);
        int sp[2];
        if (socketpair(AF_UNIX, SOCK_STREAM, 0, sp) != 0)
            _exit(5);
        int tx = local_sock_tx(f->socks, 1, LOCAL_SOCK_HANDOFF);
        _exit(local_sock_send(tx, "GET /x HTTP/1.1\r\n\r\n", 19, sp[0]) == 0 ? 0 : 6);
    }
    close(go[0]);
    *child_pid = pid;
    if (uid >= 0)
        set_pid(f, 0, pid); /* a live worker's pid, but another user */
    assert_int_equal(write(go[1], "g", 1), 1);
    close(go[1]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* Senders are checked by their credentials: only live workers of this server (our uid, a pid
 * the region holds) are heard. */
static void test_strangers_are_dropped(void **state)
{
    (void)state;
    receiver_t r;
    receiver_init(&r);
    pid_t child;
    send_from_child(&r.f, &child, -1); /* a process that is no worker */
    if (geteuid() == 0)
        send_from_child(&r.f, &child, 65534); /* a worker's pid under another uid */
    for (int i = 0; i < 50; i++)
        uv_run(&r.f.loop, UV_RUN_NOWAIT);
    assert_int_equal(r.g1.calls, 0);
    set_pid(&r.f, 0, getpid());
    int tx = local_sock_tx(r.f.socks, 1, LOCAL_SOCK_HANDOFF);
    int sp[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
    assert_int_equal(local_sock_send(tx, "GET /ok HTTP/1.1\r\n\r\n", 20, sp[0]), 0);
    spin(&r.f.loop, &r.g1.calls, 1);
    assert_int_equal(r.g1.calls, 1);
    close(r.g1.fd);
    close(sp[0]);
    close(sp[1]);
    receiver_free(&r);
}

/* A worker the master reaped a moment ago is still heard: what it queued before it died (here a
 * socket it handed over; for siblings, entries it may have acknowledged) is not dropped. */
static void test_a_reaped_workers_queue_is_heard(void **state)
{
    (void)state;
    receiver_t r;
    receiver_init(&r);
    pid_t child;
    send_from_child(&r.f, &child, -1); /* queued, then the sender is gone */
    /* the master reaped it: block 0 holds no pid, only its last one */
    stats_worker_t *st = shm_region_slot_stats(r.f.region, 0);
    STATS_SET(st->pid, 0);
    STATS_SET(st->exited_pid, (uint64_t)child);
    spin(&r.f.loop, &r.g1.calls, 1);
    assert_int_equal(r.g1.calls, 1);
    assert_true(r.g1.fd >= 0);
    close(r.g1.fd);
    receiver_free(&r);
}

/* A worker holds its own receiving ends and the others' sending ends, nothing else; the master's
 * drain empties a dead block's queue and closes the descriptors it carried. */
static void test_child_keep_and_drain(void **state)
{
    (void)state;
    fixture_t f;
    fixture_init(&f, 3);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        local_sock_child_keep(f.socks, 1);
        int ok = local_sock_rx(f.socks, 1, LOCAL_SOCK_HANDOFF) >= 0 &&
                 local_sock_rx(f.socks, 1, LOCAL_SOCK_SIBLINGS) >= 0 &&
                 local_sock_rx(f.socks, 0, LOCAL_SOCK_HANDOFF) == -EBADF &&
                 local_sock_rx(f.socks, 2, LOCAL_SOCK_SIBLINGS) == -EBADF &&
                 local_sock_tx(f.socks, 1, LOCAL_SOCK_HANDOFF) == -EBADF &&
                 local_sock_tx(f.socks, 0, LOCAL_SOCK_HANDOFF) >= 0 &&
                 local_sock_tx(f.socks, 2, LOCAL_SOCK_SIBLINGS) >= 0 &&
                 local_sock_rx(f.socks, 3, LOCAL_SOCK_HANDOFF) == -EINVAL;
        _exit(ok ? 0 : 1);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);

    int sp[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
    int tx = local_sock_tx(f.socks, 2, LOCAL_SOCK_HANDOFF);
    assert_int_equal(local_sock_send(tx, "a", 1, sp[0]), 0);
    assert_int_equal(local_sock_send(tx, "b", 1, -1), 0);
    close(sp[0]);
    local_sock_drain(f.socks, 2);
    /* the queued copy of sp[0] was closed: the peer sees EOF */
    char c;
    assert_int_equal(read(sp[1], &c, 1), 0);
    size_t n;
    int fd;
    assert_int_equal(
        local_sock_recv(local_sock_rx(f.socks, 2, LOCAL_SOCK_HANDOFF), f.region, &c, 1, &n, &fd),
        -EAGAIN);
    close(sp[1]);
    fixture_free(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pass_fd_and_bytes),
        cmocka_unit_test(test_only_stream_sockets_are_accepted),
        cmocka_unit_test(test_strangers_are_dropped),
        cmocka_unit_test(test_a_reaped_workers_queue_is_heard),
        cmocka_unit_test(test_child_keep_and_drain),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
