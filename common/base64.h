/*
 * base64: the standard alphabet (RFC 4648 §4) with '=' padding, the one Node's
 * Buffer#toString('base64') writes: Engine.IO binary messages over polling, the WebSocket accept
 * key, and the Redis streams adapter's msgpack fields. Pure; appends to the caller's buffer.
 */
#ifndef STREAMIO_COMMON_BASE64_H
#define STREAMIO_COMMON_BASE64_H

#include <stddef.h>

#include "common/buf.h"

/* Characters base64 takes for len bytes (padding included, no NUL). */
#define BASE64_LEN(len) (((len) + 2) / 3 * 4)

/* Writes the base64 of p[0..len) and a NUL into out (BASE64_LEN(len) + 1 bytes); returns the
 * number of characters written. */
size_t base64_encode_to(char *out, const void *p, size_t len);
/* Appends the base64 of p[0..len). */
void base64_encode(buf_t *out, const void *p, size_t len);
/* Appends the bytes that base64 text p[0..len) stands for (trailing '=' optional, nothing else
 * tolerated). 0, or -EPROTO (a character outside the alphabet, an impossible length; out is
 * left as it was). */
int base64_decode(buf_t *out, const char *p, size_t len);

#endif
