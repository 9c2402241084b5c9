/*
 * presence_route: GET /presence/<room> (the room percent-encoded), the admin endpoint that
 * answers who is in a room across every server (common/bridge/presence_query's JSON). It needs
 * `Authorization: Bearer <ADMIN_TOKEN>`: without the header (or another scheme) 401 with
 * WWW-Authenticate, with another token 403, and 403 too while ADMIN_TOKEN is unset (nothing to
 * compare with); 404 while PRESENCE is off, 405 for a method other than GET and HEAD, 503 when
 * Redis cannot answer. Tokens are compared in constant time and never logged.
 */
#ifndef STREAMIO_WORKER_BRIDGE_PRESENCE_ROUTE_H
#define STREAMIO_WORKER_BRIDGE_PRESENCE_ROUTE_H

#include "common/bridge/bridge_redis.h"
#include "common/config.h"
#include "worker/http/router.h"

typedef struct presence_route presence_route_t;

/* Adds the route to r; redis (copied) may have a NULL command while no client exists (PRESENCE
 * off). Borrows cfg. Never NULL. */
presence_route_t *presence_route_new(router_t *r, const bridge_redis_t *redis, const cfg_t *cfg);
/* After the Redis client was closed (every query answered). NULL: no-op. */
void presence_route_free(presence_route_t *p);

#endif
