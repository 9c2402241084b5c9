/* relay_cut: see relay_cut.h. */
#include "worker/cluster/relay_cut.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "common/ilist.h"
#include "common/strmap.h"
#include "common/xalloc.h"

/* A marker whose publish failed is asked again this long after at the earliest: a node that
 * cannot take them costs at most timeout / RETRY_MS walks of its channels, not one per event. */
#define RETRY_MS 10

/* RELAY_CUT_CHANNELS: what this worker knows of one channel. Exactly one of held, waiting, or
 * neither (free: idle when confirmed); to_mark and remark only while waiting, to_mark only while
 * confirmed. */
typedef struct chan {
    ilist_t by_state; /* in the list of its state (see state_list) */
    ilist_t by_mark;  /* in marks (or retry) while to_mark */
    bool confirmed;   /* its messages reach this worker */
    bool seen;        /* it was confirmed once */
    bool held;        /* this worker applies them */
    bool waiting;     /* its marker is on its way */
    bool to_mark;     /* its marker is to be published (again) */
    bool remark;      /* lost while its marker was on its way: marked again once confirmed */
    size_t len;
    char name[]; /* for the publish callback */
} chan_t;

/* IDLE: holds nothing; STEADY: took the role with nobody to cut against, holds new channels from
 * their confirmation while nobody else holds any; TAKING: takes channels at its markers. */
typedef enum hold_mode { MODE_IDLE, MODE_STEADY, MODE_TAKING } hold_mode_t;

struct relay_cut {
    uint32_t all;         /* a bit per namespace */
    uint32_t held;        /* the namespaces whose broadcasts this worker applies */
    uint32_t waiting;     /* its markers still on their way */
    uint64_t deadline;    /* for them */
    uint64_t rival_until; /* a sibling holds it all: this worker lets go then at the latest */
    uint64_t timeout_ms;
    bool unsent; /* the last RELAY_CUT_MARK could not be published: asked again */
    bool on;     /* wanted and subscribed: markers count */
    /* RELAY_CUT_CHANNELS */
    strmap_t *chans; /* chan_t per wanted channel; NULL for RELAY_CUT_NAMESPACES */
    hold_mode_t mode;
    bool candidate;                   /* as of the last update */
    relay_cut_hold_t others;          /* as of the last update */
    size_t n_held, n_waiting, n_idle; /* idle: confirmed, neither held nor waited */
    /* the channels by state, so that each walk visits only those it changes: per event O(1)
     * amortised, a handover O(channels), however the confirmations and markers interleave */
    ilist_t held_list, waiting_list, idle_list, unconfirmed_list; /* the last two: free */
    ilist_t marks, retry;   /* to_mark: to publish now, or from retry_at on (a publish failed) */
    uint64_t retry_at, now; /* now: as of the last update */
    uint64_t visits;
};

relay_cut_t *relay_cut_new(unsigned nnsp, relay_cut_kind_t kind, uint64_t timeout_ms)
{
    relay_cut_t *c = xcalloc(1, sizeof(*c));
    c->all = nnsp >= 32 ? UINT32_MAX : (1u << (nnsp ? nnsp : 1)) - 1;
    c->timeout_ms = timeout_ms;
    if (kind == RELAY_CUT_CHANNELS)
        c->chans = strmap_new();
    ilist_init(&c->held_list);
    ilist_init(&c->waiting_list);
    ilist_init(&c->idle_list);
    ilist_init(&c->unconfirmed_list);
    ilist_init(&c->marks);
    ilist_init(&c->retry);
    return c;
}

void relay_cut_free(relay_cut_t *c)
{
    if (!c)
        return;
    if (c->chans) {
        strmap_free_values(c->chans, NULL);
        strmap_free(c->chans);
    }
    free(c);
}

/* ---- RELAY_CUT_CHANNELS ---- */

static ilist_t *state_list(relay_cut_t *c, const chan_t *e)
{
    return e->held        ? &c->held_list
           : e->waiting   ? &c->waiting_list
           : e->confirmed ? &c->idle_list
                          : &c->unconfirmed_list;
}

/* Adds (sign 1) or removes (-1) what e counts for, and where it is listed: a change to e goes
 * between the two. */
static void account(relay_cut_t *c, chan_t *e, int sign)
{
    c->n_held += (size_t)(sign * e->held);
    c->n_waiting += (size_t)(sign * e->waiting);
    c->n_idle += (size_t)(sign * (e->confirmed && !e->held && !e->waiting));
    if (sign < 0) {
        ilist_remove(&e->by_state);
        ilist_remove(&e->by_mark);
        return;
    }
    ilist_push_back(state_list(c, e), &e->by_state);
    if (e->to_mark)
        ilist_push_back(&c->marks, &e->by_mark);
}

enum { EACH_DROP, EACH_HOLD, EACH_TIMEOUT, EACH_MARK, EACH_PUBLISH };

static void each_chan(relay_cut_t *c, chan_t *e, int what,
                      int (*publish)(const char *chan, size_t len, void *arg), void *arg)
{
    c->visits++;
    account(c, e, -1);
    switch (what) {
    case EACH_DROP:
        e->held = e->waiting = e->to_mark = e->remark = false;
        break;
    case EACH_HOLD:
        e->held |= !e->waiting;
        break;
    case EACH_TIMEOUT:
        if (e->waiting) {
            e->held = true;
            e->waiting = e->to_mark = e->remark = false;
        }
        break;
    case EACH_MARK:
        if (e->confirmed && !e->held && !e->waiting)
            e->waiting = e->to_mark = true;
        break;
    case EACH_PUBLISH:
        if (e->to_mark && publish(e->name, e->len, arg) == 0)
            e->to_mark = false;
        break;
    }
    account(c, e, 1);
    if (what == EACH_PUBLISH && e->to_mark) {
        ilist_remove(&e->by_mark);
        ilist_push_back(&c->retry, &e->by_mark);
        c->retry_at = c->now + RETRY_MS;
    }
}

/* Visits the channels of list l (by_mark links for EACH_PUBLISH), taken off it first: one put
 * back on it (a failed publish) waits for the next walk. */
static void each_in(relay_cut_t *c, ilist_t *l, int what,
                    int (*publish)(const char *chan, size_t len, void *arg), void *arg)
{
    ilist_t todo;
    ilist_init(&todo);
    ilist_splice_back(&todo, l);
    size_t off = what == EACH_PUBLISH ? offsetof(chan_t, by_mark) : offsetof(chan_t, by_state);
    while (!ilist_empty(&todo))
        each_chan(c, (chan_t *)(void *)((char *)todo.next - off), what, publish, arg);
}

/* Each walk visits the lists of the channels it may change. */
static void each(relay_cut_t *c, int what)
{
    switch (what) {
    case EACH_DROP:
        each_in(c, &c->held_list, what, NULL, NULL);
        each_in(c, &c->waiting_list, what, NULL, NULL);
        break;
    case EACH_HOLD:
        each_in(c, &c->idle_list, what, NULL, NULL);
        each_in(c, &c->unconfirmed_list, what, NULL, NULL);
        break;
    case EACH_TIMEOUT:
        each_in(c, &c->waiting_list, what, NULL, NULL);
        break;
    case EACH_MARK:
        each_in(c, &c->idle_list, what, NULL, NULL);
        break;
    }
}

static relay_cut_step_t chan_update(relay_cut_t *c, const relay_cut_input_t *in, uint64_t now_ms)
{
    if (!in->up) {
        if (c->mode != MODE_IDLE)
            each(c, EACH_DROP);
        c->mode = MODE_IDLE;
        c->rival_until = 0;
        return RELAY_CUT_NONE;
    }
    c->candidate = in->candidate;
    c->others = in->others;
    c->now = now_ms;
    if (now_ms >= c->retry_at)
        ilist_splice_back(&c->marks, &c->retry);
    if ((c->n_held || c->n_waiting) && in->others == RELAY_CUT_HOLDS_ALL && !in->candidate) {
        /* its markers are on their way here; unless it took the channels without them */
        if (!c->rival_until)
            c->rival_until = now_ms + c->timeout_ms;
        if (now_ms >= c->rival_until) {
            each(c, EACH_DROP);
            c->mode = MODE_IDLE;
            c->rival_until = 0;
            return RELAY_CUT_YIELD;
        }
    } else {
        c->rival_until = 0;
    }
    if (in->others == RELAY_CUT_HOLDS_NONE) {
        /* nobody to cut against (a start, a holder gone or let go): every channel but those
         * whose marker is on its way, which this worker may still have to read up to */
        if (c->mode != MODE_STEADY || c->n_idle)
            each(c, EACH_HOLD);
        c->mode = MODE_STEADY;
    }
    if (c->n_waiting && now_ms >= c->deadline) {
        each(c, EACH_TIMEOUT);
        return RELAY_CUT_TIMEOUT;
    }
    if (in->candidate && in->others != RELAY_CUT_HOLDS_NONE) {
        if (c->mode == MODE_IDLE)
            c->mode = MODE_TAKING;
        if (c->n_idle) {
            if (!c->n_waiting)
                c->deadline = now_ms + c->timeout_ms;
            each(c, EACH_MARK);
        }
    }
    /* (not the candidate: giving the role away, or never had it) */
    return ilist_empty(&c->marks) ? RELAY_CUT_NONE : RELAY_CUT_MARK;
}

void relay_cut_channel(relay_cut_t *c, const char *chan, size_t len, relay_cut_chan_t ev)
{
    if (!c->chans)
        return;
    chan_t *e = strmap_get(c->chans, chan, len);
    if (ev == RELAY_CUT_CHAN_GONE) {
        if (e) {
            account(c, e, -1);
            free(strmap_del(c->chans, chan, len));
        }
        return;
    }
    if (!e) {
        e = xcalloc(1, sizeof(*e) + len);
        memcpy(e->name, chan, len);
        e->len = len;
        strmap_put(c->chans, chan, len, e);
    } else {
        account(c, e, -1);
    }
    if (ev == RELAY_CUT_CHAN_CONFIRMED) {
        /* a new channel is held at once only by a holder with nobody to cut against as of now:
         * a sibling publishes what it holds before its markers, so one whose marker this
         * subscription missed is seen here */
        if (!e->seen)
            e->held = c->on && c->mode == MODE_STEADY && c->others == RELAY_CUT_HOLDS_NONE;
        e->seen = e->confirmed = true;
        if (e->waiting && e->remark) {
            e->to_mark = true; /* the first one may have gone to the node it left */
            e->remark = false;
        }
    } else if (ev == RELAY_CUT_CHAN_LOST) {
        /* no marker meanwhile: the old holder would let go at it, unseen by this worker */
        e->confirmed = e->to_mark = false;
        e->remark = e->waiting;
    }
    account(c, e, 1);
}

void relay_cut_channel_marker(relay_cut_t *c, const char *chan, size_t len, bool mine)
{
    chan_t *e = c->chans && c->on ? strmap_get(c->chans, chan, len) : NULL;
    if (!e)
        return;
    account(c, e, -1);
    if (mine) {
        /* any marker of its own is a cut both sides see at the same place */
        e->held = true;
        e->waiting = e->to_mark = e->remark = false;
    } else {
        e->held = false;
    }
    account(c, e, 1);
}

bool relay_cut_channel_applies(const relay_cut_t *c, const char *chan, size_t len)
{
    const chan_t *e = c->chans ? strmap_get(c->chans, chan, len) : NULL;
    return e && e->held;
}

void relay_cut_each_mark(relay_cut_t *c, int (*publish)(const char *chan, size_t len, void *arg),
                         void *arg)
{
    if (c->chans)
        each_in(c, &c->marks, EACH_PUBLISH, publish, arg);
}

/* All: every channel confirmed here is held (one being subscribed again keeps what it was). */
static relay_cut_hold_t chan_holds(const relay_cut_t *c)
{
    if (!c->on || c->mode == MODE_IDLE)
        return RELAY_CUT_HOLDS_NONE;
    if (!c->n_waiting && !c->n_idle) /* with none held: the holder, unless giving it away */
        return c->n_held || c->candidate || c->others == RELAY_CUT_HOLDS_NONE
                   ? RELAY_CUT_HOLDS_ALL
                   : RELAY_CUT_HOLDS_NONE;
    return c->n_held || c->n_waiting ? RELAY_CUT_HOLDS_SOME : RELAY_CUT_HOLDS_NONE;
}

/* ---- RELAY_CUT_NAMESPACES ---- */

relay_cut_step_t relay_cut_update(relay_cut_t *c, const relay_cut_input_t *in, uint64_t now_ms)
{
    relay_cut_hold_t others = in->others;
    c->on = in->up;
    if (c->chans)
        return chan_update(c, in, now_ms);
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
    if (!c->held && others == RELAY_CUT_HOLDS_NONE) {
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
    if (c->chans)
        return chan_holds(c);
    return c->held == c->all       ? RELAY_CUT_HOLDS_ALL
           : c->held || c->waiting ? RELAY_CUT_HOLDS_SOME
                                   : RELAY_CUT_HOLDS_NONE;
}

uint64_t relay_cut_visits(const relay_cut_t *c)
{
    return c->visits;
}
