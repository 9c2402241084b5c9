/* deadlineq: see deadlineq.h. */
#include "worker/net/deadlineq.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>

#include "common/xalloc.h"

struct deadlineq {
    uv_loop_t *loop;
    timerq_t *lv[DEADLINEQ_LEVELS];
    void (*fire)(deadline_node_t *n, void *arg);
    void *arg;
};

static uint64_t level_ms(unsigned i)
{
    return (uint64_t)DEADLINEQ_TICK_MS << (3 * i);
}

/* Queues n in the longest level that ends no later than its due time (level 0 if none does). */
static void enqueue(deadlineq_t *q, deadline_node_t *n)
{
    uint64_t now = uv_now(q->loop);
    uint64_t left = n->due > now ? n->due - now : 0;
    unsigned i = DEADLINEQ_LEVELS - 1;
    while (i > 0 && level_ms(i) > left)
        i--;
    n->level = (uint8_t)i;
    timerq_add(q->lv[i], &n->tq);
}

static void on_level(timerq_node_t *t, void *arg)
{
    deadlineq_t *q = arg;
    deadline_node_t *n = (deadline_node_t *)((char *)t - offsetof(deadline_node_t, tq));
    if (n->due > uv_now(q->loop)) {
        enqueue(q, n);
        return;
    }
    q->fire(n, q->arg);
}

int deadlineq_new(deadlineq_t **out, uv_loop_t *loop, void (*fire)(deadline_node_t *n, void *arg),
                  void *arg)
{
    if (!out || !loop || !fire)
        return -EINVAL;
    deadlineq_t *q = xcalloc(1, sizeof(*q));
    q->loop = loop;
    q->fire = fire;
    q->arg = arg;
    for (unsigned i = 0; i < DEADLINEQ_LEVELS; i++) {
        int rc = timerq_new(&q->lv[i], loop, level_ms(i), on_level, q);
        if (rc) {
            deadlineq_close(q);
            return rc;
        }
    }
    *out = q;
    return 0;
}

void deadlineq_add(deadlineq_t *q, deadline_node_t *n, uint64_t due_ms)
{
    deadlineq_remove(q, n);
    n->due = due_ms;
    enqueue(q, n);
}

void deadlineq_remove(deadlineq_t *q, deadline_node_t *n)
{
    if (timerq_armed(&n->tq))
        timerq_remove(q->lv[n->level], &n->tq);
}

bool deadlineq_armed(const deadline_node_t *n)
{
    return timerq_armed(&n->tq);
}

void deadlineq_close(deadlineq_t *q)
{
    if (!q)
        return;
    for (unsigned i = 0; i < DEADLINEQ_LEVELS; i++)
        timerq_close(q->lv[i]);
    /* the timerqs free themselves in their close callbacks; nothing here outlives them */
    free(q);
}
