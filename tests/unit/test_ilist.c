/* Unit tests for common/ilist: order, removal anywhere (and of unlinked nodes), splicing, and
 * walking while removing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/ilist.h"

typedef struct item {
    int v;
    ilist_t link; /* not first: ILIST_ENTRY must subtract the offset */
} item_t;

/* The values of head's items, front to back, checked from both ends; returns how many. */
static size_t values(const ilist_t *head, int *out, size_t max)
{
    size_t n = 0;
    ILIST_FOREACH(it, head)
    {
        assert_true(n < max);
        assert_ptr_equal(it->next->prev, it);
        out[n++] = ILIST_ENTRY(it, const item_t, link)->v;
    }
    size_t back = 0;
    for (const ilist_t *it = head->prev; it != head; it = it->prev)
        assert_int_equal(ILIST_ENTRY(it, const item_t, link)->v, out[n - ++back]);
    assert_int_equal(back, n);
    return n;
}

static void assert_values(const ilist_t *head, const int *want, size_t n)
{
    int got[16];
    assert_int_equal(values(head, got, 16), n);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(got[i], want[i]);
}

static void test_push_keeps_order(void **state)
{
    (void)state;
    ilist_t head;
    ilist_init(&head);
    assert_true(ilist_empty(&head));
    assert_null(ilist_first(&head));
    item_t a = {1, {0}}, b = {2, {0}}, c = {3, {0}};
    assert_false(ilist_linked(&a.link));
    ilist_push_back(&head, &a.link);
    ilist_push_back(&head, &b.link);
    ilist_push_front(&head, &c.link);
    assert_false(ilist_empty(&head));
    assert_true(ilist_linked(&a.link));
    assert_ptr_equal(ilist_first(&head), &c.link);
    assert_values(&head, (int[]){3, 1, 2}, 3);
}

static void test_remove_anywhere(void **state)
{
    (void)state;
    ilist_t head;
    ilist_init(&head);
    item_t it[4] = {{0, {0}}, {1, {0}}, {2, {0}}, {3, {0}}};
    for (int i = 0; i < 4; i++)
        ilist_push_back(&head, &it[i].link);
    ilist_remove(&it[2].link); /* middle */
    assert_false(ilist_linked(&it[2].link));
    ilist_remove(&it[0].link); /* front */
    ilist_remove(&it[3].link); /* back */
    assert_values(&head, (int[]){1}, 1);
    ilist_remove(&it[3].link); /* already out: a no-op */
    assert_values(&head, (int[]){1}, 1);
    ilist_remove(&it[1].link);
    assert_true(ilist_empty(&head));
    ilist_push_front(&head, &it[2].link); /* a removed node can join again */
    assert_values(&head, (int[]){2}, 1);
}

static void test_pop_front(void **state)
{
    (void)state;
    ilist_t head;
    ilist_init(&head);
    assert_null(ilist_pop_front(&head));
    item_t a = {1, {0}}, b = {2, {0}};
    ilist_push_back(&head, &a.link);
    ilist_push_back(&head, &b.link);
    assert_ptr_equal(ilist_pop_front(&head), &a.link);
    assert_false(ilist_linked(&a.link));
    assert_ptr_equal(ilist_pop_front(&head), &b.link);
    assert_null(ilist_pop_front(&head));
    assert_true(ilist_empty(&head));
}

static void test_splice_back(void **state)
{
    (void)state;
    ilist_t head, from;
    ilist_init(&head);
    ilist_init(&from);
    item_t it[4] = {{0, {0}}, {1, {0}}, {2, {0}}, {3, {0}}};
    ilist_splice_back(&head, &from); /* empty into empty */
    assert_true(ilist_empty(&head));
    ilist_push_back(&from, &it[0].link);
    ilist_push_back(&from, &it[1].link);
    ilist_splice_back(&head, &from); /* into an empty list */
    assert_true(ilist_empty(&from));
    assert_values(&head, (int[]){0, 1}, 2);
    ilist_push_back(&from, &it[2].link);
    ilist_push_back(&from, &it[3].link);
    ilist_splice_back(&head, &from); /* behind what is there */
    assert_true(ilist_empty(&from));
    assert_values(&head, (int[]){0, 1, 2, 3}, 4);
    ilist_splice_back(&head, &from); /* nothing left to move */
    assert_values(&head, (int[]){0, 1, 2, 3}, 4);
}

static void test_foreach_safe_removes(void **state)
{
    (void)state;
    ilist_t head;
    ilist_init(&head);
    item_t it[5] = {{0, {0}}, {1, {0}}, {2, {0}}, {3, {0}}, {4, {0}}};
    for (int i = 0; i < 5; i++)
        ilist_push_back(&head, &it[i].link);
    int seen = 0;
    ILIST_FOREACH_SAFE(n, &head)
    {
        item_t *x = ILIST_ENTRY(n, item_t, link);
        assert_int_equal(x->v, seen++);
        if (x->v % 2 == 0)
            ilist_remove(n);
    }
    assert_int_equal(seen, 5);
    assert_values(&head, (int[]){1, 3}, 2);
    ILIST_FOREACH_SAFE(n, &head)
    {
        ilist_remove(n);
    }
    assert_true(ilist_empty(&head));
    ILIST_FOREACH(n, &head)
    {
        fail(); /* an empty list runs no body */
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_push_keeps_order),
        cmocka_unit_test(test_remove_anywhere),
        cmocka_unit_test(test_pop_front),
        cmocka_unit_test(test_splice_back),
        cmocka_unit_test(test_foreach_safe_removes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
