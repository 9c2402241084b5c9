/* xalloc: see xalloc.h. The failure path formats nothing that could itself allocate. */
#include "common/xalloc.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void xalloc_die(size_t n)
{
    char msg[64] = "streamio: out of memory allocating ";
    size_t at = strlen(msg);
    char digits[24];
    size_t nd = 0;
    do {
        digits[nd++] = (char)('0' + n % 10);
        n /= 10;
    } while (n && nd < sizeof digits);
    while (nd && at < sizeof msg - 9)
        msg[at++] = digits[--nd];
    memcpy(msg + at, " bytes\n", 7);
    ssize_t w = write(STDERR_FILENO, msg, at + 7);
    (void)w;
    abort();
}

void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        xalloc_die(n);
    return p;
}

void *xcalloc(size_t count, size_t size)
{
    void *p = calloc(count ? count : 1, size ? size : 1);
    size_t n;
    if (!p)
        xalloc_die(__builtin_mul_overflow(count, size, &n) ? SIZE_MAX : n);
    return p;
}

void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        xalloc_die(n);
    return q;
}

char *xstrdup(const char *s)
{
    return xmemdup(s, strlen(s));
}

char *xmemdup(const void *p, size_t n)
{
    char *s = xmalloc(n + 1);
    if (n)
        memcpy(s, p, n);
    s[n] = '\0';
    return s;
}
