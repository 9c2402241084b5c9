/*
 * buf: a growable byte buffer, the one used by every encoder (JSON, msgpack, HTTP responses).
 * The struct is public so it can be embedded; the buffer owns `data` and frees it in buf_free.
 * The bytes are kept NUL-terminated (not counted in len) so text can be logged directly.
 */
#ifndef STREAMIO_COMMON_BUF_H
#define STREAMIO_COMMON_BUF_H

#include <stdarg.h>
#include <stddef.h>
#include <string.h>

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
void buf_grow(buf_t *b, size_t extra);
/* The fast paths are inline: encoders append a few bytes at a time (every entry's packet, its
 * msgpack, its PUBLISH), and a call per byte was a fifth of their time. */
static inline void buf_reserve(buf_t *b, size_t extra)
{
    if (extra >= b->cap - b->len) /* cap > len always holds once data exists (the terminator) */
        buf_grow(b, extra);
}
static inline void buf_append(buf_t *b, const void *p, size_t n)
{
    buf_reserve(b, n);
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
}
static inline void buf_puts(buf_t *b, const char *s)
{
    buf_append(b, s, strlen(s));
}
static inline void buf_putc(buf_t *b, char c)
{
    buf_reserve(b, 1);
    b->data[b->len++] = c;
    b->data[b->len] = '\0';
}
void buf_printf(buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_vprintf(buf_t *b, const char *fmt, va_list ap);
/* Moves the storage out: the caller owns the returned pointer (free()), the buf is left empty. */
char *buf_steal(buf_t *b);

#endif
