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
    uv_timer_t timer;          /* unused on a clock */
    const timerq_clock_t *clk; /* NULL: libuv's loop */
    ilist_t head;              /* front: the earliest node; back: the latest */
    uint64_t duration;
    void (*fire)(timerq_node_t *n, void *arg);
    void *arg;
    bool armed;    /* a wake-up is set */
    bool expiring; /* inside timerq_expire */
    bool closing;
};

/* The earliest node; NULL when none is armed. */
static timerq_node_t *first(const timerq_t *q)
{
    ilist_t *l = ilist_first(&q->head);
    return l ? ILIST_ENTRY(l, timerq_node_t, link) : NULL;
}

static void on_timer(uv_timer_t *t);

static uint64_t now_of(const timerq_t *q)
{
    return q->clk ? q->clk->now(q->clk->arg) : uv_now(q->timer.loop);
}

static void stop(timerq_t *q)
{
    if (q->clk)
        q->clk->cancel(q->clk->arg, q);
    else
        uv_timer_stop(&q->timer);
}

static bool waiting(const timerq_t *q)
{
    return q->clk ? q->armed : uv_is_active((const uv_handle_t *)&q->timer);
}

static void schedule(timerq_t *q)
{
    const timerq_node_t *n = first(q);
    if (!n) {
        stop(q);
        q->armed = false;
        return;
    }
    uint64_t due = n->due;
    q->armed = true;
    if (q->clk) {
        q->clk->wake(q->clk->arg, q, due);
        return;
    }
    uint64_t now = now_of(q);
    /* Cannot fail: the handle is initialised, not closing, and has a callback. */
    uv_timer_start(&q->timer, on_timer, due > now ? due - now : 0, 0);
}

static void on_timer(uv_timer_t *t)
{
    timerq_expire(t->data);
}

void timerq_expire(timerq_t *q)
{
    uint64_t now = now_of(q);
    q->armed = false;
    q->expiring = true;

    /*
     * fire() may re-add its node, but with duration >= 1 it lands after `now`: no livelock. If
     * fire() closes the queue, the list is emptied and further adds are ignored, so this stops.
     */
    for (timerq_node_t *n; (n = first(q)) && n->due <= now;) {
        ilist_remove(&n->link);
        q->fire(n, q->arg);
    }
    q->expiring = false;
    if (!q->closing)
        schedule(q);
    else if (q->clk)
        free(q); /* closed by fire(): on a clock nothing else refers to it */
}

static void on_close(uv_handle_t *h)
{
    free(h->data);
}

static timerq_t *queue_new(const timerq_clock_t *clk, uint64_t duration_ms,
                           void (*fire)(timerq_node_t *n, void *arg), void *arg)
{
    timerq_t *q = xcalloc(1, sizeof(*q));
    q->clk = clk;
    ilist_init(&q->head);
    q->duration = duration_ms;
    q->fire = fire;
    q->arg = arg;
    return q;
}

int timerq_new_on(timerq_t **out, const timerq_clock_t *clk, uint64_t duration_ms,
                  void (*fire)(timerq_node_t *n, void *arg), void *arg)
{
    if (!out || !clk || duration_ms == 0 || !fire)
        return -EINVAL;
    *out = queue_new(clk, duration_ms, fire, arg);
    return 0;
}

int timerq_new(timerq_t **out, uv_loop_t *loop, uint64_t duration_ms,
               void (*fire)(timerq_node_t *n, void *arg), void *arg)
{
    if (!out || !loop || duration_ms == 0 || !fire)
        return -EINVAL;
    timerq_t *q = queue_new(NULL, duration_ms, fire, arg);
    int rc = uv_timer_init(loop, &q->timer);
    if (rc) {
        free(q);
        return rc;
    }
    q->timer.data = q;
    *out = q;
    return 0;
}

void timerq_add(timerq_t *q, timerq_node_t *n)
{
    if (q->closing)
        return;
    ilist_remove(&n->link);
    n->due = now_of(q) + q->duration;
    ilist_push_back(&q->head, &n->link);
    if (!waiting(q))
        schedule(q);
}

void timerq_remove(timerq_t *q, timerq_node_t *n)
{
    if (!ilist_linked(&n->link))
        return;
    ilist_remove(&n->link);
    if (ilist_empty(&q->head)) {
        stop(q);
        q->armed = false;
    }
}

bool timerq_armed(const timerq_node_t *n)
{
    return ilist_linked(&n->link);
}

void timerq_close(timerq_t *q)
{
    if (!q || q->closing)
        return;
    while (!ilist_empty(&q->head))
        ilist_remove(q->head.next);
    q->closing = true;
    if (q->clk) {
        q->clk->cancel(q->clk->arg, q);
        if (!q->expiring)
            free(q);
        return;
    }
    uv_close((uv_handle_t *)&q->timer, on_close);
}
