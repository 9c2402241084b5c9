/*
 * ring: a single-producer/single-consumer byte ring that lives inside shared memory (an
 * anonymous MAP_SHARED mapping inherited through fork). The master is the producer, one worker
 * the consumer. The ring owns its header and data area only: it stores no pointers (positions
 * are 64-bit byte counters masked by the capacity), never allocates, never logs and makes no
 * system calls; the wake-up itself (eventfd) belongs to the caller, see shm/region.h.
 *
 * Shared format (version 1): a header of four 64-byte lines -- {u32 magic, u32 version,
 * u32 capacity, ...}, the producer's line (tail), the consumer's line (head) and the `sleeping`
 * line -- followed by `capacity` data bytes. A record is {u32 len, u16 type, u16 flags = 0}
 * followed by `len` payload bytes, padded to 8 bytes; a payload may wrap around the end of the
 * data area, a record header never does (positions and capacity are multiples of 8).
 *
 * Thread/process rules: ring_push and ring_reset are producer-only; ring_pop, ring_prepare_sleep
 * and ring_wake_done are consumer-only; ring_empty may be called by either side.
 */
#ifndef STREAMIO_SHM_RING_H
#define STREAMIO_SHM_RING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RING_MIN_CAPACITY 4096u
#define RING_MAX_CAPACITY 0x80000000u
/* Bytes of record header before each payload. */
#define RING_RECORD_HEADER 8u

typedef struct ring ring_t;

/*
 * Bytes to reserve (64-byte aligned) for a ring of `capacity` data bytes, header included.
 * capacity must be a power of two in [RING_MIN_CAPACITY, RING_MAX_CAPACITY]; returns 0 otherwise.
 */
size_t ring_bytes(uint32_t capacity);

/*
 * Writes a fresh header into `mem` (ring_bytes(capacity) bytes, 64-byte aligned) and empties the
 * ring. Call it before any other process can see the memory (i.e. before fork).
 * 0, or -EINVAL for a bad capacity, a NULL or misaligned `mem`.
 */
int ring_format(void *mem, uint32_t capacity);

/*
 * Returns `mem` viewed as a ring if it holds a header of this format version with a valid
 * capacity, else NULL. Borrows `mem`: the ring is valid while the mapping is.
 */
ring_t *ring_attach(void *mem);

/* Capacity in data bytes, as given to ring_format. */
uint32_t ring_capacity(const ring_t *r);

/*
 * Largest payload ring_push accepts: a record (header + padded payload) may use at most half of
 * the capacity, so a lone record always fits into an empty ring.
 */
uint32_t ring_max_payload(const ring_t *r);

/*
 * Producer only. Appends one record: copies `len` bytes from `payload` (borrowed; may be NULL
 * when len is 0) and publishes it with a release store.
 * Returns 0 when published, or 1 when published AND the consumer had announced it was going to
 * sleep (ring_prepare_sleep): the caller must then wake it (write its eventfd). Only one push
 * per sleep returns 1, so one eventfd write per sleep is enough.
 * -EAGAIN: not enough free space now; nothing was written, the caller keeps the record and
 * retries later. -E2BIG: len > ring_max_payload(), the record can never fit.
 */
int ring_push(ring_t *r, uint16_t type, const void *payload, uint32_t len);

/*
 * Consumer only. Takes the oldest record: its type into *type, its payload into buf (`cap`
 * bytes, borrowed; may be NULL when cap is 0), its payload length into *len, then frees its
 * space for the producer. 0 on success.
 * -EAGAIN: the ring is empty. -EMSGSIZE: the payload is larger than `cap`; *len is set to the
 * size needed and the record stays in place. -EPROTO: the record header is inconsistent with
 * the ring (shared memory corrupted); nothing is consumed.
 */
int ring_pop(ring_t *r, uint16_t *type, void *buf, uint32_t cap, uint32_t *len);

/* True if no record is published. Either side; the answer may be stale right away. */
bool ring_empty(const ring_t *r);

/*
 * Consumer only, the sleep half of the no-lost-wake-up protocol: sets `sleeping`, issues a full
 * fence, then re-checks the ring. Returns true if the ring is still empty: the consumer may now
 * block on its eventfd, and the producer's next push returns 1. Returns false if a record
 * arrived: the consumer must not block; `sleeping` is already cleared again (calling
 * ring_wake_done as well is harmless) and it should keep popping. A consumer that stops popping
 * with records left (batch budget) must reschedule itself instead of calling this.
 */
bool ring_prepare_sleep(ring_t *r);

/* Consumer only: clears `sleeping` once awake (after draining the eventfd). Idempotent. */
void ring_wake_done(ring_t *r);

/*
 * Producer only, and only while no consumer is running (it died and has been reaped): drops
 * every record and clears `sleeping`, so a respawned consumer starts on an empty ring.
 */
void ring_reset(ring_t *r);

#endif
