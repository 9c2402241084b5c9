/* shm_sessions: see sessions.h. */
#include "shm/sessions.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "common/xalloc.h"

enum { CELL_FREE = 0, CELL_LIVE, CELL_ORPHAN, CELL_TAKEN };

/* Payloads start on a page: a session's header then commits one page, not two. */
#define PAGE 4096u

typedef struct head {
    _Atomic uint32_t ncells;
    _Atomic uint32_t hiwater;       /* cells ever handed out: nothing above is touched */
    _Atomic uint64_t orphans_until; /* the latest orphan expiry: no scan before */
    char pad[48];
} head_t;

typedef struct cell {
    _Atomic uint32_t state;
    uint32_t block;
    _Atomic uint64_t expires_ms;
    uint32_t key_len;
    char key[SHM_SESSIONS_KEY_MAX];
    char pad[4];
} cell_t;

_Static_assert(sizeof(head_t) == 64, "one cache line");
_Static_assert(sizeof(cell_t) == 64, "one cache line per cell header");
_Static_assert(SHM_SESSIONS_CELL_BYTES % PAGE == 0, "payloads stay page-aligned");

struct shm_sessions {
    void *base;
    size_t bytes;
    head_t *head;
    cell_t *cells;
    char *payloads;
    uint32_t ncells;
    /* this process's released cells, reused first (process-local: each process has its copy) */
    uint32_t *spare;
    size_t nspare, spare_cap;
};

int shm_sessions_new(shm_sessions_t **out, uint32_t ncells)
{
    if (!ncells || ncells > SHM_SESSIONS_MAX_CELLS)
        return -EINVAL;
    size_t heads =
        (sizeof(head_t) + (size_t)ncells * sizeof(cell_t) + PAGE - 1) & ~(size_t)(PAGE - 1);
    size_t bytes = heads + (size_t)ncells * SHM_SESSIONS_CELL_BYTES;
    void *base = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
                      MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (base == MAP_FAILED)
        return -errno;
    shm_sessions_t *t = xcalloc(1, sizeof(*t));
    t->base = base;
    t->bytes = bytes;
    t->head = base;
    t->cells = (cell_t *)(t->head + 1);
    t->payloads = (char *)base + heads;
    t->ncells = ncells;
    atomic_store(&t->head->ncells, ncells);
    *out = t;
    return 0;
}

void shm_sessions_free(shm_sessions_t *t)
{
    if (!t)
        return;
    munmap(t->base, t->bytes);
    free(t->spare);
    free(t);
}

static void *payload(shm_sessions_t *t, uint32_t i)
{
    return t->payloads + (size_t)i * SHM_SESSIONS_CELL_BYTES;
}

/* Takes cell i when it is free or an expired orphan. */
static bool take(shm_sessions_t *t, uint32_t i, uint64_t now_ms)
{
    cell_t *c = &t->cells[i];
    uint32_t st = atomic_load(&c->state);
    if (st == CELL_ORPHAN && atomic_load(&c->expires_ms) > now_ms)
        return false;
    if (st != CELL_FREE && st != CELL_ORPHAN)
        return false;
    return atomic_compare_exchange_strong(&c->state, &st, CELL_LIVE);
}

static bool find(shm_sessions_t *t, uint64_t now_ms, uint32_t *out)
{
    while (t->nspare) {
        uint32_t i = t->spare[--t->nspare];
        if (take(t, i, now_ms)) {
            *out = i;
            return true;
        }
    }
    uint32_t hw = atomic_load(&t->head->hiwater);
    while (hw < t->ncells) {
        if (atomic_compare_exchange_weak(&t->head->hiwater, &hw, hw + 1) && take(t, hw, now_ms)) {
            *out = hw;
            return true;
        }
    }
    /* every cell was handed out once: look for one given back by another process */
    for (uint32_t i = 0; i < t->ncells; i++) {
        if (take(t, i, now_ms)) {
            *out = i;
            return true;
        }
    }
    return false;
}

void *shm_sessions_alloc(shm_sessions_t *t, uint32_t block, const char *key, size_t len,
                         uint64_t now_ms, uint32_t *cell)
{
    uint32_t i;
    if (!len || len > SHM_SESSIONS_KEY_MAX || !find(t, now_ms, &i))
        return NULL;
    cell_t *c = &t->cells[i];
    c->block = block;
    c->key_len = (uint32_t)len;
    memcpy(c->key, key, len);
    *cell = i;
    return payload(t, i);
}

void shm_sessions_release(shm_sessions_t *t, uint32_t cell)
{
    if (cell >= t->ncells)
        return;
    atomic_store(&t->cells[cell].state, CELL_FREE);
    if (t->nspare == t->spare_cap) {
        t->spare_cap = t->spare_cap ? 2 * t->spare_cap : 64;
        t->spare = xrealloc(t->spare, t->spare_cap * sizeof(*t->spare));
    }
    t->spare[t->nspare++] = cell;
}

uint32_t shm_sessions_orphan(shm_sessions_t *t, uint32_t block, uint64_t expires_ms)
{
    uint32_t n = 0, hw = atomic_load(&t->head->hiwater);
    for (uint32_t i = 0; i < hw; i++) {
        cell_t *c = &t->cells[i];
        uint32_t st = CELL_LIVE;
        if (atomic_load(&c->state) != CELL_LIVE || c->block != block)
            continue;
        atomic_store(&c->expires_ms, expires_ms);
        if (atomic_compare_exchange_strong(&c->state, &st, CELL_ORPHAN))
            n++;
    }
    uint64_t until = atomic_load(&t->head->orphans_until);
    while (n && until < expires_ms &&
           !atomic_compare_exchange_weak(&t->head->orphans_until, &until, expires_ms)) {
    }
    return n;
}

void *shm_sessions_claim(shm_sessions_t *t, const char *key, size_t len, uint64_t now_ms,
                         uint32_t *cell)
{
    if (!len || len > SHM_SESSIONS_KEY_MAX || atomic_load(&t->head->orphans_until) <= now_ms)
        return NULL;
    uint32_t hw = atomic_load(&t->head->hiwater);
    for (uint32_t i = 0; i < hw; i++) {
        cell_t *c = &t->cells[i];
        uint32_t st = CELL_ORPHAN;
        if (atomic_load(&c->state) != CELL_ORPHAN || c->key_len != len ||
            memcmp(c->key, key, len) || atomic_load(&c->expires_ms) <= now_ms ||
            !atomic_compare_exchange_strong(&c->state, &st, CELL_TAKEN))
            continue;
        /* the key is stable once taken; it changed only if the cell was reused meanwhile */
        if (c->key_len == len && !memcmp(c->key, key, len)) {
            *cell = i;
            return payload(t, i);
        }
        atomic_store(&c->state, CELL_ORPHAN);
    }
    return NULL;
}
