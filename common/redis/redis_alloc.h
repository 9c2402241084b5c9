/*
 * redis_alloc: the Redis layer's out-of-memory policy in one place. The project aborts on
 * allocation failure (as Redis and hiredis 0.14's hi_malloc do); until common/ has its own
 * helpers these static inlines do it, so swapping them is a one-file change. Private to
 * common/redis/: no other folder includes this header.
 */
#ifndef STREAMIO_COMMON_REDIS_ALLOC_H
#define STREAMIO_COMMON_REDIS_ALLOC_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static inline void *rd_oom(void *p)
{
    if (!p) {
        static const char msg[] = "streamio: out of memory in the Redis layer\n";
        (void)!write(2, msg, sizeof(msg) - 1);
        abort();
    }
    return p;
}

static inline void *rd_malloc(size_t n)
{
    return rd_oom(malloc(n ? n : 1));
}

static inline void *rd_calloc(size_t n, size_t size)
{
    return rd_oom(calloc(n ? n : 1, size ? size : 1));
}

static inline void *rd_realloc(void *p, size_t n)
{
    return rd_oom(realloc(p, n ? n : 1));
}

/* A NUL-terminated copy of n bytes of s. */
static inline char *rd_strndup(const char *s, size_t n)
{
    char *p = rd_malloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

/* For library calls that report ENOMEM as a return code (strmap, buf): 0 passes through. */
static inline void rd_must(int rc)
{
    if (rc)
        rd_oom(NULL);
}

#endif
