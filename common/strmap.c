/* strmap: see strmap.h. Nodes carry the key inline so an entry is one allocation. */
#include "common/strmap.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"

typedef struct node {
    struct node *next;
    uint64_t hash;
    void *value;
    size_t len;
    char key[];
} node_t;

struct strmap {
    node_t **slots;
    size_t nslots; /* power of two */
    size_t size;
};

uint64_t strmap_hash(const char *p, size_t len)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)p[i];
        h *= 1099511628211ULL;
    }
    return h;
}

strmap_t *strmap_new(void)
{
    strmap_t *m = xcalloc(1, sizeof(*m));
    m->nslots = 16;
    m->slots = xcalloc(m->nslots, sizeof(*m->slots));
    return m;
}

/* Unlinks and frees every node, passing each value to free_value unless it is NULL. */
static void drop_all(strmap_t *m, void (*free_value)(void *))
{
    for (size_t i = 0; i < m->nslots; i++) {
        node_t *n = m->slots[i];
        m->slots[i] = NULL;
        while (n) {
            node_t *next = n->next;
            if (free_value)
                free_value(n->value);
            free(n);
            n = next;
        }
    }
    m->size = 0;
}

void strmap_free(strmap_t *m)
{
    if (!m)
        return;
    drop_all(m, NULL);
    free(m->slots);
    free(m);
}

void strmap_free_values(strmap_t *m, void (*free_value)(void *))
{
    if (m)
        drop_all(m, free_value ? free_value : free);
}

static node_t **find(const strmap_t *m, const char *key, size_t len, uint64_t h)
{
    node_t **pp = &m->slots[h & (m->nslots - 1)];
    while (*pp && !((*pp)->hash == h && (*pp)->len == len && memcmp((*pp)->key, key, len) == 0))
        pp = &(*pp)->next;
    return pp;
}

static void grow(strmap_t *m)
{
    size_t n = m->nslots * 2;
    node_t **slots = xcalloc(n, sizeof(*slots));
    for (size_t i = 0; i < m->nslots; i++) {
        node_t *e = m->slots[i];
        while (e) {
            node_t *next = e->next;
            e->next = slots[e->hash & (n - 1)];
            slots[e->hash & (n - 1)] = e;
            e = next;
        }
    }
    free(m->slots);
    m->slots = slots;
    m->nslots = n;
}

void strmap_put(strmap_t *m, const char *key, size_t len, void *value)
{
    uint64_t h = strmap_hash(key, len);
    node_t **pp = find(m, key, len, h);
    if (*pp) {
        (*pp)->value = value;
        return;
    }
    node_t *e = xmalloc(sizeof(*e) + len + 1);
    e->next = NULL;
    e->hash = h;
    e->value = value;
    e->len = len;
    memcpy(e->key, key, len);
    e->key[len] = '\0';
    *pp = e;
    if (++m->size > m->nslots)
        grow(m);
}

void *strmap_get(const strmap_t *m, const char *key, size_t len)
{
    node_t *e = *find(m, key, len, strmap_hash(key, len));
    return e ? e->value : NULL;
}

void *strmap_del(strmap_t *m, const char *key, size_t len)
{
    node_t **pp = find(m, key, len, strmap_hash(key, len));
    node_t *e = *pp;
    if (!e)
        return NULL;
    void *v = e->value;
    *pp = e->next;
    free(e);
    m->size--;
    return v;
}

size_t strmap_size(const strmap_t *m)
{
    return m->size;
}

void strmap_foreach(const strmap_t *m, void (*fn)(const char *, size_t, void *, void *), void *arg)
{
    for (size_t i = 0; i < m->nslots; i++) {
        for (node_t *e = m->slots[i]; e; e = e->next)
            fn(e->key, e->len, e->value, arg);
    }
}
