/*
 * ring: SPSC record ring in shared memory. head/tail are free-running 64-bit byte counters (they
 * never wrap in practice), so "used = tail - head" needs no extra full/empty bit.
 */
#include "shm/ring.h"

#include <assert.h>
#include <errno.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <string.h>

/*
 * Two processes touch these atomics through their own mappings; only lock-free atomics are
 * address-free (C11 7.17.5), a lock-based fallback would live in each process and not exclude
 * anything. uint64_t is long or long long depending on the ABI, so require both.
 */
static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "64-bit atomics must be lock-free");
static_assert(ATOMIC_LONG_LOCK_FREE == 2, "long atomics must be lock-free");
static_assert(ATOMIC_INT_LOCK_FREE == 2, "int atomics must be lock-free");

#define RING_MAGIC 0x474e5253u /* "SRNG" little-endian */
#define RING_VERSION 1u
#define CACHE_LINE 64

struct ring {
    /* Written once by ring_format, read-only afterwards. */
    uint32_t magic;
    uint32_t version;
    uint32_t capacity;
    uint32_t mask;
    /* Producer's line: the consumer only reads `tail`. */
    alignas(CACHE_LINE) _Atomic uint64_t tail;
    uint64_t head_seen; /* producer's last view of head: saves a cross-line read per push */
    /* Consumer's line: the producer only reads `head`. */
    alignas(CACHE_LINE) _Atomic uint64_t head;
    uint64_t tail_seen; /* consumer's last view of tail */
    /*
     * Own line: the producer reads it on every push, the consumer writes it only around sleeps,
     * so it stays shared in both caches instead of bouncing with head.
     */
    alignas(CACHE_LINE) _Atomic uint32_t sleeping;
    alignas(CACHE_LINE) unsigned char data[];
};

struct record_header {
    uint32_t len;
    uint16_t type;
    uint16_t flags;
};

static_assert(sizeof(struct record_header) == RING_RECORD_HEADER, "record header is 8 bytes");
static_assert(sizeof(struct ring) % CACHE_LINE == 0, "data starts on a cache line");

static bool capacity_ok(uint32_t capacity)
{
    return capacity >= RING_MIN_CAPACITY && capacity <= RING_MAX_CAPACITY &&
           (capacity & (capacity - 1)) == 0;
}

/* Record size for a payload of len bytes; len is already bounded by ring_max_payload. */
static uint32_t record_size(uint32_t len)
{
    return RING_RECORD_HEADER + ((len + 7u) & ~7u);
}

size_t ring_bytes(uint32_t capacity)
{
    if (!capacity_ok(capacity))
        return 0;
    return sizeof(struct ring) + capacity;
}

int ring_format(void *mem, uint32_t capacity)
{
    if (!mem || (uintptr_t)mem % CACHE_LINE != 0 || !capacity_ok(capacity))
        return -EINVAL;
    ring_t *r = mem;
    r->magic = RING_MAGIC;
    r->version = RING_VERSION;
    r->capacity = capacity;
    r->mask = capacity - 1;
    atomic_init(&r->tail, 0);
    r->head_seen = 0;
    atomic_init(&r->head, 0);
    r->tail_seen = 0;
    atomic_init(&r->sleeping, 0);
    return 0;
}

ring_t *ring_attach(void *mem)
{
    if (!mem || (uintptr_t)mem % CACHE_LINE != 0)
        return NULL;
    ring_t *r = mem;
    if (r->magic != RING_MAGIC || r->version != RING_VERSION || !capacity_ok(r->capacity) ||
        r->mask != r->capacity - 1)
        return NULL;
    return r;
}

uint32_t ring_capacity(const ring_t *r)
{
    return r->capacity;
}

uint32_t ring_max_payload(const ring_t *r)
{
    return r->capacity / 2 - RING_RECORD_HEADER;
}

static void copy_in(ring_t *r, uint64_t pos, const void *src, uint32_t n)
{
    if (n == 0)
        return;
    uint32_t off = (uint32_t)pos & r->mask;
    uint32_t first = r->capacity - off < n ? r->capacity - off : n;
    memcpy(r->data + off, src, first);
    if (first < n)
        memcpy(r->data, (const unsigned char *)src + first, n - first);
}

static void copy_out(const ring_t *r, uint64_t pos, void *dst, uint32_t n)
{
    if (n == 0)
        return;
    uint32_t off = (uint32_t)pos & r->mask;
    uint32_t first = r->capacity - off < n ? r->capacity - off : n;
    memcpy(dst, r->data + off, first);
    if (first < n)
        memcpy((unsigned char *)dst + first, r->data, n - first);
}

int ring_push(ring_t *r, uint16_t type, const void *payload, uint32_t len)
{
    if (len > ring_max_payload(r))
        return -E2BIG;
    uint32_t need = record_size(len);
    uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
    if (r->capacity - (tail - r->head_seen) < need) {
        /* Acquire pairs with the consumer's release of head: its reads of the old bytes are
         * done before we overwrite them. */
        r->head_seen = atomic_load_explicit(&r->head, memory_order_acquire);
        if (r->capacity - (tail - r->head_seen) < need)
            return -EAGAIN;
    }
    struct record_header h = {.len = len, .type = type, .flags = 0};
    /* tail is a multiple of 8 and capacity >= 4096, so the 8-byte header never wraps. */
    memcpy(r->data + ((uint32_t)tail & r->mask), &h, sizeof(h));
    copy_in(r, tail + RING_RECORD_HEADER, payload, len);
    atomic_store_explicit(&r->tail, tail + need, memory_order_release);
    /*
     * Dekker pairing with ring_prepare_sleep: either our fence comes first and the consumer's
     * re-check sees the new tail, or its fence comes first and we see sleeping == 1. The
     * exchange makes exactly one push per sleep report the wake-up.
     */
    atomic_thread_fence(memory_order_seq_cst);
    if (atomic_load_explicit(&r->sleeping, memory_order_relaxed) &&
        atomic_exchange_explicit(&r->sleeping, 0, memory_order_relaxed))
        return 1;
    return 0;
}

int ring_pop(ring_t *r, uint16_t *type, void *buf, uint32_t cap, uint32_t *len)
{
    uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    if (head == r->tail_seen) {
        /* Acquire pairs with the producer's release of tail: the record bytes are visible. */
        r->tail_seen = atomic_load_explicit(&r->tail, memory_order_acquire);
        if (head == r->tail_seen)
            return -EAGAIN;
    }
    uint64_t used = r->tail_seen - head;
    struct record_header h;
    memcpy(&h, r->data + ((uint32_t)head & r->mask), sizeof(h));
    if (used > r->capacity || h.len > ring_max_payload(r) || record_size(h.len) > used)
        return -EPROTO;
    if (h.len > cap) {
        *len = h.len;
        return -EMSGSIZE;
    }
    copy_out(r, head + RING_RECORD_HEADER, buf, h.len);
    *type = h.type;
    *len = h.len;
    /* Release: our reads of the record complete before the producer may reuse the space. */
    atomic_store_explicit(&r->head, head + record_size(h.len), memory_order_release);
    return 0;
}

bool ring_empty(const ring_t *r)
{
    uint64_t head = atomic_load_explicit(&r->head, memory_order_acquire);
    return atomic_load_explicit(&r->tail, memory_order_acquire) == head;
}

bool ring_prepare_sleep(ring_t *r)
{
    atomic_store_explicit(&r->sleeping, 1, memory_order_relaxed);
    /* Pairs with the fence in ring_push, see there. */
    atomic_thread_fence(memory_order_seq_cst);
    uint64_t tail = atomic_load_explicit(&r->tail, memory_order_acquire);
    if (tail == atomic_load_explicit(&r->head, memory_order_relaxed))
        return true;
    atomic_store_explicit(&r->sleeping, 0, memory_order_relaxed);
    return false;
}

void ring_wake_done(ring_t *r)
{
    atomic_store_explicit(&r->sleeping, 0, memory_order_relaxed);
}

void ring_reset(ring_t *r)
{
    uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
    r->head_seen = tail;
    r->tail_seen = tail;
    atomic_store_explicit(&r->head, tail, memory_order_release);
    atomic_store_explicit(&r->sleeping, 0, memory_order_relaxed);
}
