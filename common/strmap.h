/*
 * strmap: a map from byte-string keys to caller pointers (chained hashing, FNV-1a, doubling).
 * The map owns copies of the keys, never the values: the caller frees those, either one by one or
 * all at once with strmap_free_values(). Used for the master's stream registry and the worker's
 * stream table; lookups do not allocate.
 */
#ifndef STREAMIO_COMMON_STRMAP_H
#define STREAMIO_COMMON_STRMAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct strmap strmap_t;

/* Never NULL (out of memory aborts, see xalloc.h). */
strmap_t *strmap_new(void);
/* Frees the map and its key copies; values are the caller's. NULL is a no-op. */
void strmap_free(strmap_t *m);
/* Frees every value with free_value (free() when NULL) and removes every entry; the map stays
 * usable. For maps whose values the caller owns one allocation each. NULL is a no-op. */
void strmap_free_values(strmap_t *m, void (*free_value)(void *value));
/* Inserts or replaces. */
void strmap_put(strmap_t *m, const char *key, size_t len, void *value);
/* The value, or NULL when absent. */
void *strmap_get(const strmap_t *m, const char *key, size_t len);
/* Removes the key and returns its value (NULL when absent). */
void *strmap_del(strmap_t *m, const char *key, size_t len);
size_t strmap_size(const strmap_t *m);
/* The map's hash of a key (64-bit FNV-1a), also for callers that spread names over buckets. */
uint64_t strmap_hash(const char *key, size_t len);
/* Calls fn for every entry; fn must not modify the map. */
void strmap_foreach(const strmap_t *m,
                    void (*fn)(const char *key, size_t len, void *value, void *arg), void *arg);

#endif
