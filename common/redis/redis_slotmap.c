/* redis_slotmap: see redis_slotmap.h. */
#include "common/redis/redis_slotmap.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/redis/redis_slot.h"
#include "common/xalloc.h"

#define MAX_NODES 4096 /* far above any real cluster; bounds what a hostile reply costs */

typedef struct node {
    redis_addr_t addr;
    bool master;
} node_t;

struct redis_slotmap {
    node_t *nodes;
    size_t n, cap;
    int16_t owner[REDIS_SLOTS]; /* node index, -1 = none */
};

redis_slotmap_t *redis_slotmap_new(void)
{
    redis_slotmap_t *m = xcalloc(1, sizeof(*m));
    memset(m->owner, 0xff, sizeof(m->owner));
    return m;
}

void redis_slotmap_free(redis_slotmap_t *m)
{
    if (!m)
        return;
    free(m->nodes);
    free(m);
}

int redis_slotmap_find(const redis_slotmap_t *m, const redis_addr_t *addr)
{
    for (size_t i = 0; i < m->n; i++) {
        if (m->nodes[i].addr.port == addr->port && strcmp(m->nodes[i].addr.host, addr->host) == 0)
            return (int)i;
    }
    return -1;
}

/* The index of addr, added when new; -1 past MAX_NODES. */
static int intern(redis_slotmap_t *m, const redis_addr_t *addr, bool master)
{
    int i = redis_slotmap_find(m, addr);
    if (i < 0) {
        if (m->n == MAX_NODES)
            return -1;
        if (m->n == m->cap) {
            m->cap = m->cap ? m->cap * 2 : 8;
            m->nodes = xrealloc(m->nodes, m->cap * sizeof(*m->nodes));
        }
        m->nodes[m->n] = (node_t){.addr = *addr};
        i = (int)m->n++;
    }
    if (master)
        m->nodes[i].master = true;
    return i;
}

/* [host, port, id?, ...] into *out: 0, 1 when the node has no usable endpoint, -EPROTO. */
static int read_node(const redisReply *r, const redis_addr_t *asked, redis_addr_t *out)
{
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 2 ||
        r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_INTEGER)
        return -EPROTO;
    const redisReply *h = r->element[0];
    long long port = r->element[1]->integer;
    if (port < 0 || port > 65535 || h->len >= sizeof(out->host) || memchr(h->str, '\0', h->len))
        return -EPROTO;
    if (port == 0 || (h->len == 1 && h->str[0] == '?'))
        return 1;
    if (h->len == 0)
        memcpy(out->host, asked->host, sizeof(out->host));
    else
        memcpy(out->host, h->str, h->len + 1);
    for (const char *c = out->host; *c; c++) {
        if ((unsigned char)*c <= ' ' || *c == 0x7f)
            return -EPROTO;
    }
    out->port = (int)port;
    return 0;
}

static int read_range(redis_slotmap_t *m, const redisReply *r, const redis_addr_t *asked)
{
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 3 ||
        r->element[0]->type != REDIS_REPLY_INTEGER || r->element[1]->type != REDIS_REPLY_INTEGER)
        return -EPROTO;
    long long lo = r->element[0]->integer, hi = r->element[1]->integer;
    if (lo < 0 || hi < lo || hi >= REDIS_SLOTS)
        return -EPROTO;
    int master = -1;
    for (size_t i = 2; i < r->elements; i++) {
        redis_addr_t a;
        int rc = read_node(r->element[i], asked, &a);
        if (rc < 0)
            return rc;
        if (rc > 0)
            continue;
        int idx = intern(m, &a, i == 2);
        if (idx < 0)
            return -EPROTO;
        if (i == 2)
            master = idx;
    }
    if (master >= 0) {
        for (long long s = lo; s <= hi; s++)
            m->owner[s] = (int16_t)master;
    }
    return 0;
}

int redis_slotmap_parse(const redisReply *r, const redis_addr_t *asked, redis_slotmap_t **out)
{
    if (!r || r->type != REDIS_REPLY_ARRAY)
        return -EPROTO;
    redis_slotmap_t *m = redis_slotmap_new();
    for (size_t i = 0; i < r->elements; i++) {
        if (read_range(m, r->element[i], asked)) {
            redis_slotmap_free(m);
            return -EPROTO;
        }
    }
    *out = m;
    return 0;
}

int redis_slotmap_owner(const redis_slotmap_t *m, unsigned slot)
{
    return slot < REDIS_SLOTS ? m->owner[slot] : -1;
}

bool redis_slotmap_complete(const redis_slotmap_t *m)
{
    for (unsigned s = 0; s < REDIS_SLOTS; s++) {
        if (m->owner[s] < 0)
            return false;
    }
    return true;
}

size_t redis_slotmap_count(const redis_slotmap_t *m)
{
    return m->n;
}

const redis_addr_t *redis_slotmap_addr(const redis_slotmap_t *m, size_t i)
{
    return &m->nodes[i].addr;
}

bool redis_slotmap_is_master(const redis_slotmap_t *m, size_t i)
{
    return m->nodes[i].master;
}

void redis_slotmap_move(redis_slotmap_t *m, unsigned slot, const redis_addr_t *addr)
{
    if (slot >= REDIS_SLOTS)
        return;
    int idx = intern(m, addr, true);
    if (idx >= 0)
        m->owner[slot] = (int16_t)idx;
}

bool redis_slotmap_same(const redis_slotmap_t *a, const redis_slotmap_t *b)
{
    for (unsigned s = 0; s < REDIS_SLOTS; s++) {
        int x = a->owner[s], y = b->owner[s];
        if ((x < 0) != (y < 0))
            return false;
        if (x < 0)
            continue;
        const redis_addr_t *p = &a->nodes[x].addr, *q = &b->nodes[y].addr;
        if (p->port != q->port || strcmp(p->host, q->host) != 0)
            return false;
    }
    return true;
}
