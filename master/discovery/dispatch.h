/*
 * dispatch: the work descriptors (shm/workdesc) the master sends each worker number through the
 * ring of the process serving it, in order per worker. A worker number is attached to the block
 * its serving process runs in; while its ring is full, its records wait in an outbox that a 5 ms
 * timer retries. A worker with no serving process gets nothing: whoever attaches it next sends it
 * all of its pools anew, so its outbox is dropped on detach and on attach. Never blocks.
 */
#ifndef STREAMIO_MASTER_DISCOVERY_DISPATCH_H
#define STREAMIO_MASTER_DISCOVERY_DISPATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "shm/region.h"

typedef struct dispatch dispatch_t;

/* For worker numbers 0..capacity-1. Borrows loop and region. */
dispatch_t *dispatch_new(uv_loop_t *loop, shm_region_t *region, uint32_t capacity);
/* Drops what is queued and frees once the timer is closed; NULL is a no-op. */
void dispatch_close(dispatch_t *d);

/* Records for `worker` go to `block` from now on (its outbox is dropped). */
void dispatch_attach(dispatch_t *d, uint32_t worker, uint32_t block);
/* `worker` has no serving process: its outbox is dropped, and records for it until the next
 * attach too. */
void dispatch_detach(dispatch_t *d, uint32_t worker);
/* The block serving `worker`, or -1. */
int32_t dispatch_block(const dispatch_t *d, uint32_t worker);
/*
 * Streams that keep(arg, name, len) refuses are not sent in WORKDESC_POOL_ADD records (another
 * server reads them: master/discovery/ownership); removals always go. NULL: every stream.
 */
void dispatch_set_filter(dispatch_t *d, bool (*keep)(void *arg, const char *name, size_t len),
                         void *arg);
/* True when nothing waits in an outbox, every attached worker took all its records and
 * acknowledged the last fence sent to it since it was attached. */
bool dispatch_quiet(dispatch_t *d);
/* Sends WORKDESC_FENCE `seq` (higher than any before) to every attached worker, behind what
 * waits already: dispatch_quiet waits for their word that nothing is in flight for the streams
 * removed before it. */
void dispatch_fence(dispatch_t *d, uint32_t seq);
/* Sends one stream of one pool (type: WORKDESC_POOL_ADD, WORKDESC_STREAM_REMOVE or
 * WORKDESC_STREAM_EVENT) to `worker`, now or, behind what waits already, once its ring has room;
 * name NULL: a record with no stream (WORKDESC_EVENTS). */
void dispatch_stream(dispatch_t *d, uint16_t type, uint32_t pool, uint32_t worker, const char *name,
                     size_t len);

#endif
