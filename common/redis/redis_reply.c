/* redis_reply: see redis_reply.h. */
#include "common/redis/redis_reply.h"

#include <errno.h>
#include <hiredis/read.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/decimal.h"
#include "common/xalloc.h"

/*
 * The reader's reply objects come from an arena of its own instead of one malloc and free per
 * element: a paced read's reply is a few hundred objects (an array, an id and the fields of each
 * entry), and their malloc and free showed in the worker's profile. The arena is emptied when the
 * reply has been handled (redis_reply_release); the first chunk is kept for the next reply, a
 * larger one made for a large reply is returned at once. The objects are laid out as hiredis'
 * own (redisReply), so readers of a reply see no difference. createArray is bounded.
 */
#define ARENA_CHUNK 65536

typedef struct chunk {
    struct chunk *next;
    size_t cap, used;
    max_align_t mem[];
} chunk_t;

typedef struct arena_reader {
    redisReplyObjectFunctions fns;
    chunk_t *chunks; /* the one being filled first */
} arena_reader_t;

static void *arena_alloc(arena_reader_t *a, size_t n)
{
    n = (n + sizeof(max_align_t) - 1) & ~(sizeof(max_align_t) - 1);
    chunk_t *c = a->chunks;
    if (!c || c->cap - c->used < n) {
        size_t cap = n > ARENA_CHUNK ? n : ARENA_CHUNK;
        c = xmalloc(sizeof(*c) + cap);
        c->cap = cap;
        c->used = 0;
        c->next = a->chunks;
        a->chunks = c;
    }
    void *p = (char *)c->mem + c->used;
    c->used += n;
    return p;
}

/* A zeroed reply of the task's type, stored in its parent's element table. */
static redisReply *new_reply(const redisReadTask *task, int type)
{
    redisReply *r = arena_alloc(task->privdata, sizeof(*r));
    memset(r, 0, sizeof(*r));
    r->type = type;
    if (task->parent) {
        redisReply *parent = task->parent->obj;
        parent->element[task->idx] = r;
    }
    return r;
}

static void *create_string(const redisReadTask *task, char *str, size_t len)
{
    redisReply *r = new_reply(task, task->type);
    r->str = arena_alloc(task->privdata, len + 1);
    memcpy(r->str, str, len);
    r->str[len] = '\0';
    r->len = len;
    return r;
}

static void *create_array(const redisReadTask *task, int elements)
{
    if (elements < 0 || elements > REDIS_REPLY_MAX_ELEMENTS)
        return NULL;
    redisReply *r = new_reply(task, REDIS_REPLY_ARRAY);
    r->elements = (size_t)elements;
    if (elements > 0) {
        r->element = arena_alloc(task->privdata, (size_t)elements * sizeof(*r->element));
        memset(r->element, 0, (size_t)elements * sizeof(*r->element));
    }
    return r;
}

static void *create_integer(const redisReadTask *task, long long value)
{
    redisReply *r = new_reply(task, REDIS_REPLY_INTEGER);
    r->integer = value;
    return r;
}

static void *create_nil(const redisReadTask *task)
{
    return new_reply(task, REDIS_REPLY_NIL);
}

/* Objects die with the arena (a reader error, a reader freed with a reply half read). */
static void free_object(void *obj)
{
    (void)obj;
}

redisReader *redis_reply_reader_new(void)
{
    arena_reader_t *a = xcalloc(1, sizeof(*a));
    a->fns = (redisReplyObjectFunctions){create_string, create_array, create_integer, create_nil,
                                         free_object};
    redisReader *r = redisReaderCreateWithFunctions(&a->fns);
    if (!r)
        xalloc_die(0);
    r->privdata = a;
    return r;
}

void redis_reply_release(redisReader *r)
{
    arena_reader_t *a = r->privdata;
    chunk_t *keep = NULL;
    for (chunk_t *c = a->chunks, *next; c; c = next) {
        next = c->next;
#ifndef __SANITIZE_ADDRESS__ /* under ASan every chunk goes back: a kept reference is caught */
        if (!keep && c->cap == ARENA_CHUNK) {
            keep = c;
            continue;
        }
#endif
        free(c);
    }
    if (keep) {
        keep->used = 0;
        keep->next = NULL;
    }
    a->chunks = keep;
}

void redis_reply_reader_free(redisReader *r)
{
    if (!r)
        return;
    arena_reader_t *a = r->privdata;
    redisReaderFree(r);
    for (chunk_t *c = a->chunks, *next; c; c = next) {
        next = c->next;
        free(c);
    }
    free(a);
}

static bool has_word(const char *s, size_t len, const char *w)
{
    size_t n = strlen(w);
    return len >= n && memcmp(s, w, n) == 0 && (len == n || s[n] == ' ');
}

static int port_of(const char *s, size_t n, int *port)
{
    unsigned v;
    if (redis_parse_uint(s, n, 65535, &v) || v == 0)
        return -EPROTO;
    *port = (int)v;
    return 0;
}

/* A host as Redis prints it: a name, IPv4, or IPv6 without brackets. Empty is allowed. */
static int host_of(const char *s, size_t n, redis_addr_t *out)
{
    if (n >= sizeof(out->host))
        return -EPROTO;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '.' || c == '_' || c == ':';
        if (!ok)
            return -EPROTO;
    }
    memcpy(out->host, s, n);
    out->host[n] = '\0';
    return 0;
}

/* "<slot> <host>:<port>" after MOVED / ASK. */
static int parse_redirect(const char *s, size_t len, redis_redirect_t *out)
{
    const char *sp = memchr(s, ' ', len);
    unsigned slot;
    if (!sp || redis_parse_uint(s, (size_t)(sp - s), 16383, &slot))
        return -EPROTO;
    const char *a = sp + 1;
    size_t alen = len - (size_t)(a - s);
    const char *colon = NULL;
    for (const char *p = a; p < a + alen; p++) {
        if (*p == ':')
            colon = p;
    }
    if (!colon)
        return -EPROTO;
    redis_redirect_t r = {.slot = slot};
    if (host_of(a, (size_t)(colon - a), &r.addr) ||
        port_of(colon + 1, alen - (size_t)(colon + 1 - a), &r.addr.port))
        return -EPROTO;
    *out = r;
    return 0;
}

redis_fault_t redis_reply_fault(const redisReply *r, redis_redirect_t *redir)
{
    if (!r || r->type != REDIS_REPLY_ERROR || !r->str)
        return REDIS_FAULT_NONE;
    const char *s = r->str;
    size_t n = r->len;
    static const struct {
        const char *word;
        redis_fault_t fault;
    } simple[] = {
        {"TRYAGAIN", REDIS_FAULT_TRYAGAIN}, {"CLUSTERDOWN", REDIS_FAULT_CLUSTERDOWN},
        {"READONLY", REDIS_FAULT_READONLY}, {"NOAUTH", REDIS_FAULT_NOAUTH},
        {"LOADING", REDIS_FAULT_LOADING},   {"MASTERDOWN", REDIS_FAULT_MASTERDOWN},
    };
    for (size_t i = 0; i < sizeof(simple) / sizeof(simple[0]); i++) {
        if (has_word(s, n, simple[i].word))
            return simple[i].fault;
    }
    bool moved = has_word(s, n, "MOVED");
    if (!moved && !has_word(s, n, "ASK"))
        return REDIS_FAULT_OTHER;
    size_t skip = moved ? 6 : 4;
    redis_redirect_t tmp;
    if (n <= skip || parse_redirect(s + skip, n - skip, redir ? redir : &tmp))
        return REDIS_FAULT_OTHER;
    return moved ? REDIS_FAULT_MOVED : REDIS_FAULT_ASK;
}

static bool is_str(const redisReply *r)
{
    return r->type == REDIS_REPLY_STRING;
}

static bool word_is(const redisReply *r, const char *w)
{
    return is_str(r) && r->len == strlen(w) && memcmp(r->str, w, r->len) == 0;
}

/* The kind from a word's first letter: "s..." shard, "p..." pattern, else channel. */
static int kind_of(const redisReply *w, const char *base, redis_sub_kind_t *kind)
{
    if (word_is(w, base)) {
        *kind = REDIS_SUB_CHANNEL;
        return 0;
    }
    if (!is_str(w) || w->len != strlen(base) + 1 || strcmp(w->str + 1, base) != 0)
        return -EPROTO;
    if (w->str[0] == 'p')
        *kind = REDIS_SUB_PATTERN;
    else if (w->str[0] == 's')
        *kind = REDIS_SUB_SHARD;
    else
        return -EPROTO;
    return 0;
}

/* One element of an array, as far as a pub/sub message needs it: a bulk string or not. */
typedef struct elem {
    const char *p; /* NULL: not a bulk string */
    size_t len;
} elem_t;

static bool elem_is(const elem_t *e, const char *w)
{
    return e->p && e->len == strlen(w) && memcmp(e->p, w, e->len) == 0;
}

/* message [channel, data], smessage [channel, data], pmessage [pattern, channel, data]: 0 and
 * *out, or -EPROTO. The one reading of a message, from a reply or from raw RESP. */
static int message_of(const elem_t *e, size_t n, redis_push_t *out)
{
    if (n == 4 && elem_is(&e[0], "pmessage")) {
        if (!e[1].p || !e[2].p || !e[3].p)
            return -EPROTO;
        *out = (redis_push_t){REDIS_PUSH_MESSAGE,
                              REDIS_SUB_PATTERN,
                              e[2].p,
                              e[2].len,
                              e[1].p,
                              e[1].len,
                              e[3].p,
                              e[3].len};
        return 0;
    }
    if (n != 3 || !(elem_is(&e[0], "message") || elem_is(&e[0], "smessage")))
        return -EPROTO;
    if (!e[1].p || !e[2].p)
        return -EPROTO;
    redis_sub_kind_t kind = e[0].p[0] == 's' ? REDIS_SUB_SHARD : REDIS_SUB_CHANNEL;
    *out = (redis_push_t){REDIS_PUSH_MESSAGE, kind, e[1].p, e[1].len, NULL, 0, e[2].p, e[2].len};
    return 0;
}

int redis_reply_push(const redisReply *r, redis_push_t *out)
{
    memset(out, 0, sizeof(*out));
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 2 || !is_str(r->element[0]))
        return -EPROTO;
    redisReply **e = r->element;
    redis_sub_kind_t kind;
    if (r->elements == 2 && word_is(e[0], "pong")) {
        out->type = REDIS_PUSH_PONG;
        return 0;
    }
    if (r->elements == 3 || r->elements == 4) {
        elem_t el[4];
        for (size_t i = 0; i < r->elements; i++)
            el[i] = (elem_t){is_str(e[i]) ? e[i]->str : NULL, is_str(e[i]) ? e[i]->len : 0};
        if (message_of(el, r->elements, out) == 0)
            return 0;
        memset(out, 0, sizeof(*out));
    }
    if (r->elements != 3)
        return -EPROTO;
    redis_push_type_t type;
    if (kind_of(e[0], "subscribe", &kind) == 0)
        type = REDIS_PUSH_SUBSCRIBE;
    else if (kind_of(e[0], "unsubscribe", &kind) == 0)
        type = REDIS_PUSH_UNSUBSCRIBE;
    else
        return -EPROTO;
    /* the channel is nil when unsubscribing from nothing */
    if (e[2]->type != REDIS_REPLY_INTEGER || (!is_str(e[1]) && e[1]->type != REDIS_REPLY_NIL))
        return -EPROTO;
    out->type = type;
    out->kind = kind;
    if (is_str(e[1])) {
        out->channel = e[1]->str;
        out->channel_len = e[1]->len;
    }
    return 0;
}

int redis_reply_role(const redisReply *r)
{
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 1)
        return -EPROTO;
    const redisReply *w = r->element[0];
    if (word_is(w, "master"))
        return REDIS_ROLE_MASTER;
    if (word_is(w, "slave"))
        return REDIS_ROLE_REPLICA;
    if (word_is(w, "sentinel"))
        return REDIS_ROLE_SENTINEL;
    return -EPROTO;
}

int redis_reply_addr(const redisReply *r, redis_addr_t *out)
{
    if (!r)
        return -EPROTO;
    if (r->type == REDIS_REPLY_NIL)
        return -ENOENT;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 || !is_str(r->element[0]) ||
        !is_str(r->element[1]) || r->element[0]->len == 0)
        return -EPROTO;
    redis_addr_t a;
    if (host_of(r->element[0]->str, r->element[0]->len, &a) ||
        port_of(r->element[1]->str, r->element[1]->len, &a.port))
        return -EPROTO;
    *out = a;
    return 0;
}

int redis_reply_switch_master(const char *msg, size_t len, const char *name, redis_addr_t *out)
{
    const char *tok[5];
    size_t tlen[5];
    size_t n = 0;
    for (size_t i = 0; i < len;) {
        size_t j = i;
        while (j < len && msg[j] != ' ')
            j++;
        if (j == i || n == 5)
            return -EPROTO;
        tok[n] = msg + i;
        tlen[n++] = j - i;
        i = j + 1;
        if (j + 1 == len)
            return -EPROTO; /* a trailing blank */
    }
    if (n != 5)
        return -EPROTO;
    redis_addr_t a;
    if (tlen[3] == 0 || host_of(tok[3], tlen[3], &a) || port_of(tok[4], tlen[4], &a.port))
        return -EPROTO;
    if (tlen[0] != strlen(name) || memcmp(tok[0], name, tlen[0]) != 0)
        return -ENOENT;
    *out = a;
    return 0;
}

/* ---- raw RESP2 ---- */

#define SCAN_MAX_DEPTH 7 /* hiredis' own limit on nested arrays */

/* The line at p[*pos] ("...\r\n"): *end = its length without CRLF, *pos past it. */
static int scan_line(const char *p, size_t n, size_t *pos, size_t *end)
{
    for (size_t i = *pos; i + 1 < n; i++) {
        if (p[i] == '\r' && p[i + 1] == '\n') {
            *end = i - *pos;
            *pos = i + 2;
            return 0;
        }
    }
    return -EAGAIN;
}

/* A number line as Redis writes it: "0", or digits without a leading zero after an optional '-'
 * (what hiredis accepts, at most 18 digits). */
static int scan_num(const char *p, size_t n, size_t *pos, long long *v)
{
    size_t start = *pos, len;
    int rc = scan_line(p, n, pos, &len);
    if (rc) /* a number has at most 20 characters: longer is garbage, not a slow server */
        return n - start > 21 ? -EPROTO : rc;
    const char *d = p + start;
    bool neg = len > 0 && d[0] == '-';
    d += neg;
    len -= neg;
    uint64_t x;
    if (len == 0 || (d[0] == '0' && (len > 1 || neg)) || decimal_read(d, len, 18, &x) != len)
        return -EPROTO;
    *v = neg ? -(long long)x : (long long)x;
    return 0;
}

/* A length: a number, -1 (nil) the only negative one. */
static int scan_len(const char *p, size_t n, size_t *pos, long long *v)
{
    int rc = scan_num(p, n, pos, v);
    return rc == 0 && *v < -1 ? -EPROTO : rc;
}

/* One item at p[*pos]; *str set for a bulk string (else NULL). */
static int scan_item(const char *p, size_t n, size_t *pos, int depth, elem_t *str)
{
    str->p = NULL;
    str->len = 0;
    if (*pos >= n)
        return -EAGAIN;
    char type = p[(*pos)++];
    long long v;
    size_t len;
    int rc;
    switch (type) {
    case '+':
    case '-':
        return scan_line(p, n, pos, &len);
    case ':':
        return scan_num(p, n, pos, &v);
    case '$':
        if ((rc = scan_len(p, n, pos, &v)) || v < 0)
            return rc;
        if ((unsigned long long)v + 2 > n - *pos)
            return -EAGAIN;
        if (p[*pos + (size_t)v] != '\r' || p[*pos + (size_t)v + 1] != '\n')
            return -EPROTO;
        *str = (elem_t){p + *pos, (size_t)v};
        *pos += (size_t)v + 2;
        return 0;
    case '*':
        if ((rc = scan_len(p, n, pos, &v)) || v < 0)
            return rc;
        if (v > REDIS_REPLY_MAX_ELEMENTS || depth >= SCAN_MAX_DEPTH)
            return -EPROTO;
        for (long long i = 0; i < v; i++) {
            elem_t e;
            if ((rc = scan_item(p, n, pos, depth + 1, &e)))
                return rc;
        }
        return 0;
    default:
        return -EPROTO;
    }
}

int redis_reply_scan(const char *p, size_t n, size_t *used, redis_push_t *msg)
{
    memset(msg, 0, sizeof(*msg));
    size_t pos = 0;
    elem_t el[4];
    size_t nel = 0;
    int rc;
    if (n > 0 && p[0] == '*') {
        /* an array: its first four elements are kept, for a message */
        long long v;
        pos = 1;
        if ((rc = scan_len(p, n, &pos, &v)))
            return rc;
        if (v > REDIS_REPLY_MAX_ELEMENTS)
            return -EPROTO;
        for (long long i = 0; i < v; i++) {
            elem_t e;
            if ((rc = scan_item(p, n, &pos, 1, &e)))
                return rc;
            if (nel < 4)
                el[nel++] = e;
        }
        if (v == 3 || v == 4)
            message_of(el, (size_t)v, msg);
        if (msg->type != REDIS_PUSH_MESSAGE)
            memset(msg, 0, sizeof(*msg));
    } else {
        elem_t e;
        if ((rc = scan_item(p, n, &pos, 0, &e)))
            return rc;
    }
    *used = pos;
    return 0;
}
