/*
 * ws_deflate: RFC 7692 permessage-deflate as this server speaks it: the offer check, the
 * response, and the two codecs. Both directions go without context takeover
 * (server_no_context_takeover, client_no_context_takeover in every response), so a compressed
 * message depends on nothing but itself: one compressed frame is built per broadcast and shared by
 * every recipient, and a worker needs one deflate and one inflate stream in all, not a 32 KiB
 * window per connection. Offers that limit the server's window below 15 bits are declined (the
 * shared frame is compressed with one window for everybody). Pure codec, no I/O; zlib's memory
 * failures follow the abort-on-OOM policy.
 */
#ifndef STREAMIO_COMMON_PROTO_WS_DEFLATE_H
#define STREAMIO_COMMON_PROTO_WS_DEFLATE_H

#include <stdbool.h>
#include <stddef.h>

#include "common/buf.h"

/* The Sec-WebSocket-Extensions value of a response that accepts an offer. */
#define WS_DEFLATE_RESPONSE                                                                        \
    "permessage-deflate; server_no_context_takeover; client_no_context_takeover"

/* Messages shorter than this are sent uncompressed (socket.io's perMessageDeflate threshold). */
#define WS_DEFLATE_THRESHOLD 1024

/*
 * Whether a Sec-WebSocket-Extensions value (one or more offers, comma-separated, as several
 * headers joined) holds a permessage-deflate offer this server accepts: its parameters known,
 * each at most once, with valid values (window bits 8-15, no value for the no_context_takeover
 * ones) and no server_max_window_bits below 15. Malformed offers are skipped, never an error.
 */
bool ws_deflate_accept(const char *value, size_t len);

typedef struct ws_deflate ws_deflate_t;

/* One deflate and one inflate stream (about 300 KiB with zlib's defaults). Never NULL. */
ws_deflate_t *ws_deflate_new(void);
void ws_deflate_free(ws_deflate_t *d);

/*
 * Appends the compressed form of one whole message (the payload of a frame with RSV1 set: raw
 * deflate, flushed, without the final 00 00 ff ff). Never fails.
 */
void ws_deflate_compress(ws_deflate_t *d, const void *in, size_t len, buf_t *out);

/*
 * Appends the message a compressed payload (the payloads of its frames, concatenated) inflates
 * to, stopping past `max` bytes so that a small payload cannot expand into a large allocation.
 * 0; -EMSGSIZE when it inflates to more than `max` (out then holds part of it); -EINVAL when it is
 * not valid deflate data. The inflate stream is reset either way.
 */
int ws_deflate_inflate(ws_deflate_t *d, const void *in, size_t len, size_t max, buf_t *out);

#endif
