/*
 * shm_region: lays out and maps the shared region, formats the rings and owns the wake eventfds.
 * The shared header is informational (debuggers, core dumps, a future attach by another
 * binary); processes navigate through the handle's precomputed pointers, valid in every child
 * because the mapping is inherited at the same address.
 */
#include "shm/region.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/xalloc.h"

#define REGION_MAGIC 0x47455253u /* "SREG" little-endian */
#define REGION_VERSION 1u
#define BLOCK_ALIGN 64u

/* At offset 0 of the mapping. */
struct region_header {
    uint32_t magic;
    uint32_t version;
    uint32_t nslots;
    uint32_t ring_capacity;
    uint64_t map_bytes;
    uint64_t global_off;
    uint64_t global_bytes;
    uint64_t ring_off;
    uint64_t ring_stride;
    uint64_t stats_off;
    uint64_t stats_stride;
    uint64_t slot_stats_bytes;
};

struct slot {
    ring_t *ring;
    void *stats;
    int wake_fd;
};

struct shm_region {
    void *base;
    size_t map_bytes;
    void *global;
    uint32_t nslots;
    struct slot slots[];
};

struct layout {
    size_t global_off, ring_off, ring_stride, stats_off, stats_stride, map_bytes;
};

static size_t round_up(size_t n, size_t align)
{
    return (n + align - 1) & ~(align - 1);
}

/* Advances *off by n * stride; false on overflow. */
static bool reserve(size_t *off, size_t n, size_t stride)
{
    size_t total;
    return !__builtin_mul_overflow(n, stride, &total) && !__builtin_add_overflow(*off, total, off);
}

static int plan(struct layout *l, uint32_t nslots, uint32_t ring_capacity, size_t slot_stats_bytes,
                size_t global_bytes)
{
    l->ring_stride = ring_bytes(ring_capacity);
    if (nslots == 0 || nslots > SHM_REGION_MAX_SLOTS || l->ring_stride == 0 ||
        slot_stats_bytes > SHM_REGION_MAX_BLOCK || global_bytes > SHM_REGION_MAX_BLOCK)
        return -EINVAL;
    l->stats_stride = round_up(slot_stats_bytes, BLOCK_ALIGN);
    size_t off = round_up(sizeof(struct region_header), BLOCK_ALIGN);
    l->global_off = off;
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    /* a layout beyond the address space is as bad an argument as the ones above */
    if (!reserve(&off, 1, round_up(global_bytes, BLOCK_ALIGN)))
        return -EINVAL;
    l->ring_off = off;
    if (!reserve(&off, nslots, l->ring_stride))
        return -EINVAL;
    l->stats_off = off;
    if (!reserve(&off, nslots, l->stats_stride) || off > SIZE_MAX - page)
        return -EINVAL;
    l->map_bytes = round_up(off, page);
    return 0;
}

static void write_header(void *base, const struct layout *l, uint32_t nslots,
                         uint32_t ring_capacity, size_t slot_stats_bytes, size_t global_bytes)
{
    struct region_header *h = base;
    h->magic = REGION_MAGIC;
    h->version = REGION_VERSION;
    h->nslots = nslots;
    h->ring_capacity = ring_capacity;
    h->map_bytes = l->map_bytes;
    h->global_off = l->global_off;
    h->global_bytes = global_bytes;
    h->ring_off = l->ring_off;
    h->ring_stride = l->ring_stride;
    h->stats_off = l->stats_off;
    h->stats_stride = l->stats_stride;
    h->slot_stats_bytes = slot_stats_bytes;
}

int shm_region_new(shm_region_t **out, uint32_t nslots, uint32_t ring_capacity,
                   size_t slot_stats_bytes, size_t global_bytes)
{
    struct layout l;
    int rc = plan(&l, nslots, ring_capacity, slot_stats_bytes, global_bytes);
    if (rc < 0)
        return rc;
    shm_region_t *r = xmalloc(sizeof(*r) + (size_t)nslots * sizeof(r->slots[0]));
    r->nslots = nslots;
    r->map_bytes = l.map_bytes;
    for (uint32_t i = 0; i < nslots; i++)
        r->slots[i].wake_fd = -1;
    r->base = mmap(NULL, l.map_bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (r->base == MAP_FAILED) {
        rc = -errno;
        free(r);
        return rc;
    }
    unsigned char *base = r->base;
    write_header(base, &l, nslots, ring_capacity, slot_stats_bytes, global_bytes);
    r->global = global_bytes ? base + l.global_off : NULL;
    for (uint32_t i = 0; i < nslots; i++) {
        struct slot *s = &r->slots[i];
        void *mem = base + l.ring_off + i * l.ring_stride;
        /* Cannot fail: the capacity was validated by plan() and mem is 64-byte aligned. */
        ring_format(mem, ring_capacity);
        s->ring = ring_attach(mem);
        s->stats = slot_stats_bytes ? base + l.stats_off + i * l.stats_stride : NULL;
        s->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (s->wake_fd < 0) {
            rc = -errno;
            shm_region_free(r);
            return rc;
        }
    }
    *out = r;
    return 0;
}

void shm_region_free(shm_region_t *r)
{
    if (!r)
        return;
    for (uint32_t i = 0; i < r->nslots; i++) {
        if (r->slots[i].wake_fd >= 0)
            close(r->slots[i].wake_fd);
    }
    munmap(r->base, r->map_bytes);
    free(r);
}

uint32_t shm_region_slots(const shm_region_t *r)
{
    return r->nslots;
}

ring_t *shm_region_ring(shm_region_t *r, uint32_t slot)
{
    return slot < r->nslots ? r->slots[slot].ring : NULL;
}

int shm_region_wake_fd(const shm_region_t *r, uint32_t slot)
{
    if (slot >= r->nslots)
        return -EINVAL;
    return r->slots[slot].wake_fd >= 0 ? r->slots[slot].wake_fd : -EBADF;
}

void *shm_region_slot_stats(shm_region_t *r, uint32_t slot)
{
    return slot < r->nslots ? r->slots[slot].stats : NULL;
}

void *shm_region_global(shm_region_t *r)
{
    return r->global;
}

void shm_region_child_keep(shm_region_t *r, uint32_t slot)
{
    for (uint32_t i = 0; i < r->nslots; i++) {
        if (i != slot && r->slots[i].wake_fd >= 0) {
            close(r->slots[i].wake_fd);
            r->slots[i].wake_fd = -1;
        }
    }
}

int shm_region_send(shm_region_t *r, uint32_t slot, uint16_t type, const void *payload,
                    uint32_t len)
{
    if (slot >= r->nslots)
        return -EINVAL;
    int rc = ring_push(r->slots[slot].ring, type, payload, len);
    if (rc <= 0)
        return rc;
    int fd = r->slots[slot].wake_fd;
    if (fd < 0)
        return -EBADF;
    uint64_t one = 1;
    while (write(fd, &one, sizeof(one)) < 0) {
        /* EAGAIN: the counter is saturated, so the consumer is already readable. */
        if (errno == EAGAIN)
            return 0;
        if (errno != EINTR)
            return -errno;
    }
    return 0;
}

void shm_region_wake_drain(shm_region_t *r, uint32_t slot)
{
    if (slot >= r->nslots || r->slots[slot].wake_fd < 0)
        return;
    uint64_t count;
    for (;;) {
        ssize_t n = read(r->slots[slot].wake_fd, &count, sizeof(count));
        if (n < 0 && errno == EINTR)
            continue;
        if (n != (ssize_t)sizeof(count))
            return;
    }
}
