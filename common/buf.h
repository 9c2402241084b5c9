/*
 * buf: a growable byte buffer, the one used by every encoder (JSON, msgpack, HTTP responses).
 * The struct is public so it can be embedded; the buffer owns `data` and frees it in buf_free.
 * The bytes are kept NUL-terminated (not counted in len) so text can be logged directly.
 */
#ifndef STREAMIO_COMMON_BUF_H
#define STREAMIO_COMMON_BUF_H

#include <stdarg.h>
#include <stddef.h>

typedef struct buf {
    char *data; /* owned; NULL until the first append */
    size_t len;
    size_t cap;
} buf_t;

void buf_init(buf_t *b);
/* Releases the storage; the buffer is left empty and reusable. buf_free on an empty buf is a no-op.
 */
void buf_free(buf_t *b);
/* Forgets the content but keeps the storage (for per-message reuse without malloc). */
void buf_reset(buf_t *b);
/*
 * Appends never fail: out of memory aborts (common/xalloc.h), so none of these returns a code.
 * buf_reserve makes room for `extra` more bytes (+1 for the terminator).
 */
void buf_reserve(buf_t *b, size_t extra);
void buf_append(buf_t *b, const void *p, size_t n);
void buf_puts(buf_t *b, const char *s);
void buf_putc(buf_t *b, char c);
void buf_printf(buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_vprintf(buf_t *b, const char *fmt, va_list ap);
/* Moves the storage out: the caller owns the returned pointer (free()), the buf is left empty. */
char *buf_steal(buf_t *b);

#endif
