/* Unit tests for worker/deadlineq on a real loop: order, never early, at most a tick late (with
 * a generous margin for a loaded machine), re-arm, remove, levels, and close with armed nodes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "worker/net/deadlineq.h"

#define SLACK_MS 400 /* scheduling noise on a shared machine, on top of one tick */

typedef struct item {
    deadline_node_t node;
    uint64_t fired_at;
    int fires;
} item_t;

typedef struct fixture {
    uv_loop_t loop;
    deadlineq_t *q;
    item_t *order[8];
    int n;
    bool close_in_fire;
} fixture_t;

static void on_fire(deadline_node_t *n, void *arg)
{
    fixture_t *f = arg;
    item_t *it = (item_t *)n;
    assert_false(deadlineq_armed(n));
    it->fired_at = uv_now(&f->loop);
    it->fires++;
    f->order[f->n++] = it;
    if (f->close_in_fire) {
        deadlineq_close(f->q);
        f->q = NULL;
    }
}

static void check_on_time(const item_t *it)
{
    assert_int_equal(it->fires, 1);
    assert_true(it->fired_at >= it->node.due);
    assert_true(it->fired_at <= it->node.due + DEADLINEQ_TICK_MS + SLACK_MS);
}

static void test_order_and_bounds(void **state)
{
    (void)state;
    fixture_t f = {0};
    assert_int_equal(uv_loop_init(&f.loop), 0);
    assert_int_equal(deadlineq_new(&f.q, &f.loop, on_fire, &f), 0);
    item_t a = {0}, b = {0}, c = {0}, d = {0}, e = {0}, gone = {0};
    uint64_t now = uv_now(&f.loop);
    /* deadlines closer than one tick fire in the order they were armed */
    deadlineq_add(f.q, &c.node, now + 1700); /* starts on the 800 ms level */
    deadlineq_add(f.q, &d.node, now);        /* already due */
    deadlineq_add(f.q, &a.node, now + 30);   /* shorter than a tick */
    deadlineq_add(f.q, &b.node, now + 450);
    deadlineq_add(f.q, &gone.node, now + 200);
    deadlineq_add(f.q, &e.node, now + 100000); /* re-armed below to an earlier time */
    assert_int_equal(e.node.level, 3);
    deadlineq_add(f.q, &e.node, now + 900);
    assert_int_equal(e.node.level, 1);
    deadlineq_remove(f.q, &gone.node);
    deadlineq_remove(f.q, &gone.node); /* twice is fine */
    assert_false(deadlineq_armed(&gone.node));
    assert_true(deadlineq_armed(&c.node));
    assert_int_equal(uv_run(&f.loop, UV_RUN_DEFAULT), 0); /* nothing left armed: the loop ends */
    assert_int_equal(f.n, 5);
    assert_ptr_equal(f.order[0], &d);
    assert_ptr_equal(f.order[1], &a);
    assert_ptr_equal(f.order[2], &b);
    assert_ptr_equal(f.order[3], &e);
    assert_ptr_equal(f.order[4], &c);
    check_on_time(&a);
    check_on_time(&b);
    check_on_time(&c);
    check_on_time(&d);
    check_on_time(&e);
    assert_int_equal(gone.fires, 0);
    deadlineq_close(f.q);
    assert_int_equal(uv_run(&f.loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&f.loop), 0);
}

static void test_close_from_fire_and_with_armed_nodes(void **state)
{
    (void)state;
    fixture_t f = {0};
    assert_int_equal(uv_loop_init(&f.loop), 0);
    assert_int_equal(deadlineq_new(&f.q, &f.loop, on_fire, &f), 0);
    item_t a = {0}, b = {0}, far = {0};
    uint64_t now = uv_now(&f.loop);
    deadlineq_add(f.q, &a.node, now + 10);
    deadlineq_add(f.q, &b.node, now + 10);
    deadlineq_add(f.q, &far.node, now + 3600000);
    f.close_in_fire = true;
    assert_int_equal(uv_run(&f.loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(f.n, 1); /* the close disarmed the others */
    assert_false(deadlineq_armed(&b.node));
    assert_false(deadlineq_armed(&far.node));
    assert_int_equal(uv_loop_close(&f.loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_and_bounds),
        cmocka_unit_test(test_close_from_fire_and_with_armed_nodes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
