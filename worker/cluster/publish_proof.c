/* publish_proof: see publish_proof.h. */
#include "worker/cluster/publish_proof.h"

#include <stdlib.h>

#include "common/proto/stream_id.h"
#include "common/xalloc.h"

#define NONE UINT32_MAX

/* One publish awaiting its reply: the callback's argument. */
typedef struct pending {
    publish_proof_t *p;
    uint64_t ticket;
    uint32_t next_free;
} pending_t;

struct publish_proof {
    shm_ledger_t *ledger;
    uint32_t block;
    int32_t pid;
    uint64_t target; /* shm_ledger_digest of the target, folded into every entry's digest */
    stats_worker_t *stats;
    uint32_t free_head;
    pending_t pool[PUBLISH_PROOF_INFLIGHT];
};

publish_proof_t *publish_proof_new(shm_ledger_t *ledger, uint32_t block, int32_t pid,
                                   const char *target, size_t target_len, stats_worker_t *stats)
{
    publish_proof_t *p = xmalloc(sizeof(*p));
    p->ledger = ledger;
    p->block = block;
    p->pid = pid;
    p->target = shm_ledger_digest(target, target_len);
    p->stats = stats;
    for (uint32_t i = 0; i < PUBLISH_PROOF_INFLIGHT; i++)
        p->pool[i] = (pending_t){p, 0, i + 1 < PUBLISH_PROOF_INFLIGHT ? i + 1 : NONE};
    p->free_head = 0;
    return p;
}

void publish_proof_free(publish_proof_t *p)
{
    free(p);
}

bool publish_proof_entry(const publish_proof_t *p, shm_ledger_entry_t *e, uint64_t where,
                         const char *stream, size_t stream_len, const char *id, size_t id_len,
                         const char *data, size_t data_len)
{
    stream_id_t sid;
    if (!stream_id_parse(id, id_len, &sid))
        return false;
    /* the same bytes published elsewhere, or through other nodes, differ by the targets' and the
     * nodes' digests: never equal (where is mixed so that it cannot cancel the target out) */
    uint64_t nodes = (where ^ (where >> 31)) * 0x9e3779b97f4a7c15ULL;
    *e = (shm_ledger_entry_t){stream, stream_len, sid.ms, sid.seq,
                              shm_ledger_digest(data, data_len) ^ p->target ^ nodes};
    return true;
}

bool publish_proof_done(publish_proof_t *p, const shm_ledger_entry_t *e)
{
    if (!shm_ledger_published(p->ledger, e))
        return false;
    STATS_ADD(p->stats->reread_unpublished, 1);
    return true;
}

static void release(pending_t *q)
{
    publish_proof_t *p = q->p;
    q->next_free = p->free_head;
    p->free_head = (uint32_t)(q - p->pool);
}

/* The publish's reply: Redis executed it unless it is an error (NULL: the connection was lost,
 * or closed, with it in flight; it may have run, but nothing proves it). */
static void on_reply(const redisReply *reply, void *arg)
{
    pending_t *q = arg;
    if (reply && reply->type != REDIS_REPLY_ERROR &&
        shm_ledger_sent(q->p->ledger, q->p->block, q->ticket))
        STATS_ADD(q->p->stats->adapter_confirmed, 1);
    release(q);
}

void publish_proof_begin(publish_proof_t *p, const shm_ledger_entry_t *e, reader_reply_fn *cb,
                         void **arg)
{
    *cb = NULL;
    *arg = NULL;
    if (p->free_head == NONE)
        return;
    uint64_t ticket = shm_ledger_sending(p->ledger, p->block, p->pid, e);
    if (!ticket)
        return;
    pending_t *q = &p->pool[p->free_head];
    p->free_head = q->next_free;
    q->ticket = ticket;
    *cb = on_reply;
    *arg = q;
}

void publish_proof_cancel(void *arg)
{
    if (arg)
        release(arg);
}
