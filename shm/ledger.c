/* shm_ledger: see ledger.h. */
#include "shm/ledger.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "common/strmap.h"
#include "common/xalloc.h"
#include "shm/region.h"

#define WAYS 8 /* records per bucket: a place holds the last 8 entries that hash there */
#define BUCKETS (SHM_LEDGER_RECORDS / WAYS)
#define TICKET_PLACE 12 /* a ticket's low bits: its record's place in the block */

typedef struct record {
    uint64_t ms, seq, digest;
    int32_t pid;
    uint16_t name_len;
    uint16_t kind; /* enum kind */
    char name[SHM_LEDGER_NAME_MAX];
} record_t;

/* What a record says its process did with the entry: kinds never prove one another. */
enum kind { QUEUED = 1, SENT = 2, PUBLISHED = 3 };

/* The ways' state words share one cache line: a writer picks the oldest from it. */
typedef struct bucket {
    _Atomic uint64_t state[WAYS]; /* 0: being written (or never); else the stamp written with */
    record_t rec[WAYS];
} bucket_t;

typedef struct block {
    _Atomic uint64_t stamp; /* the last stamp given out: unique per block, across its processes */
    char pad[56];
    bucket_t bucket[BUCKETS];
} block_t;

_Static_assert(sizeof(bucket_t) == 1024, "a ledger bucket is 16 cache lines");
_Static_assert((BUCKETS & (BUCKETS - 1)) == 0, "buckets are a power of two");
_Static_assert(SHM_LEDGER_RECORDS == 1u << TICKET_PLACE, "a ticket's place names any record");
_Static_assert(SHM_LEDGER_NAME_MAX <= UINT16_MAX, "a name length fits its field");

struct shm_ledger {
    block_t *blocks;
    uint32_t nblocks;
    size_t bytes;
};

int shm_ledger_new(shm_ledger_t **out, uint32_t nblocks)
{
    if (!out || nblocks == 0 || nblocks > SHM_REGION_MAX_SLOTS)
        return -EINVAL;
    size_t bytes = (size_t)nblocks * sizeof(block_t);
    void *base = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
                      MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (base == MAP_FAILED)
        return -errno;
    shm_ledger_t *l = xmalloc(sizeof(*l));
    l->blocks = base;
    l->nblocks = nblocks;
    l->bytes = bytes;
    *out = l;
    return 0;
}

void shm_ledger_free(shm_ledger_t *l)
{
    if (!l)
        return;
    munmap(l->blocks, l->bytes);
    free(l);
}

static uint64_t mix(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return h;
}

/* Two lanes of 8 bytes each per step, each step a bijection of its lane (odd multiplier): a
 * change in one word always changes the result; one multiply per word, the lanes in parallel. */
uint64_t shm_ledger_digest(const void *p, size_t len)
{
    const unsigned char *c = p;
    uint64_t a = 0x9e3779b97f4a7c15ULL ^ len, b = 0xc2b2ae3d27d4eb4fULL;
    size_t i = 0;
    for (; i + 16 <= len; i += 16) {
        uint64_t w0, w1;
        memcpy(&w0, c + i, 8);
        memcpy(&w1, c + i + 8, 8);
        a = (a ^ w0) * 0xff51afd7ed558ccdULL;
        b = (b ^ w1) * 0xc4ceb9fe1a85ec53ULL;
        a ^= a >> 29;
        b ^= b >> 31;
    }
    uint64_t t0 = 0, t1 = 0;
    size_t rest = len - i;
    memcpy(&t0, c + i, rest < 8 ? rest : 8);
    if (rest > 8)
        memcpy(&t1, c + i + 8, rest - 8);
    a = (a ^ t0) * 0xff51afd7ed558ccdULL;
    b = (b ^ t1) * 0xc4ceb9fe1a85ec53ULL;
    return mix(a ^ mix(b + (uint64_t)rest));
}

static size_t place(const shm_ledger_entry_t *e)
{
    uint64_t h = strmap_hash(e->stream, e->stream_len) ^ mix(e->ms) ^ mix(e->seq + 1);
    return (size_t)(mix(h) & (BUCKETS - 1));
}

/* The next stamp of block b (one writer per block: no read-modify-write across processes). */
static uint64_t next_stamp(block_t *b)
{
    uint64_t stamp = atomic_load_explicit(&b->stamp, memory_order_relaxed) + 1;
    atomic_store_explicit(&b->stamp, stamp, memory_order_relaxed);
    return stamp;
}

/* Writes e as `kind` over the oldest record of its bucket; its ticket, 0 when not written. */
static uint64_t write_record(shm_ledger_t *l, uint32_t block, int32_t pid,
                             const shm_ledger_entry_t *e, enum kind kind)
{
    if (block >= l->nblocks || e->stream_len > SHM_LEDGER_NAME_MAX)
        return 0;
    block_t *b = &l->blocks[block];
    size_t at = place(e);
    bucket_t *k = &b->bucket[at];
    unsigned w = 0;
    for (unsigned i = 1; i < WAYS; i++) {
        if (atomic_load_explicit(&k->state[i], memory_order_relaxed) <
            atomic_load_explicit(&k->state[w], memory_order_relaxed))
            w = i;
    }
    uint64_t stamp = next_stamp(b);
    atomic_store_explicit(&k->state[w], 0, memory_order_relaxed);
    atomic_thread_fence(memory_order_release); /* readers see 0 before any field changes */
    record_t *r = &k->rec[w];
    r->ms = e->ms;
    r->seq = e->seq;
    r->digest = e->digest;
    r->pid = pid;
    r->name_len = (uint16_t)e->stream_len;
    r->kind = (uint16_t)kind;
    memcpy(r->name, e->stream, e->stream_len);
    atomic_store_explicit(&k->state[w], stamp, memory_order_release);
    return stamp << TICKET_PLACE | (at * WAYS + w);
}

bool shm_ledger_note(shm_ledger_t *l, uint32_t block, int32_t pid, const shm_ledger_entry_t *e)
{
    return write_record(l, block, pid, e, QUEUED) != 0;
}

uint64_t shm_ledger_sending(shm_ledger_t *l, uint32_t block, int32_t pid,
                            const shm_ledger_entry_t *e)
{
    return write_record(l, block, pid, e, SENT);
}

bool shm_ledger_sent(shm_ledger_t *l, uint32_t block, uint64_t ticket)
{
    if (block >= l->nblocks || !ticket)
        return false;
    block_t *b = &l->blocks[block];
    size_t at = ticket & (SHM_LEDGER_RECORDS - 1);
    bucket_t *k = &b->bucket[at / WAYS];
    _Atomic uint64_t *state = &k->state[at % WAYS];
    record_t *r = &k->rec[at % WAYS];
    /* replaced since (a later stamp): that record is another entry's */
    if (atomic_load_explicit(state, memory_order_relaxed) != ticket >> TICKET_PLACE ||
        r->kind != SENT)
        return false;
    uint64_t stamp = next_stamp(b);
    atomic_store_explicit(state, 0, memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
    r->kind = PUBLISHED;
    atomic_store_explicit(state, stamp, memory_order_release);
    return true;
}

/* Whether bucket k holds e as `kind` (by process pid; 0: any), read under its state words. */
static bool bucket_has(const bucket_t *k, int32_t pid, const shm_ledger_entry_t *e, enum kind kind)
{
    for (unsigned w = 0; w < WAYS; w++) {
        uint64_t before = atomic_load_explicit(&k->state[w], memory_order_acquire);
        if (!before)
            continue;
        const record_t *r = &k->rec[w];
        bool same = (!pid || r->pid == pid) && r->kind == kind && r->ms == e->ms &&
                    r->seq == e->seq && r->digest == e->digest && r->name_len == e->stream_len &&
                    memcmp(r->name, e->stream, e->stream_len) == 0;
        atomic_thread_fence(memory_order_acquire); /* the fields were read before the state again */
        if (same && atomic_load_explicit(&k->state[w], memory_order_relaxed) == before)
            return true;
    }
    return false;
}

bool shm_ledger_holds(shm_ledger_t *l, uint32_t block, int32_t pid, const shm_ledger_entry_t *e)
{
    if (block >= l->nblocks || e->stream_len > SHM_LEDGER_NAME_MAX || pid <= 0)
        return false;
    return bucket_has(&l->blocks[block].bucket[place(e)], pid, e, QUEUED);
}

bool shm_ledger_published(shm_ledger_t *l, const shm_ledger_entry_t *e)
{
    if (e->stream_len > SHM_LEDGER_NAME_MAX)
        return false;
    size_t at = place(e);
    for (uint32_t i = 0; i < l->nblocks; i++) {
        if (bucket_has(&l->blocks[i].bucket[at], 0, e, PUBLISHED))
            return true;
    }
    return false;
}
