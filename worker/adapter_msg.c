/* adapter_msg: redis-adapter broadcast messages: encode, bounded decode, client frame. */
#include "worker/adapter_msg.h"

#include <errno.h>
#include <math.h>
#include <string.h>

#include "common/mpack.h"

static int put_key(buf_t *out, const char *k)
{
    return mpack_write_str(out, k, strlen(k));
}

static int encode(buf_t *out, const char *uid, size_t uid_len, const char *nsp, size_t nsp_len,
                  const char *data_json, size_t data_len, const adapter_str_t *rooms, size_t nrooms)
{
    int rc = mpack_write_array(out, 3);
    if (!rc)
        rc = mpack_write_str(out, uid, uid_len);
    if (!rc)
        rc = mpack_write_map(out, 3);
    if (!rc)
        rc = put_key(out, "type");
    if (!rc)
        rc = mpack_write_uint(out, 2);
    if (!rc)
        rc = put_key(out, "data");
    if (!rc)
        rc = mpack_from_json(out, data_json, data_len);
    if (!rc)
        rc = put_key(out, "nsp");
    if (!rc)
        rc = mpack_write_str(out, nsp, nsp_len);
    if (!rc)
        rc = mpack_write_map(out, 3);
    if (!rc)
        rc = put_key(out, "rooms");
    if (!rc)
        rc = nrooms > UINT32_MAX ? -E2BIG : mpack_write_array(out, (uint32_t)nrooms);
    for (size_t i = 0; !rc && i < nrooms; i++)
        rc = mpack_write_str(out, rooms[i].p, rooms[i].len);
    if (!rc)
        rc = put_key(out, "except");
    if (!rc)
        rc = mpack_write_array(out, 0);
    if (!rc)
        rc = put_key(out, "flags");
    return rc ? rc : mpack_write_map(out, 0);
}

int adapter_msg_encode_broadcast(buf_t *out, const char *uid, size_t uid_len, const char *nsp,
                                 size_t nsp_len, const char *data_json, size_t data_len,
                                 const adapter_str_t *rooms, size_t nrooms)
{
    size_t mark = out->len;
    int rc = encode(out, uid, uid_len, nsp, nsp_len, data_json, data_len, rooms, nrooms);
    if (rc && out->data) {
        out->len = mark;
        out->data[mark] = '\0';
    }
    return rc;
}

/* ------------------------------------------------------------------ decode */

/* notepack's legacy encoding of `undefined`: fixext1 of type 0. */
static bool at_undefined(const mpack_reader_t *r)
{
    return r->end - r->p >= 3 && r->p[0] == 0xd4 && r->p[1] == 0x00;
}

/* Reads one whole value: *it is its header, containers are skipped entirely. */
static int read_value(mpack_reader_t *r, mpack_item_t *it)
{
    mpack_reader_t peek = *r;
    int rc = mpack_read(&peek, it);
    return rc ? rc : mpack_skip(r);
}

static bool key_eq(const mpack_item_t *k, const char *s)
{
    return k->type == MPACK_STR && k->len == strlen(s) && !memcmp(k->p, s, k->len);
}

/* JavaScript truthiness of the value notepack decodes. */
static int read_truthy(mpack_reader_t *r, bool *out)
{
    bool undef = at_undefined(r);
    mpack_item_t it;
    int rc = read_value(r, &it);
    switch (it.type) {
    case MPACK_NIL:
        *out = false;
        break;
    case MPACK_BOOL:
        *out = it.b;
        break;
    case MPACK_INT:
        *out = true;
        break;
    case MPACK_UINT:
        *out = it.u != 0;
        break;
    case MPACK_FLOAT:
        *out = it.f != 0 && !isnan(it.f);
        break;
    case MPACK_STR:
        *out = it.len > 0;
        break;
    default:
        *out = !undef;
        break;
    }
    return rc;
}

/* A string array (nil/undefined = empty) into v[0..*n). */
static int read_rooms(mpack_reader_t *r, adapter_str_t *v, size_t *n)
{
    mpack_item_t it;
    *n = 0;
    if (at_undefined(r))
        return read_value(r, &it);
    int rc = mpack_read(r, &it);
    if (rc || it.type == MPACK_NIL)
        return rc;
    if (it.type != MPACK_ARRAY)
        return -EPROTO;
    if (it.count > ADAPTER_MSG_MAX_ROOMS)
        return -E2BIG;
    for (uint32_t i = 0; i < it.count; i++) {
        mpack_item_t s;
        if ((rc = mpack_read(r, &s)))
            return rc;
        if (s.type != MPACK_STR)
            return -EPROTO;
        v[i].p = (const char *)s.p;
        v[i].len = s.len;
    }
    *n = it.count;
    return 0;
}

/* Reads a map key: *key is its header if it is a string, else type NIL (and the key skipped). */
static int read_key(mpack_reader_t *r, mpack_item_t *key)
{
    int rc = read_value(r, key);
    if (!rc && key->type != MPACK_STR)
        key->type = MPACK_NIL;
    return rc;
}

static int read_flags(mpack_reader_t *r, adapter_msg_t *m)
{
    mpack_item_t it;
    if (at_undefined(r))
        return read_value(r, &it);
    int rc = mpack_read(r, &it);
    if (rc || it.type == MPACK_NIL)
        return rc;
    if (it.type != MPACK_MAP)
        return -EPROTO;
    for (uint32_t i = 0; !rc && i < it.count; i++) {
        mpack_item_t key;
        rc = read_key(r, &key);
        if (!rc && key_eq(&key, "volatile"))
            rc = read_truthy(r, &m->flag_volatile);
        else if (!rc && key_eq(&key, "local"))
            rc = read_truthy(r, &m->flag_local);
        else if (!rc)
            rc = mpack_skip(r);
    }
    return rc;
}

static int read_opts(mpack_reader_t *r, adapter_msg_t *m)
{
    mpack_item_t it;
    int rc = mpack_read(r, &it);
    if (rc)
        return rc;
    if (it.type != MPACK_MAP)
        return -EPROTO;
    for (uint32_t i = 0; !rc && i < it.count; i++) {
        mpack_item_t key;
        rc = read_key(r, &key);
        if (!rc && key_eq(&key, "rooms"))
            rc = read_rooms(r, m->rooms, &m->nrooms);
        else if (!rc && key_eq(&key, "except"))
            rc = read_rooms(r, m->except, &m->nexcept);
        else if (!rc && key_eq(&key, "flags"))
            rc = read_flags(r, m);
        else if (!rc)
            rc = mpack_skip(r);
    }
    return rc;
}

static int read_packet_field(mpack_reader_t *r, const mpack_item_t *key, adapter_msg_t *m)
{
    bool undef = at_undefined(r);
    const uint8_t *start = r->p;
    mpack_item_t it;
    int rc = read_value(r, &it);
    if (rc)
        return rc;
    if (key_eq(key, "type")) {
        if (it.type != MPACK_UINT || it.u > 6)
            return -EPROTO;
        m->packet_type = (int)it.u;
    } else if (key_eq(key, "data")) {
        m->data = undef ? NULL : start;
        m->data_len = undef ? 0 : (size_t)(r->p - start);
    } else if (key_eq(key, "nsp")) {
        if (undef) {
            m->nsp.p = "/";
            m->nsp.len = 1;
        } else if (it.type != MPACK_STR) {
            return -EPROTO;
        } else {
            m->nsp.p = (const char *)it.p;
            m->nsp.len = it.len;
        }
    } else if (key_eq(key, "id")) {
        m->has_id = !undef && it.type != MPACK_NIL;
    }
    return 0;
}

static int read_packet(mpack_reader_t *r, adapter_msg_t *m)
{
    mpack_item_t it;
    int rc = mpack_read(r, &it);
    if (rc)
        return rc;
    if (it.type != MPACK_MAP)
        return -EPROTO;
    for (uint32_t i = 0; !rc && i < it.count; i++) {
        mpack_item_t key;
        rc = read_key(r, &key);
        if (!rc)
            rc = read_packet_field(r, &key, m);
    }
    return rc;
}

int adapter_msg_decode_broadcast(const uint8_t *p, size_t len, adapter_msg_t *out)
{
    mpack_reader_t r;
    mpack_item_t it;
    memset(out, 0, sizeof *out);
    out->packet_type = -1;
    out->nsp.p = "/";
    out->nsp.len = 1;
    mpack_reader_init(&r, p, len);
    int rc = mpack_read(&r, &it);
    if (rc || it.type != MPACK_ARRAY || it.count != 3)
        return -EPROTO;
    if ((rc = mpack_read(&r, &it)))
        return rc;
    if (it.type != MPACK_STR)
        return -EPROTO;
    out->uid.p = (const char *)it.p;
    out->uid.len = it.len;
    if ((rc = read_packet(&r, out)) || (rc = read_opts(&r, out)))
        return rc;
    if (out->packet_type < 0 || r.p != r.end)
        return -EPROTO;
    return 0;
}

/* ------------------------------------------------------------------ client frame */

static int sio_text(buf_t *out, const adapter_msg_t *m)
{
    char head[2] = {'4', (char)('0' + m->packet_type)};
    int rc = buf_append(out, head, 2);
    if (!rc && m->nsp.len && !(m->nsp.len == 1 && m->nsp.p[0] == '/')) {
        rc = buf_append(out, m->nsp.p, m->nsp.len);
        if (!rc)
            rc = buf_putc(out, ',');
    }
    if (rc || !m->data_len || m->data[0] == 0xc0)
        return rc;
    size_t used;
    rc = mpack_to_json(out, m->data, m->data_len, &used);
    return !rc && used != m->data_len ? -EPROTO : rc;
}

int adapter_msg_sio_text(buf_t *out, const adapter_msg_t *m)
{
    if (m->packet_type == 5 || m->packet_type == 6)
        return -ENOTSUP;
    if (m->packet_type < 0 || m->packet_type > 6)
        return -EPROTO;
    size_t mark = out->len;
    int rc = sio_text(out, m);
    if (rc && out->data) {
        out->len = mark;
        out->data[mark] = '\0';
    }
    return rc;
}
