/*
 * room_sync: keeps every worker of this server told of the rooms the others hold, so that the
 * sharded adapter's relay holder (see relay_role.h), whichever worker it is, subscribes to the
 * union of them (see adapter_relay_room). Each worker sends, in order with its entries over the
 * siblings channel (fanout_notice):
 *  - ROOM_SYNC_ADD / ROOM_SYNC_DEL when a room of its own is created or deleted;
 *  - at start, ROOM_SYNC_HELLO ("forget what you knew of my slot, and tell me your rooms"), then
 *    its own rooms and ROOM_SYNC_DONE;
 *  - on a sibling's HELLO, or an ASK naming it, its rooms again, then DONE.
 * A worker knows the whole union once every live sibling sent DONE since it started (or since
 * that sibling started): only then may its relay subscription count as up. A sibling whose slot
 * is no longer live is forgotten at the next tick.
 *
 * Notices can be lost (a sibling that does not read its queue past SIBLINGS_QUEUE_MAX), and a
 * lost HELLO or list would keep a new holder from ever counting as up. So each notice carries
 * its sender's sequence number (from a per-process base, so a restarted sibling's never continue
 * its predecessor's; a DONE carries, as 8 bytes, the number its list began at, so a list with a
 * notice lost inside is not taken as whole): a gap makes the sender's list unknown and asks for
 * it again (ASK, with the slot asked as 4 bytes), and a live sibling whose list has not come within
 * ROOM_SYNC_RETRY_MS is asked again at the tick, every ROOM_SYNC_RETRY_MS until it comes. At a
 * gap the sender's rooms are put in doubt (io.doubt): each named again (its list, a later ADD)
 * leaves the doubt, and once a whole list came those still in doubt are let go (a lost DEL: one
 * subscription too many until then, never a missing one). A lost notice is seen at its sender's
 * next one: a worker that sent
 * none for ROOM_SYNC_RETRY_MS sends a BEAT (its next number, nothing else), so a lost last one
 * is seen within two periods.
 *
 * No I/O here: what it sends and applies goes through room_sync_io_t (production: fanout_notice
 * and adapter_relay_room/forget; tests: recorders).
 */
#ifndef STREAMIO_WORKER_CLUSTER_ROOM_SYNC_H
#define STREAMIO_WORKER_CLUSTER_ROOM_SYNC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
    ROOM_SYNC_ADD = '+',
    ROOM_SYNC_DEL = '-',
    ROOM_SYNC_HELLO = '!',
    ROOM_SYNC_DONE = '=',
    ROOM_SYNC_ASK = '?',
    ROOM_SYNC_BEAT = '.'
};

/* How long a sibling's list may take before it is asked for again. */
#define ROOM_SYNC_RETRY_MS 1000

typedef struct room_sync room_sync_t;

typedef struct room_sync_io {
    /* Hands a notice, numbered `seq`, to every live sibling (room empty for HELLO and DONE). */
    void (*send)(void *arg, char kind, uint64_t seq, const char *room, size_t len);
    /* Calls fn for each room of this worker. */
    void (*own_rooms)(void *arg, void (*fn)(const char *room, size_t len, void *fnarg),
                      void *fnarg);
    /* The worker in slot holds the room (on) or no longer does; slot holds nothing any more. */
    void (*room)(void *arg, uint32_t slot, const char *room, size_t len, bool on);
    void (*forget)(void *arg, uint32_t slot);
    /* A notice of slot's was lost: its rooms are in doubt until named again (sweep false); its
     * whole list came since: it holds none of those still in doubt (sweep true). */
    void (*doubt)(void *arg, uint32_t slot, bool sweep);
    /* Whether a worker runs in slot now. */
    bool (*live)(void *arg, uint32_t slot);
    void *arg;
} room_sync_io_t;

/* Slot `me` of nslots, numbering its notices from first_seq (> 0; distinct per process, e.g.
 * from the pid); copies *io. Never NULL (out of memory aborts, see xalloc.h). */
room_sync_t *room_sync_new(uint32_t nslots, uint32_t me, uint64_t first_seq,
                           const room_sync_io_t *io);
/* NULL is a no-op. */
void room_sync_free(room_sync_t *s);
/* Announces this worker: HELLO, its rooms, DONE. */
void room_sync_start(room_sync_t *s);
/* One of this worker's rooms was created (on) or deleted. */
void room_sync_own(room_sync_t *s, const char *room, size_t len, bool on);
/* Notice number `seq` from the sibling in slot `from` (room borrowed), at now_ms (a monotonic
 * clock). Unknown kinds are ignored. */
void room_sync_notice(room_sync_t *s, uint32_t from, char kind, uint64_t seq, const char *room,
                      size_t len, uint64_t now_ms);
/* Forgets the siblings that are gone, asks again for lists overdue and beats (every tick). */
void room_sync_tick(room_sync_t *s, uint64_t now_ms);
/* Every live sibling's rooms are known. */
bool room_sync_complete(const room_sync_t *s);

#endif
