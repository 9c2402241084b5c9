/*
 * stream_exclude: the Redis keys that are never rooms, whatever STREAM_PATTERN matches. Reading
 * such a key as a room would create a consumer group on it and delete its entries: that is how
 * the default `STREAM_PATTERN=*` emptied the stream of @socket.io/redis-streams-adapter under the
 * Node servers of a seed 003 deployment. Excluded, in every adapter mode:
 *  - the adapter's streams: `socket.io` (its default) and SOCKETIO_REDIS_STREAM_NAME, each with
 *    its `<name>-<n>` shards (streamCount; n may be negative, as JavaScript's `%` makes it);
 *  - every key streamio writes: they all live under `<SOCKETIO_REDIS_KEY>:` (recovery records,
 *    server announcements), except the adapter's sessions `sio:session:<pid>`;
 *  - the globs of STREAM_EXCLUDE (Redis glob syntax: `*`, `?`, `[...]`, `\` escapes).
 * Pure: no I/O, no logging; the master asks it about every key discovery finds.
 */
#ifndef STREAMIO_COMMON_STREAM_EXCLUDE_H
#define STREAMIO_COMMON_STREAM_EXCLUDE_H

#include <stdbool.h>
#include <stddef.h>

#include "common/buf.h"
#include "common/config.h"

/* The adapter's default stream name and session key prefix (its `streamName`, `sessionKeyPrefix`
 * options), which streamio's streams mode uses too. */
#define STREAM_EXCLUDE_ADAPTER_STREAM "socket.io"
#define STREAM_EXCLUDE_SESSION_PREFIX "sio:session:"

/* True when `key` (binary-safe) must not be read as a room under cfg (borrowed for the call). */
bool stream_exclude_match(const cfg_t *cfg, const char *key, size_t len);

/* Appends the exclusions as one human-readable line (for the startup log). */
void stream_exclude_describe(const cfg_t *cfg, buf_t *out);

#endif
