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

/* 128 bytes: two cache lines. */
typedef struct record {
    _Atomic uint64_t state; /* 0: being written (or never); else the stamp it was written with */
    uint64_t ms, seq, digest;
    int32_t pid;
    uint32_t name_len;
    char name[SHM_LEDGER_NAME_MAX];
} record_t;

typedef struct block {
    _Atomic uint64_t stamp; /* the last stamp given out: unique per block, across its processes */
    char pad[56];
    record_t rec[SHM_LEDGER_RECORDS];
} block_t;

_Static_assert(sizeof(record_t) == 128, "a ledger record is two cache lines");

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

uint64_t shm_ledger_digest(const void *p, size_t len)
{
    const unsigned char *b = p;
    uint64_t h = 0x9e3779b97f4a7c15ULL ^ len;
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t w;
        memcpy(&w, b + i, 8);
        h = (h ^ mix(w)) * 0x100000001b3ULL;
    }
    uint64_t tail = 0;
    memcpy(&tail, b + i, len - i);
    return mix(h ^ mix(tail ^ 0x5bd1e995ULL));
}

static size_t place(const shm_ledger_entry_t *e)
{
    uint64_t h = strmap_hash(e->stream, e->stream_len) ^ mix(e->ms) ^ mix(e->seq + 1);
    return (size_t)(mix(h) & (SHM_LEDGER_RECORDS - 1));
}

bool shm_ledger_note(shm_ledger_t *l, uint32_t block, int32_t pid, const shm_ledger_entry_t *e)
{
    if (block >= l->nblocks || e->stream_len > SHM_LEDGER_NAME_MAX)
        return false;
    block_t *b = &l->blocks[block];
    record_t *r = &b->rec[place(e)];
    /* one writer per block: the stamp needs no read-modify-write across processes */
    uint64_t stamp = atomic_load_explicit(&b->stamp, memory_order_relaxed) + 1;
    atomic_store_explicit(&b->stamp, stamp, memory_order_relaxed);
    atomic_store_explicit(&r->state, 0, memory_order_relaxed);
    atomic_thread_fence(memory_order_release); /* readers see 0 before any field changes */
    r->ms = e->ms;
    r->seq = e->seq;
    r->digest = e->digest;
    r->pid = pid;
    r->name_len = (uint32_t)e->stream_len;
    memcpy(r->name, e->stream, e->stream_len);
    atomic_store_explicit(&r->state, stamp, memory_order_release);
    return true;
}

bool shm_ledger_holds(shm_ledger_t *l, uint32_t block, int32_t pid, const shm_ledger_entry_t *e)
{
    if (block >= l->nblocks || e->stream_len > SHM_LEDGER_NAME_MAX || pid <= 0)
        return false;
    record_t *r = &l->blocks[block].rec[place(e)];
    uint64_t before = atomic_load_explicit(&r->state, memory_order_acquire);
    if (!before)
        return false;
    bool same = r->pid == pid && r->ms == e->ms && r->seq == e->seq && r->digest == e->digest &&
                r->name_len == e->stream_len && memcmp(r->name, e->stream, e->stream_len) == 0;
    atomic_thread_fence(memory_order_acquire); /* the fields were read before the state again */
    return same && atomic_load_explicit(&r->state, memory_order_relaxed) == before;
}
