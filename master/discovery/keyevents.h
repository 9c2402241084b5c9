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
 * One non-blocking hiredis connection owned by the master's poll(2) loop: the caller polls
 * keyevents_fd() for keyevents_events() and hands the result to keyevents_handle(). A dropped
 * or refused connection is retried with exponential backoff (250 ms .. 10 s).
 */
#ifndef STREAMIO_MASTER_DISCOVERY_KEYEVENTS_H
#define STREAMIO_MASTER_DISCOVERY_KEYEVENTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/config.h"

typedef struct keyevents keyevents_t;

typedef enum keyevent_kind { KEYEVENT_XADD, KEYEVENT_DEL } keyevent_kind_t;

/* `key` is borrowed for the call and NUL-terminated. XADD events come only for keys matching
 * STREAM_PATTERN of the configuration given to keyevents_new (the one discovery scans with);
 * DEL events for any key. */
typedef void (*keyevents_fn)(keyevent_kind_t kind, const char *key, size_t len, void *arg);

/* Borrows cfg for its lifetime. NULL on ENOMEM. Does not connect yet. */
keyevents_t *keyevents_new(const cfg_t *cfg);
void keyevents_free(keyevents_t *k);

/* The fd to poll, -1 while there is no connection. */
int keyevents_fd(const keyevents_t *k);
/* poll(2) events to wait for on keyevents_fd(): POLLIN, plus POLLOUT while connecting/sending. */
short keyevents_events(const keyevents_t *k);
/* Milliseconds (monotonic, as now_ms) of the next reconnect attempt; UINT64_MAX when none. */
uint64_t keyevents_due_ms(const keyevents_t *k);

/*
 * Runs after every poll(2) wake-up with the fd's revents (0 when it was not ready): connects
 * when due, sends, reads, and calls fn for every event received. Never blocks.
 */
void keyevents_handle(keyevents_t *k, short revents, uint64_t now_ms, keyevents_fn fn, void *arg);

/* True while subscribed. */
bool keyevents_subscribed(const keyevents_t *k);

/*
 * Writes into out (cap bytes) the notify-keyspace-events value that keeps every flag of `have`
 * and adds what key events on xadd and del need. Returns 1 when flags had to be added, 0 when
 * `have` already enables them, -ENOSPC when out is too small.
 */
int keyevents_flags(const char *have, char *out, size_t cap);

/*
 * Parses one pub/sub message (["message", channel, key]) of the subscription. 0 with *kind,
 * *key and *len set (key borrowed from the reply); -EINVAL for anything else (a subscribe
 * confirmation, another channel, a malformed reply).
 */
int keyevents_parse(const keyevents_t *k, const void *reply, keyevent_kind_t *kind,
                    const char **key, size_t *len);

#endif
