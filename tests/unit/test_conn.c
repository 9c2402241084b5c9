/*
 * Unit tests for worker/net/conn, the transport, on its own over real loopback sockets: the
 * write path under back-pressure (sends the kernel takes in part or not at all continue through
 * libuv, bytes in order), closing with output queued, and conn_ctx_free with live connections.
 * Every test runs twice: with io_uring where the kernel allows it, and with IO_URING=off (and
 * one checks the fallback where the kernel refuses a ring). The
 * peers are plain blocking/non-blocking sockets driven from the test; each test ends with
 * uv_loop_close() == 0, and ASan (make unit ASAN=1) checks that nothing leaks.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/refbuf.h"
#include "worker/net/conn.h"

#define NCONNS 3
/* generous: the box may be at load 16 */
#define GUARD_MS 60000
/* far more than the small socket buffers below hold: the kernel must take it in parts */
#define BIG_BYTES (1u << 20)

typedef struct fixture {
    uv_loop_t loop;
    uv_tcp_t server;
    struct sockaddr_in addr;
    const conn_limits_t *lim;
    conn_ctx_t *ctx;
    bool ctx_freed;
    conn_t *conns[NCONNS];
    int nconns;
    int peers[NCONNS]; /* the client ends, -1 once closed */
    int released;      /* on_release calls */
    int closed;        /* owner close callbacks */
    conn_t *told;      /* set: each owner close callback queues "bye" on it */
} fixture_t;

static const conn_proto_t proto;

static void on_data(conn_t *c, void *state, const char *p, size_t n)
{
    (void)c;
    (void)state;
    (void)p;
    (void)n;
}

static void on_release(conn_t *c, void *state)
{
    (void)c;
    ((fixture_t *)state)->released++;
}

static const conn_proto_t proto = {on_data, on_release};

static void on_closed(conn_t *c, void *ud)
{
    fixture_t *f = ud;
    f->closed++;
    if (f->told && f->told != c)
        conn_push(f->told, refbuf_from("bye", 3));
    for (int i = 0; i < f->nconns; i++) {
        if (f->conns[i] == c)
            f->conns[i] = NULL;
    }
}

static void on_connection(uv_stream_t *s, int status)
{
    fixture_t *f = s->data;
    assert_int_equal(status, 0);
    conn_t *c = NULL;
    assert_int_equal(conn_accept(f->ctx, s, &proto, f, &c), 0);
    conn_set_owner(c, on_closed, f);
    f->conns[f->nconns++] = c;
}

/* Runs the loop, never blocking (cond may read the peers), until cond holds: GUARD_MS at most. */
#define RUN_UNTIL(f, cond)                                                                         \
    do {                                                                                           \
        uint64_t until_ = uv_now(&(f)->loop) + GUARD_MS;                                           \
        while (!(cond) && uv_now(&(f)->loop) < until_)                                             \
            uv_run(&(f)->loop, UV_RUN_NOWAIT);                                                     \
        assert_true(cond);                                                                         \
    } while (0)

static int setup(void **state)
{
    const conn_limits_t *lim = *state;
    fixture_t *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    assert_int_equal(uv_tcp_init(&f->loop, &f->server), 0);
    f->server.data = f;
    uv_ip4_addr("127.0.0.1", 0, &f->addr);
    assert_int_equal(uv_tcp_bind(&f->server, (const struct sockaddr *)&f->addr, 0), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&f->server, 16, on_connection), 0);
    int len = sizeof(f->addr);
    assert_int_equal(uv_tcp_getsockname(&f->server, (struct sockaddr *)&f->addr, &len), 0);
    f->lim = lim;
    assert_int_equal(conn_ctx_new(&f->ctx, &f->loop, lim, NULL), 0);
    for (int i = 0; i < NCONNS; i++)
        f->peers[i] = -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    for (int i = 0; i < NCONNS; i++) {
        if (f->peers[i] >= 0)
            close(f->peers[i]);
    }
    if (!f->ctx_freed)
        conn_ctx_free(f->ctx);
    uv_close((uv_handle_t *)&f->server, NULL);
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    assert_int_equal(f->released, f->nconns);
    free(f);
    return 0;
}

/* Connects n peers and waits until the server accepted them. With small_bufs, the peers get small
 * receive buffers and their server ends small send buffers, so a large queue is taken in parts. */
static void connect_peers(fixture_t *f, int n, bool small_bufs)
{
    for (int i = 0; i < n; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        assert_true(fd >= 0);
        int small = 4096;
        if (small_bufs)
            assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small)), 0);
        assert_int_equal(connect(fd, (struct sockaddr *)&f->addr, sizeof(f->addr)), 0);
        f->peers[i] = fd;
    }
    RUN_UNTIL(f, f->nconns == n);
    for (int i = 0; i < n && small_bufs; i++) {
        int small = 4096;
        assert_int_equal(
            setsockopt(conn_fileno(f->conns[i]), SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)), 0);
    }
}

/* Byte k of connection i's stream: a pattern that a reordered, lost or repeated chunk breaks. */
static char pattern(int i, size_t k)
{
    return (char)((k * 31 + k / 251 + (size_t)i * 7) & 0xff);
}

/* Queues BIG_BYTES of pattern(i) on connection i in frames of varying sizes (1 .. 4000 bytes),
 * one of them shared with the other connections (a broadcast frame is one reference each). */
static void push_pattern(conn_t *c, int i)
{
    size_t k = 0, len = 1;
    while (k < BIG_BYTES) {
        size_t n = len < BIG_BYTES - k ? len : BIG_BYTES - k;
        refbuf_t *rb = refbuf_new(n);
        for (size_t j = 0; j < n; j++)
            refbuf_data(rb)[j] = pattern(i, k + j);
        conn_push(c, rb);
        k += n;
        len = len * 7 % 4001 + 1;
    }
}

/* Whether this pass writes through io_uring, checking what the stats say about it. */
static bool ring_expected(const fixture_t *f, const conn_stats_t *st)
{
    if (f->lim->no_io_uring) {
        assert_false(st->io_uring);
        assert_int_equal(st->io_uring_err, 0);
        return false;
    }
    if (!st->io_uring) /* the kernel refused a ring: then it says why */
        assert_true(st->io_uring_err < 0);
    return st->io_uring;
}

/* Reads what arrived on every peer (non-blocking), checking each byte against the pattern. */
static bool read_all(fixture_t *f, int n, size_t *got)
{
    static char buf[65536];
    bool done = true;
    for (int i = 0; i < n; i++) {
        ssize_t r;
        while (got[i] < BIG_BYTES && (r = recv(f->peers[i], buf, sizeof(buf), MSG_DONTWAIT)) > 0) {
            for (ssize_t j = 0; j < r; j++)
                assert_int_equal(buf[j], pattern(i, got[i] + (size_t)j));
            got[i] += (size_t)r;
        }
        done = done && got[i] == BIG_BYTES;
    }
    return done;
}

/* Whether every one of the first n connections has nothing left to send. */
static bool all_sent(const fixture_t *f, int n)
{
    for (int i = 0; i < n; i++)
        if (conn_outq_bytes(f->conns[i]) != 0)
            return false;
    return true;
}

/* Sends the kernel takes in part (or refuses with EAGAIN) continue through libuv: every byte
 * arrives, in order, on each of several connections written in the same loop iterations. */
static void test_short_writes_keep_order(void **state)
{
    fixture_t *f = *state;
    connect_peers(f, NCONNS, true);
    for (int i = 0; i < NCONNS; i++)
        push_pattern(f->conns[i], i);
    /* the peers read nothing until the kernel took what fits: then most of the bytes wait in
     * the queues, behind a send the kernel took in part */
    RUN_UNTIL(f, conn_outq_bytes(f->conns[0]) < BIG_BYTES);
    conn_stats_t st;
    conn_ctx_stats(f->ctx, &st);
    if (ring_expected(f, &st)) {
        assert_true(st.ring_sends >= NCONNS);
        assert_true(st.ring_partial >= NCONNS);
    } else {
        assert_int_equal(st.ring_sends, 0);
    }
    for (int i = 0; i < NCONNS; i++)
        assert_true(conn_outq_bytes(f->conns[i]) > 0);
    size_t got[NCONNS] = {0};
    RUN_UNTIL(f, read_all(f, NCONNS, got));
    /* bytes_out counts a send when its completion is reaped, which with late completions can
     * follow the peer's read: wait for every connection's queue, not only the first and last */
    RUN_UNTIL(f, all_sent(f, NCONNS));
    conn_ctx_stats(f->ctx, &st);
    assert_int_equal(st.bytes_out, (uint64_t)NCONNS * BIG_BYTES);
    assert_int_equal(f->closed, 0);
}

/* Small frames to many connections at once: each loop iteration's writes go out together, a
 * frame shared by every connection included, and each peer gets exactly its bytes. */
static void test_batched_small_frames(void **state)
{
    fixture_t *f = *state;
    connect_peers(f, NCONNS, false);
    refbuf_t *shared = refbuf_from("shared-frame|", 13);
    for (int round = 0; round < 50; round++) {
        for (int i = 0; i < NCONNS; i++) {
            char own[32];
            int n = snprintf(own, sizeof(own), "%d:%d|", i, round);
            conn_push(f->conns[i], refbuf_from(own, (size_t)n));
            conn_push(f->conns[i], refbuf_ref(shared));
        }
        RUN_UNTIL(f, all_sent(f, NCONNS));
    }
    refbuf_unref(shared);
    for (int i = 0; i < NCONNS; i++) {
        char want[4096], got[4096];
        size_t wl = 0, gl = 0;
        for (int round = 0; round < 50; round++)
            wl += (size_t)snprintf(want + wl, sizeof(want) - wl, "%d:%d|shared-frame|", i, round);
        while (gl < wl) {
            ssize_t r = recv(f->peers[i], got + gl, sizeof(got) - gl, 0);
            assert_true(r > 0);
            gl += (size_t)r;
        }
        assert_int_equal(gl, wl);
        assert_memory_equal(got, want, wl);
    }
    conn_stats_t st;
    conn_ctx_stats(f->ctx, &st);
    if (ring_expected(f, &st))
        assert_true(st.ring_sends >= 50 * NCONNS);
    else
        assert_int_equal(st.ring_sends, 0);
}

/* conn_close with output queued behind a partial send (a uv_write pending), and with output
 * queued and not yet flushed: each connection is released once, its close callback runs once,
 * and every reference is dropped (ASan: no leak). A peer that resets while output is queued
 * is closed by the failed send or read, once. */
static void test_close_with_output_queued(void **state)
{
    fixture_t *f = *state;
    connect_peers(f, NCONNS, true);
    refbuf_t *shared = refbuf_from("x", 1);
    for (int i = 0; i < NCONNS; i++)
        push_pattern(f->conns[i], i);
    RUN_UNTIL(f,
              conn_outq_bytes(f->conns[0]) < BIG_BYTES && conn_outq_bytes(f->conns[2]) < BIG_BYTES);
    /* 0: closed behind a partial send; 1: closed with a frame queued since the last flush */
    conn_close(f->conns[0]);
    conn_push(f->conns[1], refbuf_ref(shared));
    conn_close(f->conns[1]);
    conn_close(f->conns[1]);
    /* 2: its peer resets (SO_LINGER 0), the queue still full */
    struct linger lg = {1, 0};
    assert_int_equal(setsockopt(f->peers[2], SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
    close(f->peers[2]);
    f->peers[2] = -1;
    conn_push(f->conns[2], refbuf_ref(shared));
    RUN_UNTIL(f, f->released == NCONNS);
    assert_int_equal(f->closed, NCONNS);
    refbuf_unref(shared);
    conn_stats_t st;
    conn_ctx_stats(f->ctx, &st);
    assert_int_equal(st.live, 0);
    assert_int_equal(st.closed, NCONNS);
}

/* conn_ctx_free with live connections, some of them writing: every connection is closed and
 * released once, and the loop ends with nothing open. */
static void test_ctx_free_with_live_conns(void **state)
{
    fixture_t *f = *state;
    connect_peers(f, NCONNS, true);
    push_pattern(f->conns[0], 0);
    conn_push(f->conns[1], refbuf_from("bye", 3));
    RUN_UNTIL(f, conn_outq_bytes(f->conns[0]) < BIG_BYTES);
    conn_push(f->conns[2], refbuf_from("queued", 6));
    conn_ctx_free(f->ctx);
    f->ctx_freed = true;
    assert_int_equal(uv_run(&f->loop, UV_RUN_NOWAIT) >= 0, 1);
    /* teardown runs the loop to its end: uv_loop_close() == 0 and every connection released */
}

/* conn_drain flushes what is queued (a large queue taken in parts included), shuts the write
 * side down and closes once the peer's FIN arrives: the peer reads every byte, then EOF. */
static void test_drain_flushes_everything(void **state)
{
    fixture_t *f = *state;
    connect_peers(f, 1, true);
    push_pattern(f->conns[0], 0);
    conn_drain(f->conns[0]);
    size_t got[1] = {0};
    RUN_UNTIL(f, read_all(f, 1, got));
    char b;
    RUN_UNTIL(f, recv(f->peers[0], &b, 1, MSG_DONTWAIT) == 0);
    shutdown(f->peers[0], SHUT_WR);
    RUN_UNTIL(f, f->released == 1);
    assert_int_equal(f->closed, 1);
}

/* conn_close, and conn_ctx_free, right after a loop turn submitted the sends: with ring_async
 * their completions are still owed, and the connections are released once they are reaped. */
static void test_close_while_sends_in_flight(void **state)
{
    fixture_t *f = *state;
    connect_peers(f, NCONNS, false);
    for (int i = 0; i < NCONNS; i++)
        conn_push(f->conns[i], refbuf_from("in flight", 9));
    uv_run(&f->loop, UV_RUN_NOWAIT); /* the check handle submits */
    conn_close(f->conns[0]);
    RUN_UNTIL(f, f->released == 1);
    conn_push(f->conns[1], refbuf_from("more", 4));
    uv_run(&f->loop, UV_RUN_NOWAIT);
    conn_ctx_free(f->ctx);
    f->ctx_freed = true;
    /* teardown: the loop ends with every connection released and nothing open */
}

/* Reads what arrived on fd (non-blocking) into buf[*got..cap); the bytes read so far. */
static size_t recv_some(int fd, char *buf, size_t cap, size_t *got)
{
    ssize_t r = recv(fd, buf + *got, cap - *got, MSG_DONTWAIT);
    if (r > 0)
        *got += (size_t)r;
    return *got;
}

/* Output an owner queues from its close callback goes out when the callback runs while a send's
 * completion is reaped (a connection closed with its send in flight is released then). */
static void test_output_from_close_callback(void **state)
{
    fixture_t *f = *state;
    connect_peers(f, 2, false);
    f->told = f->conns[1];
    conn_t *gone = f->conns[0];
    conn_push(gone, refbuf_from("in flight", 9));
    uv_run(&f->loop, UV_RUN_NOWAIT); /* the check handle submits */
    conn_close(gone);
    conn_push(f->conns[1], refbuf_from("hi ", 3)); /* the next check reaps, if still owed */
    char buf[6];
    size_t got = 0;
    RUN_UNTIL(f, recv_some(f->peers[1], buf, sizeof(buf), &got) == sizeof(buf));
    assert_memory_equal(buf, "hi bye", 6);
}

/* conn_fileno is the accepted socket's descriptor (the one the sends go to: its local end is the
 * peer's remote end), until the connection closes. */
static void test_fileno_is_the_socket(void **state)
{
    fixture_t *f = *state;
    connect_peers(f, 1, false);
    struct sockaddr_in local, remote;
    socklen_t ll = sizeof(local), rl = sizeof(remote);
    int fd = conn_fileno(f->conns[0]);
    assert_true(fd >= 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&local, &ll), 0);
    assert_int_equal(getpeername(f->peers[0], (struct sockaddr *)&remote, &rl), 0);
    assert_int_equal(local.sin_port, remote.sin_port);
    conn_t *c = f->conns[0];
    conn_close(c);
    assert_int_equal(conn_fileno(c), -EBADF);
}

static const conn_limits_t lim_auto = {0};
static const conn_limits_t lim_async = {.ring_async = true};
static const conn_limits_t lim_off = {.no_io_uring = true};

/* The child of test_refused_ring_falls_back: io_uring_setup fails with EPERM (as under a
 * container's seccomp profile); the context writes with syscalls and says why. Exit status 0 when
 * the bytes arrived and the context reported -EPERM; cmocka's asserts stay in the parent. */
static int refused_ring_child(void)
{
    struct sock_filter filter[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {sizeof(filter) / sizeof(filter[0]), filter};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog))
        return 10;
    fixture_t f = {0};
    conn_ctx_t *ctx;
    if (uv_loop_init(&f.loop) || conn_ctx_new(&ctx, &f.loop, &lim_auto, NULL))
        return 11;
    conn_stats_t st;
    conn_ctx_stats(ctx, &st);
    if (st.io_uring || st.io_uring_err != -EPERM)
        return 12;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof(sa);
    int lfd = socket(AF_INET, SOCK_STREAM, 0), cfd = socket(AF_INET, SOCK_STREAM, 0);
    if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) || listen(lfd, 1) ||
        getsockname(lfd, (struct sockaddr *)&sa, &sl) ||
        connect(cfd, (struct sockaddr *)&sa, sizeof(sa)))
        return 13;
    conn_t *c;
    if (conn_adopt(ctx, accept(lfd, NULL, NULL), &proto, &f, &c))
        return 14;
    conn_push(c, refbuf_from("hello", 5));
    uv_run(&f.loop, UV_RUN_NOWAIT); /* the check handle flushes: the bytes are in the kernel */
    char buf[8];
    if (conn_outq_bytes(c) != 0 || recv(cfd, buf, 5, MSG_WAITALL) != 5 ||
        memcmp(buf, "hello", 5) != 0)
        return 15;
    conn_ctx_free(ctx);
    uv_run(&f.loop, UV_RUN_DEFAULT);
    close(cfd);
    close(lfd);
    return uv_loop_close(&f.loop) == 0 && f.released == 1 ? 0 : 16;
}

/* Where the kernel refuses a ring (a seccomp filter here; io_uring_disabled, an old kernel
 * likewise), the transport writes with syscalls, silently, and its stats say why. */
static void test_refused_ring_falls_back(void **state)
{
    (void)state;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(refused_ring_child());
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

/* each test through io_uring where the kernel allows it, with completions after the submit, and
 * with syscalls */
// clang-format off
#define EACH(fn)                                                                                   \
    {#fn " (io_uring)", fn, setup, teardown, (void *)&lim_auto},                                   \
    {#fn " (io_uring, late completions)", fn, setup, teardown, (void *)&lim_async},                \
    {#fn " (IO_URING=off)", fn, setup, teardown, (void *)&lim_off}
// clang-format on

int main(void)
{
    signal(SIGPIPE, SIG_IGN); /* the syscall path writes with plain writev */
    const struct CMUnitTest tests[] = {
        EACH(test_short_writes_keep_order),
        EACH(test_batched_small_frames),
        EACH(test_close_with_output_queued),
        EACH(test_ctx_free_with_live_conns),
        EACH(test_drain_flushes_everything),
        EACH(test_close_while_sends_in_flight),
        EACH(test_fileno_is_the_socket),
        EACH(test_output_from_close_callback),
        cmocka_unit_test(test_refused_ring_falls_back),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
