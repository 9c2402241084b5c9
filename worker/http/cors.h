/*
 * cors: the cross-origin policy of the Engine.IO endpoint, from SOCKETIO_CORS_ORIGINS ("*", or a
 * comma-separated list of origins; empty: no CORS headers at all, as Node without a cors option).
 * It answers two questions about a request: which CORS response headers its Origin earns, and
 * whether a WebSocket upgrade from that Origin may proceed. No I/O, no state beyond the list.
 */
#ifndef STREAMIO_WORKER_HTTP_CORS_H
#define STREAMIO_WORKER_HTTP_CORS_H

#include <stdbool.h>

#include "common/buf.h"
#include "common/proto/http_req.h"

typedef struct cors cors_t;

/* Copies origins (NULL or "": CORS off). Never NULL. */
cors_t *cors_new(const char *origins);
/* NULL is a no-op. */
void cors_free(cors_t *c);
/* True when a list (or "*") is configured. */
bool cors_enabled(const cors_t *c);
/* Appends to out the headers this request's Origin earns (nothing when none apply). */
void cors_headers(const cors_t *c, const http_req_t *req, buf_t *out);
/* The request's Origin (borrowed) names this server itself (http(s)://<its Host header>). */
bool cors_same_origin(const http_req_t *req, const char *origin);
/*
 * A browser's WebSocket is not bound by CORS, so the list also decides which pages may open one.
 * Without a list, or with "*", any origin is fine; a client that sends no Origin (not a browser)
 * is always allowed, and so is a page of this server (same origin).
 */
bool cors_ws_allowed(const cors_t *c, const http_req_t *req);

#endif
