/*
 * handshake: what a socket's `handshake` holds in Node (socket.io 4.x), kept for fetchSockets
 * answers: headers (the ones http_req keeps, lowercase names), time (Date#toString form), address
 * (the peer's IP), xdomain (an Origin header was sent), secure (false: no TLS here), issued (ms
 * since the epoch), url (path and query) and query (decoded, the last of repeated keys wins).
 * Rendered once at the Engine.IO handshake into one exact-size string so that the cost per
 * connection is that string (typically 250-400 bytes) and a pointer; `auth` is added by the
 * caller from the CONNECT packet, which comes later.
 */
#ifndef STREAMIO_COMMON_PROTO_HANDSHAKE_H
#define STREAMIO_COMMON_PROTO_HANDSHAKE_H

#include <stdint.h>
#include <sys/socket.h>

#include "common/buf.h"
#include "common/proto/http_req.h"

/*
 * Returns a malloc'd NUL-terminated JSON text of the object's members without the braces:
 * `"headers":{...},"time":"...","address":"...","xdomain":false,"secure":false,"issued":N,
 * "url":"...","query":{...}` (never NULL). `peer` may be NULL or of an unknown
 * family (address ""). now_ms: wall clock in ms since the epoch. tmp is scratch.
 */
char *handshake_render(const http_req_t *req, const struct sockaddr_storage *peer, uint64_t now_ms,
                       buf_t *tmp);

#endif
