/*
 * eio_payload: the body of an Engine.IO v4 long-polling request or response (protocol.md §1.5):
 * packets joined by the record separator 0x1e, binary messages as `b` + base64. It only builds
 * and splits bytes; it never does I/O, keeps no state and never interprets the packets.
 */
#ifndef STREAMIO_COMMON_PROTO_EIO_PAYLOAD_H
#define STREAMIO_COMMON_PROTO_EIO_PAYLOAD_H

#include <stdbool.h>
#include <stddef.h>

#include "common/buf.h"

#define EIO_PAYLOAD_SEP '\x1e'

/* Appends one text packet (separator first when out is not empty). Borrows p.
 * 0, or -EINVAL (p holds a 0x1e byte; out unchanged). */
int eio_payload_add_text(buf_t *out, const char *p, size_t len);
/* Appends one binary message as `b` + base64. */
void eio_payload_add_binary(buf_t *out, const void *p, size_t len);

/*
 * Iterates over the records of body[0..len): *pos starts at 0; each call stores the next record
 * (borrowed) in *rec and *rlen and advances *pos. Returns true while a record was produced; an
 * empty body gives no record, "a\x1e" gives "a" then "".
 */
bool eio_payload_next(const char *body, size_t len, size_t *pos, const char **rec, size_t *rlen);

/* Decodes standard base64 (padding optional) into out (reset first). 0 or -EPROTO. */
int eio_payload_b64_decode(const char *p, size_t len, buf_t *out);

#endif
