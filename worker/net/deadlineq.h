/*
 * deadlineq: timers that each have their own due time (a token's expiry), built on timerq's
 * fixed-duration queues. It keeps one timerq per level (100 ms, 800 ms, 6.4 s, 51.2 s, 6.8 min,
 * 54.6 min, 7.3 h: each 8 times the last); a node waits in the longest level that does not pass
 * its due time and moves to a shorter one each time that fires. Arm and disarm are O(1) and
 * allocate nothing, a node is re-queued at most 7 times per level on its way down, and it fires
 * no earlier than its due time and at most one level-0 period (100 ms) after it (nodes due within
 * one period of each other may fire in either order). Nodes are embedded in their owners; the
 * queue never owns or frees them. One loop only; not thread-safe.
 */
#ifndef STREAMIO_WORKER_NET_DEADLINEQ_H
#define STREAMIO_WORKER_NET_DEADLINEQ_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "worker/net/timerq.h"

#define DEADLINEQ_LEVELS 7
#define DEADLINEQ_TICK_MS 100 /* level 0's duration: the worst lateness */

typedef struct deadlineq deadlineq_t;

/* Embed one per timer. Zero-initialised = not armed. Fields belong to the queue. */
typedef struct deadline_node {
    timerq_node_t tq;
    uint64_t due; /* loop time, ms */
    uint8_t level;
} deadline_node_t;

/*
 * Creates the queue on `loop`. fire(n, arg) runs from the loop once n's due time has passed,
 * with n already disarmed; it may re-add n, add or remove any node, or close the queue.
 * 0 and *out set, -EINVAL (no fire), or a libuv error.
 */
int deadlineq_new(deadlineq_t **out, uv_loop_t *loop, void (*fire)(deadline_node_t *n, void *arg),
                  void *arg);
/* Arms n to fire at loop time due_ms (uv_now based; a past time fires within one tick). An armed
 * node is re-armed. */
void deadlineq_add(deadlineq_t *q, deadline_node_t *n, uint64_t due_ms);
/* Disarms n; a no-op if it is not armed. */
void deadlineq_remove(deadlineq_t *q, deadline_node_t *n);
bool deadlineq_armed(const deadline_node_t *n);
/*
 * Disarms every node without firing it and frees the queue (its timers finish closing on the
 * loop). Afterwards deadlineq_remove and deadlineq_armed stay safe on any node (a disarmed node
 * never touches the queue); nothing else may be called. NULL is a no-op.
 */
void deadlineq_close(deadlineq_t *q);

#endif
