/*
 * siblings: passes stream entries as packets (the room, the entry id, and the Engine.IO text
 * built for it: see fanout_packet) between the workers of this server, so an entry one worker
 * read reaches the sockets of the others without Redis. Each worker receives on its block's
 * siblings channel (see local_sock: inherited socketpairs, no name); the frames of one loop
 * iteration go to each
 * live sibling (a slot whose pid is set in the shared region) as one datagram, flushed after the
 * iteration's I/O callbacks (so before the XACKs queued meanwhile reach Redis) or as soon as the
 * batch is full. One socket per sender and a FIFO queue per receiver keep the per-room order.
 * Sending never blocks: a full receiver queue (EAGAIN) keeps the datagram, and the ones after it,
 * in a bounded in-order queue per sibling, resent from a timer; a sibling that is gone (its pid
 * cleared in the region) is skipped and its queue dropped (its clients are reconnecting).
 * Datagrams are accepted only from processes of the same user whose pid is a sibling's.
 *
 * Datagram: "sib2", the sender's slot (u32), then records: room length (its top bit marks a
 * relayed adapter message), id length, text length (u32 each), then room, id and text bytes;
 * integers in host order (both ends are the same binary on one host). A record too big for one
 * datagram (net.core.wmem_max) is written, as such a datagram, to a memfd passed with SCM_RIGHTS in
 * an 8-byte datagram "sibG" + slot, in order.
 */
#ifndef STREAMIO_WORKER_FANOUT_SIBLINGS_H
#define STREAMIO_WORKER_FANOUT_SIBLINGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "common/buf.h"
#include "shm/local_sock.h"
#include "shm/region.h"

typedef struct siblings siblings_t;

/* A batch is sent once it holds this much (records are never split across datagrams). */
#define SIBLINGS_BATCH_BYTES (64u * 1024)
/* Largest datagram asked for (the kernel's net.core.wmem_max may allow less: see siblings_add). */
#define SIBLINGS_MAX_DGRAM (4u * 1024 * 1024)
/* Largest text handed over (beyond one datagram, through a memfd). */
#define SIBLINGS_MAX_FRAME (512u * 1024 * 1024)
/* siblings_backlogged turns true when more than this waits in the queues of siblings. */
#define SIBLINGS_BACKLOG_BYTES (8u * 1024 * 1024)
/* A sibling whose queue would grow past this loses the datagram (logged once per episode). */
#define SIBLINGS_QUEUE_MAX (64u * 1024 * 1024)

#define SIBLINGS_HEADER_LEN 8

/* One entry: the room, its id (may be empty) and its packet text; all borrowed. A relayed
 * record is instead a redis-adapter message that this server's one broadcast subscriber received
 * from another server: room is its channel, text the message as Redis delivered it, id empty;
 * or, with a one-byte id, a room notice of the sharded adapter's relay (see fanout_notice). */
typedef struct siblings_entry {
    const char *room;
    size_t room_len;
    const char *id;
    size_t id_len;
    const char *text;
    size_t text_len;
    bool relayed;
    uint32_t from; /* received: the sender's slot (ignored when sending) */
} siblings_entry_t;

/* One received entry (borrowed for the call). */
typedef void (*siblings_cb)(const siblings_entry_t *e, void *ud);

/*
 * Starts receiving on `slot`'s siblings channel of `socks` on `loop`. Borrows loop, region and
 * socks. 0, -EINVAL, -EBADF (this process does not hold that channel), or another
 * negative errno.
 */
int siblings_new(siblings_t **out, uv_loop_t *loop, shm_region_t *region, const local_sock_t *socks,
                 uint32_t slot, siblings_cb cb, void *ud);
/*
 * Adds the entry (borrowed, copied) to the batch for every live sibling. 1 (queued), 0 (no live
 * sibling), -EINVAL (empty room or text), -E2BIG (text over SIBLINGS_MAX_FRAME), or the errno of
 * memfd_create/writev for an entry beyond one datagram.
 */
int siblings_add(siblings_t *s, const siblings_entry_t *e);
/* True while the siblings' queues hold more than SIBLINGS_BACKLOG_BYTES. */
bool siblings_backlogged(const siblings_t *s);
/* Sends what is batched (one attempt), stops receiving and closes; memory is released from the
 * close callbacks. NULL: no-op. */
void siblings_free(siblings_t *s);

/* ---- the datagram codec, exposed for tests ---- */

/* Starts a datagram in out (reset first). */
void siblings_encode_header(buf_t *out, uint32_t slot);
/* Appends one record. 0, or -EINVAL (empty room or text). */
int siblings_encode_record(buf_t *out, const siblings_entry_t *e);
/* One decoded record, borrowed from the datagram. */
typedef void (*siblings_record_fn)(const siblings_entry_t *e, void *arg);
/*
 * Checks the whole datagram first, then calls fn once per record in order. 0, or -EPROTO (bad
 * magic, truncated or empty record, trailing bytes, no record at all) without calling fn.
 * *slot receives the sender's slot when not NULL.
 */
int siblings_decode(const char *p, size_t len, uint32_t *slot, siblings_record_fn fn, void *arg);

#endif
