/*
 * timerq: a circular list behind a sentinel, sorted by due time because every node gets the
 * same duration. The uv timer is set for a time no later than the head's due time; when the
 * head is removed the timer may wake early once, and on_timer simply re-arms for the new head.
 */
#include "worker/net/timerq.h"

#include <errno.h>
#include <stdlib.h>

#include "common/xalloc.h"

struct timerq {
    uv_timer_t timer;
    timerq_node_t head; /* sentinel: head.next is the earliest node, head.prev the latest */
    uint64_t duration;
    void (*fire)(timerq_node_t *n, void *arg);
    void *arg;
    bool closing;
};

static bool is_empty(const timerq_t *q)
{
    return q->head.next == &q->head;
}

static void unlink_node(timerq_node_t *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->prev = NULL;
    n->next = NULL;
}

static void on_timer(uv_timer_t *t);

static void schedule(timerq_t *q)
{
    if (is_empty(q)) {
        uv_timer_stop(&q->timer);
        return;
    }
    uint64_t now = uv_now(q->timer.loop);
    uint64_t due = q->head.next->due;
    /* Cannot fail: the handle is initialised, not closing, and has a callback. */
    uv_timer_start(&q->timer, on_timer, due > now ? due - now : 0, 0);
}

static void on_timer(uv_timer_t *t)
{
    timerq_t *q = t->data;
    uint64_t now = uv_now(t->loop);

    /*
     * fire() may re-add its node, but with duration >= 1 it lands after `now`: no livelock. If
     * fire() closes the queue, the list is emptied and further adds are ignored, so this stops.
     */
    while (!is_empty(q) && q->head.next->due <= now) {
        timerq_node_t *n = q->head.next;
        unlink_node(n);
        q->fire(n, q->arg);
    }
    if (!q->closing)
        schedule(q);
}

static void on_close(uv_handle_t *h)
{
    free(h->data);
}

int timerq_new(timerq_t **out, uv_loop_t *loop, uint64_t duration_ms,
               void (*fire)(timerq_node_t *n, void *arg), void *arg)
{
    if (!out || !loop || duration_ms == 0 || !fire)
        return -EINVAL;
    timerq_t *q = xcalloc(1, sizeof(*q));
    int rc = uv_timer_init(loop, &q->timer);
    if (rc) {
        free(q);
        return rc;
    }
    q->timer.data = q;
    q->head.next = &q->head;
    q->head.prev = &q->head;
    q->duration = duration_ms;
    q->fire = fire;
    q->arg = arg;
    *out = q;
    return 0;
}

void timerq_add(timerq_t *q, timerq_node_t *n)
{
    if (q->closing)
        return;
    if (n->next)
        unlink_node(n);
    n->due = uv_now(q->timer.loop) + q->duration;
    n->prev = q->head.prev;
    n->next = &q->head;
    q->head.prev->next = n;
    q->head.prev = n;
    if (!uv_is_active((uv_handle_t *)&q->timer))
        schedule(q);
}

void timerq_remove(timerq_t *q, timerq_node_t *n)
{
    if (!n->next)
        return;
    unlink_node(n);
    if (is_empty(q))
        uv_timer_stop(&q->timer);
}

bool timerq_armed(const timerq_node_t *n)
{
    return n->next != NULL;
}

void timerq_close(timerq_t *q)
{
    if (!q || q->closing)
        return;
    while (!is_empty(q))
        unlink_node(q->head.next);
    q->closing = true;
    uv_close((uv_handle_t *)&q->timer, on_close);
}
