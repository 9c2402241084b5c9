/*
 * relay_role: which worker of this server holds the redis-adapter's broadcast subscription
 * (classic and private modes: the PSUBSCRIBE of every namespace's channels; sharded mode: the
 * SSUBSCRIBE of every room channel any worker of the server holds) and relays what other
 * servers publish to its siblings over local IPC, so that one process per server, not every
 * worker, receives and filters each broadcast of the cluster. Requests are not concerned: every
 * worker stays a member of its own (Node counts members by NUMSUB of the request channel).
 *
 * No I/O and no shared memory here: the workers' states come through relay_view_fn (production:
 * the shared stats blocks; tests: an array). The rules, evaluated by every worker on its tick:
 *  - the candidate is the lowest live slot that is not draining;
 *  - a worker subscribes while it is the candidate, or while it holds the role (all of it or, a
 *    handover half done, some namespaces or channels): a holder lets go only where relay_cut
 *    says (at its successor's markers, which both see at the same place among the broadcasts:
 *    per namespace in classic and private modes, per channel in sharded mode), so a draining
 *    holder keeps relaying until its successor took over.
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
    bool up;       /* it holds the role: its subscription is confirmed and it applies every
                    * namespace's broadcasts */
    bool holds;    /* it applies some namespaces' (a handover half done) or all */
} relay_slot_t;

/* Fills *out with slot i's state. */
typedef void (*relay_view_fn)(uint32_t i, relay_slot_t *out, void *arg);

/* Slot `me` is the lowest live slot that is not draining. */
bool relay_role_candidate(uint32_t nslots, uint32_t me, relay_view_fn view, void *arg);
/* Whether the worker in slot `me` (of nslots) should hold the broadcast subscription now. */
bool relay_role_subscribe(uint32_t nslots, uint32_t me, relay_view_fn view, void *arg);
/* The other live slots, together. */
typedef struct relay_others {
    bool all;       /* one holds the whole role */
    bool any;       /* one holds some or all of it */
    bool successor; /* one is not draining: it would take the role from a draining holder */
} relay_others_t;
void relay_role_others(uint32_t nslots, uint32_t me, relay_view_fn view, void *arg,
                       relay_others_t *out);

#endif
