/* streams_msg: see streams_msg.h. */
#include "common/proto/streams_msg.h"

#include <errno.h>
#include <string.h>

#include "common/base64.h"
#include "common/decimal.h"
#include "common/mpack.h"

/* ------------------------------------------------------------------ stream of a namespace */

/* The next code point of UTF-8 text at p[*i]; an invalid byte is U+FFFD, one byte consumed. */
static uint32_t next_code_point(const unsigned char *p, size_t len, size_t *i)
{
    static const uint32_t least[] = {0, 0x80, 0x800, 0x10000}; /* no overlong forms */
    unsigned char c = p[*i];
    size_t need;
    uint32_t cp;
    if (c < 0x80) {
        (*i)++;
        return c;
    }
    if (c >= 0xc2 && c <= 0xdf) {
        need = 1;
        cp = c & 0x1fu;
    } else if (c >= 0xe0 && c <= 0xef) {
        need = 2;
        cp = c & 0x0fu;
    } else if (c >= 0xf0 && c <= 0xf4) {
        need = 3;
        cp = c & 0x07u;
    } else {
        (*i)++;
        return 0xfffd;
    }
    if (len - *i <= need) {
        (*i)++;
        return 0xfffd;
    }
    for (size_t k = 1; k <= need; k++) {
        unsigned char d = p[*i + k];
        if ((d & 0xc0) != 0x80) {
            (*i)++;
            return 0xfffd;
        }
        cp = cp << 6 | (d & 0x3fu);
    }
    if (cp < least[need] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
        (*i)++;
        return 0xfffd;
    }
    *i += need + 1;
    return cp;
}

int streams_msg_stream_index(const char *nsp, size_t len, int count)
{
    const unsigned char *p = (const unsigned char *)nsp;
    uint32_t hash = 0; /* JavaScript's `hash |= 0`: 32-bit two's complement arithmetic */
    for (size_t i = 0; i < len;) {
        uint32_t cp = next_code_point(p, len, &i);
        if (cp > 0xffff) { /* a surrogate pair: two code units, as charCodeAt sees them */
            cp -= 0x10000;
            hash = hash * 31u + (0xd800u + (cp >> 10));
            hash = hash * 31u + (0xdc00u + (cp & 0x3ffu));
        } else {
            hash = hash * 31u + cp;
        }
    }
    return (int)((int32_t)hash % count); /* C and JavaScript both truncate towards zero */
}

void streams_msg_stream_name(buf_t *out, const char *name, int count, const char *nsp, size_t len)
{
    buf_puts(out, name);
    if (count > 1)
        buf_printf(out, "-%d", streams_msg_stream_index(nsp, len, count));
}

/* ------------------------------------------------------------------ stream entries */

/* The adapter turns an entry's fields into an object: a repeated name keeps its last value. */
static const payload_field_t *field(const payload_field_t *f, size_t n, const char *name)
{
    const payload_field_t *hit = NULL;
    size_t len = strlen(name);
    for (size_t i = 0; i < n; i++) {
        if (f[i].name_len == len && memcmp(f[i].name, name, len) == 0)
            hit = &f[i];
    }
    return hit;
}

/* The decimal text the adapter writes for a type (`type.toString()`), 0..999. */
static int parse_type(const payload_field_t *t, int64_t *out)
{
    uint64_t v;
    if (t->value_len == 0 || decimal_read(t->value, t->value_len, 3, &v) != t->value_len)
        return -EPROTO;
    *out = (int64_t)v;
    return 0;
}

int streams_msg_decode_entry(const payload_field_t *f, size_t n, buf_t *scratch, buf_t *bin,
                             adapter_msg_t *m)
{
    memset(m, 0, sizeof(*m));
    m->packet_type = -1;
    buf_reset(scratch);
    buf_reset(bin);
    const payload_field_t *nsp = field(f, n, "nsp"), *uid = field(f, n, "uid");
    const payload_field_t *type = field(f, n, "type"), *data = field(f, n, "data");
    if (!nsp || nsp->value_len == 0)
        return -ENOMSG;
    int64_t t;
    if (!uid || !type || parse_type(type, &t))
        return -EPROTO;
    const uint8_t *d = NULL;
    size_t dlen = 0;
    if (data && data->value_len && data->value[0] == '{') {
        d = (const uint8_t *)data->value;
        dlen = data->value_len;
    } else if (data && data->value_len) {
        if (base64_decode(bin, data->value, data->value_len) || bin->len == 0 ||
            bin->data[0] == '{')
            return -EPROTO; /* '{' here would be read as JSON: it is no msgpack map anyway */
        d = (const uint8_t *)bin->data;
        dlen = bin->len;
    }
    adapter_str_t u = {uid->value, uid->value_len}, ns = {nsp->value, nsp->value_len};
    return adapter_msg_decode_cluster_parts(&u, &ns, t, d, dlen, scratch, m);
}

/* ------------------------------------------------------------------ sessions */

static int put_str(buf_t *out, const char *key, const char *s, size_t len)
{
    (void)mpack_write_str(out, key, strlen(key));
    return mpack_write_str(out, s, len);
}

int streams_msg_encode_session(buf_t *out, const char *sid, size_t sid_len, const char *pid,
                               size_t pid_len, const adapter_str_t *rooms, size_t n,
                               const uint8_t *data_mpack, size_t data_len)
{
    buf_t mp;
    buf_init(&mp);
    mpack_write_map(&mp, 4);
    int rc = put_str(&mp, "sid", sid, sid_len);
    if (!rc)
        rc = put_str(&mp, "pid", pid, pid_len);
    if (!rc && n > UINT32_MAX)
        rc = -E2BIG;
    if (!rc) {
        (void)mpack_write_str(&mp, "rooms", 5);
        mpack_write_array(&mp, (uint32_t)n);
    }
    for (size_t i = 0; !rc && i < n; i++)
        rc = mpack_write_str(&mp, rooms[i].p, rooms[i].len);
    if (!rc) {
        (void)mpack_write_str(&mp, "data", 4);
        if (data_mpack)
            buf_append(&mp, data_mpack, data_len);
        else
            mpack_write_map(&mp, 0);
        base64_encode(out, mp.data, mp.len);
    }
    buf_free(&mp);
    return rc;
}

static bool key_is(const mpack_item_t *k, const char *s)
{
    return k->type == MPACK_STR && k->len == strlen(s) && memcmp(k->p, s, k->len) == 0;
}

static int read_string(mpack_reader_t *r, adapter_str_t *out)
{
    mpack_item_t it;
    int rc = mpack_read(r, &it);
    if (rc || it.type != MPACK_STR)
        return -EPROTO;
    out->p = (const char *)it.p;
    out->len = it.len;
    return 0;
}

/* An array of strings: remembered as its bytes, each item checked. */
static int read_rooms(mpack_reader_t *r, streams_session_t *s)
{
    mpack_item_t it;
    const uint8_t *start = r->p;
    if (mpack_read(r, &it) || it.type != MPACK_ARRAY)
        return -EPROTO;
    for (uint32_t i = 0; i < it.count; i++) {
        adapter_str_t room;
        if (read_string(r, &room))
            return -EPROTO;
    }
    s->rooms = start;
    s->rooms_len = (size_t)(r->p - start);
    s->nrooms = it.count;
    return 0;
}

int streams_msg_decode_session(const char *p, size_t len, buf_t *bin, streams_session_t *out)
{
    memset(out, 0, sizeof(*out));
    buf_reset(bin);
    if (base64_decode(bin, p, len))
        return -EPROTO;
    mpack_reader_t r;
    mpack_item_t it;
    mpack_reader_init(&r, bin->data, bin->len);
    if (mpack_read(&r, &it) || it.type != MPACK_MAP)
        return -EPROTO;
    int rc = 0;
    for (uint32_t i = 0; !rc && i < it.count; i++) {
        mpack_item_t key;
        rc = mpack_read(&r, &key);
        if (!rc && (key.type == MPACK_ARRAY || key.type == MPACK_MAP))
            rc = -EPROTO; /* a container as a key: not from an encoder of a JavaScript object */
        if (rc)
            break;
        if (key_is(&key, "sid")) {
            rc = read_string(&r, &out->sid);
        } else if (key_is(&key, "pid")) {
            rc = read_string(&r, &out->pid);
        } else if (key_is(&key, "rooms")) {
            rc = read_rooms(&r, out);
        } else if (key_is(&key, "data")) {
            out->data = r.p;
            rc = mpack_skip(&r);
            out->data_len = (size_t)(r.p - out->data);
        } else {
            rc = mpack_skip(&r);
        }
    }
    if (rc || r.p != r.end || !out->sid.p || !out->pid.p || !out->rooms)
        return -EPROTO;
    return 0;
}

void streams_msg_session_rooms(const streams_session_t *s, streams_msg_room_fn fn, void *arg)
{
    mpack_reader_t r;
    mpack_item_t it;
    mpack_reader_init(&r, s->rooms, s->rooms_len);
    (void)mpack_read(&r, &it); /* checked when decoded */
    for (uint32_t i = 0; i < it.count; i++) {
        adapter_str_t room;
        if (read_string(&r, &room))
            return;
        fn(room.p, room.len, arg);
    }
}

static bool listed(const adapter_str_t *v, size_t n, const char *p, size_t len)
{
    for (size_t i = 0; i < n; i++) {
        if (v[i].len == len && memcmp(v[i].p, p, len) == 0)
            return true;
    }
    return false;
}

typedef struct missed {
    const adapter_msg_t *m;
    bool included, excluded;
} missed_t;

static void check_room(const char *room, size_t len, void *arg)
{
    missed_t *q = arg;
    q->included = q->included || listed(q->m->rooms, q->m->nrooms, room, len);
    q->excluded = q->excluded || listed(q->m->except, q->m->nexcept, room, len);
}

bool streams_msg_session_missed(const streams_session_t *s, const adapter_msg_t *m)
{
    missed_t q = {m, m->nrooms == 0, false};
    streams_msg_session_rooms(s, check_room, &q);
    return q.included && !q.excluded;
}
