/*
 * shm_region: the one shared mapping between the master and its workers, and the eventfds that
 * wake the workers. The master creates it before forking; every worker inherits the mapping at
 * the same address plus this process-local handle (a malloc'd copy per process after fork).
 *
 * The mapping (anonymous, MAP_SHARED, zero-filled, every block 64-byte aligned) holds a header
 * {magic, version, layout}, one global stats block (written by the master), then per slot one
 * ring (shm/ring.h; the master produces, the slot's worker consumes) and one stats block (written
 * by that worker with relaxed atomics, readable by any process). The stats blocks are raw bytes
 * whose layout belongs to the caller. Each slot also has an eventfd (EFD_NONBLOCK|EFD_CLOEXEC)
 * used only to wake that slot's worker.
 *
 * The region never logs and never decides policy: a full ring is reported to the caller
 * (dispatch), which chooses to retry, drop or restart the worker.
 */
#ifndef STREAMIO_SHM_REGION_H
#define STREAMIO_SHM_REGION_H

#include <stddef.h>
#include <stdint.h>

#include "shm/ring.h"

#define SHM_REGION_MAX_SLOTS 1024u
/* Upper bound for each stats block (slot_stats_bytes and global_bytes). */
#define SHM_REGION_MAX_BLOCK (1u << 30)

typedef struct shm_region shm_region_t;

/*
 * Master, before fork. Maps the region for `nslots` slots (1..SHM_REGION_MAX_SLOTS), each with a
 * ring of `ring_capacity` data bytes (see ring_bytes) and a stats block of `slot_stats_bytes`,
 * plus a global block of `global_bytes` (block sizes 0..SHM_REGION_MAX_BLOCK; 0 means no block),
 * and creates one eventfd per slot. On success *out owns the mapping and the fds.
 * 0, -EINVAL for bad arguments, or the -errno of mmap/eventfd (nothing is leaked).
 */
int shm_region_new(shm_region_t **out, uint32_t nslots, uint32_t ring_capacity,
                   size_t slot_stats_bytes, size_t global_bytes);

/* Unmaps this process's view and closes the fds it still holds; NULL is a no-op. Other
 * processes keep their own mapping. */
void shm_region_free(shm_region_t *r);

uint32_t shm_region_slots(const shm_region_t *r);

/* The slot's ring (borrowed; valid until shm_region_free), or NULL for a bad slot. */
ring_t *shm_region_ring(shm_region_t *r, uint32_t slot);

/* The slot's eventfd (borrowed: never close it yourself), -EINVAL for a bad slot, -EBADF if this
 * process closed it (shm_region_child_keep). */
int shm_region_wake_fd(const shm_region_t *r, uint32_t slot);

/* The slot's stats block (slot_stats_bytes, 64-byte aligned, borrowed), or NULL for a bad slot
 * or a zero-sized block. */
void *shm_region_slot_stats(shm_region_t *r, uint32_t slot);

/* The global stats block (global_bytes, 64-byte aligned, borrowed), or NULL if zero-sized. */
void *shm_region_global(shm_region_t *r);

/*
 * Worker, right after fork: closes every other slot's eventfd in this process so a worker holds
 * only its own. The mapping stays whole (stats blocks are readable by everyone). A bad slot
 * closes them all.
 */
void shm_region_child_keep(shm_region_t *r, uint32_t slot);

/*
 * Master (producer): ring_push into the slot's ring, then, if ring_push reported a sleeping
 * consumer, writes 1 to the slot's eventfd. Same codes as ring_push except that success is
 * always 0: -EAGAIN (keep the record and retry), -E2BIG, plus -EINVAL for a bad slot (nothing
 * pushed). If the eventfd write fails (-EBADF...), that -errno is returned but the record IS in
 * the ring: do not push it again. A saturated eventfd counter (EAGAIN) means a wake-up is
 * already pending and counts as success. No allocation.
 */
int shm_region_send(shm_region_t *r, uint32_t slot, uint16_t type, const void *payload,
                    uint32_t len);

/*
 * Worker (consumer): reads the slot's eventfd until it would block, so level-triggered polling
 * stops reporting it. Call it from the eventfd's poll callback, then ring_wake_done, then pop.
 * The count is only a hint (spurious wake-ups happen); errors other than EINTR end the drain.
 */
void shm_region_wake_drain(shm_region_t *r, uint32_t slot);

#endif
