/*
 * relay_role: which worker of this server holds the redis-adapter's broadcast subscription
 * (classic and private modes: the PSUBSCRIBE of every namespace's channels) and relays what other
 * servers publish to its siblings over local IPC, so that one process per server, not every
 * worker, receives and filters each broadcast of the cluster. Requests are not concerned: every
 * worker stays a member of its own (Node counts members by NUMSUB of the request channel).
 *
 * No I/O and no shared memory here: the workers' states come through relay_view_fn (production:
 * the shared stats blocks; tests: an array). The rules, evaluated by every worker on its tick:
 *  - the candidate is the lowest live slot that is not draining;
 *  - a worker subscribes while it is the candidate, or while its own subscription is up and no
 *    other live worker's is (so a draining holder keeps relaying until its successor is up);
 *  - the holder, which relays, is the lowest live slot whose subscription is up; a subscribed
 *    worker that is not the holder drops what it receives (the holder relays it to it).
 * A crashed holder leaves the server without other servers' broadcasts until its successor's
 * next tick and subscription (as a pub/sub reconnect does); a draining one hands over without a
 * gap.
 */
#ifndef STREAMIO_WORKER_CLUSTER_RELAY_ROLE_H
#define STREAMIO_WORKER_CLUSTER_RELAY_ROLE_H

#include <stdbool.h>
#include <stdint.h>

typedef struct relay_slot {
    bool live;     /* a worker runs in the slot */
    bool draining; /* it stopped accepting and will exit */
    bool up;       /* its broadcast subscription is confirmed */
} relay_slot_t;

/* Fills *out with slot i's state. */
typedef void (*relay_view_fn)(uint32_t i, relay_slot_t *out, void *arg);

/* Whether the worker in slot `me` (of nslots) should hold the broadcast subscription now. */
bool relay_role_subscribe(uint32_t nslots, uint32_t me, relay_view_fn view, void *arg);
/* The slot that relays now, or -1 when no live worker's subscription is up. */
int64_t relay_role_holder(uint32_t nslots, relay_view_fn view, void *arg);

#endif
