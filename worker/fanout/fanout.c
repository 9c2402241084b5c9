/* fanout: see fanout.h. */
#include "worker/fanout/fanout.h"

#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/xalloc.h"
#include "worker/fanout/siblings.h"

#define OBSERVERS_MAX 2

struct fanout {
    sio_t *sio;
    siblings_t *siblings;
    stats_worker_t *stats;
    fanout_observer_t obs[OBSERVERS_MAX];
    unsigned nobs;
    uint64_t share_failures;   /* entries not handed to the siblings (log sampling) */
    fanout_relayed_fn relayed; /* see fanout_on_relayed */
    void *relayed_arg;
    fanout_notice_fn notice; /* see fanout_on_notice */
    void *notice_arg;
    shm_ledger_t *ledger; /* see fanout_keep_ledger; NULL: none */
    uint32_t block, index;
    int32_t pid;
};

typedef struct delivery {
    fanout_t *f;
    const fanout_packet_t *pk;
    bool gated; /* an entry for one room: observers may hold it back */
    bool skip_busy;
    size_t queued;
} delivery_t;

static void deliver_one(sio_socket_t *s, rooms_mark_t *mark, void *arg)
{
    delivery_t *d = arg;
    /* volatile: a transport with a backlog cannot take the packet now (bytes queued during this
     * loop turn are not a backlog: they leave with the next writev) */
    if (d->skip_busy && sio_socket_backlog(s) > FANOUT_BUSY_BYTES)
        return;
    if (d->gated && mark) {
        for (unsigned i = 0; i < d->f->nobs; i++) {
            if (!d->f->obs[i].gate(d->f->obs[i].arg, s, mark, d->pk))
                return;
        }
    }
    if (sio_socket_send_msg(s, d->pk->msg))
        d->queued++;
}

size_t fanout_deliver(fanout_t *f, const sio_target_t *t, bool skip_busy, const fanout_packet_t *pk)
{
    delivery_t d = {f, pk, pk->has_id && t->nrooms == 1, skip_busy, 0};
    sio_each(f->sio, t, deliver_one, &d);
    STATS_ADD(f->stats->deliveries, d.queued);
    return d.queued;
}

/* The entry as the ledger names it; false when it has no ledger or no parsed id. */
static bool ledger_entry(const fanout_t *f, const fanout_packet_t *pk, const char *text, size_t len,
                         shm_ledger_entry_t *le)
{
    stream_id_t id;
    if (!f->ledger || !pk->id_len || !stream_id_parse(pk->id, pk->id_len, &id))
        return false;
    *le = (shm_ledger_entry_t){pk->room, pk->room_len, id.ms, id.seq, shm_ledger_digest(text, len)};
    return true;
}

void fanout_publish(fanout_t *f, const fanout_packet_t *pk)
{
    size_t len;
    const char *text = eio_msg_text(pk->msg, &len);
    shm_ledger_entry_t le;
    bool noted = ledger_entry(f, pk, text, len, &le);
    int32_t by = noted && pk->reread ? shm_ledger_find(f->ledger, f->index, &le) : 0;
    adapter_str_t room = {pk->room, pk->room_len};
    sio_target_t t = {&room, 1, NULL, 0, 0};
    if (by) {
        /* every sibling then live has it queued; the writer's own sockets had it queued too */
        STATS_ADD(f->stats->reread_skipped, 1);
        if (by != f->pid)
            fanout_deliver(f, &t, false, pk);
        return;
    }
    fanout_deliver(f, &t, false, pk);
    uint64_t ticket = noted ? shm_ledger_note(f->ledger, f->block, f->index, f->pid, &le) : 0;
    siblings_entry_t e = {pk->room, pk->room_len, pk->id, pk->id_len, text, len, false, 0, ticket};
    int rc = siblings_add(f->siblings, &e);
    if (rc > 0)
        STATS_ADD(f->stats->sibling_out, 1);
    else if (rc == 0)
        shm_ledger_commit(f->ledger, f->block, ticket); /* no sibling: the sockets here are all */
    else if (log_sampled(&f->share_failures))
        LOG_WARN("cannot hand an entry of %.*s to the other workers: %s", (int)pk->room_len,
                 pk->room, strerror(-rc));
}

/* A datagram left: its entries' notes are proven once every live sibling has it queued. */
static void on_sent(const uint64_t *tickets, size_t n, bool everyone, void *ud)
{
    fanout_t *f = ud;
    for (size_t i = 0; everyone && i < n; i++)
        shm_ledger_commit(f->ledger, f->block, tickets[i]);
}

void fanout_keep_ledger(fanout_t *f, shm_ledger_t *ledger, uint32_t block, uint32_t index,
                        int32_t pid)
{
    f->ledger = ledger;
    f->block = block;
    f->index = index;
    f->pid = pid;
    siblings_on_sent(f->siblings, ledger ? on_sent : NULL, f);
}

int fanout_relay(fanout_t *f, const char *chan, size_t chan_len, const uint8_t *msg, size_t msg_len)
{
    siblings_entry_t e = {chan, chan_len, "", 0, (const char *)msg, msg_len, true, 0, 0};
    return siblings_add(f->siblings, &e);
}

void fanout_on_relayed(fanout_t *f, fanout_relayed_fn fn, void *arg)
{
    f->relayed = fn;
    f->relayed_arg = arg;
}

/* A notice is a relayed record whose id is its kind (a relayed message's id is empty); the text
 * repeats the kind, and an empty room travels as "#" (records carry no empty room). */
int fanout_notice(fanout_t *f, char kind, const char *room, size_t len)
{
    siblings_entry_t e = {len ? room : "#", len ? len : 1, &kind, 1, &kind, 1, true, 0, 0};
    return siblings_add(f->siblings, &e);
}

void fanout_on_notice(fanout_t *f, fanout_notice_fn fn, void *arg)
{
    f->notice = fn;
    f->notice_arg = arg;
}

static void on_sibling(const siblings_entry_t *e, void *ud)
{
    fanout_t *f = ud;
    if (e->relayed && e->id_len == 1) {
        if (f->notice)
            f->notice(e->from, e->id[0], e->room, e->room_len, f->notice_arg);
        return;
    }
    if (e->relayed) {
        if (f->relayed)
            f->relayed(e->room, e->room_len, (const uint8_t *)e->text, e->text_len, f->relayed_arg);
        return;
    }
    STATS_ADD(f->stats->sibling_in, 1);
    fanout_packet_t pk;
    fanout_packet_entry_text(&pk, e->room, e->room_len, e->id, e->id_len, e->text, e->text_len);
    adapter_str_t room = {e->room, e->room_len};
    sio_target_t t = {&room, 1, NULL, 0, 0};
    fanout_deliver(f, &t, false, &pk);
    fanout_packet_release(&pk);
}

sio_t *fanout_sockets(const fanout_t *f)
{
    return f->sio;
}

bool fanout_backlogged(const fanout_t *f)
{
    return siblings_backlogged(f->siblings);
}

void fanout_observe(fanout_t *f, const fanout_observer_t *o)
{
    if (f->nobs < OBSERVERS_MAX && o->gate)
        f->obs[f->nobs++] = *o;
}

int fanout_new(fanout_t **out, uv_loop_t *loop, sio_t *sio, shm_region_t *region,
               const local_sock_t *socks, uint32_t slot, stats_worker_t *stats)
{
    fanout_t *f = xcalloc(1, sizeof(*f));
    f->sio = sio;
    f->stats = stats;
    int rc = siblings_new(&f->siblings, loop, region, socks, slot, on_sibling, f);
    if (rc) {
        free(f);
        return rc;
    }
    *out = f;
    return 0;
}

void fanout_free(fanout_t *f)
{
    if (!f)
        return;
    siblings_free(f->siblings);
    free(f);
}
