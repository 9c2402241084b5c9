/* adapter_msg: redis-adapter messages in both formats: encode, bounded decode, client frame. */
#include "worker/adapter_msg.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <string.h>

#include "common/json.h"
#include "common/mpack.h"

static int put_key(buf_t *out, const char *k)
{
    return mpack_write_str(out, k, strlen(k));
}

static void init_msg(adapter_msg_t *out)
{
    memset(out, 0, sizeof *out);
    out->packet_type = -1;
    out->nsp.p = "/";
    out->nsp.len = 1;
}

static int restore(buf_t *out, size_t mark, int rc)
{
    if (rc && out->data) {
        out->len = mark;
        out->data[mark] = '\0';
    }
    return rc;
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
    return restore(out, mark,
                   encode(out, uid, uid_len, nsp, nsp_len, data_json, data_len, rooms, nrooms));
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

static int read_str(mpack_reader_t *r, adapter_str_t *out)
{
    mpack_item_t it;
    int rc = read_value(r, &it);
    if (rc)
        return rc;
    if (it.type != MPACK_STR)
        return -EPROTO;
    out->p = (const char *)it.p;
    out->len = it.len;
    return 0;
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

static int read_timeout(mpack_reader_t *r, uint64_t *out)
{
    mpack_item_t it;
    int rc = read_value(r, &it);
    if (!rc && it.type == MPACK_UINT)
        *out = it.u;
    else if (!rc && it.type == MPACK_FLOAT && it.f > 0 && it.f < 1e15)
        *out = (uint64_t)it.f;
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
        else if (!rc && key_eq(&key, "timeout"))
            rc = read_timeout(r, &m->timeout_ms);
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
    init_msg(out);
    mpack_reader_init(&r, p, len);
    int rc = mpack_read(&r, &it);
    if (rc || it.type != MPACK_ARRAY || it.count != 3)
        return -EPROTO;
    if ((rc = read_str(&r, &out->uid)) || (rc = read_packet(&r, out)) || (rc = read_opts(&r, out)))
        return rc;
    if (out->packet_type < 0 || r.p != r.end)
        return -EPROTO;
    out->op = ADAPTER_OP_BROADCAST;
    return 0;
}

/* ------------------------------------------------------------------ msgpack request (type 7) */

static int decode_request_mpack(const uint8_t *p, size_t len, adapter_msg_t *out)
{
    mpack_reader_t r;
    mpack_item_t it;
    mpack_reader_init(&r, p, len);
    int rc = mpack_read(&r, &it);
    if (rc || it.type != MPACK_MAP)
        return -EPROTO;
    int64_t type = -1;
    bool has_packet = false, has_opts = false;
    for (uint32_t i = 0; !rc && i < it.count; i++) {
        mpack_item_t key;
        rc = read_key(&r, &key);
        if (rc)
            break;
        if (key_eq(&key, "uid")) {
            rc = read_str(&r, &out->uid);
        } else if (key_eq(&key, "requestId")) {
            rc = read_str(&r, &out->request_id);
        } else if (key_eq(&key, "type")) {
            mpack_item_t v;
            rc = read_value(&r, &v);
            if (!rc && v.type != MPACK_UINT)
                rc = -EPROTO;
            type = !rc && v.u < 100 ? (int64_t)v.u : 100;
        } else if (key_eq(&key, "packet")) {
            has_packet = true;
            rc = read_packet(&r, out);
        } else if (key_eq(&key, "opts")) {
            has_opts = true;
            rc = read_opts(&r, out);
        } else {
            rc = mpack_skip(&r);
        }
    }
    if (rc)
        return rc;
    if (r.p != r.end || type < 0)
        return -EPROTO;
    if (type != 7)
        return 0; /* only a broadcast with acks can carry binary: others are not expected here */
    if (!has_packet || !has_opts || out->packet_type < 0 || !out->request_id.len)
        return -EPROTO;
    out->op = ADAPTER_OP_BROADCAST;
    return 0;
}

/* ------------------------------------------------------------------ msgpack cluster message */

/* `data` of a sharded BROADCAST: {packet, opts[, requestId]}. */
static int read_cluster_data(mpack_reader_t *r, adapter_msg_t *m, bool *has_packet, bool *has_opts)
{
    mpack_item_t it;
    int rc = mpack_read(r, &it);
    if (rc || it.type != MPACK_MAP)
        return rc ? rc : -EPROTO;
    for (uint32_t i = 0; !rc && i < it.count; i++) {
        mpack_item_t key;
        rc = read_key(r, &key);
        if (!rc && key_eq(&key, "packet")) {
            *has_packet = true;
            adapter_str_t nsp = m->nsp; /* the message's nsp decides, never the packet's */
            rc = read_packet(r, m);
            m->nsp = nsp;
        } else if (!rc && key_eq(&key, "opts")) {
            *has_opts = true;
            rc = read_opts(r, m);
        } else if (!rc && key_eq(&key, "requestId")) {
            rc = read_str(r, &m->request_id);
        } else if (!rc) {
            rc = mpack_skip(r);
        }
    }
    return rc;
}

/* A ClusterAdapter message sent as msgpack because it carries binary: {type, data, uid, nsp}. */
static int decode_cluster_mpack(const uint8_t *p, size_t len, adapter_msg_t *m)
{
    mpack_reader_t r;
    mpack_item_t it;
    mpack_reader_init(&r, p, len);
    int rc = mpack_read(&r, &it);
    if (rc || it.type != MPACK_MAP)
        return -EPROTO;
    uint64_t type = UINT64_MAX;
    bool has_nsp = false, has_packet = false, has_opts = false;
    const uint8_t *data = NULL;
    for (uint32_t i = 0; !rc && i < it.count; i++) {
        mpack_item_t key, v;
        rc = read_key(&r, &key);
        if (!rc && key_eq(&key, "type")) {
            rc = read_value(&r, &v);
            if (!rc && v.type != MPACK_UINT)
                rc = -EPROTO;
            type = v.u;
        } else if (!rc && key_eq(&key, "uid")) {
            rc = read_str(&r, &m->uid);
        } else if (!rc && key_eq(&key, "nsp")) {
            has_nsp = true;
            rc = read_str(&r, &m->nsp);
        } else if (!rc && key_eq(&key, "data")) {
            data = r.p; /* read once the nsp is known, wherever it comes */
            rc = mpack_skip(&r);
        } else if (!rc) {
            rc = mpack_skip(&r);
        }
    }
    if (rc || r.p != r.end || type == UINT64_MAX || !has_nsp)
        return rc ? rc : -EPROTO;
    if (type != 3)
        return 0; /* responses (8, 10, 12) are not for this decoder's callers */
    if (!data)
        return -EPROTO;
    mpack_reader_init(&r, data, (size_t)(p + len - data));
    rc = read_cluster_data(&r, m, &has_packet, &has_opts);
    if (!rc && (!has_packet || !has_opts || m->packet_type < 0))
        rc = -EPROTO;
    if (!rc)
        m->op = ADAPTER_OP_BROADCAST;
    return rc;
}

/* ------------------------------------------------------------------ JSON walking */

/* Members of an object or elements of an array of validated JSON text. */
typedef struct jwalk {
    const char *in;
    size_t len, pos;
    bool first;
} jwalk_t;

static int jwalk_open(const json_span_t *v, json_type_t want, jwalk_t *w)
{
    if (v->type != want)
        return -EPROTO;
    w->in = v->p;
    w->len = v->len;
    w->pos = 1;
    w->first = true;
    return 0;
}

static void span_at(const char *in, size_t len, size_t pos, json_span_t *out)
{
    size_t end = json_value_end(in, len, pos);
    out->p = in + pos;
    out->len = end - pos;
    json_type_of(out->p, out->len, &out->type);
}

/* Next element (key NULL) or member; false at the end. */
static bool jwalk_next(jwalk_t *w, json_span_t *key, json_span_t *val)
{
    size_t pos = json_skip_ws(w->in, w->len, w->pos);
    if (pos >= w->len || w->in[pos] == '}' || w->in[pos] == ']')
        return false;
    if (!w->first)
        pos = json_skip_ws(w->in, w->len, pos + 1); /* the ',' */
    w->first = false;
    if (key) {
        span_at(w->in, w->len, pos, key);
        pos = json_skip_ws(w->in, w->len, pos + key->len);
        pos = json_skip_ws(w->in, w->len, pos + 1); /* the ':' */
    }
    span_at(w->in, w->len, pos, val);
    w->pos = pos + val->len;
    return true;
}

static bool jkey_eq(const json_span_t *k, const char *s)
{
    size_t n = strlen(s);
    return k->len == n + 2 && memcmp(k->p + 1, s, n) == 0;
}

/* A string value: borrowed when it has no escape, else decoded into scratch (reserved ahead). */
static int jstr(buf_t *scratch, const json_span_t *v, adapter_str_t *out)
{
    if (v->type != JSON_STRING)
        return -EPROTO;
    if (!memchr(v->p, '\\', v->len)) {
        out->p = v->p + 1;
        out->len = v->len - 2;
        return 0;
    }
    size_t mark = scratch->len;
    int rc = json_string_decode(v->p, v->len, scratch);
    if (rc)
        return rc == -ENOMEM ? rc : -EPROTO;
    out->p = scratch->data + mark;
    out->len = scratch->len - mark;
    return 0;
}

static int jint(const json_span_t *v, int64_t *out)
{
    double d;
    if (v->type != JSON_NUMBER || json_number_parse(v->p, v->len, &d) || d != floor(d) || d < 0 ||
        d > 1e9)
        return -EPROTO;
    *out = (int64_t)d;
    return 0;
}

/* A string array; null means empty. */
static int jrooms(buf_t *scratch, const json_span_t *v, adapter_str_t *rooms, size_t *n)
{
    *n = 0;
    if (v->type == JSON_NULL)
        return 0;
    jwalk_t w;
    json_span_t e;
    int rc = jwalk_open(v, JSON_ARRAY, &w);
    while (!rc && jwalk_next(&w, NULL, &e)) {
        if (*n == ADAPTER_MSG_MAX_ROOMS)
            return -E2BIG;
        rc = jstr(scratch, &e, &rooms[*n]);
        if (!rc)
            (*n)++;
    }
    return rc;
}

static bool jtruthy(const json_span_t *v)
{
    switch (v->type) {
    case JSON_NULL:
    case JSON_FALSE:
        return false;
    case JSON_STRING:
        return v->len > 2;
    case JSON_NUMBER: {
        double d = 0;
        json_number_parse(v->p, v->len, &d);
        return d != 0;
    }
    default:
        return true;
    }
}

static int jflags(const json_span_t *v, adapter_msg_t *m)
{
    if (v->type == JSON_NULL)
        return 0;
    jwalk_t w;
    json_span_t k, e;
    int rc = jwalk_open(v, JSON_OBJECT, &w);
    while (!rc && jwalk_next(&w, &k, &e)) {
        if (jkey_eq(&k, "volatile")) {
            m->flag_volatile = jtruthy(&e);
        } else if (jkey_eq(&k, "local")) {
            m->flag_local = jtruthy(&e);
        } else if (jkey_eq(&k, "timeout") && e.type == JSON_NUMBER) {
            double d = 0;
            json_number_parse(e.p, e.len, &d);
            m->timeout_ms = d > 0 && d < 1e15 ? (uint64_t)d : 0;
        }
    }
    return rc;
}

static int jopts(buf_t *scratch, const json_span_t *v, adapter_msg_t *m)
{
    jwalk_t w;
    json_span_t k, e;
    int rc = jwalk_open(v, JSON_OBJECT, &w);
    while (!rc && jwalk_next(&w, &k, &e)) {
        if (jkey_eq(&k, "rooms"))
            rc = jrooms(scratch, &e, m->rooms, &m->nrooms);
        else if (jkey_eq(&k, "except"))
            rc = jrooms(scratch, &e, m->except, &m->nexcept);
        else if (jkey_eq(&k, "flags"))
            rc = jflags(&e, m);
    }
    return rc;
}

/* A socket.io packet {type, data[, nsp]} sent as JSON. */
static int jpacket(buf_t *scratch, const json_span_t *v, adapter_msg_t *m)
{
    jwalk_t w;
    json_span_t k, e;
    int64_t type = -1;
    int rc = jwalk_open(v, JSON_OBJECT, &w);
    while (!rc && jwalk_next(&w, &k, &e)) {
        if (jkey_eq(&k, "type")) {
            rc = jint(&e, &type);
        } else if (jkey_eq(&k, "data")) {
            m->data_json = e.p;
            m->data_json_len = e.len;
        } else if (jkey_eq(&k, "nsp")) {
            rc = jstr(scratch, &e, &m->nsp);
        } else if (jkey_eq(&k, "id")) {
            m->has_id = e.type != JSON_NULL;
        }
    }
    if (rc || type < 0 || type > 6)
        return -EPROTO;
    m->packet_type = (int)type;
    return 0;
}

static int json_prepare(const uint8_t *p, size_t len, buf_t *scratch, json_span_t *root)
{
    const char *in = (const char *)p;
    if (json_validate(in, len))
        return -EPROTO;
    buf_reset(scratch);
    /* decoded strings are never longer than their literals: no pointer into scratch moves */
    if (buf_reserve(scratch, len + 1))
        return -ENOMEM;
    size_t pos = json_skip_ws(in, len, 0);
    span_at(in, len, pos, root);
    return root->type == JSON_OBJECT ? 0 : -EPROTO;
}

/* ------------------------------------------------------------------ classic requests */

typedef struct req_parts {
    json_span_t rooms, opts, data, packet, sid, room;
    bool has_rooms, has_opts, has_data, has_packet, has_sid, has_room;
    int64_t type;
} req_parts_t;

static int classic_fields(buf_t *scratch, const json_span_t *root, adapter_msg_t *m, req_parts_t *q)
{
    jwalk_t w;
    json_span_t k, e;
    q->type = -1;
    int rc = jwalk_open(root, JSON_OBJECT, &w);
    while (!rc && jwalk_next(&w, &k, &e)) {
        if (jkey_eq(&k, "uid")) {
            rc = jstr(scratch, &e, &m->uid);
        } else if (jkey_eq(&k, "requestId")) {
            rc = e.type == JSON_NULL ? 0 : jstr(scratch, &e, &m->request_id);
        } else if (jkey_eq(&k, "type")) {
            rc = jint(&e, &q->type);
        } else if (jkey_eq(&k, "close")) {
            m->close = jtruthy(&e);
        } else if (jkey_eq(&k, "rooms")) {
            q->rooms = e;
            q->has_rooms = true;
        } else if (jkey_eq(&k, "opts")) {
            q->opts = e;
            q->has_opts = e.type != JSON_NULL;
        } else if (jkey_eq(&k, "data")) {
            q->data = e;
            q->has_data = true;
        } else if (jkey_eq(&k, "packet")) {
            q->packet = e;
            q->has_packet = true;
        } else if (jkey_eq(&k, "sid")) {
            q->sid = e;
            q->has_sid = true;
        } else if (jkey_eq(&k, "room")) {
            q->room = e;
            q->has_room = true;
        }
    }
    return rc ? rc : q->type < 0 ? -EPROTO : 0;
}

/* Classic types 2-4: with opts (current) or {sid, room} (legacy, answered). */
static int classic_targeted(buf_t *scratch, adapter_msg_t *m, const req_parts_t *q)
{
    static const adapter_op_t ops[] = {ADAPTER_OP_JOIN, ADAPTER_OP_LEAVE, ADAPTER_OP_DISCONNECT};
    m->op = ops[q->type - 2];
    int rc = 0;
    if (q->has_opts) {
        rc = jopts(scratch, &q->opts, m);
        if (!rc && m->op != ADAPTER_OP_DISCONNECT)
            rc = q->has_rooms ? jrooms(scratch, &q->rooms, m->targets, &m->ntargets) : -EPROTO;
        return rc;
    }
    if (!q->has_sid)
        return -EPROTO;
    m->legacy = true;
    m->nrooms = 1;
    rc = jstr(scratch, &q->sid, &m->rooms[0]);
    if (!rc && m->op != ADAPTER_OP_DISCONNECT) {
        m->ntargets = 1;
        rc = q->has_room ? jstr(scratch, &q->room, &m->targets[0]) : -EPROTO;
    }
    return rc;
}

static int decode_request_json(const uint8_t *p, size_t len, buf_t *scratch, adapter_msg_t *m)
{
    json_span_t root;
    req_parts_t q = {0};
    int rc = json_prepare(p, len, scratch, &root);
    if (!rc)
        rc = classic_fields(scratch, &root, m, &q);
    if (rc)
        return rc;
    switch (q.type) {
    case 0:
        m->op = ADAPTER_OP_SOCKETS;
        return q.has_rooms ? jrooms(scratch, &q.rooms, m->rooms, &m->nrooms) : 0;
    case 1:
        m->op = ADAPTER_OP_ALL_ROOMS;
        return 0;
    case 2:
    case 3:
    case 4:
        return classic_targeted(scratch, m, &q);
    case 5:
        m->op = ADAPTER_OP_FETCH;
        return q.has_opts ? jopts(scratch, &q.opts, m) : -EPROTO;
    case 6:
        m->op = ADAPTER_OP_SERVER_SIDE_EMIT;
        if (!q.has_data || q.data.type != JSON_ARRAY)
            return -EPROTO;
        m->data_json = q.data.p;
        m->data_json_len = q.data.len;
        return 0;
    case 7:
        m->op = ADAPTER_OP_BROADCAST;
        if (!q.has_packet || !q.has_opts || !m->request_id.len)
            return -EPROTO;
        rc = jpacket(scratch, &q.packet, m);
        return rc ? rc : jopts(scratch, &q.opts, m);
    default:
        return 0; /* responses' types and future ones: nothing to do */
    }
}

int adapter_msg_decode_request(const uint8_t *p, size_t len, buf_t *scratch, adapter_msg_t *out)
{
    init_msg(out);
    if (len == 0)
        return -EPROTO;
    int rc =
        p[0] == '{' ? decode_request_json(p, len, scratch, out) : decode_request_mpack(p, len, out);
    if (rc)
        out->op = ADAPTER_OP_NONE;
    return rc;
}

/* ------------------------------------------------------------------ sharded messages */

static int cluster_data(buf_t *scratch, int64_t type, const json_span_t *data, adapter_msg_t *m)
{
    jwalk_t w;
    json_span_t k, e, packet = {0}, rooms = {0};
    bool has_packet = false, has_opts = false, has_rooms = false;
    int rc = jwalk_open(data, JSON_OBJECT, &w);
    while (!rc && jwalk_next(&w, &k, &e)) {
        if (jkey_eq(&k, "requestId")) {
            rc = e.type == JSON_NULL ? 0 : jstr(scratch, &e, &m->request_id);
        } else if (jkey_eq(&k, "opts")) {
            has_opts = true;
            rc = jopts(scratch, &e, m);
        } else if (jkey_eq(&k, "packet")) {
            packet = e;
            has_packet = true;
        } else if (jkey_eq(&k, "rooms")) {
            rooms = e;
            has_rooms = true;
        } else if (jkey_eq(&k, "close")) {
            m->close = jtruthy(&e);
        }
    }
    if (rc)
        return rc;
    switch (type) {
    case 3:
        m->op = ADAPTER_OP_BROADCAST;
        if (!has_packet || !has_opts)
            return -EPROTO;
        {
            adapter_str_t nsp = m->nsp; /* the message's nsp decides, never the packet's */
            rc = jpacket(scratch, &packet, m);
            m->nsp = nsp;
        }
        return rc;
    case 4:
    case 5:
        m->op = type == 4 ? ADAPTER_OP_JOIN : ADAPTER_OP_LEAVE;
        if (!has_opts || !has_rooms)
            return -EPROTO;
        return jrooms(scratch, &rooms, m->targets, &m->ntargets);
    case 6:
        m->op = ADAPTER_OP_DISCONNECT;
        return has_opts ? 0 : -EPROTO;
    case 7:
        m->op = ADAPTER_OP_FETCH;
        return has_opts && m->request_id.len ? 0 : -EPROTO;
    case 9:
        m->op = ADAPTER_OP_SERVER_SIDE_EMIT;
        if (!has_packet || packet.type != JSON_ARRAY)
            return -EPROTO;
        m->data_json = packet.p;
        m->data_json_len = packet.len;
        return 0;
    default:
        return 0;
    }
}

int adapter_msg_decode_cluster(const uint8_t *p, size_t len, buf_t *scratch, adapter_msg_t *m)
{
    init_msg(m);
    if (len == 0)
        return -EPROTO;
    if (p[0] != '{') {
        int rc = decode_cluster_mpack(p, len, m);
        if (rc)
            m->op = ADAPTER_OP_NONE;
        return rc;
    }
    json_span_t root, k, e, data = {0};
    jwalk_t w;
    int64_t type = -1;
    bool has_data = false, has_nsp = false;
    int rc = json_prepare(p, len, scratch, &root);
    if (!rc)
        rc = jwalk_open(&root, JSON_OBJECT, &w);
    while (!rc && jwalk_next(&w, &k, &e)) {
        if (jkey_eq(&k, "type")) {
            rc = jint(&e, &type);
        } else if (jkey_eq(&k, "uid")) {
            rc = jstr(scratch, &e, &m->uid);
        } else if (jkey_eq(&k, "nsp")) {
            has_nsp = true;
            rc = jstr(scratch, &e, &m->nsp);
        } else if (jkey_eq(&k, "data")) {
            data = e;
            has_data = true;
        }
    }
    if (!rc && (type < 0 || !has_nsp))
        rc = -EPROTO;
    if (!rc && has_data && data.type != JSON_NULL)
        rc = cluster_data(scratch, type, &data, m);
    else if (!rc && type >= 3 && type <= 9 && type != 8)
        rc = -EPROTO; /* these types always carry data */
    if (rc)
        m->op = ADAPTER_OP_NONE;
    return rc;
}

/* ------------------------------------------------------------------ JSON encoders */

static int put_rooms_json(buf_t *out, const adapter_str_t *rooms, size_t n)
{
    int rc = buf_putc(out, '[');
    for (size_t i = 0; !rc && i < n; i++) {
        if (i)
            rc = buf_putc(out, ',');
        if (!rc)
            rc = json_write_string(out, rooms[i].p, rooms[i].len);
    }
    return rc ? rc : buf_putc(out, ']');
}

int adapter_msg_encode_cluster_broadcast(buf_t *out, const char *uid, size_t uid_len,
                                         const char *nsp, size_t nsp_len, const char *data_json,
                                         size_t data_len, const adapter_str_t *rooms, size_t nrooms)
{
    size_t mark = out->len;
    int rc = buf_puts(out, "{\"type\":3,\"data\":{\"packet\":{\"type\":2,\"data\":");
    if (!rc)
        rc = json_minify(out, data_json, data_len);
    if (!rc)
        rc = buf_puts(out, "},\"opts\":{\"rooms\":");
    if (!rc)
        rc = put_rooms_json(out, rooms, nrooms);
    if (!rc)
        rc = buf_puts(out, ",\"except\":[],\"flags\":{}}},\"uid\":");
    if (!rc)
        rc = json_write_string(out, uid, uid_len);
    if (!rc)
        rc = buf_puts(out, ",\"nsp\":");
    if (!rc)
        rc = json_write_string(out, nsp, nsp_len);
    if (!rc)
        rc = buf_putc(out, '}');
    return restore(out, mark, rc);
}

static int ack_mpack(buf_t *out, const adapter_str_t *rid, const char *body, size_t body_len)
{
    int rc = mpack_write_map(out, body ? 3 : 2);
    if (!rc)
        rc = put_key(out, "type");
    if (!rc)
        rc = mpack_write_uint(out, 9);
    if (!rc)
        rc = put_key(out, "requestId");
    if (!rc)
        rc = mpack_write_str(out, rid->p, rid->len);
    if (!rc && body) {
        rc = put_key(out, "packet");
        if (!rc)
            rc = mpack_from_json(out, body, body_len);
    }
    return rc;
}

static int put_body(buf_t *out, const char *key, const char *body, size_t len)
{
    if (!body)
        return 0;
    int rc = buf_printf(out, ",\"%s\":", key);
    return rc ? rc : json_minify(out, body, len);
}

static int classic_resp(buf_t *out, adapter_resp_t kind, const char *uid, size_t uid_len,
                        const adapter_str_t *rid, const char *body, size_t len, uint64_t count)
{
    if (kind == ADAPTER_RESP_BROADCAST_ACK)
        return ack_mpack(out, rid, body, len);
    int rc = 0;
    if (kind == ADAPTER_RESP_SSE)
        rc = buf_puts(out, "{\"type\":6,\"requestId\":");
    else if (kind == ADAPTER_RESP_CLIENT_COUNT)
        rc = buf_puts(out, "{\"type\":8,\"requestId\":");
    else
        rc = buf_puts(out, "{\"requestId\":");
    if (!rc)
        rc = json_write_string(out, rid->p, rid->len);
    if (rc)
        return rc;
    switch (kind) {
    case ADAPTER_RESP_SOCKETS:
    case ADAPTER_RESP_FETCH:
        rc = put_body(out, "sockets", body, len);
        break;
    case ADAPTER_RESP_ALL_ROOMS:
        rc = put_body(out, "rooms", body, len);
        break;
    case ADAPTER_RESP_SSE:
        rc = put_body(out, "data", body, len);
        break;
    default:
        rc = buf_printf(out, ",\"clientCount\":%" PRIu64, count);
        break;
    }
    /* who answered: Node ignores the extra member, streamioctl's cluster view names the server */
    bool named = kind == ADAPTER_RESP_SOCKETS || kind == ADAPTER_RESP_FETCH ||
                 kind == ADAPTER_RESP_ALL_ROOMS || kind == ADAPTER_RESP_SSE;
    if (!rc && uid && named) {
        rc = buf_puts(out, ",\"uid\":");
        if (!rc)
            rc = json_write_string(out, uid, uid_len);
    }
    return rc ? rc : buf_putc(out, '}');
}

static int cluster_resp(buf_t *out, adapter_resp_t kind, const char *uid, size_t uid_len,
                        const char *nsp, size_t nsp_len, const adapter_str_t *rid, const char *body,
                        size_t len, uint64_t count)
{
    int type;
    switch (kind) {
    case ADAPTER_RESP_FETCH:
        type = 8;
        break;
    case ADAPTER_RESP_SSE:
        type = 10;
        break;
    case ADAPTER_RESP_CLIENT_COUNT:
        type = 11;
        break;
    case ADAPTER_RESP_BROADCAST_ACK:
        type = 12;
        break;
    default:
        return -EINVAL; /* SOCKETS and ALL_ROOMS do not exist in the cluster protocol */
    }
    int rc = buf_printf(out, "{\"type\":%d,\"data\":{\"requestId\":", type);
    if (!rc)
        rc = json_write_string(out, rid->p, rid->len);
    if (!rc && kind == ADAPTER_RESP_FETCH)
        rc = put_body(out, "sockets", body, len);
    else if (!rc && kind == ADAPTER_RESP_CLIENT_COUNT)
        rc = buf_printf(out, ",\"clientCount\":%" PRIu64, count);
    else if (!rc)
        rc = put_body(out, "packet", body, len);
    if (!rc)
        rc = buf_puts(out, "},\"uid\":");
    if (!rc)
        rc = json_write_string(out, uid, uid_len);
    if (!rc)
        rc = buf_puts(out, ",\"nsp\":");
    if (!rc)
        rc = json_write_string(out, nsp, nsp_len);
    return rc ? rc : buf_putc(out, '}');
}

int adapter_msg_encode_response(buf_t *out, adapter_resp_t kind, bool sharded, const char *uid,
                                size_t uid_len, const char *nsp, size_t nsp_len,
                                const adapter_str_t *request_id, const char *body, size_t body_len,
                                uint64_t count)
{
    size_t mark = out->len;
    if (sharded && !uid)
        return -EINVAL;
    int rc = sharded ? cluster_resp(out, kind, uid, uid_len, nsp, nsp_len, request_id, body,
                                    body_len, count)
                     : classic_resp(out, kind, uid, uid_len, request_id, body, body_len, count);
    return restore(out, mark, rc);
}

/* ------------------------------------------------------------------ client frame */

static int sio_text(buf_t *out, const adapter_msg_t *m, const uint64_t *ack_id)
{
    char head[2] = {'4', (char)('0' + m->packet_type)};
    int rc = buf_append(out, head, 2);
    if (!rc && m->nsp.len && !(m->nsp.len == 1 && m->nsp.p[0] == '/')) {
        rc = buf_append(out, m->nsp.p, m->nsp.len);
        if (!rc)
            rc = buf_putc(out, ',');
    }
    if (!rc && ack_id)
        rc = buf_printf(out, "%" PRIu64, *ack_id);
    if (!rc && m->data_json)
        return m->data_json_len == 4 && !memcmp(m->data_json, "null", 4)
                   ? 0
                   : json_minify_utf8(out, m->data_json, m->data_json_len);
    if (rc || !m->data_len || m->data[0] == 0xc0)
        return rc;
    size_t used;
    rc = mpack_to_json(out, m->data, m->data_len, &used);
    return !rc && used != m->data_len ? -EPROTO : rc;
}

static int sio_text_checked(buf_t *out, const adapter_msg_t *m, const uint64_t *ack_id)
{
    if (m->packet_type == 5 || m->packet_type == 6)
        return -ENOTSUP;
    if (m->packet_type < 0 || m->packet_type > 6)
        return -EPROTO;
    size_t mark = out->len;
    return restore(out, mark, sio_text(out, m, ack_id));
}

int adapter_msg_sio_text(buf_t *out, const adapter_msg_t *m)
{
    return sio_text_checked(out, m, NULL);
}

int adapter_msg_sio_text_ack(buf_t *out, const adapter_msg_t *m, uint64_t ack_id)
{
    return sio_text_checked(out, m, &ack_id);
}

/* Attachments of a binary packet: each bin value becomes a placeholder, its bytes go to atts. */
typedef struct bin_out {
    buf_t *atts;
    unsigned n;
} bin_out_t;

static int put_placeholder(buf_t *out, const uint8_t *p, size_t len, void *arg)
{
    bin_out_t *b = arg;
    uint32_t n32 = (uint32_t)len;
    if (len > UINT32_MAX || b->n == ADAPTER_MSG_MAX_ATTACHMENTS)
        return -E2BIG;
    int rc = buf_append(b->atts, &n32, sizeof(n32));
    if (!rc)
        rc = buf_append(b->atts, p, len);
    if (!rc)
        rc = buf_printf(out, "{\"_placeholder\":true,\"num\":%u}", b->n++);
    return rc;
}

int adapter_msg_sio_binary(buf_t *out, buf_t *atts, const adapter_msg_t *m, const uint64_t *ack_id,
                           unsigned *natt)
{
    if (m->packet_type != 2 && m->packet_type != 5)
        return -ENOTSUP; /* acks and the rest are never broadcast */
    if (m->data_json || !m->data_len)
        return -EPROTO; /* JSON has no binary: a type 5 without it is malformed */
    size_t mark = out->len, amark = atts->len;
    buf_t json;
    buf_init(&json);
    bin_out_t b = {atts, 0};
    size_t used = 0;
    int rc = mpack_to_json_bin(&json, m->data, m->data_len, &used, put_placeholder, &b);
    if (!rc && used != m->data_len)
        rc = -EPROTO;
    if (!rc)
        rc = buf_printf(out, "45%u-", b.n);
    if (!rc && m->nsp.len && !(m->nsp.len == 1 && m->nsp.p[0] == '/')) {
        rc = buf_append(out, m->nsp.p, m->nsp.len);
        if (!rc)
            rc = buf_putc(out, ',');
    }
    if (!rc && ack_id)
        rc = buf_printf(out, "%" PRIu64, *ack_id);
    if (!rc)
        rc = buf_append(out, json.data, json.len);
    buf_free(&json);
    if (rc)
        restore(atts, amark, rc);
    else
        *natt = b.n;
    return restore(out, mark, rc);
}

/* ------------------------------------------------------------------ this server's requests */

static int put_request_opts(buf_t *out, const adapter_str_t *rooms, size_t nrooms, bool flags)
{
    int rc = buf_puts(out, "\"opts\":{\"rooms\":");
    if (!rc)
        rc = put_rooms_json(out, rooms, nrooms);
    if (!rc)
        rc = buf_puts(out, flags ? ",\"except\":[],\"flags\":{}}" : ",\"except\":[]}");
    return rc;
}

/* JSON "type" of each request this server makes, classic then sharded; 0: not in that format. */
static int request_type(adapter_op_t op, bool sharded)
{
    switch (op) {
    case ADAPTER_OP_ALL_ROOMS:
        return sharded ? 0 : 1;
    case ADAPTER_OP_JOIN:
        return sharded ? 4 : 2;
    case ADAPTER_OP_LEAVE:
        return sharded ? 5 : 3;
    case ADAPTER_OP_DISCONNECT:
        return sharded ? 6 : 4;
    case ADAPTER_OP_FETCH:
        return sharded ? 7 : 5;
    case ADAPTER_OP_SERVER_SIDE_EMIT:
        return sharded ? 9 : 6;
    default:
        return 0;
    }
}

/* The members after the opts: "rooms" to join/leave, "close", the emitted event. */
static int request_body(buf_t *out, const adapter_request_t *q, bool sharded)
{
    int rc = 0;
    switch (q->op) {
    case ADAPTER_OP_JOIN:
    case ADAPTER_OP_LEAVE:
        rc = buf_puts(out, ",\"rooms\":");
        return rc ? rc : put_rooms_json(out, q->targets, q->ntargets);
    case ADAPTER_OP_DISCONNECT:
        return buf_puts(out, q->close ? ",\"close\":true" : ",\"close\":false");
    case ADAPTER_OP_SERVER_SIDE_EMIT:
        rc = buf_puts(out, sharded ? "\"packet\":" : ",\"data\":");
        return rc ? rc : json_minify(out, q->data_json, q->data_len);
    default:
        return 0;
    }
}

static bool has_opts(adapter_op_t op)
{
    return op != ADAPTER_OP_ALL_ROOMS && op != ADAPTER_OP_SERVER_SIDE_EMIT;
}

int adapter_msg_encode_request(buf_t *out, bool sharded, const char *uid, size_t uid_len,
                               const char *nsp, size_t nsp_len, const adapter_str_t *request_id,
                               const adapter_request_t *q)
{
    int type = request_type(q->op, sharded);
    bool answered = q->op == ADAPTER_OP_ALL_ROOMS || q->op == ADAPTER_OP_FETCH ||
                    q->op == ADAPTER_OP_SERVER_SIDE_EMIT;
    bool emits = q->op == ADAPTER_OP_SERVER_SIDE_EMIT;
    if (!type || q->nrooms > ADAPTER_MSG_MAX_ROOMS || q->ntargets > ADAPTER_MSG_MAX_ROOMS ||
        answered != (request_id != NULL))
        return -EINVAL;
    json_type_t t;
    if (emits && (!q->data_json || json_validate(q->data_json, q->data_len) ||
                  json_type_of(q->data_json, q->data_len, &t) || t != JSON_ARRAY))
        return -EINVAL; /* the event and its arguments: [event, ...args] */
    size_t mark = out->len;
    int rc;
    if (sharded) {
        rc = buf_printf(out, "{\"type\":%d,\"data\":{", type);
        if (!rc && has_opts(q->op))
            rc = put_request_opts(out, q->rooms, q->nrooms, true);
        if (!rc)
            rc = request_body(out, q, true);
        if (!rc && request_id) {
            rc = buf_puts(out, ",\"requestId\":");
            if (!rc)
                rc = json_write_string(out, request_id->p, request_id->len);
        }
        if (!rc)
            rc = buf_puts(out, "},\"uid\":");
        if (!rc)
            rc = json_write_string(out, uid, uid_len);
        if (!rc)
            rc = buf_puts(out, ",\"nsp\":");
        if (!rc)
            rc = json_write_string(out, nsp, nsp_len);
    } else {
        rc = buf_puts(out, "{\"uid\":");
        if (!rc)
            rc = json_write_string(out, uid, uid_len);
        if (!rc && request_id) {
            rc = buf_puts(out, ",\"requestId\":");
            if (!rc)
                rc = json_write_string(out, request_id->p, request_id->len);
        }
        if (!rc)
            rc = buf_printf(out, ",\"type\":%d", type);
        if (!rc && has_opts(q->op)) {
            rc = buf_putc(out, ',');
            if (!rc)
                rc = put_request_opts(out, q->rooms, q->nrooms, false);
        }
        if (!rc)
            rc = request_body(out, q, false);
    }
    if (!rc)
        rc = buf_putc(out, '}');
    return restore(out, mark, rc);
}

/* The members a response may carry, at the top (classic) or inside `data` (sharded). */
typedef struct resp_parts {
    json_span_t rooms, sockets, value, count;
    bool has_rooms, has_sockets, has_value, has_count;
} resp_parts_t;

static int resp_members(buf_t *scratch, const json_span_t *obj, bool top, adapter_reply_t *out,
                        resp_parts_t *q, int64_t *type, json_span_t *data, bool *has_nsp)
{
    jwalk_t w;
    json_span_t k, e;
    int rc = jwalk_open(obj, JSON_OBJECT, &w);
    while (!rc && jwalk_next(&w, &k, &e)) {
        if (jkey_eq(&k, "requestId")) {
            rc = jstr(scratch, &e, &out->request_id);
        } else if (jkey_eq(&k, "rooms")) {
            q->rooms = e;
            q->has_rooms = true;
        } else if (jkey_eq(&k, "sockets")) {
            q->sockets = e;
            q->has_sockets = true;
        } else if (jkey_eq(&k, "packet") || (top && jkey_eq(&k, "data"))) {
            q->value = e;
            q->has_value = true;
            if (top)
                *data = e;
        } else if (jkey_eq(&k, "clientCount")) {
            q->count = e;
            q->has_count = true;
        } else if (top && jkey_eq(&k, "uid")) {
            rc = jstr(scratch, &e, &out->uid);
        } else if (top && jkey_eq(&k, "type")) {
            rc = jint(&e, type);
        } else if (top && jkey_eq(&k, "nsp")) {
            *has_nsp = true;
        }
    }
    return rc;
}

static void set_body(adapter_reply_t *out, const json_span_t *v)
{
    out->body = v->p;
    out->body_len = v->len;
}

/* Which response the members make; -ENOMSG when they are no response. */
static int resp_kind(bool sharded, int64_t type, const resp_parts_t *q, adapter_reply_t *out)
{
    int64_t count = 0;
    if ((sharded && type == 8) || (!sharded && type < 0 && q->has_sockets)) {
        out->kind = ADAPTER_RESP_FETCH;
        if (!q->has_sockets || q->sockets.type != JSON_ARRAY)
            return -EPROTO;
        set_body(out, &q->sockets);
    } else if (!sharded && type < 0 && q->has_rooms) {
        out->kind = ADAPTER_RESP_ALL_ROOMS;
        if (q->rooms.type != JSON_ARRAY)
            return -EPROTO;
        set_body(out, &q->rooms);
    } else if ((sharded && (type == 10 || type == 12)) || (!sharded && (type == 6 || type == 9))) {
        out->kind = type == 10 || type == 6 ? ADAPTER_RESP_SSE : ADAPTER_RESP_BROADCAST_ACK;
        if (q->has_value)
            set_body(out, &q->value);
    } else if ((sharded && type == 11) || (!sharded && type == 8)) {
        out->kind = ADAPTER_RESP_CLIENT_COUNT;
        if (!q->has_count || jint(&q->count, &count))
            return -EPROTO;
        out->count = (uint64_t)count;
    } else {
        return -ENOMSG;
    }
    return 0;
}

int adapter_msg_decode_response(const uint8_t *p, size_t len, buf_t *scratch, adapter_reply_t *out)
{
    memset(out, 0, sizeof(*out));
    if (len == 0)
        return -EPROTO;
    const char *in = (const char *)p;
    buf_reset(scratch);
    if (p[0] != '{') {
        /* msgpack (classic BROADCAST_ACK, sharded responses with binary): read it as its JSON */
        size_t used = 0;
        int rc = mpack_to_json(scratch, p, len, &used);
        if (rc)
            return rc == -ENOMEM || rc == -ENOTSUP ? rc : -EPROTO;
        if (used != len)
            return -EPROTO;
        len = scratch->len;
    }
    /* decoded strings are never longer than their literals: no pointer into scratch moves */
    if (buf_reserve(scratch, scratch->len + len + 1))
        return -ENOMEM;
    if (p[0] != '{')
        in = scratch->data;
    if (json_validate(in, len))
        return -EPROTO;
    json_span_t root, data = {0};
    span_at(in, len, json_skip_ws(in, len, 0), &root);
    resp_parts_t q = {0};
    int64_t type = -1;
    bool has_nsp = false;
    int rc = root.type == JSON_OBJECT ? 0 : -EPROTO;
    if (!rc)
        rc = resp_members(scratch, &root, true, out, &q, &type, &data, &has_nsp);
    if (!rc && has_nsp) {
        /* sharded: {type, data:{requestId, ...}, uid, nsp} */
        memset(&q, 0, sizeof(q));
        rc = data.type == JSON_OBJECT
                 ? resp_members(scratch, &data, false, out, &q, NULL, NULL, NULL)
                 : -EPROTO;
    }
    if (!rc)
        rc = resp_kind(has_nsp, type, &q, out);
    if (!rc && out->request_id.len == 0)
        rc = -EPROTO;
    if (!rc && out->request_id.len > ADAPTER_MSG_MAX_ID)
        rc = -E2BIG;
    return rc;
}

/* The rooms of one socket description. */
static int socket_rooms(buf_t *scratch, const json_span_t *sock,
                        void (*fn)(const char *room, size_t len, void *arg), void *arg)
{
    jwalk_t w, r;
    json_span_t k, e, room;
    adapter_str_t s;
    int rc = jwalk_open(sock, JSON_OBJECT, &w);
    while (!rc && jwalk_next(&w, &k, &e)) {
        if (!jkey_eq(&k, "rooms"))
            continue;
        rc = jwalk_open(&e, JSON_ARRAY, &r);
        while (!rc && jwalk_next(&r, NULL, &room)) {
            size_t mark = scratch->len;
            rc = jstr(scratch, &room, &s);
            if (!rc)
                fn(s.p, s.len, arg);
            scratch->len = mark; /* one name at a time */
        }
    }
    return rc;
}

int adapter_msg_sockets_rooms(const char *sockets, size_t len, buf_t *scratch, size_t *nsockets,
                              void (*fn)(const char *room, size_t len, void *arg), void *arg)
{
    *nsockets = 0;
    if (json_validate(sockets, len))
        return -EPROTO;
    buf_reset(scratch);
    if (buf_reserve(scratch, len + 1))
        return -ENOMEM;
    json_span_t root, sock;
    jwalk_t w;
    span_at(sockets, len, json_skip_ws(sockets, len, 0), &root);
    int rc = jwalk_open(&root, JSON_ARRAY, &w);
    while (!rc && jwalk_next(&w, NULL, &sock)) {
        rc = sock.type == JSON_OBJECT ? 0 : -EPROTO;
        if (!rc && fn)
            rc = socket_rooms(scratch, &sock, fn, arg);
        if (!rc)
            (*nsockets)++;
    }
    return rc;
}
