/*
 * keyevents: the master's subscription to Redis keyspace notifications, so that a stream created
 * or deleted is known at once instead of at the end of the next SCAN pass (which takes seconds
 * at a million keys; SCAN stays the safety net for what a dropped subscription missed).
 * Subscribes to `__keyevent@<db>__:xadd` (a stream got an entry, maybe its first) and
 * `__keyevent@<db>__:del` (a key was deleted). Used only with STREAM_KEYSPACE_EVENTS=true.
 *
 * Redis only publishes these when its notify-keyspace-events holds E, t (xadd) and g (del):
 * on every connect the current value is read with CONFIG GET and the missing flags are added
 * with CONFIG SET (flags already set are kept). Where CONFIG is refused (managed Redis) one
 * warning says which flags to set by hand; the subscription is made anyway.
 *
 * One client of the Redis layer (common/redis/redis_client) on the master's loop: it keeps the
 * subscriptions on every primary across reconnects and failovers; CONFIG runs on each primary
 * whenever its command connection comes up.
 *
 * While events flow (more than KEYEVENTS_BURST within BATCH_DELAY / 2), reading stops for
 * BATCH_DELAY / 2 after each message, so the notifications of a steady load come in one read per
 * half window instead of waking the master once each; a quiet database is read at once.
 */
#ifndef STREAMIO_MASTER_DISCOVERY_KEYEVENTS_H
#define STREAMIO_MASTER_DISCOVERY_KEYEVENTS_H

#include "common/config.h"
#include "common/redis/redis_client.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct keyevents keyevents_t;

/* XADD, DEL: a key's event. UP: subscribed on every primary with Redis publishing the events
 * (again after an outage: what it missed is only found by SCAN); DOWN: not any more. */
typedef enum keyevent_kind {
    KEYEVENT_XADD,
    KEYEVENT_DEL,
    KEYEVENT_UP,
    KEYEVENT_DOWN
} keyevent_kind_t;

/* `key` is borrowed for the call (NULL for UP and DOWN); any key of the database (the caller
 * matches STREAM_PATTERN). */
typedef void (*keyevents_fn)(keyevent_kind_t kind, const char *key, size_t len, void *arg);

#define KEYEVENTS_BURST 2

/* The pacing of a busy subscription, as a value the caller keeps (zeroed to start). */
typedef struct keyevents_pace {
    uint64_t window_start;
    unsigned count;
} keyevents_pace_t;

/*
 * A message came at now_ms: true when more than KEYEVENTS_BURST came within the window_ms that
 * began with the first of them, so reading should wait window_ms. window_ms 0: never.
 */
bool keyevents_pace_message(keyevents_pace_t *p, uint64_t now_ms, uint64_t window_ms);

/* Starts connecting at once. Borrows topo and cfg (for the subscription's life). */
keyevents_t *keyevents_new(redis_topology_t *topo, const cfg_t *cfg, keyevents_fn fn, void *arg);
/* Closes; done(arg) runs once everything is released. fn is not called after this call. */
void keyevents_close(keyevents_t *k, void (*done)(void *arg), void *arg);

/*
 * Writes into out (cap bytes) the notify-keyspace-events value that keeps every flag of `have`
 * and adds what key events on xadd and del need. Returns 1 when flags had to be added, 0 when
 * `have` already enables them, -ENOSPC when out is too small.
 */
int keyevents_flags(const char *have, char *out, size_t cap);

/*
 * Parses one pub/sub message of the subscription in database `db` (m may be NULL). 0 with
 * *kind, *key and *len set (key borrowed from m); -EINVAL for anything else (a subscribe
 * confirmation, another channel, a pattern message).
 */
int keyevents_parse(int db, const redis_push_t *m, keyevent_kind_t *kind, const char **key,
                    size_t *len);

#endif
