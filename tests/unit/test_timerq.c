/*
 * Unit tests for worker/timerq, each run twice: on a real libuv loop (the uv timer path; timing
 * checked only as "never early", a watchdog bounds a true hang) and on a fake clock
 * (timerq_new_on), where time moves only when the test says so and every node must fire exactly
 * at its deadline.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "worker/net/timerq.h"

#define DURATION 20
#define MAX_EVENTS 16
#define WATCHDOG_MS 20000 /* the libuv runs last well under 1 s: only a hang reaches this */

/* Which backend the group being run uses (set between the two groups in main). */
static bool on_clock;

typedef struct fixture fixture_t;

typedef struct item {
    timerq_node_t node; /* first member: fire() casts back */
    fixture_t *fx;
    int name;
    int rearms;          /* re-add itself this many more times */
    struct item *remove; /* disarm this item when firing */
    struct item *arm;    /* arm this item when firing */
    bool close_queue;    /* close the queue when firing */
    uint64_t added_at;
    uint64_t fired_at;
} item_t;

struct fixture {
    uv_loop_t loop;
    uv_timer_t watchdog;
    uv_timer_t helper;
    timerq_t *q;
    bool timed_out;
    int order[MAX_EVENTS];
    int nfired;
    void (*later)(fixture_t *fx); /* what the helper runs when it is due */
    /* the fake clock, on_clock only */
    timerq_clock_t clock;
    uint64_t now;
    bool wake_set;
    uint64_t wake_at;
    bool later_set;
    uint64_t later_at;
};

static uint64_t fx_now(fixture_t *fx)
{
    return on_clock ? fx->now : uv_now(&fx->loop);
}

static uint64_t clk_now(void *arg)
{
    return ((fixture_t *)arg)->now;
}

static void clk_wake(void *arg, timerq_t *q, uint64_t due)
{
    fixture_t *fx = arg;
    assert_ptr_equal(q, fx->q);
    fx->wake_set = true;
    fx->wake_at = due;
}

static void clk_cancel(void *arg, timerq_t *q)
{
    fixture_t *fx = arg;
    assert_ptr_equal(q, fx->q);
    fx->wake_set = false;
}

static void on_fire(timerq_node_t *n, void *arg)
{
    item_t *it = (item_t *)n;
    fixture_t *fx = arg;
    assert_ptr_equal(it->fx, fx);
    assert_false(timerq_armed(n));
    uint64_t now = fx_now(fx);
    assert_true(now >= it->added_at + DURATION);
    assert_true(now >= n->due);
    if (on_clock) /* no later either: the clock wakes the queue at the head's deadline */
        assert_true(now == n->due);
    it->fired_at = now;
    assert_true(fx->nfired < MAX_EVENTS);
    fx->order[fx->nfired++] = it->name;
    if (it->rearms > 0) {
        it->rearms--;
        it->added_at = now;
        timerq_add(fx->q, n);
        assert_true(timerq_armed(n));
    }
    if (it->remove)
        timerq_remove(fx->q, &it->remove->node);
    if (it->arm) {
        it->arm->added_at = now;
        timerq_add(fx->q, &it->arm->node);
    }
    if (it->close_queue)
        timerq_close(fx->q);
}

static void on_watchdog(uv_timer_t *t)
{
    fixture_t *fx = t->data;
    fx->timed_out = true;
    uv_stop(t->loop);
}

static void on_helper(uv_timer_t *t)
{
    fixture_t *fx = t->data;
    fx->later(fx);
}

static int setup(void **state)
{
    fixture_t *fx = calloc(1, sizeof(*fx));
    if (!fx || uv_loop_init(&fx->loop) != 0)
        return -1;
    uv_timer_init(&fx->loop, &fx->watchdog);
    uv_timer_init(&fx->loop, &fx->helper);
    fx->watchdog.data = fx;
    fx->helper.data = fx;
    /* Unreferenced: it must not keep uv_run alive, only bound a stuck test. */
    uv_timer_start(&fx->watchdog, on_watchdog, WATCHDOG_MS, 0);
    uv_unref((uv_handle_t *)&fx->watchdog);
    fx->now = 1000; /* any start: deadlines are relative */
    fx->clock = (timerq_clock_t){fx, clk_now, clk_wake, clk_cancel};
    int rc = on_clock ? timerq_new_on(&fx->q, &fx->clock, DURATION, on_fire, fx)
                      : timerq_new(&fx->q, &fx->loop, DURATION, on_fire, fx);
    if (rc != 0)
        return -1;
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *fx = *state;
    timerq_close(fx->q);
    uv_close((uv_handle_t *)&fx->watchdog, NULL);
    uv_close((uv_handle_t *)&fx->helper, NULL);
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    int rc = uv_loop_close(&fx->loop);
    free(fx);
    return rc == 0 ? 0 : -1;
}

static void item_add(fixture_t *fx, item_t *it, int name)
{
    it->fx = fx;
    it->name = name;
    it->added_at = fx_now(fx);
    timerq_add(fx->q, &it->node);
}

/* Runs fn(fx) ms from now, as a test's other event source would. */
static void run_later(fixture_t *fx, uint64_t ms, void (*fn)(fixture_t *fx))
{
    fx->later = fn;
    if (!on_clock) {
        uv_timer_start(&fx->helper, on_helper, ms, 0);
        return;
    }
    fx->later_set = true;
    fx->later_at = fx->now + ms;
}

/* The queue waits for a wake-up (on libuv: its timer keeps the loop alive). */
static bool waiting(fixture_t *fx)
{
    return on_clock ? fx->wake_set : uv_loop_alive(&fx->loop);
}

/* Until nothing is left to happen: on the clock, time jumps to each wake-up in turn. */
static void run(fixture_t *fx)
{
    if (!on_clock) {
        uv_run(&fx->loop, UV_RUN_DEFAULT);
        assert_false(fx->timed_out);
        return;
    }
    for (int steps = 0; fx->wake_set || fx->later_set; steps++) {
        assert_true(steps < 1000); /* a queue that keeps waking without firing */
        bool wake = fx->wake_set && (!fx->later_set || fx->wake_at <= fx->later_at);
        uint64_t at = wake ? fx->wake_at : fx->later_at;
        assert_true(at >= fx->now);
        fx->now = at;
        if (wake) {
            fx->wake_set = false;
            timerq_expire(fx->q);
        } else {
            fx->later_set = false;
            fx->later(fx);
        }
    }
}

static void test_fires_in_order(void **state)
{
    fixture_t *fx = *state;
    item_t a = {0}, b = {0}, c = {0};
    assert_false(timerq_armed(&a.node));
    item_add(fx, &a, 1);
    item_add(fx, &b, 2);
    item_add(fx, &c, 3);
    assert_true(timerq_armed(&a.node));
    assert_true(a.node.due == a.added_at + DURATION);
    run(fx); /* returns once the queue is empty: the timer is stopped */
    assert_int_equal(fx->nfired, 3);
    assert_int_equal(fx->order[0], 1);
    assert_int_equal(fx->order[1], 2);
    assert_int_equal(fx->order[2], 3);
    assert_false(timerq_armed(&a.node));
    assert_false(timerq_armed(&c.node));
}

/* Re-adding an armed node moves it to the tail with a fresh deadline. */
static void test_rearm_moves_to_tail(void **state)
{
    fixture_t *fx = *state;
    item_t a = {0}, b = {0};
    item_add(fx, &a, 1);
    item_add(fx, &b, 2);
    item_add(fx, &a, 1);
    run(fx);
    assert_int_equal(fx->nfired, 2);
    assert_int_equal(fx->order[0], 2);
    assert_int_equal(fx->order[1], 1);
}

static void test_remove(void **state)
{
    fixture_t *fx = *state;
    item_t a = {0}, b = {0}, c = {0};
    timerq_remove(fx->q, &a.node); /* never armed: no-op */
    item_add(fx, &a, 1);
    item_add(fx, &b, 2);
    item_add(fx, &c, 3);
    timerq_remove(fx->q, &b.node);
    timerq_remove(fx->q, &b.node);
    assert_false(timerq_armed(&b.node));
    timerq_remove(fx->q, &a.node);
    run(fx);
    assert_int_equal(fx->nfired, 1);
    assert_int_equal(fx->order[0], 3);
}

/* Removing every node stops the wake-up (on libuv the timer: the loop has nothing left). */
static void test_remove_all_stops_timer(void **state)
{
    fixture_t *fx = *state;
    item_t a = {0};
    item_add(fx, &a, 1);
    assert_true(waiting(fx));
    timerq_remove(fx->q, &a.node);
    assert_false(waiting(fx)); /* the watchdog is unreferenced */
    run(fx);
    assert_int_equal(fx->nfired, 0);
}

static void test_rearm_inside_fire(void **state)
{
    fixture_t *fx = *state;
    item_t a = {.rearms = 3}, b = {0};
    uint64_t start = fx_now(fx);
    item_add(fx, &a, 1);
    item_add(fx, &b, 2);
    run(fx);
    assert_int_equal(fx->nfired, 5);
    assert_int_equal(fx->order[0], 1);
    assert_int_equal(fx->order[1], 2);
    assert_int_equal(fx->order[2], 1);
    assert_int_equal(fx->order[3], 1);
    assert_int_equal(fx->order[4], 1);
    assert_true(a.fired_at - start >= 4 * DURATION);
    assert_false(timerq_armed(&a.node));
}

/* A due node removed by an earlier fire in the same pass does not fire. */
static void test_remove_inside_fire(void **state)
{
    fixture_t *fx = *state;
    item_t a = {0}, b = {0}, c = {0};
    a.remove = &b;
    item_add(fx, &a, 1);
    item_add(fx, &b, 2);
    item_add(fx, &c, 3);
    run(fx);
    assert_int_equal(fx->nfired, 2);
    assert_int_equal(fx->order[0], 1);
    assert_int_equal(fx->order[1], 3);
}

static void test_arm_other_inside_fire(void **state)
{
    fixture_t *fx = *state;
    item_t a = {0}, b = {0}, c = {0};
    a.arm = &c;
    c.fx = fx;
    c.name = 3;
    item_add(fx, &a, 1);
    item_add(fx, &b, 2);
    run(fx);
    assert_int_equal(fx->nfired, 3);
    assert_int_equal(fx->order[2], 3);
    assert_true(c.fired_at - a.fired_at >= DURATION);
}

static void test_close_inside_fire(void **state)
{
    fixture_t *fx = *state;
    item_t a = {0}, b = {0};
    a.close_queue = true;
    item_add(fx, &a, 1);
    item_add(fx, &b, 2);
    run(fx);
    assert_int_equal(fx->nfired, 1);
    assert_false(timerq_armed(&b.node));
    timerq_remove(fx->q, &b.node); /* disarmed nodes never touch the closed queue */
    fx->q = NULL;
}

static void test_close_with_pending(void **state)
{
    fixture_t *fx = *state;
    item_t a = {0}, b = {0};
    item_add(fx, &a, 1);
    item_add(fx, &b, 2);
    timerq_close(fx->q);
    assert_false(timerq_armed(&a.node));
    assert_false(timerq_armed(&b.node));
    fx->q = NULL;
    run(fx);
    assert_int_equal(fx->nfired, 0);
}

static item_t late_a, late_b;

static void add_late(fixture_t *fx)
{
    item_add(fx, &late_b, 2);
    timerq_remove(fx->q, &late_a.node);
}

/*
 * The head is removed after a later node was added: the wake-up (set for the old head) comes
 * early, finds nothing due and re-arms; the later node still waits its full duration.
 */
static void test_head_removed_wakes_early(void **state)
{
    fixture_t *fx = *state;
    memset(&late_a, 0, sizeof(late_a));
    memset(&late_b, 0, sizeof(late_b));
    item_add(fx, &late_a, 1);
    run_later(fx, DURATION / 2, add_late);
    run(fx);
    assert_int_equal(fx->nfired, 1);
    assert_int_equal(fx->order[0], 2);
    assert_true(late_b.fired_at >= late_b.added_at + DURATION);
}

/* Many timers spread over time: each fires once, no earlier than its own deadline. */
static item_t spread[MAX_EVENTS - 1];
static int spread_next;

static void add_spread(fixture_t *fx)
{
    item_add(fx, &spread[spread_next], spread_next);
    if (++spread_next < (int)(sizeof(spread) / sizeof(spread[0])))
        run_later(fx, 3, add_spread);
}

static void test_spread(void **state)
{
    fixture_t *fx = *state;
    memset(spread, 0, sizeof(spread));
    spread_next = 0;
    run_later(fx, 1, add_spread);
    run(fx);
    assert_int_equal(fx->nfired, (int)(sizeof(spread) / sizeof(spread[0])));
    for (int i = 0; i < fx->nfired; i++) {
        assert_int_equal(fx->order[i], i);
        assert_true(spread[i].fired_at >= spread[i].added_at + DURATION);
    }
}

static void noop_fire(timerq_node_t *n, void *arg)
{
    (void)n;
    (void)arg;
}

static void test_new_errors(void **state)
{
    (void)state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    timerq_t *q = NULL;
    assert_int_equal(timerq_new(&q, &loop, 0, noop_fire, NULL), -EINVAL);
    assert_int_equal(timerq_new(&q, &loop, 10, NULL, NULL), -EINVAL);
    assert_int_equal(timerq_new(NULL, &loop, 10, noop_fire, NULL), -EINVAL);
    assert_int_equal(timerq_new_on(&q, NULL, 10, noop_fire, NULL), -EINVAL);
    assert_null(q);
    assert_int_equal(timerq_new(&q, &loop, 50, noop_fire, NULL), 0);
    timerq_close(q);
    timerq_close(NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_fires_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rearm_moves_to_tail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_remove, setup, teardown),
        cmocka_unit_test_setup_teardown(test_remove_all_stops_timer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rearm_inside_fire, setup, teardown),
        cmocka_unit_test_setup_teardown(test_remove_inside_fire, setup, teardown),
        cmocka_unit_test_setup_teardown(test_arm_other_inside_fire, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_inside_fire, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_with_pending, setup, teardown),
        cmocka_unit_test_setup_teardown(test_head_removed_wakes_early, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spread, setup, teardown),
        cmocka_unit_test(test_new_errors),
    };
    int failed = cmocka_run_group_tests_name("timerq on a libuv loop", tests, NULL, NULL);
    on_clock = true;
    return failed | cmocka_run_group_tests_name("timerq on a fake clock", tests, NULL, NULL);
}
