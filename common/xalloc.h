/*
 * xalloc: the project's one out-of-memory policy. Allocation failure is not an error a caller
 * handles: like Redis' zmalloc, these wrappers write one line to stderr and abort(), so the
 * master respawns a worker that ran out of memory and systemd restarts a master that did.
 * Every allocation in the project goes through them (or through buf_t, which uses them), and
 * where a library reports its own allocation failure as an error code (hiredis, wslay, zlib,
 * libjwt, OpenSSL) the glue calls xalloc_die, so no function returns -ENOMEM and no caller has an
 * out-of-memory branch to get wrong. Bounded inputs (the configured limits) keep a hostile peer
 * from turning this into a denial of service. The line: "streamio: out of memory allocating N
 * bytes". A size of 0 still returns a pointer to free, never NULL.
 */
#ifndef STREAMIO_COMMON_XALLOC_H
#define STREAMIO_COMMON_XALLOC_H

#include <stddef.h>

void *xmalloc(size_t n);
void *xcalloc(size_t count, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
/* A NUL-terminated copy of the n bytes at p. */
char *xmemdup(const void *p, size_t n);
/* Reports a failed allocation of n bytes and aborts; for allocators outside these wrappers. */
void xalloc_die(size_t n) __attribute__((noreturn));

#endif
