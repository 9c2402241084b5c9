/* recovery: see recovery.h. */
#include "worker/recovery/recovery.h"

#include <errno.h>
#include <stdatomic.h>
#include <string.h>

#include "common/decimal.h"

/* ---- the send log ---- */

static uint32_t log_first(const recovery_log_t *l)
{
    return l->count > RECOVERY_LOG_LEN ? l->count - RECOVERY_LOG_LEN : 0;
}

void recovery_log_add(recovery_log_t *l, uint32_t tag, stream_id_t id, stream_id_t prev)
{
    l->e[l->count % RECOVERY_LOG_LEN] = (recovery_send_t){tag, id, prev};
    /* a log kept in shared memory may be read after a kill between these two stores */
    atomic_signal_fence(memory_order_seq_cst);
    l->count++;
}

int recovery_log_locate(const recovery_log_t *l, const stream_id_t *offset, uint32_t *pos)
{
    if (!offset) {
        *pos = 0;
        return 0;
    }
    for (uint32_t k = log_first(l); k < l->count; k++) {
        if (stream_id_cmp(l->e[k % RECOVERY_LOG_LEN].id, *offset) == 0) {
            *pos = k + 1;
            return 0;
        }
    }
    return -ENOENT;
}

stream_id_t recovery_log_received(const recovery_log_t *l, uint32_t pos, const recovery_room_t *r)
{
    if (pos == 0)
        return r->first; /* nothing received, even when the log no longer holds the first sends */
    for (uint32_t k = pos; k < l->count; k++) {
        const recovery_send_t *e = &l->e[k % RECOVERY_LOG_LEN];
        if (e->tag == r->tag)
            return e->prev;
    }
    return r->last;
}

void recovery_log_truncate(recovery_log_t *l, uint32_t pos)
{
    if (pos < l->count)
        l->count = pos;
}

/* ---- the record ---- */

static void put_netstring(buf_t *out, const char *p, size_t len)
{
    buf_printf(out, "%zu:", len);
    buf_append(out, p, len);
    buf_putc(out, ',');
}

int recovery_encode(buf_t *out, const char *sid, size_t sid_len, const recovery_log_t *log,
                    const recovery_room_t *rooms, size_t nrooms)
{
    if (sid_len == 0)
        return -EINVAL;
    buf_t t;
    buf_init(&t);
    char a[STREAM_ID_MAX + 1], b[STREAM_ID_MAX + 1];
    buf_printf(&t, "%u", log->count);
    for (uint32_t k = log_first(log); k < log->count; k++) {
        const recovery_send_t *e = &log->e[k % RECOVERY_LOG_LEN];
        stream_id_format(e->id, a);
        stream_id_format(e->prev, b);
        buf_printf(&t, ";%u,%s,%s", e->tag, a, b);
    }
    buf_putc(out, '2');
    put_netstring(out, sid, sid_len);
    put_netstring(out, t.data, t.len);
    for (size_t i = 0; i < nrooms; i++) {
        buf_reset(&t);
        stream_id_format(rooms[i].first, a);
        stream_id_format(rooms[i].last, b);
        buf_printf(&t, "%u,%s,%s,", rooms[i].tag, a, b);
        buf_append(&t, rooms[i].name, rooms[i].len);
        put_netstring(out, t.data, t.len);
    }
    buf_free(&t);
    return 0;
}

/* Reads one netstring at *pos; false when malformed or truncated. */
static bool get_netstring(const char *p, size_t len, size_t *pos, const char **s, size_t *slen)
{
    size_t i = *pos;
    uint64_t n;
    size_t digits = decimal_read(p + i, len - i, 9, &n);
    i += digits;
    if (digits == 0 || i >= len || p[i] != ':' || len - i - 1 < n + 1 || p[i + 1 + n] != ',')
        return false;
    *s = p + i + 1;
    *slen = n;
    *pos = i + 2 + n;
    return true;
}

/* A cursor over separated fields; `done` once the last field was taken. */
typedef struct fields {
    const char *p;
    size_t len, pos;
    bool done;
} fields_t;

/* Takes the text up to the next `sep` (or the end). */
static bool next_field(fields_t *c, char sep, const char **f, size_t *flen)
{
    if (c->done)
        return false;
    const char *e = memchr(c->p + c->pos, sep, c->len - c->pos);
    size_t stop = e ? (size_t)(e - c->p) : c->len;
    *f = c->p + c->pos;
    *flen = stop - c->pos;
    c->pos = e ? stop + 1 : c->len;
    c->done = !e;
    return true;
}

static bool parse_u32(const char *p, size_t len, uint32_t *out)
{
    uint64_t v;
    if (!stream_id_parse_u64(p, len, &v) || v > UINT32_MAX)
        return false;
    *out = (uint32_t)v;
    return true;
}

static bool parse_id(const char *p, size_t len, stream_id_t *out)
{
    return len <= STREAM_ID_MAX && stream_id_parse(p, len, out);
}

static bool decode_log(const char *p, size_t len, recovery_log_t *l)
{
    fields_t c = {p, len, 0, false};
    const char *f, *g;
    size_t flen, glen;
    memset(l, 0, sizeof(*l));
    uint32_t count;
    if (!next_field(&c, ';', &f, &flen) || !parse_u32(f, flen, &count))
        return false;
    uint32_t kept = 0;
    while (!c.done) {
        recovery_send_t e;
        if (!next_field(&c, ';', &f, &flen) || kept == RECOVERY_LOG_LEN)
            return false;
        fields_t d = {f, flen, 0, false};
        if (!next_field(&d, ',', &g, &glen) || !parse_u32(g, glen, &e.tag) ||
            !next_field(&d, ',', &g, &glen) || !parse_id(g, glen, &e.id) ||
            !next_field(&d, ',', &g, &glen) || !parse_id(g, glen, &e.prev) || !d.done)
            return false;
        l->e[kept++] = e;
    }
    if (count > RECOVERY_LOG_LEN ? kept != RECOVERY_LOG_LEN : kept != count)
        return false;
    /* the sends were written oldest first: put them back in the slots the counter implies */
    recovery_send_t tmp[RECOVERY_LOG_LEN];
    memcpy(tmp, l->e, sizeof(tmp));
    for (uint32_t i = 0; i < kept; i++)
        l->e[(count - kept + i) % RECOVERY_LOG_LEN] = tmp[i];
    l->count = count;
    return true;
}

static bool decode_room(const char *p, size_t len, recovery_room_t *r)
{
    fields_t c = {p, len, 0, false};
    const char *f;
    size_t flen;
    if (!next_field(&c, ',', &f, &flen) || !parse_u32(f, flen, &r->tag) ||
        !next_field(&c, ',', &f, &flen) || !parse_id(f, flen, &r->first) ||
        !next_field(&c, ',', &f, &flen) || !parse_id(f, flen, &r->last) || c.done)
        return false;
    r->name = p + c.pos;
    r->len = len - c.pos;
    return true;
}

int recovery_decode(const char *p, size_t len, const char **sid, size_t *sid_len,
                    recovery_log_t *log, void (*room)(void *arg, const recovery_room_t *r),
                    void *arg)
{
    size_t pos = 1, llen, n;
    const char *lp, *s;
    if (len < 1 || p[0] != '2' || !get_netstring(p, len, &pos, sid, sid_len) || *sid_len == 0 ||
        !get_netstring(p, len, &pos, &lp, &llen) || !decode_log(lp, llen, log))
        return -EPROTO;
    /* validate every room before reporting any */
    size_t start = pos;
    recovery_room_t r;
    while (pos < len) {
        if (!get_netstring(p, len, &pos, &s, &n) || !decode_room(s, n, &r))
            return -EPROTO;
    }
    for (pos = start; pos < len && get_netstring(p, len, &pos, &s, &n);) {
        decode_room(s, n, &r);
        if (room)
            room(arg, &r);
    }
    return 0;
}

void recovery_key(buf_t *out, const char *prefix, const char *pid, size_t pid_len)
{
    buf_puts(out, prefix);
    buf_puts(out, ":recovery:");
    buf_append(out, pid, pid_len);
}

void recovery_replay_argv(const char *room, size_t room_len, stream_id_t after, const char *count,
                          char *excl, const char **argv, size_t *lens)
{
    excl[0] = '(';
    size_t n = stream_id_format(after, excl + 1);
    const char *v[] = {"XRANGE", room, excl, "+", "COUNT", count};
    size_t l[] = {6, room_len, n + 1, 1, 5, strlen(count)};
    for (size_t i = 0; i < 6; i++) {
        argv[i] = v[i];
        lens[i] = l[i];
    }
}
