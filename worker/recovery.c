/* recovery: see recovery.h. */
#include "worker/recovery.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

static bool parse_u64(const char *p, size_t len, uint64_t *out)
{
    if (len == 0 || len > 20)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (p[i] < '0' || p[i] > '9')
            return false;
        uint64_t d = (uint64_t)(p[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

/* Splits an id into ms and seq (seq 0 when absent). */
static bool split_id(const char *id, size_t len, uint64_t *ms, uint64_t *seq)
{
    const char *dash = memchr(id, '-', len);
    *seq = 0;
    if (!dash)
        return parse_u64(id, len, ms);
    return parse_u64(id, (size_t)(dash - id), ms) &&
           parse_u64(dash + 1, len - (size_t)(dash - id) - 1, seq);
}

bool recovery_id_valid(const char *id, size_t len)
{
    uint64_t ms, seq;
    return len <= RECOVERY_ID_MAX && split_id(id, len, &ms, &seq);
}

int recovery_id_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
    uint64_t am, as, bm, bs;
    bool av = alen <= RECOVERY_ID_MAX && split_id(a, alen, &am, &as);
    bool bv = blen <= RECOVERY_ID_MAX && split_id(b, blen, &bm, &bs);
    if (!av || !bv)
        return (int)av - (int)bv;
    if (am != bm)
        return am < bm ? -1 : 1;
    if (as != bs)
        return as < bs ? -1 : 1;
    return 0;
}

static int put_netstring(buf_t *out, const char *p, size_t len)
{
    int rc = buf_printf(out, "%zu:", len);
    if (!rc)
        rc = buf_append(out, p, len);
    if (!rc)
        rc = buf_putc(out, ',');
    return rc;
}

int recovery_encode(buf_t *out, const char *sid, size_t sid_len, const char *offset,
                    size_t offset_len, const recovery_str_t *rooms, size_t nrooms)
{
    if (sid_len == 0 || (offset_len && !recovery_id_valid(offset, offset_len)))
        return -EINVAL;
    int rc = buf_putc(out, '1');
    if (!rc)
        rc = put_netstring(out, sid, sid_len);
    if (!rc)
        rc = put_netstring(out, offset, offset_len);
    for (size_t i = 0; !rc && i < nrooms; i++)
        rc = put_netstring(out, rooms[i].p, rooms[i].len);
    return rc;
}

/* Reads one netstring at *pos; false when malformed or truncated. */
static bool get_netstring(const char *p, size_t len, size_t *pos, recovery_str_t *s)
{
    size_t i = *pos, n = 0, digits = 0;
    while (i < len && p[i] >= '0' && p[i] <= '9') {
        if (++digits > 9)
            return false;
        n = n * 10 + (size_t)(p[i++] - '0');
    }
    if (digits == 0 || i >= len || p[i] != ':' || len - i - 1 < n + 1 || p[i + 1 + n] != ',')
        return false;
    s->p = p + i + 1;
    s->len = n;
    *pos = i + 2 + n;
    return true;
}

int recovery_decode(const char *p, size_t len, recovery_str_t *sid, recovery_str_t *offset,
                    void (*room)(void *arg, const char *name, size_t len), void *arg)
{
    size_t pos = 1;
    if (len < 1 || p[0] != '1' || !get_netstring(p, len, &pos, sid) || sid->len == 0 ||
        !get_netstring(p, len, &pos, offset) ||
        (offset->len && !recovery_id_valid(offset->p, offset->len)))
        return -EPROTO;
    /* validate every room before reporting any */
    size_t start = pos;
    recovery_str_t r;
    while (pos < len) {
        if (!get_netstring(p, len, &pos, &r))
            return -EPROTO;
    }
    for (pos = start; pos < len && get_netstring(p, len, &pos, &r);) {
        if (room)
            room(arg, r.p, r.len);
    }
    return 0;
}

int recovery_key(buf_t *out, const char *prefix, const char *pid, size_t pid_len)
{
    int rc = buf_puts(out, prefix);
    if (!rc)
        rc = buf_puts(out, ":recovery:");
    if (!rc)
        rc = buf_append(out, pid, pid_len);
    return rc;
}

int recovery_replay_argv(const char *room, size_t room_len, const char *offset, size_t offset_len,
                         const char *count, char *excl, size_t excl_cap, const char **argv,
                         size_t *lens)
{
    if (!recovery_id_valid(offset, offset_len) || offset_len + 2 > excl_cap)
        return -EINVAL;
    excl[0] = '(';
    memcpy(excl + 1, offset, offset_len);
    excl[offset_len + 1] = '\0';
    const char *v[] = {"XRANGE", room, excl, "+", "COUNT", count};
    size_t l[] = {6, room_len, offset_len + 1, 1, 5, strlen(count)};
    for (size_t i = 0; i < 6; i++) {
        argv[i] = v[i];
        lens[i] = l[i];
    }
    return 0;
}
