/*
 * http_gzip: gzip Content-Encoding for HTTP response bodies (Node's httpCompression for polling
 * responses: bodies of at least HTTP_GZIP_THRESHOLD bytes, when the request accepts gzip). It
 * only transforms bytes with zlib; it never does I/O and keeps no state between calls.
 */
#ifndef STREAMIO_COMMON_PROTO_HTTP_GZIP_H
#define STREAMIO_COMMON_PROTO_HTTP_GZIP_H

#include <stdbool.h>
#include <stddef.h>

#include "common/buf.h"

#define HTTP_GZIP_THRESHOLD 1024

/* True when an Accept-Encoding value (NULL: absent) lists gzip with a non-zero q value. */
bool http_gzip_accepted(const char *accept_encoding);

/* Replaces out's content with the gzip stream of p[0..len). 0 or -EIO (zlib error). */
int http_gzip_compress(buf_t *out, const void *p, size_t len);

#endif
