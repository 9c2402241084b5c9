/*
 * relay_cut: where, in the stream of broadcasts the relay role's subscription receives, the role
 * moves from one worker of this server to another (relay_role.h says which worker subscribes).
 * Classic and private modes (RELAY_CUT_NAMESPACES): during a handover the old holder and its
 * successor are both subscribed to the same patterns, each on the same Redis node, so both receive
 * the same messages in the same order. Deciding per message from shared memory which of them
 * applies it would split that stream at a different place in each worker (a broadcast applied
 * twice, or not at all). Instead the successor, once its subscription is confirmed, publishes a
 * marker through it (one per namespace: on a Redis Cluster each namespace's pattern may live on
 * another node), and every worker follows the markers: a namespace's broadcasts are applied by the
 * worker whose marker came last. The old holder applies everything before the marker and the
 * successor everything after.
 *
 * A holder keeps its subscription until it lets go at a sibling's marker (relay_role).
 *
 * A worker whose subscription is confirmed while no sibling holds any namespace takes the role at
 * once (a start, or a holder that crashed: there is nothing to cut against). A marker that has
 * not come back within timeout_ms (lost with a connection) is given up: the worker takes the role
 * then (RELAY_CUT_TIMEOUT, for the caller to log); and a holder that is not the candidate and
 * still holds some namespace timeout_ms after a sibling took them all (it never saw that
 * sibling's marker) lets go then (RELAY_CUT_YIELD). Either way a broadcast in between may be
 * applied twice.
 *
 * Sharded mode (RELAY_CUT_CHANNELS) has one channel per room, each on the node owning its slot;
 * Redis orders messages only within a channel's node, and rooms come and go while the role moves.
 * So there the cut is per channel (a marker on each room's channel, which Node servers subscribed
 * to that room drop: see adapter_relay_mark_channel). Per channel rather than one marker per
 * node on a private channel: a node's marker would cut at the wrong place every room the
 * successor subscribes after it (a room created during the handover), and markers per room cost
 * what the successor's SSUBSCRIBEs cost anyway. The caller reports each channel the
 * subscription wants, confirms, loses (connection lost, slot moving) and gives up; the candidate,
 * once up while a sibling holds something, publishes a marker on each channel it has confirmed
 * and does not hold, on each it confirms later, and again on one lost while its marker was on its
 * way; a channel's broadcasts are applied by the worker whose marker on it came last. A worker
 * with no sibling holding anything holds at once every channel it confirms, and every channel
 * but those whose own marker is still on its way (it may have to read up to it: the old holder
 * applied what comes before). A worker giving the role away (not the candidate, a sibling holding
 * something) takes no channel it did not have: such a channel's broadcasts are the candidate's
 * from its marker on, as a new room's are its holder's from its subscription on. Whether a new
 * channel is held at once is decided at its confirmation from what the siblings hold then (the
 * caller updates first): a sibling publishes that it takes channels over before its first
 * marker, so a subscription that came too late to see a marker sees that.
 *
 * No I/O: the caller publishes the markers and reports those it receives. One per worker; at most
 * 32 namespaces (CONFIG_MAX_NAMESPACES). Channels cost O(1) amortised per call (the walks visit
 * only the channels they change), so a handover of N rooms costs O(N) whatever the order in which
 * confirmations, updates and markers come.
 */
#ifndef STREAMIO_WORKER_CLUSTER_RELAY_CUT_H
#define STREAMIO_WORKER_CLUSTER_RELAY_CUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct relay_cut relay_cut_t;

typedef enum relay_cut_step {
    RELAY_CUT_NONE,    /* nothing to do */
    RELAY_CUT_MARK,    /* publish a marker on every namespace now; the role is taken at them */
    RELAY_CUT_TIMEOUT, /* the markers did not come back in time: the role was taken without them */
    RELAY_CUT_YIELD    /* a sibling took the role without a marker seen here: let go of it */
} relay_cut_step_t;

/* What the worker holds, as published for its siblings (shared memory). */
typedef enum relay_cut_hold {
    RELAY_CUT_HOLDS_NONE = 0,
    RELAY_CUT_HOLDS_SOME = 1, /* some namespaces, or its markers are on their way: a handover is
                               * half done (nobody takes the role at once meanwhile) */
    RELAY_CUT_HOLDS_ALL = 2
} relay_cut_hold_t;

typedef enum relay_cut_kind {
    RELAY_CUT_NAMESPACES, /* classic and private modes: a marker per namespace */
    RELAY_CUT_CHANNELS    /* sharded mode: a marker per channel */
} relay_cut_kind_t;

/* nnsp namespaces (1..32). Aborts on out-of-memory. */
relay_cut_t *relay_cut_new(unsigned nnsp, relay_cut_kind_t kind, uint64_t timeout_ms);
void relay_cut_free(relay_cut_t *c);
/* What the worker knows of the role now (relay_role, shared memory). */
typedef struct relay_cut_input {
    bool up;                 /* it wants the role and its broadcast subscription is confirmed;
                              * when false, everything held is dropped */
    bool candidate;          /* the role goes to it (a candidate never lets go to a rival) */
    relay_cut_hold_t others; /* the most any sibling holds */
} relay_cut_input_t;

/* Follows the input (on every tick, and before a broadcast when it holds less than all); now_ms:
 * a monotonic clock. */
relay_cut_step_t relay_cut_update(relay_cut_t *c, const relay_cut_input_t *in, uint64_t now_ms);
/* RELAY_CUT_NAMESPACES: the markers of the last RELAY_CUT_MARK could not be published (a
 * connection not up yet): the next update asks again, until the timeout. */
void relay_cut_unsent(relay_cut_t *c);
/* A marker arrived on namespace nsp: this worker's own (mine) or a sibling's. */
void relay_cut_marker(relay_cut_t *c, unsigned nsp, bool mine);
/* This worker applies and relays the namespace's broadcasts now. */
bool relay_cut_applies(const relay_cut_t *c, unsigned nsp);
relay_cut_hold_t relay_cut_holds(const relay_cut_t *c);

/* ---- RELAY_CUT_CHANNELS (channel names borrowed for the call) ---- */
typedef enum relay_cut_chan {
    RELAY_CUT_CHAN_WANTED,    /* its subscription was sent */
    RELAY_CUT_CHAN_CONFIRMED, /* its node confirmed it: its messages arrive from now on */
    RELAY_CUT_CHAN_LOST,      /* no longer in effect (connection lost, slot moving), still wanted */
    RELAY_CUT_CHAN_GONE       /* no longer wanted */
} relay_cut_chan_t;
void relay_cut_channel(relay_cut_t *c, const char *chan, size_t len, relay_cut_chan_t ev);
/* A marker arrived on the channel: this worker's own (mine) or a sibling's. */
void relay_cut_channel_marker(relay_cut_t *c, const char *chan, size_t len, bool mine);
/* This worker applies and relays the channel's broadcasts now. */
bool relay_cut_channel_applies(const relay_cut_t *c, const char *chan, size_t len);
/* After RELAY_CUT_MARK: publish(chan) for each channel whose marker is to go out; one whose
 * publish fails (non-zero) is asked again by an update 10 ms later or more, until the timeout. */
void relay_cut_each_mark(relay_cut_t *c, int (*publish)(const char *chan, size_t len, void *arg),
                         void *arg);
/* Channels visited so far by the walks over them (marking, publishing, holding, dropping): what a
 * handover costs, for tests and benchmarks. */
uint64_t relay_cut_visits(const relay_cut_t *c);

#endif
