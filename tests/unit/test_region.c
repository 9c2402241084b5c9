/* Unit tests for shm/region: layout and argument checks, eventfd wake-ups, per-child fd hygiene,
 * and a two-process run (master producer, forked consumer blocking in poll on its eventfd). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "shm/region.h"

#define CAP 4096u

static bool fd_readable(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

static void test_new_rejects_bad_arguments(void **state)
{
    (void)state;
    shm_region_t *sentinel = (shm_region_t *)&sentinel;
    shm_region_t *r = sentinel;
    assert_int_equal(shm_region_new(&r, 0, CAP, 64, 64), -EINVAL);
    assert_int_equal(shm_region_new(&r, SHM_REGION_MAX_SLOTS + 1, CAP, 64, 64), -EINVAL);
    assert_int_equal(shm_region_new(&r, 1, 1000, 64, 64), -EINVAL);
    assert_int_equal(shm_region_new(&r, 1, 2048, 64, 64), -EINVAL);
    assert_int_equal(shm_region_new(&r, 1, CAP, (size_t)SHM_REGION_MAX_BLOCK + 1, 64), -EINVAL);
    assert_int_equal(shm_region_new(&r, 1, CAP, 64, SIZE_MAX), -EINVAL);
    assert_ptr_equal(r, sentinel);
    shm_region_free(NULL);
}

static void test_layout(void **state)
{
    (void)state;
    enum { N = 4, STATS = 100, GLOBAL = 200 };
    shm_region_t *r = NULL;
    assert_int_equal(shm_region_new(&r, N, CAP, STATS, GLOBAL), 0);
    assert_int_equal(shm_region_slots(r), N);

    unsigned char *global = shm_region_global(r);
    assert_non_null(global);
    assert_int_equal((uintptr_t)global % 64, 0);
    for (size_t i = 0; i < GLOBAL; i++)
        assert_int_equal(global[i], 0);
    memset(global, 0xee, GLOBAL);

    for (uint32_t s = 0; s < N; s++) {
        ring_t *ring = shm_region_ring(r, s);
        unsigned char *stats = shm_region_slot_stats(r, s);
        assert_non_null(ring);
        assert_non_null(stats);
        assert_int_equal((uintptr_t)ring % 64, 0);
        assert_int_equal((uintptr_t)stats % 64, 0);
        assert_ptr_equal(ring_attach(ring), ring);
        assert_int_equal(ring_capacity(ring), CAP);
        assert_true(ring_empty(ring));
        for (size_t i = 0; i < STATS; i++)
            assert_int_equal(stats[i], 0);
        memset(stats, 0x10 + (int)s, STATS);
        /* Fill every ring completely, including its last byte. */
        unsigned char rec[CAP / 2 - 8];
        memset(rec, 0x80 + (int)s, sizeof(rec));
        assert_int_equal(ring_push(ring, (uint16_t)s, rec, sizeof(rec)), 0);
        assert_int_equal(ring_push(ring, (uint16_t)s, rec, sizeof(rec)), 0);
        assert_int_equal(ring_push(ring, (uint16_t)s, NULL, 0), -EAGAIN);
    }
    /* No block overlaps another: every pattern survived the writes to all the others. */
    for (size_t i = 0; i < GLOBAL; i++)
        assert_int_equal(global[i], 0xee);
    for (uint32_t s = 0; s < N; s++) {
        unsigned char *stats = shm_region_slot_stats(r, s);
        for (size_t i = 0; i < STATS; i++)
            assert_int_equal(stats[i], 0x10 + s);
        ring_t *ring = shm_region_ring(r, s);
        assert_ptr_equal(ring_attach(ring), ring);
        for (int k = 0; k < 2; k++) {
            unsigned char got[CAP / 2 - 8], want[CAP / 2 - 8];
            uint16_t type;
            uint32_t len;
            memset(want, 0x80 + (int)s, sizeof(want));
            assert_int_equal(ring_pop(ring, &type, got, sizeof(got), &len), 0);
            assert_int_equal(type, s);
            assert_int_equal(len, sizeof(got));
            assert_memory_equal(got, want, sizeof(want));
        }
        assert_true(ring_empty(ring));
    }

    assert_null(shm_region_ring(r, N));
    assert_null(shm_region_slot_stats(r, N));
    assert_int_equal(shm_region_wake_fd(r, N), -EINVAL);
    assert_int_equal(shm_region_send(r, N, 1, "x", 1), -EINVAL);
    shm_region_free(r);

    assert_int_equal(shm_region_new(&r, 1, CAP, 0, 0), 0);
    assert_null(shm_region_global(r));
    assert_null(shm_region_slot_stats(r, 0));
    assert_non_null(shm_region_ring(r, 0));
    shm_region_free(r);
}

static void test_wake_fds(void **state)
{
    (void)state;
    enum { N = 3 };
    shm_region_t *r = NULL;
    assert_int_equal(shm_region_new(&r, N, CAP, 0, 0), 0);
    for (uint32_t s = 0; s < N; s++) {
        int fd = shm_region_wake_fd(r, s);
        assert_true(fd >= 0);
        assert_true(fcntl(fd, F_GETFL) & O_NONBLOCK);
        assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
        for (uint32_t o = 0; o < s; o++)
            assert_int_not_equal(fd, shm_region_wake_fd(r, o));
        assert_false(fd_readable(fd));
    }
    shm_region_free(r);
}

static void test_send_wakes_only_a_sleeper(void **state)
{
    (void)state;
    shm_region_t *r = NULL;
    assert_int_equal(shm_region_new(&r, 2, CAP, 0, 0), 0);
    ring_t *ring = shm_region_ring(r, 1);
    int fd = shm_region_wake_fd(r, 1);
    unsigned char buf[CAP];
    uint16_t type;
    uint32_t len;

    /* Awake consumer: no eventfd traffic at all. */
    assert_int_equal(shm_region_send(r, 1, 1, "a", 1), 0);
    assert_false(fd_readable(fd));
    assert_int_equal(ring_pop(ring, &type, buf, sizeof(buf), &len), 0);

    /* Sleeping consumer: one write for the first record, none for the next. */
    assert_true(ring_prepare_sleep(ring));
    assert_int_equal(shm_region_send(r, 1, 2, "b", 1), 0);
    assert_true(fd_readable(fd));
    assert_false(fd_readable(shm_region_wake_fd(r, 0)));
    assert_int_equal(shm_region_send(r, 1, 3, "c", 1), 0);
    uint64_t count = 0;
    assert_int_equal(read(fd, &count, sizeof(count)), sizeof(count));
    assert_int_equal(count, 1);
    assert_false(fd_readable(fd));
    ring_wake_done(ring);
    assert_int_equal(ring_pop(ring, &type, buf, sizeof(buf), &len), 0);
    assert_int_equal(type, 2);
    assert_int_equal(ring_pop(ring, &type, buf, sizeof(buf), &len), 0);
    assert_int_equal(type, 3);

    /* wake_drain leaves the fd quiet, however many wake-ups piled up. */
    for (int i = 0; i < 3; i++) {
        assert_true(ring_prepare_sleep(ring));
        assert_int_equal(shm_region_send(r, 1, 4, NULL, 0), 0);
        assert_int_equal(ring_pop(ring, &type, buf, sizeof(buf), &len), 0);
    }
    assert_true(fd_readable(fd));
    shm_region_wake_drain(r, 1);
    assert_false(fd_readable(fd));
    shm_region_wake_drain(r, 1); /* already empty: returns at once */
    ring_wake_done(ring);

    /* ring_push codes pass through unchanged; a rejected record wakes nobody. */
    assert_true(ring_prepare_sleep(ring));
    assert_int_equal(shm_region_send(r, 1, 5, buf, CAP), -E2BIG);
    assert_false(fd_readable(fd));
    assert_int_equal(shm_region_send(r, 1, 5, buf, CAP / 2 - 8), 0);
    assert_int_equal(shm_region_send(r, 1, 5, buf, CAP / 2 - 8), 0);
    assert_int_equal(shm_region_send(r, 1, 5, buf, 0), -EAGAIN);
    shm_region_free(r);
}

static void test_child_keep_closes_other_fds(void **state)
{
    (void)state;
    enum { N = 4, KEEP = 2 };
    shm_region_t *r = NULL;
    assert_int_equal(shm_region_new(&r, N, CAP, 0, 0), 0);
    int fds[N];
    for (uint32_t s = 0; s < N; s++)
        fds[s] = shm_region_wake_fd(r, s);

    shm_region_child_keep(r, KEEP);
    for (uint32_t s = 0; s < N; s++) {
        if (s == KEEP) {
            assert_int_equal(shm_region_wake_fd(r, s), fds[s]);
            assert_true(fcntl(fds[s], F_GETFD) >= 0);
        } else {
            assert_int_equal(shm_region_wake_fd(r, s), -EBADF);
            errno = 0;
            assert_int_equal(fcntl(fds[s], F_GETFD), -1);
            assert_int_equal(errno, EBADF);
        }
    }
    /* The rings stay reachable; waking a slot whose fd is gone is reported, the record kept. */
    ring_t *ring = shm_region_ring(r, 0);
    assert_true(ring_prepare_sleep(ring));
    assert_int_equal(shm_region_send(r, 0, 9, "z", 1), -EBADF);
    assert_false(ring_empty(ring));
    shm_region_wake_drain(r, 0); /* no fd: a no-op */
    shm_region_child_keep(r, KEEP);
    shm_region_free(r);
}

/* ---- two processes ---- */

enum {
    N_RECORDS = 100000,
    BURST = 10000,
    T_END = 0xffff,
    MAX_LEN = 1301,
    TIMEOUT_S = 30,
    CHILD_ALARM_S = 40,
    POLL_LIMIT_MS = 10000,
};

/* Written by the consumer (slot stats block). */
struct child_stats {
    _Atomic uint64_t popped;
    _Atomic uint64_t wakes;
    _Atomic uint32_t asleep;
};

/* Written by the producer (global block). */
struct master_stats {
    _Atomic uint64_t sent;
};

static uint32_t rec_len(uint32_t seq)
{
    return (seq * 2654435761u >> 7) % MAX_LEN;
}

static uint16_t rec_type(uint32_t seq)
{
    return (uint16_t)(1 + seq % 1000);
}

static void rec_fill(unsigned char *p, uint32_t seq, uint32_t len)
{
    for (uint32_t i = 0; i < len; i++)
        p[i] = (unsigned char)(seq * 131u + i * 7u);
    if (len >= sizeof(seq))
        memcpy(p, &seq, sizeof(seq));
}

static uint64_t fnv1a(uint64_t h, const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

#define FNV_BASIS 0xcbf29ce484222325ull

/* Consumer body; returns the child's exit status (0 = every record in order and intact). */
static int consume(shm_region_t *r, uint32_t slot)
{
    ring_t *ring = shm_region_ring(r, slot);
    struct child_stats *st = shm_region_slot_stats(r, slot);
    const struct master_stats *ms = shm_region_global(r);
    int fd = shm_region_wake_fd(r, slot);
    unsigned char buf[MAX_LEN], want[MAX_LEN];
    uint64_t sum = FNV_BASIS;
    uint32_t seq = 0;
    for (;;) {
        uint16_t type;
        uint32_t len;
        int rc = ring_pop(ring, &type, buf, sizeof(buf), &len);
        if (rc == -EAGAIN) {
            if (ring_prepare_sleep(ring)) {
                atomic_store_explicit(&st->asleep, 1, memory_order_release);
                struct pollfd p = {.fd = fd, .events = POLLIN};
                int n = poll(&p, 1, POLL_LIMIT_MS);
                atomic_store_explicit(&st->asleep, 0, memory_order_relaxed);
                if (n == 0)
                    return 20; /* a lost wake-up */
                if (n < 0 && errno != EINTR)
                    return 21;
                shm_region_wake_drain(r, slot);
                atomic_fetch_add_explicit(&st->wakes, 1, memory_order_relaxed);
            }
            ring_wake_done(ring);
            continue;
        }
        if (rc != 0)
            return 22;
        if (type == T_END) {
            uint64_t end[2];
            if (len != sizeof(end))
                return 23;
            memcpy(end, buf, sizeof(end));
            if (end[0] != seq || atomic_load_explicit(&ms->sent, memory_order_relaxed) != seq)
                return 24;
            return end[1] == sum ? 0 : 25;
        }
        if (type != rec_type(seq) || len != rec_len(seq))
            return 26;
        rec_fill(want, seq, len);
        if (memcmp(buf, want, len) != 0)
            return 27;
        sum = fnv1a(sum, buf, len);
        seq++;
        atomic_fetch_add_explicit(&st->popped, 1, memory_order_relaxed);
    }
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void pause_ms(long ms)
{
    struct timespec ts = {.tv_sec = 0, .tv_nsec = ms * 1000000L};
    nanosleep(&ts, NULL);
}

/* The parent's view of its consumer child. */
struct child {
    pid_t pid;
    bool reaped;
    int status;
    double deadline;
};

/* True once the child has exited (reaped into c->status) or the deadline passed (child killed). */
static bool child_gone(struct child *c, bool block)
{
    while (!c->reaped) {
        pid_t w = waitpid(c->pid, &c->status, WNOHANG);
        if (w == c->pid) {
            c->reaped = true;
        } else if (w < 0 && errno != EINTR) {
            c->reaped = true;
            c->status = -1;
        } else if (now_s() > c->deadline) {
            kill(c->pid, SIGKILL);
            waitpid(c->pid, NULL, 0);
            c->reaped = true;
            c->status = -1;
        } else if (!block) {
            return false;
        } else {
            pause_ms(1);
        }
    }
    return true;
}

/* Retries a full ring while the consumer lives; false on any other error, or if it is gone. */
static bool send_retry(shm_region_t *r, uint32_t slot, uint16_t type, const void *p, uint32_t len,
                       struct child *c)
{
    for (unsigned spins = 1;; spins++) {
        int rc = shm_region_send(r, slot, type, p, len);
        if (rc != -EAGAIN)
            return rc == 0;
        if (spins % 256 == 0 && child_gone(c, false))
            return false;
        sched_yield();
    }
}

/* Waits until the consumer has announced sleep and blocks in poll (or is gone). */
static void wait_asleep(const struct child_stats *st, struct child *c)
{
    while (!atomic_load_explicit(&st->asleep, memory_order_acquire) && !child_gone(c, false))
        pause_ms(1);
}

static void test_two_process_stream(void **state)
{
    (void)state;
    enum { SLOT = 1 };
    shm_region_t *r = NULL;
    assert_int_equal(
        shm_region_new(&r, 2, CAP, sizeof(struct child_stats), sizeof(struct master_stats)), 0);
    struct child_stats *st = shm_region_slot_stats(r, SLOT);
    struct master_stats *ms = shm_region_global(r);

    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        alarm(CHILD_ALARM_S);
        shm_region_child_keep(r, SLOT);
        int status = consume(r, SLOT);
        shm_region_free(r);
        _exit(status);
    }

    struct child c = {.pid = pid, .deadline = now_s() + TIMEOUT_S};
    unsigned char buf[MAX_LEN];
    uint64_t sum = FNV_BASIS;
    uint32_t seq = 0;
    bool ok = true;
    for (; seq < N_RECORDS && ok; seq++) {
        /* Start each burst against a sleeping consumer so the wake-up path runs every time. */
        if (seq % BURST == 0)
            wait_asleep(st, &c);
        uint32_t len = rec_len(seq);
        rec_fill(buf, seq, len);
        ok = send_retry(r, SLOT, rec_type(seq), buf, len, &c);
        sum = fnv1a(sum, buf, len);
    }
    atomic_store_explicit(&ms->sent, seq, memory_order_relaxed);
    uint64_t end[2] = {seq, sum};
    ok = ok && send_retry(r, SLOT, T_END, end, sizeof(end), &c);

    child_gone(&c, true);
    assert_int_not_equal(c.status, -1); /* -1: timed out, child killed */
    assert_true(WIFEXITED(c.status));
    assert_int_equal(WEXITSTATUS(c.status), 0); /* else see consume() for the failed check */
    assert_true(ok);
    assert_int_equal(atomic_load(&st->popped), N_RECORDS);
    assert_true(atomic_load(&st->wakes) >= N_RECORDS / BURST);
    assert_true(ring_empty(shm_region_ring(r, SLOT)));
    shm_region_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_rejects_bad_arguments),
        cmocka_unit_test(test_layout),
        cmocka_unit_test(test_wake_fds),
        cmocka_unit_test(test_send_wakes_only_a_sleeper),
        cmocka_unit_test(test_child_keep_closes_other_fds),
        cmocka_unit_test(test_two_process_stream),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
