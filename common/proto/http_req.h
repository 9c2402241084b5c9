/*
 * http_req: one HTTP/1.1 request at a time, parsed incrementally with http-parser 2.9. It owns
 * the parser state and a copy of what the worker needs from the head: method, path, raw query
 * string, a fixed set of headers, keep-alive and upgrade. Bytes may arrive in any split; feeding
 * stops right after the head and right after the end of the message, so the caller knows where
 * the body (or, after an upgrade, the WebSocket stream) starts. Body bytes (Content-Length or
 * chunked) are kept up to a limit set with http_req_set_max_body (0, the default: dropped).
 * It never does I/O, never writes a response and never keeps a pointer to the caller's bytes.
 */
#ifndef STREAMIO_COMMON_PROTO_HTTP_REQ_H
#define STREAMIO_COMMON_PROTO_HTTP_REQ_H

#include <stdbool.h>
#include <stddef.h>

#include "common/buf.h"

typedef struct http_req http_req_t;

/* The headers kept. A header that appears several times is joined with ", " (RFC 9110 §5.3). */
typedef enum http_req_hdr {
    HTTP_REQ_HOST,
    HTTP_REQ_UPGRADE,
    HTTP_REQ_CONNECTION,
    HTTP_REQ_WS_KEY,        /* Sec-WebSocket-Key */
    HTTP_REQ_WS_VERSION,    /* Sec-WebSocket-Version */
    HTTP_REQ_WS_EXTENSIONS, /* Sec-WebSocket-Extensions (repeated headers joined by ", ") */
    HTTP_REQ_ORIGIN,
    HTTP_REQ_CONTENT_LENGTH,
    HTTP_REQ_ACCEPT_ENCODING,
    HTTP_REQ_AUTHORIZATION, /* the admin endpoints' Bearer token */
    HTTP_REQ_HDR_COUNT
} http_req_hdr_t;

#define HTTP_REQ_DEFAULT_MAX_HEAD 16384 /* Node's maxHeaderSize */

/* Bits returned by http_req_feed. */
#define HTTP_REQ_HEAD 1 /* the head completed: accessors are valid */
#define HTTP_REQ_DONE 2 /* the message (body included) completed */

/*
 * Allocates a parser for requests whose head (request line + headers + final CRLF) is at most
 * max_head bytes (0 = HTTP_REQ_DEFAULT_MAX_HEAD; http-parser itself stops at 80 KiB).
 */
http_req_t *http_req_new(size_t max_head);
/* NULL is a no-op. */
void http_req_free(http_req_t *r);
/*
 * Makes r as http_req_new left it, for another connection (a server keeps parsers for reuse):
 * clears any error and keeps its buffers unless they grew past a small request's needs.
 */
void http_req_reuse(http_req_t *r);
/*
 * Keeps the body of the following requests, up to max bytes: a longer body (or a Content-Length
 * above it) makes http_req_feed fail with -EMSGSIZE (answer 413). 0 drops bodies unchecked.
 */
void http_req_set_max_body(http_req_t *r, size_t max);
/* The body kept so far (complete once HTTP_REQ_DONE was returned); "" with *len 0 if none. */
const char *http_req_body(const http_req_t *r, size_t *len);

/*
 * Parses up to len bytes of p (borrowed) and stores how many were used in *consumed. Stops
 * early right after the head and right after the end of the message; the bytes after *consumed
 * belong to the body, to the next request, or (after an upgrade) to the new protocol.
 * Returns 0 (all bytes used, more needed) or a mask of HTTP_REQ_HEAD and HTTP_REQ_DONE (a GET
 * without a body gives both at once). After HTTP_REQ_DONE the next call starts a new request
 * and invalidates the accessors' strings. Errors, sticky until http_req_free:
 * -E2BIG head over the limit (answer 431), -EPROTO malformed request (answer 400), -EMSGSIZE
 * body over the limit (answer 413).
 */
int http_req_feed(http_req_t *r, const void *p, size_t len, size_t *consumed);

bool http_req_head_complete(const http_req_t *r);
/* The whole message, body included, was parsed. */
bool http_req_done(const http_req_t *r);

/*
 * Accessors, valid once the head completed and until the next request starts. Strings are
 * NUL-terminated and owned by r.
 */
const char *http_req_method(const http_req_t *r); /* "GET", "POST", ... */
const char *http_req_path(const http_req_t *r);   /* URL path, not decoded, without the query */
const char *http_req_query_string(const http_req_t *r); /* raw, without '?'; "" if none */
/* Value of a kept header with surrounding whitespace removed, or NULL if absent. */
const char *http_req_header(const http_req_t *r, http_req_hdr_t h);
/* HTTP/1.1 without "Connection: close", or HTTP/1.0 with "Connection: keep-alive". */
bool http_req_keep_alive(const http_req_t *r);
/* "Connection: upgrade" together with an Upgrade header (http-parser's definition). */
bool http_req_is_upgrade(const http_req_t *r);
/*
 * A valid RFC 6455 opening handshake: GET without a body, an upgrade whose Upgrade list has
 * "websocket", Sec-WebSocket-Version 13 and a 24-character Sec-WebSocket-Key.
 */
bool http_req_is_websocket(const http_req_t *r);

/*
 * Looks up the first `key` in the query string (keys compare after decoding) and stores its
 * value, percent-decoded with '+' as space, in out (reset first; may hold NUL bytes, use
 * out->len). Invalid %-escapes are kept as they are. A key without '=' has the value "".
 * 0, or -ENOENT if absent.
 */
int http_req_query(const http_req_t *r, const char *key, buf_t *out);
/* Percent-decodes s[0..n) (a path or one of its segments: '+' stays '+') into out (reset
 * first; may hold NUL bytes). Invalid %-escapes are kept as they are. */
void http_req_path_decode(const char *s, size_t n, buf_t *out);
/*
 * Calls fn once per non-empty `key[=value]` of the query string, in order, with both decoded as
 * http_req_query does (into tmp, reset per pair; the strings are valid during the call only).
 * Stops at and returns fn's first non-zero return, else 0.
 */
int http_req_query_each(const http_req_t *r, buf_t *tmp,
                        int (*fn)(const char *key, size_t klen, const char *val, size_t vlen,
                                  void *arg),
                        void *arg);
/* The same over a raw query string q (NUL-terminated, without the '?'), e.g. one kept after
 * the request is gone. */
int http_query_each(const char *q, buf_t *tmp,
                    int (*fn)(const char *key, size_t klen, const char *val, size_t vlen,
                              void *arg),
                    void *arg);

#endif
