/*
 * refbuf: reference-counted immutable bytes, the fan-out primitive. A broadcast frame is built
 * once into a refbuf and every recipient's write queue holds a reference until its write
 * completes. Counts are not atomic: a refbuf never leaves the process (and loop) that made it.
 */
#ifndef STREAMIO_COMMON_REFBUF_H
#define STREAMIO_COMMON_REFBUF_H

#include <stddef.h>

typedef struct refbuf refbuf_t;

/* Returns a new reference (count 1) to `len` uninitialised bytes, never NULL. */
refbuf_t *refbuf_new(size_t len);
/* Returns a new reference to a copy of p[0..len). */
refbuf_t *refbuf_from(const void *p, size_t len);
/* Takes one more reference; returns rb for convenience. */
refbuf_t *refbuf_ref(refbuf_t *rb);
/* Drops one reference; the last one frees. NULL is a no-op. */
void refbuf_unref(refbuf_t *rb);
char *refbuf_data(refbuf_t *rb);
size_t refbuf_len(const refbuf_t *rb);

#endif
