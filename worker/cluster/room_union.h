/*
 * room_union: the rooms that any worker of this server holds, with which workers hold each, so
 * that one worker (the relay holder, see relay_role.h) can keep the sharded adapter's room
 * subscriptions for the whole server. Fed by each worker's own room hooks and by the notices its
 * siblings send over local IPC; a worker that is gone is forgotten at once. Each room also
 * carries whether its subscription is confirmed, so the holder can say when it has them all.
 * Pure bookkeeping: no I/O. Slots are below ROOM_UNION_SLOTS (CLUSTER_WORKERS' maximum).
 */
#ifndef STREAMIO_WORKER_CLUSTER_ROOM_UNION_H
#define STREAMIO_WORKER_CLUSTER_ROOM_UNION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ROOM_UNION_SLOTS 256

typedef struct room_union room_union_t;

/* A room (borrowed for the call). */
typedef void (*room_union_fn)(const char *room, size_t len, void *arg);

/* Never NULL (out of memory aborts, see xalloc.h). */
room_union_t *room_union_new(void);
/* NULL is a no-op. */
void room_union_free(room_union_t *u);
/* Slot holds the room (on) or no longer does. 1 when the union gained (on) or lost (off) the
 * room, 0 when it did not change, -EINVAL for a slot out of range or an empty room. */
int room_union_set(room_union_t *u, uint32_t slot, const char *room, size_t len, bool on);
/* Slot holds nothing any more: fn runs for each room the union lost. */
void room_union_forget(room_union_t *u, uint32_t slot, room_union_fn fn, void *arg);
/* A notice of slot's may have been lost (a DEL among them): each of its rooms is in doubt until
 * room_union_set names it again; room_union_sweep then makes slot let go of those still in doubt
 * (fn runs for each room the union lost), once its whole list came. */
void room_union_doubt(room_union_t *u, uint32_t slot);
void room_union_sweep(room_union_t *u, uint32_t slot, room_union_fn fn, void *arg);
bool room_union_has(const room_union_t *u, const char *room, size_t len);
size_t room_union_size(const room_union_t *u);
/* Calls fn for every room (fn must not change the union). */
void room_union_each(const room_union_t *u, room_union_fn fn, void *arg);
/* Marks the room's subscription confirmed or not (a room not in the union is ignored). */
void room_union_confirm(room_union_t *u, const char *room, size_t len, bool confirmed);
/* Every room unconfirmed (subscriptions sent again). */
void room_union_unconfirm_all(room_union_t *u);
/* Rooms whose subscription is not confirmed. */
size_t room_union_unconfirmed(const room_union_t *u);

#endif
