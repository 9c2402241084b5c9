/*
 * Unit tests for master/proc/slots against a fake world (fork, kill, clock, sd_notify, the
 * blocks' stats): respawn backoff and its cap, exit 2 during setup, the master giving up when no
 * worker can run, the rolling reload (the new process listens before the old one drains, one
 * worker at a time), growing and shrinking CLUSTER_WORKERS, a failed replacement, refused
 * reloads, the SIGTERM drain with its SIGKILL deadline, the watchdog and READY/STATUS.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "master/proc/slots.h"

#define CAP 4
#define MAX_EVENTS 256

typedef struct fake {
    uint64_t now_us;
    pid_t next_pid;
    int spawn_error; /* returned by the next spawn when set */
    stats_worker_t blocks[2 * CAP];
    stats_global_t g;
    pid_t pid_block[2 * CAP]; /* the pid last started in each block */
    int reaped[2 * CAP];      /* exits reported per block */
    char events[MAX_EVENTS][96];
    int nevents;
    slots_t *s;
} fake_t;

static void event(fake_t *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void event(fake_t *f, const char *fmt, ...)
{
    assert_true(f->nevents < MAX_EVENTS);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f->events[f->nevents++], sizeof(f->events[0]), fmt, ap);
    va_end(ap);
}

static pid_t f_spawn(void *arg, uint32_t worker, uint32_t block)
{
    fake_t *f = arg;
    if (f->spawn_error) {
        int rc = f->spawn_error;
        f->spawn_error = 0;
        return rc;
    }
    pid_t pid = f->next_pid++;
    assert_int_equal(STATS_GET(f->blocks[block].index), worker);
    f->pid_block[block] = pid;
    event(f, "spawn w%u b%u pid %d role %llu", worker, block, (int)pid,
          (unsigned long long)STATS_GET(f->blocks[block].role));
    return pid;
}

static int f_kill(void *arg, pid_t pid, int sig)
{
    event(arg, "kill %d %s", (int)pid, sig == SIGTERM ? "TERM" : sig == SIGKILL ? "KILL" : "?");
    return 0;
}

static uint64_t f_now_us(void *arg)
{
    return ((fake_t *)arg)->now_us;
}

static void f_notify(void *arg, const char *state)
{
    event(arg, "notify %s", state);
}

static stats_worker_t *f_stats(void *arg, uint32_t block)
{
    fake_t *f = arg;
    assert_true(block < 2 * CAP);
    return &f->blocks[block];
}

static void f_attach(void *arg, uint32_t worker, uint32_t block)
{
    event(arg, "attach w%u b%u", worker, block);
}

static void f_detach(void *arg, uint32_t worker)
{
    event(arg, "detach w%u", worker);
}

static void f_resend(void *arg, uint32_t worker)
{
    event(arg, "resend w%u", worker);
}

static void f_reaped(void *arg, uint32_t block)
{
    fake_t *f = arg;
    f->reaped[block]++;
}

static const slots_ops_t ops = {f_spawn,  f_kill,   f_now_us, f_notify, f_stats,
                                f_attach, f_detach, f_resend, f_reaped};

static fake_t *world(uint32_t workers)
{
    fake_t *f = calloc(1, sizeof(*f));
    f->next_pid = 100;
    f->now_us = 1000000;
    f->s = slots_new(&ops, f, &f->g, workers, CAP, 5000);
    return f;
}

static void done(fake_t *f)
{
    slots_free(f->s);
    free(f);
}

/* The index of the first event starting with `prefix` at or after `from`, or -1. */
static int find(const fake_t *f, int from, const char *prefix)
{
    for (int i = from; i < f->nevents; i++) {
        if (strncmp(f->events[i], prefix, strlen(prefix)) == 0)
            return i;
    }
    return -1;
}

static int count(const fake_t *f, int from, const char *prefix)
{
    int n = 0;
    for (int i = from; i < f->nevents; i++)
        n += strncmp(f->events[i], prefix, strlen(prefix)) == 0;
    return n;
}

static int block_of(const fake_t *f, pid_t pid)
{
    for (int b = 0; b < 2 * CAP; b++) {
        if (f->pid_block[b] == pid)
            return b;
    }
    fail_msg("no block for pid %d", (int)pid);
    return -1;
}

/* The worker process `pid` listens: it publishes its pid in its stats block. */
static void listens(fake_t *f, pid_t pid)
{
    STATS_SET(f->blocks[block_of(f, pid)].pid, pid);
}

static void advance(fake_t *f, uint64_t ms)
{
    f->now_us += ms * 1000;
    slots_tick(f->s);
}

static int killed_by(int sig)
{
    return sig & 0x7f; /* a waitpid status for death by `sig` */
}

static int exited_with(int code)
{
    return (code & 0xff) << 8;
}

/* Starts `workers` workers and lets them all listen (pids 100, 101, ...). */
static fake_t *running(uint32_t workers)
{
    fake_t *f = world(workers);
    assert_int_equal(slots_start(f->s), 0);
    for (uint32_t i = 0; i < workers; i++)
        listens(f, (pid_t)(100 + i));
    slots_tick(f->s);
    return f;
}

static void test_start_then_ready_once_all_listen(void **state)
{
    (void)state;
    fake_t *f = world(2);
    assert_int_equal(slots_start(f->s), 0);
    assert_string_equal(f->events[0], "spawn w0 b0 pid 100 role 2");
    assert_string_equal(f->events[1], "attach w0 b0");
    assert_string_equal(f->events[2], "spawn w1 b1 pid 101 role 2");
    assert_string_equal(f->events[3], "attach w1 b1");
    assert_int_equal(STATS_GET(f->g.workers), 2);
    assert_int_equal(STATS_GET(f->g.generation), 1);
    /* READY=1 waits for every worker; the slots look often meanwhile */
    listens(f, 100);
    assert_true(slots_tick(f->s) <= 10);
    assert_int_equal(find(f, 0, "notify READY=1"), -1);
    listens(f, 101);
    STATS_SET(f->blocks[0].connections, 3);
    STATS_SET(f->g.streams, 7);
    slots_tick(f->s);
    int ready = find(f, 0, "notify READY=1");
    assert_true(ready > 0);
    assert_string_equal(f->events[ready], "notify READY=1\nSTATUS=serving with 2 workers, 3 "
                                          "clients, 7 streams (generation 1)");
    /* STATUS= again only when it changes, at most once a second */
    STATS_SET(f->blocks[1].connections, 2);
    advance(f, 500);
    assert_int_equal(count(f, ready + 1, "notify STATUS="), 0);
    advance(f, 600);
    assert_int_equal(count(f, ready + 1, "notify STATUS=serving with 2 workers, 5 clients"), 1);
    advance(f, 1100);
    assert_int_equal(count(f, ready + 1, "notify STATUS="), 1);
    assert_int_equal(slots_exit_status(f->s), -1);
    done(f);
}

static void test_respawn_backoff_grows_and_caps(void **state)
{
    (void)state;
    fake_t *f = running(1);
    pid_t pid = 100;
    uint32_t expect = 100;
    for (int round = 0; round < 12; round++) {
        int from = f->nevents;
        slots_exited(f->s, pid, killed_by(SIGKILL));
        assert_int_equal(count(f, from, "detach w0"), 1);
        int reaped = 0; /* its block's channels are drained once per exit */
        for (uint32_t b = 0; b < 2 * CAP; b++)
            reaped += f->reaped[b];
        assert_int_equal(reaped, round + 1);
        assert_int_equal(STATS_GET(f->g.respawns), (uint64_t)round + 1);
        /* nothing before the backoff is over */
        advance(f, expect - 1);
        assert_int_equal(count(f, from, "spawn"), 0);
        advance(f, 1);
        assert_int_equal(count(f, from, "spawn w0"), 1);
        assert_int_equal(count(f, from, "attach w0"), 1);
        pid = f->next_pid - 1;
        listens(f, pid);
        advance(f, 50); /* dies again soon after its start */
        expect = expect * 2 > 30000 ? 30000 : expect * 2;
    }
    assert_int_equal(expect, 30000); /* the cap was reached and held */
    /* a worker that lived 10 s starts over from 100 ms */
    advance(f, 10000);
    int from = f->nevents;
    slots_exited(f->s, pid, exited_with(1));
    advance(f, 100);
    assert_int_equal(count(f, from, "spawn w0"), 1);
    done(f);
}

/* A reaped worker's pid stays in its block, also once a respawn reuses the block: the siblings
 * still hear the datagrams it queued before it died (shm/local_sock.h). */
static void test_a_reaped_pid_outlives_its_block(void **state)
{
    (void)state;
    fake_t *f = running(1);
    int b = block_of(f, 100);
    slots_exited(f->s, 100, killed_by(SIGKILL));
    assert_int_equal(STATS_GET(f->blocks[b].pid), 0);
    assert_int_equal(STATS_GET(f->blocks[b].exited_pid), 100);
    advance(f, 100); /* the respawn */
    pid_t next = f->next_pid - 1;
    assert_int_equal(next, 101);
    int nb = block_of(f, next);
    assert_int_equal(STATS_GET(f->blocks[nb].exited_pid), nb == b ? 100 : 0);
    assert_int_equal(STATS_GET(f->blocks[b].exited_pid), 100);
    listens(f, next);
    slots_exited(f->s, next, exited_with(1));
    assert_int_equal(STATS_GET(f->blocks[nb].exited_pid), 101);
    done(f);
}

static void test_exit_2_during_setup_is_not_respawned(void **state)
{
    (void)state;
    fake_t *f = running(2);
    /* exit 2 after the setup window is an ordinary death */
    advance(f, 6000);
    slots_exited(f->s, 101, exited_with(2));
    advance(f, 100);
    assert_int_equal(count(f, 0, "spawn w1"), 2);
    listens(f, 102);
    slots_tick(f->s);
    /* within it, a setup failure: never respawned */
    int from = f->nevents;
    slots_exited(f->s, 102, exited_with(2));
    advance(f, 60000);
    assert_int_equal(count(f, from, "spawn"), 0);
    assert_int_equal(slots_exit_status(f->s), -1); /* worker 0 still serves */
    /* worker 0 fails at setup too: no worker can run, the master exits 2 */
    slots_exited(f->s, 100, killed_by(SIGSEGV));
    advance(f, 100);
    pid_t again = f->next_pid - 1;
    slots_exited(f->s, again, exited_with(2));
    slots_tick(f->s);
    assert_int_equal(slots_exit_status(f->s), 2);
    done(f);
}

static void test_rolling_reload_one_worker_at_a_time(void **state)
{
    (void)state;
    fake_t *f = running(3);
    int from = f->nevents;
    assert_int_equal(slots_reload(f->s, 3, 5000), 0);
    assert_true(slots_reloading(f->s));
    assert_int_equal(STATS_GET(f->g.generation), 2);
    assert_string_equal(f->events[from], "notify RELOADING=1\nSTATUS=reloading\n"
                                         "MONOTONIC_USEC=1000000");
    slots_tick(f->s);
    /* worker 0's replacement starts beside it (STARTING), and nothing else happens yet */
    assert_string_equal(f->events[from + 1], "spawn w0 b3 pid 103 role 1");
    assert_int_equal(f->nevents, from + 2);
    advance(f, 100);
    assert_int_equal(f->nevents, from + 2);
    /* it listens: then, and only then, the old one drains and the new one gets the pools */
    listens(f, 103);
    slots_tick(f->s);
    assert_string_equal(f->events[from + 2], "kill 100 TERM");
    assert_string_equal(f->events[from + 3], "attach w0 b3");
    assert_int_equal(STATS_GET(f->blocks[0].role), STATS_ROLE_RETIRING);
    assert_int_equal(STATS_GET(f->blocks[3].role), STATS_ROLE_ACTIVE);
    /* worker 1 waits until the old worker 0 is gone, so one worker's clients move at a time */
    advance(f, 1000);
    assert_int_equal(count(f, from, "spawn w1"), 0);
    slots_exited(f->s, 100, exited_with(0));
    slots_tick(f->s);
    int w1 = find(f, from, "spawn w1");
    assert_string_equal(f->events[w1], "spawn w1 b0 pid 104 role 1");
    listens(f, 104);
    slots_tick(f->s);
    assert_string_equal(f->events[w1 + 1], "kill 101 TERM");
    assert_string_equal(f->events[w1 + 2], "attach w1 b0");
    /* the old worker 1 never exits: worker 2's turn comes after SHUTDOWN_TIMEOUT */
    advance(f, 4999);
    assert_int_equal(count(f, w1, "spawn w2"), 0);
    advance(f, 1);
    int w2 = find(f, w1, "spawn w2");
    assert_string_equal(f->events[w2], "spawn w2 b4 pid 105 role 1");
    listens(f, 105);
    slots_tick(f->s);
    assert_string_equal(f->events[w2 + 1], "kill 102 TERM");
    assert_string_equal(f->events[w2 + 2], "attach w2 b4");
    assert_false(slots_reloading(f->s));
    int ready = find(f, w2, "notify READY=1");
    assert_string_equal(f->events[ready], "notify READY=1\nSTATUS=serving with 3 workers, 0 "
                                          "clients, 0 streams (generation 2)");
    assert_int_equal(STATS_GET(f->g.reloads), 1);
    /* retired processes exit: nothing to do */
    slots_exited(f->s, 101, exited_with(0));
    slots_exited(f->s, 102, killed_by(SIGKILL));
    advance(f, 60000);
    assert_int_equal(count(f, ready, "spawn"), 0);
    done(f);
}

static void test_reload_grows_then_shrinks(void **state)
{
    (void)state;
    fake_t *f = running(1);
    assert_int_equal(slots_reload(f->s, 3, 5000), 0);
    slots_tick(f->s);
    listens(f, 101); /* worker 0's replacement */
    slots_tick(f->s);
    slots_exited(f->s, 100, exited_with(0));
    slots_tick(f->s);
    /* new worker numbers have nothing to replace: they start serving at once */
    assert_int_equal(count(f, 0, "spawn w1 b0 pid 102 role 2"), 1);
    assert_int_equal(count(f, 0, "spawn w2 b2 pid 103 role 2"), 1);
    assert_int_equal(count(f, 0, "attach w2"), 1);
    assert_false(slots_reloading(f->s));
    assert_int_equal(STATS_GET(f->g.workers), 3);
    listens(f, 102);
    listens(f, 103);
    /* back to one: worker 0 is replaced, then workers 1 and 2 drain and leave */
    int from = f->nevents;
    assert_int_equal(slots_reload(f->s, 1, 5000), 0);
    slots_tick(f->s);
    assert_int_equal(count(f, from, "spawn w0"), 1);
    listens(f, f->next_pid - 1);
    slots_tick(f->s);
    assert_false(slots_reloading(f->s));
    assert_int_equal(count(f, from, "kill 101 TERM"), 1);
    assert_int_equal(count(f, from, "kill 102 TERM"), 1);
    assert_int_equal(count(f, from, "kill 103 TERM"), 1);
    assert_int_equal(count(f, from, "detach w1"), 1);
    assert_int_equal(count(f, from, "detach w2"), 1);
    assert_int_equal(STATS_GET(f->g.workers), 1);
    /* the removed workers' processes exit: not respawned */
    from = f->nevents;
    for (pid_t pid = 101; pid <= 103; pid++)
        slots_exited(f->s, pid, exited_with(0));
    advance(f, 60000);
    assert_int_equal(count(f, from, "spawn"), 0);
    done(f);
}

static void test_failed_replacement_keeps_the_old_worker(void **state)
{
    (void)state;
    fake_t *f = running(2);
    assert_int_equal(slots_reload(f->s, 2, 5000), 0);
    slots_tick(f->s);
    /* worker 0's replacement dies before it listens */
    int from = f->nevents;
    slots_exited(f->s, 102, exited_with(2));
    slots_tick(f->s);
    assert_string_equal(f->events[from], "resend w0");
    assert_int_equal(count(f, from, "kill 100"), 0);
    /* worker 1's replacement never listens: killed after 15 s, worker 1 kept */
    int w1 = find(f, from, "spawn w1");
    assert_true(w1 > 0);
    pid_t stuck = f->next_pid - 1;
    advance(f, 14999);
    assert_int_equal(count(f, w1, "kill"), 0);
    advance(f, 1);
    char want[32];
    snprintf(want, sizeof(want), "kill %d KILL", (int)stuck);
    assert_int_equal(count(f, w1, want), 1);
    assert_int_equal(count(f, w1, "resend w1"), 1);
    assert_false(slots_reloading(f->s));
    assert_int_equal(count(f, 0, "kill 100"), 0); /* the old processes serve on */
    assert_int_equal(count(f, 0, "kill 101"), 0);
    slots_exited(f->s, stuck, killed_by(SIGKILL)); /* retired: not respawned */
    advance(f, 60000);
    assert_int_equal(count(f, w1 + 1, "spawn"), 0);
    done(f);
}

static void test_refused_reloads_change_nothing(void **state)
{
    (void)state;
    fake_t *f = running(2);
    assert_int_equal(slots_reload(f->s, CAP + 1, 5000), -EINVAL);
    assert_int_equal(slots_reload(f->s, 0, 5000), -EINVAL);
    assert_int_equal(STATS_GET(f->g.generation), 1);
    assert_false(slots_reloading(f->s));
    assert_int_equal(count(f, 0, "notify RELOADING"), 0);
    assert_int_equal(slots_reload(f->s, 2, 5000), 0);
    assert_int_equal(slots_reload(f->s, 3, 5000), -EBUSY);
    assert_int_equal(STATS_GET(f->g.generation), 2);
    assert_int_equal(count(f, 0, "notify RELOADING"), 1);
    slots_stop(f->s, "SIGTERM");
    assert_int_equal(slots_reload(f->s, 2, 5000), -ECANCELED);
    done(f);
}

static void test_stop_drains_then_kills_past_the_deadline(void **state)
{
    (void)state;
    fake_t *f = running(2);
    slots_exited(f->s, 101, killed_by(SIGKILL)); /* worker 1 waits for its respawn */
    int from = f->nevents;
    slots_stop(f->s, "SIGTERM");
    slots_stop(f->s, "SIGINT"); /* a second signal changes nothing */
    assert_string_equal(f->events[from], "notify STOPPING=1\nSTATUS=draining");
    assert_string_equal(f->events[from + 1], "kill 100 TERM");
    assert_int_equal(f->nevents, from + 2);
    /* SHUTDOWN_TIMEOUT + 1 s: no respawn meanwhile, then SIGKILL */
    advance(f, 5999);
    assert_int_equal(f->nevents, from + 2);
    assert_int_equal(slots_exit_status(f->s), -1);
    advance(f, 1);
    assert_string_equal(f->events[from + 2], "kill 100 KILL");
    slots_exited(f->s, 100, killed_by(SIGKILL));
    slots_tick(f->s);
    assert_int_equal(slots_exit_status(f->s), 0);
    done(f);
}

static void test_stop_ends_when_every_process_exited(void **state)
{
    (void)state;
    fake_t *f = running(2);
    slots_stop(f->s, "SIGQUIT");
    slots_exited(f->s, 100, exited_with(0));
    slots_tick(f->s);
    assert_int_equal(slots_exit_status(f->s), -1);
    slots_exited(f->s, 101, exited_with(0));
    slots_tick(f->s);
    assert_int_equal(slots_exit_status(f->s), 0);
    assert_int_equal(count(f, 0, "kill 10") - 2, 0); /* only the two SIGTERMs */
    done(f);
}

/* With the watchdog on, a stop that outlasts a watchdog period still waits for its deadline: a
 * wait of 0 would spin the master's loop (libuv runs a 0 ms timer restarted from its callback
 * again in the same pass) and no exited worker would ever be reaped (lifecycle.test.js's stop,
 * once in a few runs under ASan). */
static void test_a_stop_outlasting_a_watchdog_period_still_waits(void **state)
{
    (void)state;
    fake_t *f = running(2);
    slots_set_watchdog(f->s, 1000000); /* 1 s: checks every 600 ms */
    slots_stop(f->s, "SIGTERM");
    f->now_us += 700 * 1000; /* the watchdog check was due 100 ms ago */
    /* the deadline (SHUTDOWN_TIMEOUT + 1 s) is further off: the next look is in a second */
    assert_int_equal(slots_tick(f->s), 1000);
    slots_exited(f->s, 100, exited_with(0));
    f->now_us += 4800 * 1000;
    assert_int_equal(slots_tick(f->s), 6000 - 5500);
    assert_int_equal(slots_exit_status(f->s), -1);
    assert_int_equal(count(f, 0, "notify WATCHDOG=1"), 0); /* no kicks while stopping */
    slots_exited(f->s, 101, exited_with(0));
    slots_tick(f->s);
    assert_int_equal(slots_exit_status(f->s), 0);
    done(f);
}

static void test_watchdog_only_while_workers_progress(void **state)
{
    (void)state;
    fake_t *f = running(2);
    slots_set_watchdog(f->s, 1000000); /* 1 s: checks every 600 ms */
    STATS_SET(f->blocks[0].heartbeat, 1);
    STATS_SET(f->blocks[1].heartbeat, 1);
    int from = f->nevents;
    advance(f, 600);
    assert_int_equal(count(f, from, "notify WATCHDOG=1"), 1);
    /* worker 1's loop is stuck */
    STATS_SET(f->blocks[0].heartbeat, 2);
    from = f->nevents;
    advance(f, 600);
    advance(f, 600);
    assert_int_equal(count(f, from, "notify WATCHDOG=1"), 0);
    STATS_SET(f->blocks[0].heartbeat, 3);
    STATS_SET(f->blocks[1].heartbeat, 2);
    advance(f, 600);
    assert_int_equal(count(f, from, "notify WATCHDOG=1"), 1);
    slots_set_watchdog(f->s, 100000); /* short periods: never faster than 600 ms */
    from = f->nevents;
    STATS_SET(f->blocks[0].heartbeat, 4);
    STATS_SET(f->blocks[1].heartbeat, 3);
    advance(f, 599);
    assert_int_equal(count(f, from, "notify WATCHDOG=1"), 0);
    done(f);
}

static void test_a_worker_draining_on_its_own_is_replaced_at_once(void **state)
{
    (void)state;
    fake_t *f = running(1);
    int from = f->nevents;
    STATS_SET(f->blocks[0].draining, 1);
    slots_check_draining(f->s);
    assert_string_equal(f->events[from], "spawn w0 b1 pid 101 role 2");
    assert_string_equal(f->events[from + 1], "attach w0 b1");
    assert_int_equal(STATS_GET(f->blocks[0].role), STATS_ROLE_RETIRING);
    assert_int_equal(count(f, from, "kill"), 0); /* it drains already */
    slots_check_draining(f->s);
    assert_int_equal(f->nevents, from + 2);
    slots_exited(f->s, 100, exited_with(0));
    advance(f, 60000);
    assert_int_equal(count(f, from + 2, "spawn"), 0);
    done(f);
}

static void test_a_failed_fork_is_retried(void **state)
{
    (void)state;
    fake_t *f = world(1);
    f->spawn_error = -EAGAIN;
    assert_int_equal(slots_start(f->s), -EAGAIN);
    assert_int_equal(STATS_GET(f->blocks[0].role), STATS_ROLE_FREE);
    done(f);
    f = running(1);
    slots_exited(f->s, 100, killed_by(SIGKILL));
    f->spawn_error = -EAGAIN;
    advance(f, 100);
    int from = f->nevents;
    advance(f, 29999);
    assert_int_equal(count(f, from, "spawn"), 0);
    advance(f, 1);
    assert_int_equal(count(f, from, "spawn w0"), 1);
    done(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_start_then_ready_once_all_listen),
        cmocka_unit_test(test_respawn_backoff_grows_and_caps),
        cmocka_unit_test(test_exit_2_during_setup_is_not_respawned),
        cmocka_unit_test(test_a_reaped_pid_outlives_its_block),
        cmocka_unit_test(test_rolling_reload_one_worker_at_a_time),
        cmocka_unit_test(test_reload_grows_then_shrinks),
        cmocka_unit_test(test_failed_replacement_keeps_the_old_worker),
        cmocka_unit_test(test_refused_reloads_change_nothing),
        cmocka_unit_test(test_stop_drains_then_kills_past_the_deadline),
        cmocka_unit_test(test_stop_ends_when_every_process_exited),
        cmocka_unit_test(test_watchdog_only_while_workers_progress),
        cmocka_unit_test(test_a_stop_outlasting_a_watchdog_period_still_waits),
        cmocka_unit_test(test_a_worker_draining_on_its_own_is_replaced_at_once),
        cmocka_unit_test(test_a_failed_fork_is_retried),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
