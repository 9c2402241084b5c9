/*
 * fanout: delivers broadcasts to the sockets of this worker, and the stream entries it reads to
 * the other workers of this server (siblings). A broadcast is one fanout_packet, built once; the
 * walk over the sockets its target names (sio_each) hands each recipient a reference to the
 * packet's message — no allocation, copy or syscall per recipient (a polling recipient keeps a
 * reference in its queue; writes are batched per connection and loop turn by the transport).
 * Observers (connection state recovery) may hold an entry back per recipient. Counts deliveries
 * and sibling traffic in the worker's stats; logs only sampled sibling failures.
 *
 * An entry is handed out twice when its reader dies (SIGKILL) or loses its connection between
 * the delivery and the XACK: the pending list is read again, by design. With a ledger
 * (fanout_keep_ledger, shm/ledger.h) every worker notes each entry it queued to any of its own
 * sockets (read here or received from a sibling), under its pid, right after queueing it. An
 * entry read
 * again (pk->reread: a pending-list read or a claim) is not delivered here again when this very
 * process noted it, and not handed to the siblings again when the current process of every live
 * sibling noted it. Why that loses nothing: each skip rests on the receiver's own record that it
 * queued exactly this entry (stream, id, packet bytes) to its sockets, written after the fact
 * (a pid that a later process of the same block reuses names one that started after the entry
 * first went out: its clients joined after, and were never owed it).
 * No order of ids and no queue or liveness of the dead sender is assumed, so claims, ownership
 * moves, reloads (two processes of one worker number), re-created streams, datagrams dropped or
 * still queued cannot turn into a skip: a record that is missing, replaced or torn by a kill
 * only costs a duplicate.
 */
#ifndef STREAMIO_WORKER_FANOUT_FANOUT_H
#define STREAMIO_WORKER_FANOUT_FANOUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "shm/ledger.h"
#include "shm/local_sock.h"
#include "shm/region.h"
#include "shm/stats.h"
#include "worker/fanout/fanout_packet.h"
#include "worker/sio/sio.h"

/* volatile broadcasts skip a socket with more than this waiting for it */
#define FANOUT_BUSY_BYTES 16384

typedef struct fanout fanout_t;

typedef struct fanout_observer {
    void *arg;
    /*
     * An entry (pk->has_id) reaching s through its membership m of the target's one room: true
     * when it goes out now. Must not allocate, join, leave or close.
     */
    bool (*gate)(void *arg, sio_socket_t *s, rooms_mark_t *m, const fanout_packet_t *pk);
} fanout_observer_t;

/*
 * Creates the fanout of this worker over sio's sockets, and its sibling socket (see siblings.h;
 * loop, region borrowed). 0, or siblings_new's error.
 */
int fanout_new(fanout_t **out, uv_loop_t *loop, sio_t *sio, shm_region_t *region,
               const local_sock_t *socks, uint32_t slot, stats_worker_t *stats);
/* Notes delivered entries in `ledger` (borrowed) as process `pid` (the one the region names for
 * this slot), and consults it for entries read again (see above). Without it every entry goes. */
void fanout_keep_ledger(fanout_t *f, shm_ledger_t *ledger, int32_t pid);
/* Adds an observer (copied; at most 2). */
void fanout_observe(fanout_t *f, const fanout_observer_t *o);
/*
 * Queues pk to every socket t names, once each; skip_busy (volatile) skips a socket with more
 * than FANOUT_BUSY_BYTES waiting. Returns how many sockets it was queued to.
 */
size_t fanout_deliver(fanout_t *f, const sio_target_t *t, bool skip_busy,
                      const fanout_packet_t *pk);
/* An entry read by this worker: delivered to its room here and handed to the siblings, unless
 * it was read again and the ledger proves that done already (see above). */
void fanout_publish(fanout_t *f, const fanout_packet_t *pk);
/*
 * The redis-adapter messages this server's one broadcast subscriber receives from other servers
 * (see adapter_set_relay): fanout_relay hands one (channel, message as Redis delivered it; both
 * borrowed) to every live sibling, and each sibling's fanout calls the relayed callback set with
 * fanout_on_relayed (borrowed for the call). 1 (queued), 0 (no live sibling), or siblings_add's
 * error.
 */
typedef void (*fanout_relayed_fn)(const char *chan, size_t chan_len, const uint8_t *msg,
                                  size_t msg_len, void *arg);
int fanout_relay(fanout_t *f, const char *chan, size_t chan_len, const uint8_t *msg,
                 size_t msg_len);
void fanout_on_relayed(fanout_t *f, fanout_relayed_fn fn, void *arg);
/*
 * Room notices between the workers of this server (the sharded adapter's relay holder keeps the
 * union of their rooms, see room_union.h): fanout_notice hands (kind, seq, room; borrowed) to
 * every live sibling in order with the entries, and each sibling's fanout calls the callback set
 * with fanout_on_notice with the sender's slot. The kinds and numbers are the caller's (one byte;
 * seq 0 when a notice came without one); an empty room arrives as "#". 1 (queued), 0 (no live
 * sibling), or siblings_add's error.
 */
typedef void (*fanout_notice_fn)(uint32_t from, char kind, uint64_t seq, const char *room,
                                 size_t len, void *arg);
int fanout_notice(fanout_t *f, char kind, uint64_t seq, const char *room, size_t len);
void fanout_on_notice(fanout_t *f, fanout_notice_fn fn, void *arg);
/* The sockets it delivers to (borrowed). */
sio_t *fanout_sockets(const fanout_t *f);
/* The siblings' queues are backlogged (the reader's gate: see siblings_backlogged). */
bool fanout_backlogged(const fanout_t *f);
/* Closes the sibling socket (memory released from its close callbacks). NULL: no-op. */
void fanout_free(fanout_t *f);

#endif
