/*
 * room_sync: keeps every worker of this server told of the rooms the others hold, so that the
 * sharded adapter's relay holder (see relay_role.h), whichever worker it is, subscribes to the
 * union of them (see adapter_relay_room). Each worker sends, in order with its entries over the
 * siblings channel (fanout_notice):
 *  - ROOM_SYNC_ADD / ROOM_SYNC_DEL when a room of its own is created or deleted;
 *  - at start, ROOM_SYNC_HELLO ("forget what you knew of my slot, and tell me your rooms"), then
 *    its own rooms and ROOM_SYNC_DONE;
 *  - on a sibling's HELLO, its rooms again, then DONE.
 * A worker knows the whole union once every live sibling sent DONE since it started (or since
 * that sibling started): only then may its relay subscription count as up. A sibling whose slot
 * is no longer live is forgotten at the next tick.
 *
 * No I/O here: what it sends and applies goes through room_sync_io_t (production: fanout_notice
 * and adapter_relay_room/forget; tests: recorders).
 */
#ifndef STREAMIO_WORKER_CLUSTER_ROOM_SYNC_H
#define STREAMIO_WORKER_CLUSTER_ROOM_SYNC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum { ROOM_SYNC_ADD = '+', ROOM_SYNC_DEL = '-', ROOM_SYNC_HELLO = '!', ROOM_SYNC_DONE = '=' };

typedef struct room_sync room_sync_t;

typedef struct room_sync_io {
    /* Hands a notice to every live sibling (room empty for HELLO and DONE). */
    void (*send)(void *arg, char kind, const char *room, size_t len);
    /* Calls fn for each room of this worker. */
    void (*own_rooms)(void *arg, void (*fn)(const char *room, size_t len, void *fnarg),
                      void *fnarg);
    /* The worker in slot holds the room (on) or no longer does; slot holds nothing any more. */
    void (*room)(void *arg, uint32_t slot, const char *room, size_t len, bool on);
    void (*forget)(void *arg, uint32_t slot);
    /* Whether a worker runs in slot now. */
    bool (*live)(void *arg, uint32_t slot);
    void *arg;
} room_sync_io_t;

/* Slot `me` of nslots; copies *io. Never NULL (out of memory aborts, see xalloc.h). */
room_sync_t *room_sync_new(uint32_t nslots, uint32_t me, const room_sync_io_t *io);
/* NULL is a no-op. */
void room_sync_free(room_sync_t *s);
/* Announces this worker: HELLO, its rooms, DONE. */
void room_sync_start(room_sync_t *s);
/* One of this worker's rooms was created (on) or deleted. */
void room_sync_own(room_sync_t *s, const char *room, size_t len, bool on);
/* A notice from the sibling in slot `from` (room borrowed). Unknown kinds are ignored. */
void room_sync_notice(room_sync_t *s, uint32_t from, char kind, const char *room, size_t len);
/* Forgets the siblings that are gone (every tick). */
void room_sync_tick(room_sync_t *s);
/* Every live sibling's rooms are known. */
bool room_sync_complete(const room_sync_t *s);

#endif
