/*
 * workdesc: the work descriptors the master sends each worker through its ring, and their one
 * codec. A descriptor names a pool and a list of stream names:
 *   POOL_ADD      the worker now reads these streams as part of pool `pool` (pool created if new)
 *   STREAM_REMOVE the worker stops reading these streams of pool `pool`
 *   POOL_REMOVE   the worker drops pool `pool` and all its streams (list empty)
 *   STREAM_EVENT  an XADD reached these streams of pool `pool` (STREAM_KEYSPACE_EVENTS: the
 *                 master's key events, forwarded so that Redis notifies one subscriber per server)
 *   EVENTS        the master's key-event subscription is up (`pool` 1) or down (0); list empty
 *   FENCE         `pool` is a sequence number (list empty): once nothing is in flight for the
 *                 streams removed before it (reader_fence), the worker stores it in its stats
 *                 slot's fence_done, the master's sign that their reads are over
 * A pool larger than one record is sent as several POOL_ADD records for the same pool.
 * Wire form (host byte order, the ring never leaves the machine):
 *   u32 pool, u32 count, count x { u16 len, len bytes }.
 */
#ifndef STREAMIO_SHM_WORKDESC_H
#define STREAMIO_SHM_WORKDESC_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

enum workdesc_type {
    WORKDESC_POOL_ADD = 1,
    WORKDESC_STREAM_REMOVE = 2,
    WORKDESC_POOL_REMOVE = 3,
    WORKDESC_STREAM_EVENT = 4,
    WORKDESC_EVENTS = 5,
    WORKDESC_FENCE = 6,
};

#define WORKDESC_MAX_NAME 65535

/* Starts a record for `pool` in `out` (reset first). */
void workdesc_begin(buf_t *out, uint32_t pool);
/* Appends one stream name. 0, or -E2BIG if longer than WORKDESC_MAX_NAME. */
int workdesc_add(buf_t *out, const char *name, size_t len);
/* Number of names appended so far. */
uint32_t workdesc_count(const buf_t *out);

typedef void (*workdesc_name_fn)(const char *name, size_t len, void *arg);
/*
 * Validates a whole record first, then calls fn for each name (borrowed from p). A truncated or
 * inconsistent record returns -EPROTO without calling fn at all.
 */
int workdesc_decode(const void *p, size_t len, uint32_t *pool, workdesc_name_fn fn, void *arg);

#endif
