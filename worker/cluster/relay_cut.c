/* relay_cut: see relay_cut.h. */
#include "worker/cluster/relay_cut.h"

#include <stdlib.h>

#include "common/xalloc.h"

struct relay_cut {
    uint32_t all;         /* a bit per namespace */
    uint32_t held;        /* the namespaces whose broadcasts this worker applies */
    uint32_t waiting;     /* its markers still on their way */
    uint64_t deadline;    /* for them */
    uint64_t rival_until; /* a sibling holds it all: this worker lets go then at the latest */
    uint64_t timeout_ms;
    bool markers;
    bool unsent; /* the last RELAY_CUT_MARK could not be published: asked again */
    bool on;     /* wanted and subscribed: markers count */
};

relay_cut_t *relay_cut_new(unsigned nnsp, bool markers, uint64_t timeout_ms)
{
    relay_cut_t *c = xcalloc(1, sizeof(*c));
    c->all = nnsp >= 32 ? UINT32_MAX : (1u << (nnsp ? nnsp : 1)) - 1;
    c->markers = markers;
    c->timeout_ms = markers ? timeout_ms : 0;
    return c;
}

void relay_cut_free(relay_cut_t *c)
{
    free(c);
}

relay_cut_step_t relay_cut_update(relay_cut_t *c, const relay_cut_input_t *in, uint64_t now_ms)
{
    relay_cut_hold_t others = in->others;
    c->on = in->up;
    if (!in->up) {
        c->held = c->waiting = 0;
        c->unsent = false;
        c->rival_until = 0;
        return RELAY_CUT_NONE;
    }
    if (c->held && others == RELAY_CUT_HOLDS_ALL && !in->candidate) {
        /* its marker is on its way here; unless it took the role without one */
        if (!c->rival_until)
            c->rival_until = now_ms + c->timeout_ms;
        if (now_ms >= c->rival_until) {
            c->held = c->waiting = 0;
            c->rival_until = 0;
            return RELAY_CUT_YIELD;
        }
    } else {
        c->rival_until = 0;
    }
    if (c->waiting) {
        if (now_ms < c->deadline && c->unsent) {
            c->unsent = false;
            return RELAY_CUT_MARK;
        }
        if (now_ms < c->deadline)
            return RELAY_CUT_NONE;
        c->held |= c->waiting;
        c->waiting = 0;
        return RELAY_CUT_TIMEOUT;
    }
    if (c->held == c->all)
        return RELAY_CUT_NONE;
    if (!c->markers || (!c->held && others == RELAY_CUT_HOLDS_NONE)) {
        c->held = c->all; /* nobody to cut against */
        return RELAY_CUT_NONE;
    }
    /* holding some: a sibling took the rest at its marker, or is taking it */
    if (c->held && others != RELAY_CUT_HOLDS_NONE)
        return RELAY_CUT_NONE;
    /* a sibling holds some (or, holding some, the one that took the rest is gone): cut again */
    c->waiting = c->all;
    c->deadline = now_ms + c->timeout_ms;
    return RELAY_CUT_MARK;
}

void relay_cut_unsent(relay_cut_t *c)
{
    c->unsent = c->waiting != 0;
}

void relay_cut_marker(relay_cut_t *c, unsigned nsp, bool mine)
{
    uint32_t bit = nsp < 32 ? 1u << nsp : 0;
    if (!c->on || !(bit & c->all))
        return;
    if (mine) {
        /* any marker of its own is a cut both sides see at the same place */
        c->held |= bit;
        c->waiting &= ~bit;
    } else {
        c->held &= ~bit;
    }
}

bool relay_cut_applies(const relay_cut_t *c, unsigned nsp)
{
    return nsp < 32 && (c->held >> nsp) & 1u;
}

relay_cut_hold_t relay_cut_holds(const relay_cut_t *c)
{
    return c->held == c->all       ? RELAY_CUT_HOLDS_ALL
           : c->held || c->waiting ? RELAY_CUT_HOLDS_SOME
                                   : RELAY_CUT_HOLDS_NONE;
}
