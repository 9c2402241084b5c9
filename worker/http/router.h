/*
 * router: the table of HTTP routes of a worker. A route is a path and a handler: a path ending
 * in '/' names a prefix (the Engine.IO endpoint: "/socket.io/" matches "/socket.io/?..." and
 * "/socket.io"), any other path must match exactly. Routes are tried in the order they were
 * added; the first match handles the request. It only matches: it never answers (the HTTP
 * server answers 404 when nothing matched), never does I/O and never logs.
 */
#ifndef STREAMIO_WORKER_HTTP_ROUTER_H
#define STREAMIO_WORKER_HTTP_ROUTER_H

#include <stdbool.h>

#include "common/proto/http_req.h"
#include "worker/net/conn.h"

typedef struct router router_t;

/* A route's handler: answers (see http_server.h for what it must do before returning). */
typedef void (*route_fn)(conn_t *c, const http_req_t *req, void *arg);

/* Never NULL. */
router_t *router_new(void);
/* NULL is a no-op. */
void router_free(router_t *r);
/* Adds a route; path is borrowed (a string literal, or valid as long as r). */
void router_add(router_t *r, const char *path, route_fn fn, void *arg);
/* Runs the first route matching req's path: true, or false when none matches. */
bool router_dispatch(const router_t *r, conn_t *c, const http_req_t *req);
/* Whether some route matches path. */
bool router_serves(const router_t *r, const char *path);
/* Whether path matches route path `route` (the rule above). */
bool router_match(const char *route, const char *path);

#endif
