/*
 * timerq: any number of timers that all share ONE duration, driven by a single uv_timer_t.
 * Every (re)arm puts the node at the tail with due = uv_now + duration, so the list is sorted by
 * due time for free and the head is always the next to expire: arm, re-arm and disarm are O(1)
 * and allocate nothing. A worker keeps one queue per heartbeat duration (pingInterval,
 * pingTimeout, connect timeout). Nodes are embedded in their owners; the queue never owns,
 * frees or logs anything about them. One loop only; not thread-safe.
 */
#ifndef STREAMIO_WORKER_NET_TIMERQ_H
#define STREAMIO_WORKER_NET_TIMERQ_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "common/ilist.h"

typedef struct timerq timerq_t;

/*
 * The loop as a queue sees it, for queues that do not run on libuv's (timerq_new_on): the
 * current time, and one wake-up per queue. Tests drive state machines with a fake one.
 */
typedef struct timerq_clock {
    void *arg;
    uint64_t (*now)(void *arg); /* ms, monotonic */
    /* Calls timerq_expire(q) once now() >= due; replaces q's previous wake-up. */
    void (*wake)(void *arg, timerq_t *q, uint64_t due);
    void (*cancel)(void *arg, timerq_t *q); /* q needs no wake-up */
} timerq_clock_t;

/* Embed one per timer. Zero-initialised = not armed. Fields belong to the queue (due is the
 * loop time in ms at which the node expires, meaningful while armed). */
typedef struct timerq_node {
    ilist_t link;
    uint64_t due;
} timerq_node_t;

/*
 * Creates a queue on `loop` whose timers all last duration_ms (>= 1). fire(n, arg) is called
 * from the loop for each node whose due time has passed, oldest first, with the node already
 * disarmed; it may re-add that node, add or remove any other node of this queue, or close the
 * queue (nothing more fires after that). Returns 0 and sets *out, -EINVAL (duration 0 or no
 * fire), or a libuv error.
 */
int timerq_new(timerq_t **out, uv_loop_t *loop, uint64_t duration_ms,
               void (*fire)(timerq_node_t *n, void *arg), void *arg);
/* As timerq_new, on clk (borrowed for the queue's lifetime) instead of a libuv loop. */
int timerq_new_on(timerq_t **out, const timerq_clock_t *clk, uint64_t duration_ms,
                  void (*fire)(timerq_node_t *n, void *arg), void *arg);
/* Fires the nodes whose due time has passed (a clock's wake-up). */
void timerq_expire(timerq_t *q);
/* Arms `n` to expire duration_ms after uv_now(loop); an armed node is moved to the tail. */
void timerq_add(timerq_t *q, timerq_node_t *n);
/* Disarms `n`; a no-op if it is not armed. */
void timerq_remove(timerq_t *q, timerq_node_t *n);
bool timerq_armed(const timerq_node_t *n);
/*
 * Disarms every pending node without firing it (their memory must still be valid, as for any
 * armed node) and closes the uv timer; the queue's memory is freed in the close callback.
 * Afterwards timerq_remove and timerq_armed stay safe on any node (all are disarmed, and removing
 * a disarmed node never touches the queue); timerq_add is ignored if called from the same
 * callback and must not be called later. NULL is a no-op. A queue on a clock is freed at once.
 */
void timerq_close(timerq_t *q);

#endif
