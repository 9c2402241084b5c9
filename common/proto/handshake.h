/*
 * handshake: what a socket's `handshake` holds in Node (socket.io 4.x), kept for fetchSockets
 * answers: headers (the ones http_req keeps, lowercase names), time (Date#toString form), address
 * (the peer's IP), xdomain (an Origin header was sent), secure (false: no TLS here), issued (ms
 * since the epoch), url (path and query) and query (decoded, the last of repeated keys wins).
 * Every connection keeps one, and fetchSockets is rare: so what is kept is a compact record of
 * the request's parts (the time, which headers came, their values, the path and the raw query;
 * typically 120-160 bytes), rendered to JSON only when asked; `auth` is added by the caller from
 * the CONNECT packet, which comes later.
 */
#ifndef STREAMIO_COMMON_PROTO_HANDSHAKE_H
#define STREAMIO_COMMON_PROTO_HANDSHAKE_H

#include <stdint.h>
#include <sys/socket.h>

#include "common/buf.h"
#include "common/proto/http_req.h"

/* Returns the malloc'd record of req (never NULL; the caller frees it). now_ms: wall clock in
 * ms since the epoch. */
char *handshake_capture(const http_req_t *req, uint64_t now_ms);

/*
 * Appends the JSON members of record rec, without the braces: `"headers":{...},"time":"...",
 * "address":"...","xdomain":false,"secure":false,"issued":N,"url":"...","query":{...}`.
 * `peer` may be NULL or of an unknown family (address "").
 */
void handshake_write(buf_t *out, const char *rec, const struct sockaddr *peer);

#endif
