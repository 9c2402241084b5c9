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
    shm_region_t *region; /* the siblings' pids */
    uint32_t slot;
    shm_ledger_t *ledger; /* see fanout_keep_ledger; NULL: none */
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
static bool ledger_entry(const fanout_t *f, const fanout_packet_t *pk, shm_ledger_entry_t *le)
{
    stream_id_t id;
    if (!f->ledger || !pk->id_len || !stream_id_parse(pk->id, pk->id_len, &id))
        return false;
    size_t len;
    const char *text = eio_msg_text(pk->msg, &len);
    *le = (shm_ledger_entry_t){pk->room, pk->room_len, id.ms, id.seq, shm_ledger_digest(text, len)};
    return true;
}

/* An entry to the sockets here, then noted as theirs when it was queued to any (see fanout.h;
 * nobody here: a second copy would reach nobody that had it). */
static void deliver_entry(fanout_t *f, const fanout_packet_t *pk)
{
    adapter_str_t room = {pk->room, pk->room_len};
    sio_target_t t = {&room, 1, NULL, 0, 0};
    shm_ledger_entry_t le;
    if (fanout_deliver(f, &t, false, pk) && ledger_entry(f, pk, &le))
        shm_ledger_note(f->ledger, f->slot, f->pid, &le);
}

/* How many siblings are live when each one's current process noted le (it has the entry
 * already), else -1. */
static int siblings_have(const fanout_t *f, const shm_ledger_entry_t *le)
{
    uint32_t n = shm_region_slots(f->region);
    int live = 0;
    for (uint32_t i = 0; i < n; i++) {
        stats_worker_t *st = i == f->slot ? NULL : shm_region_slot_stats(f->region, i);
        int32_t pid = st ? (int32_t)STATS_GET(st->pid) : 0;
        if (pid && !shm_ledger_holds(f->ledger, i, pid, le))
            return -1;
        live += pid != 0;
    }
    return live;
}

void fanout_publish(fanout_t *f, const fanout_packet_t *pk)
{
    shm_ledger_entry_t le;
    bool again = pk->reread && ledger_entry(f, pk, &le);
    bool here = again && shm_ledger_holds(f->ledger, f->slot, f->pid, &le);
    int there = again ? siblings_have(f, &le) : -1;
    if (here || there > 0)
        STATS_ADD(f->stats->reread_skipped, 1);
    if (!here)
        deliver_entry(f, pk);
    if (there >= 0)
        return;
    size_t len;
    const char *text = eio_msg_text(pk->msg, &len);
    siblings_entry_t e = {pk->room, pk->room_len, pk->id, pk->id_len, text, len, false, 0};
    int rc = siblings_add(f->siblings, &e);
    if (rc > 0)
        STATS_ADD(f->stats->sibling_out, 1);
    else if (rc < 0 && log_sampled(&f->share_failures))
        LOG_WARN("cannot hand an entry of %.*s to the other workers: %s", (int)pk->room_len,
                 pk->room, strerror(-rc));
}

void fanout_keep_ledger(fanout_t *f, shm_ledger_t *ledger, int32_t pid)
{
    f->ledger = ledger;
    f->pid = pid;
}

int fanout_relay(fanout_t *f, const char *chan, size_t chan_len, const uint8_t *msg, size_t msg_len)
{
    siblings_entry_t e = {chan, chan_len, "", 0, (const char *)msg, msg_len, true, 0};
    return siblings_add(f->siblings, &e);
}

void fanout_on_relayed(fanout_t *f, fanout_relayed_fn fn, void *arg)
{
    f->relayed = fn;
    f->relayed_arg = arg;
}

/* A notice is a relayed record whose id is its kind (a relayed message's id is empty); the text
 * is the kind and the number (host order: both ends are one binary), and an empty room travels
 * as "#" (records carry no empty room). */
int fanout_notice(fanout_t *f, char kind, uint64_t seq, const char *room, size_t len)
{
    char text[1 + sizeof(seq)];
    text[0] = kind;
    memcpy(text + 1, &seq, sizeof(seq));
    siblings_entry_t e = {len ? room : "#", len ? len : 1, &kind, 1, text, sizeof(text), true, 0};
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
        uint64_t seq = 0;
        if (e->text_len == 1 + sizeof(seq))
            memcpy(&seq, e->text + 1, sizeof(seq));
        if (f->notice)
            f->notice(e->from, e->id[0], seq, e->room, e->room_len, f->notice_arg);
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
    deliver_entry(f, &pk);
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
    f->region = region;
    f->slot = slot;
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
