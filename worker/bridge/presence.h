/*
 * presence: this worker's part of who is connected and who is in which room, across every
 * server (PRESENCE), and of the per-user connection limit (MAX_CONNECTIONS_PER_USER). The counts
 * live in Redis (common/bridge/presence_store); the worker keeps its own share in memory, to
 * restore it after Redis comes back and to know when to index a room or a user.
 *
 * - A socket with a user id (the token's `sub`, else the handshake's `auth.user_id` without
 *   authentication) counts as one connection of that user: with a limit its CONNECT waits for
 *   Redis' verdict (a refusal is counted as limit="per_user"); without one it goes on at once.
 *   When Redis cannot be reached the connection is let in and counted here, and written when
 *   Redis is back (a limit that fails open rather than a server that refuses everyone).
 * - PRESENCE: each join and leave of such a socket changes the room's count; the first
 *   connection of a user in a room matching PRESENCE_ROOMS, and its last, are published for every
 *   worker to send presence:join / presence:leave to the room's members; a user's first
 *   connection anywhere and its last one go to PRESENCE_STREAM as online / offline.
 * - presence_tick heartbeats every PRESENCE_TTL_MS / 3 and removes the counts of writers silent
 *   for PRESENCE_TTL_MS (their users leave their rooms and go offline the same way), so a crashed
 *   server's users are gone within about 4/3 of the TTL.
 * Redis only through the bridge_redis seam; time only through presence_tick's argument.
 */
#ifndef STREAMIO_WORKER_BRIDGE_PRESENCE_H
#define STREAMIO_WORKER_BRIDGE_PRESENCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/bridge/bridge_redis.h"
#include "common/config.h"
#include "shm/stats.h"

#define PRESENCE_ERR_TOO_MANY "Too many connections for this user"

typedef struct presence presence_t;
typedef struct presence_sock presence_sock_t;

/* A CONNECT that waited: let it in (true) or refuse it (the limit). */
typedef void (*presence_done_fn)(void *arg, bool ok);

/*
 * NULL when neither PRESENCE nor MAX_CONNECTIONS_PER_USER is on. Copies *redis and server (this
 * writer's id); borrows cfg and stats.
 */
presence_t *presence_new(const bridge_redis_t *redis, const cfg_t *cfg, const char *server,
                         stats_worker_t *stats);
/* After the Redis client its table sends through was closed. NULL is a no-op. */
void presence_free(presence_t *p);

/* A socket of user (copied); NULL when p is NULL or the id is empty or longer than
 * PRESENCE_USER_MAX (such a socket is anonymous). */
presence_sock_t *presence_sock_new(presence_t *p, const char *user, size_t len);
/* Its user id (NUL-terminated). */
const char *presence_sock_user(const presence_sock_t *s);
/*
 * The socket's CONNECT: 1 when it may go on now; 0 when done(arg, ok) will say, once Redis
 * answered (never from this call; not at all once the socket was freed).
 */
int presence_sock_connect(presence_sock_t *s, presence_done_fn done, void *arg);
/* A room joined / left by the connected socket (PRESENCE; no-op otherwise). */
void presence_sock_join(presence_sock_t *s, const char *room, size_t len);
void presence_sock_leave(presence_sock_t *s, const char *room, size_t len);
/* The socket ended (its rooms left before). NULL is a no-op. */
void presence_sock_free(presence_sock_t *s);

/* The worker's clock tick: heartbeat and removal of silent writers when due. */
void presence_tick(presence_t *p, uint64_t wall_ms);
/* Redis is reachable again: writes this worker's share as it is now. */
void presence_resync(presence_t *p, uint64_t wall_ms);
/* Draining: forgets this writer (its sockets are gone). */
void presence_stop(presence_t *p);

#endif
