/*
 * presence_store: how presence and per-user connection counts are kept in Redis, shared by the
 * workers that write them and by whoever reads them (streamioctl, GET /presence/<room>). Every
 * key starts with <SOCKETIO_REDIS_KEY>:presence (P below); a name inside {} is escaped (% { }
 * as %25 %7B %7D) so it is always the key's whole hash tag, and every script touches the keys of
 * one tag only: one Cluster slot.
 *
 *   P:servers            ZSET  writer id -> wall ms of its last heartbeat
 *   P:srv:{S}            HASH  index of what writer S wrote: "r:<room>", "u:<user>" -> 1
 *   P:room:{R}           SET   writers with members in room R
 *   P:room:{R}:S         HASH  user -> connections of writer S in room R
 *   P:user:{U}           HASH  writer -> connections of user U
 *
 * A writer is one worker process ("<host>:<port>:<slot>:<pid>"). Counts are changed by Lua
 * scripts that answer the user's total over every writer, so the first join and the last leave
 * (presence:join / presence:leave) and online/offline are decided atomically in Redis. A writer
 * that stops heartbeating for PRESENCE_TTL_MS is dead: any live writer then removes its counts
 * (index first, then one clean script per room and per user, which answer who is gone) and its
 * entry. Pure: builds commands (rcmd) and reads replies; never sends anything.
 */
#ifndef STREAMIO_COMMON_BRIDGE_PRESENCE_STORE_H
#define STREAMIO_COMMON_BRIDGE_PRESENCE_STORE_H

#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/bridge/rcmd.h"
#include "common/buf.h"

/* Longest user id kept (a longer one is anonymous), as AUTH_MAX_SUBJECT. */
#define PRESENCE_USER_MAX 256
/* Dead writers taken per sweep. */
#define PRESENCE_SWEEP_BATCH 16

/* Fills prefix with "<redis_key>:presence". */
void presence_prefix(buf_t *prefix, const char *redis_key);

/* ---- commands (each replaces what c held; the routing key is marked) ---- */

/* A socket of `user` joined (delta 1) or left (-1) room on writer `server`. Reply: see
 * presence_reply_change. */
void presence_cmd_room_change(rcmd_t *c, const char *prefix, const char *server, const char *room,
                              size_t room_len, const char *user, size_t user_len, int delta);
/* Users of room with their connections, writers in `dead` left out. Reply: presence_reply_users. */
void presence_cmd_room_query(rcmd_t *c, const char *prefix, const char *room, size_t room_len,
                             const char *const *dead, size_t ndead);
/* Removes dead writer `server`'s counts of room. Reply: the users now gone (presence_reply_names).
 */
void presence_cmd_room_clean(rcmd_t *c, const char *prefix, const char *room, size_t room_len,
                             const char *server, size_t server_len);
/* Writer `server`'s counts of room become exactly users[i] -> counts[i] (after a reconnect). */
void presence_cmd_room_set(rcmd_t *c, const char *prefix, const char *server, const char *room,
                           size_t room_len, const char *const *users, const size_t *user_lens,
                           const uint64_t *counts, size_t n);
/* A connection of user came (delta 1; refused past max when max > 0) or went (-1) on writer
 * `server`. Reply: presence_reply_user. */
void presence_cmd_user_change(rcmd_t *c, const char *prefix, const char *server, const char *user,
                              size_t user_len, int delta, int max);
/* Removes dead writer `server`'s connections of user. Reply: presence_reply_user. */
void presence_cmd_user_clean(rcmd_t *c, const char *prefix, const char *user, size_t user_len,
                             const char *server, size_t server_len);
/* Writer `server` has exactly `count` connections of user (after a reconnect). */
void presence_cmd_user_set(rcmd_t *c, const char *prefix, const char *server, const char *user,
                           size_t user_len, uint64_t count);
/* ZADD P:servers now_ms server. */
void presence_cmd_heartbeat(rcmd_t *c, const char *prefix, const char *server, uint64_t now_ms);
/* Writers whose last heartbeat is before `before_ms` (at most `limit`). Reply:
 * presence_reply_names. */
void presence_cmd_expired(rcmd_t *c, const char *prefix, uint64_t before_ms, unsigned limit);
/* Forgets writer `server`: its heartbeat (ZREM) / its index (DEL). */
void presence_cmd_forget(rcmd_t *c, const char *prefix, const char *server, size_t server_len);
void presence_cmd_index_drop(rcmd_t *c, const char *prefix, const char *server, size_t server_len);
/* Adds "r:<room>" (kind 'r') or "u:<user>" (kind 'u') to writer server's index. */
void presence_cmd_index_add(rcmd_t *c, const char *prefix, const char *server, char kind,
                            const char *name, size_t len);
/* Reads a writer's index. Reply: presence_reply_index. */
void presence_cmd_index_read(rcmd_t *c, const char *prefix, const char *server, size_t server_len);
/* XADD stream [MAXLEN ~ maxlen] * user U state online|offline ts <ms>. */
void presence_cmd_state(rcmd_t *c, const char *stream, int maxlen, const char *user,
                        size_t user_len, bool online, uint64_t ts_ms);

/* ---- replies (0, or -EPROTO for anything else, an error reply included) ---- */

/* room_change: the user's connections in the room over every writer after the change, and this
 * writer's own count after it (negative: there was nothing to remove). */
int presence_reply_change(const redisReply *r, int64_t *total, int64_t *mine);
/* user_change / user_clean: the user's connections over every writer after it (-1: refused by
 * max), the count of the writer concerned (after the change; before it for a clean), and Redis'
 * time of the change in ms. */
int presence_reply_user(const redisReply *r, int64_t *total, int64_t *mine, uint64_t *ts_ms);
/* An array of strings: fn once per name. */
int presence_reply_names(const redisReply *r, void (*fn)(const char *p, size_t len, void *arg),
                         void *arg);
/* index_read: fn(kind 'r' or 'u', name) once per entry (others skipped). */
int presence_reply_index(const redisReply *r,
                         void (*fn)(char kind, const char *p, size_t len, void *arg), void *arg);
/*
 * room_query: appends {"roomId":R,"users":[{"user":U,"connections":n}...],"userCount":k,
 * "connectionCount":m} (users by name).
 */
int presence_reply_users(const redisReply *r, const char *room, size_t room_len, buf_t *json);

/* ---- presence:join / presence:leave between workers (one pub/sub channel) ---- */

/* The channel: "<redis_key>-presence". */
void presence_channel(buf_t *out, const char *redis_key);
/* A message: 'j' or 'l', the room's length in decimal, ':', the room, then the user. */
void presence_event_encode(buf_t *out, bool join, const char *room, size_t room_len,
                           const char *user, size_t user_len);
/* Reads one (borrowing msg). 0 or -EINVAL. */
int presence_event_decode(const char *msg, size_t len, bool *join, const char **room,
                          size_t *room_len, const char **user, size_t *user_len);
/* The Socket.IO packet members of the room receive: 42["presence:join",{"roomId":R,"user":U}]. */
void presence_event_packet(buf_t *out, bool join, const char *room, size_t room_len,
                           const char *user, size_t user_len);

#endif
