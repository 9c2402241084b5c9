/* adapter_msg: redis-adapter messages in both formats: encode, bounded decode, client frame. */
#include "common/proto/adapter_msg.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <string.h>

#include "common/decimal.h"
#include "common/json.h"
#include "common/mpack.h"
#include "common/proto/adapter_json.h"

/* A literal key: far below mpack_write_str's 4 GiB limit. */
static void put_key(buf_t *out, const char *k)
{
    (void)mpack_write_str(out, k, strlen(k));
}

static void init_msg(adapter_msg_t *out)
{
    memset(out, 0, sizeof *out);
    out->packet_type = -1;
    out->nsp.p = "/";
    out->nsp.len = 1;
}

/* packet.data: the msgpack given, or the JSON converted. */
typedef struct data_in {
    const char *json;
    size_t json_len;
    const uint8_t *mpack;
    size_t mpack_len;
} data_in_t;

static int encode(buf_t *out, const char *uid, size_t uid_len, const char *nsp, size_t nsp_len,
                  const data_in_t *data, const adapter_str_t *rooms, size_t nrooms)
{
    mpack_write_array(out, 3);
    int rc = mpack_write_str(out, uid, uid_len);
    if (rc)
        return rc;
    /* the fixed runs as literal msgpack (octal escapes: they end after three digits), one
     * append each, for a message written once per entry: {"type": 2, "data": */
    buf_append(out, "\203\244type\002\244data", 12);
    if (data->mpack)
        buf_append(out, data->mpack, data->mpack_len);
    else
        rc = mpack_from_json(out, data->json, data->json_len);
    if (!rc) {
        buf_append(out, "\243nsp", 4); /* "nsp": */
        rc = mpack_write_str(out, nsp, nsp_len);
    }
    if (!rc && nrooms > UINT32_MAX)
        rc = -E2BIG;
    if (rc)
        return rc;
    buf_append(out, "\203\245rooms", 7); /* {"rooms": */
    mpack_write_array(out, (uint32_t)nrooms);
    for (size_t i = 0; !rc && i < nrooms; i++)
        rc = mpack_write_str(out, rooms[i].p, rooms[i].len);
    if (rc)
        return rc;
    buf_append(out, "\246except\220\245flags\200", 15); /* "except": [], "flags": {} */
    return 0;
}

int adapter_msg_encode_broadcast(buf_t *out, const char *uid, size_t uid_len, const char *nsp,
                                 size_t nsp_len, const char *data_json, size_t data_len,
                                 const adapter_str_t *rooms, size_t nrooms)
{
    size_t mark = out->len;
    data_in_t d = {.json = data_json, .json_len = data_len};
    return ajson_rollback(out, mark, encode(out, uid, uid_len, nsp, nsp_len, &d, rooms, nrooms));
}

int adapter_msg_encode_broadcast_mpack(buf_t *out, const char *uid, size_t uid_len, const char *nsp,
                                       size_t nsp_len, const uint8_t *data, size_t data_len,
                                       const adapter_str_t *rooms, size_t nrooms)
{
    size_t mark = out->len;
    data_in_t d = {.mpack = data, .mpack_len = data_len};
    return ajson_rollback(out, mark, encode(out, uid, uid_len, nsp, nsp_len, &d, rooms, nrooms));
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
    if (rc)
        return rc;
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
    return 0;
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

/* Reads one value of a map at r whose key is key (read_key's), or skips it. */
typedef int (*field_fn)(mpack_reader_t *r, const mpack_item_t *key, void *arg);

/* Hands each key of the map whose header is `map` (already read) to field, in order; -EPROTO if
 * map is no map, else the first error of a key or of field. */
static int read_fields(mpack_reader_t *r, const mpack_item_t *map, field_fn field, void *arg)
{
    if (map->type != MPACK_MAP)
        return -EPROTO;
    int rc = 0;
    for (uint32_t i = 0; !rc && i < map->count; i++) {
        mpack_item_t key;
        rc = read_key(r, &key);
        if (!rc)
            rc = field(r, &key, arg);
    }
    return rc;
}

/* A whole message: one map filling p[0..len), each key handed to field; -EPROTO when anything
 * else is there, else the first error of read_fields. */
static int read_message(const uint8_t *p, size_t len, field_fn field, void *arg)
{
    mpack_reader_t r;
    mpack_item_t it;
    mpack_reader_init(&r, p, len);
    if (mpack_read(&r, &it))
        return -EPROTO;
    int rc = read_fields(&r, &it, field, arg);
    return rc ? rc : r.p != r.end ? -EPROTO : 0;
}

/* A message's `type`: an unsigned integer, any from 100 on read as 100 (no type is that high). */
static int read_type(mpack_reader_t *r, int64_t *type)
{
    mpack_item_t v;
    int rc = read_value(r, &v);
    if (!rc && v.type != MPACK_UINT)
        rc = -EPROTO;
    if (!rc)
        *type = v.u < 100 ? (int64_t)v.u : 100;
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

static int flags_field(mpack_reader_t *r, const mpack_item_t *key, void *arg)
{
    adapter_msg_t *m = arg;
    if (key_eq(key, "volatile"))
        return read_truthy(r, &m->flag_volatile);
    if (key_eq(key, "local"))
        return read_truthy(r, &m->flag_local);
    if (key_eq(key, "timeout"))
        return read_timeout(r, &m->timeout_ms);
    return mpack_skip(r);
}

static int read_flags(mpack_reader_t *r, adapter_msg_t *m)
{
    mpack_item_t it;
    if (at_undefined(r))
        return read_value(r, &it);
    int rc = mpack_read(r, &it);
    if (rc || it.type == MPACK_NIL)
        return rc;
    return read_fields(r, &it, flags_field, m);
}

static int opts_field(mpack_reader_t *r, const mpack_item_t *key, void *arg)
{
    adapter_msg_t *m = arg;
    if (key_eq(key, "rooms"))
        return read_rooms(r, m->rooms, &m->nrooms);
    if (key_eq(key, "except"))
        return read_rooms(r, m->except, &m->nexcept);
    if (key_eq(key, "flags"))
        return read_flags(r, m);
    return mpack_skip(r);
}

static int read_opts(mpack_reader_t *r, adapter_msg_t *m)
{
    mpack_item_t it;
    int rc = mpack_read(r, &it);
    return rc ? rc : read_fields(r, &it, opts_field, m);
}

static int packet_field(mpack_reader_t *r, const mpack_item_t *key, void *arg)
{
    adapter_msg_t *m = arg;
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
    return rc ? rc : read_fields(r, &it, packet_field, m);
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

int adapter_msg_peek_broadcast_uid(const uint8_t *p, size_t len, adapter_str_t *uid)
{
    size_t start, n;
    if (len < 2 || p[0] != 0x93) /* fixarray of 3 */
        return -EPROTO;
    if ((p[1] & 0xe0) == 0xa0) { /* fixstr */
        start = 2;
        n = p[1] & 0x1f;
    } else if (p[1] == 0xd9 && len >= 3) { /* str 8 */
        start = 3;
        n = p[2];
    } else {
        return -EPROTO;
    }
    if (n > len - start)
        return -EPROTO;
    uid->p = (const char *)p + start;
    uid->len = n;
    return 0;
}

/* Moves *i back to the '"' that opens the string whose closing '"' is at *i + 1; false when the
 * string holds a backslash or no quote opens it. */
static bool quoted_back(const uint8_t *p, size_t *i)
{
    for (size_t k = *i; k-- > 0;) {
        if (p[k] == '\\')
            return false;
        if (p[k] == '"') {
            *i = k;
            return true;
        }
    }
    return false;
}

/* p[0..at) ends with the `n` bytes of s. */
static bool ends_with(const uint8_t *p, size_t at, const char *s, size_t n)
{
    return at >= n && memcmp(p + at - n, s, n) == 0;
}

int adapter_msg_peek_cluster(const uint8_t *p, size_t len, int *type, adapter_str_t *uid)
{
    static const char head[] = "{\"type\":";
    size_t i = sizeof(head) - 1;
    if (len < i + 2 || memcmp(p, head, i) != 0)
        return -EPROTO;
    /* a type below 10000 (ClusterAdapter's are below 100), however many digits spell it; a
     * number past 64 bits stops before a digit, not at the ',' */
    uint64_t t;
    size_t digits = decimal_read((const char *)p + i, len - i, SIZE_MAX, &t);
    i += digits;
    if (digits == 0 || t > 9999 || i >= len || p[i] != ',')
        return -EPROTO;
    /* ..."uid":"<uid>","nsp":"<nsp>"} read backwards */
    if (p[len - 1] != '}' || p[len - 2] != '"')
        return -EPROTO;
    size_t nsp_open = len - 2; /* nsp's closing quote, then its opening one */
    if (!quoted_back(p, &nsp_open) || !ends_with(p, nsp_open, ",\"nsp\":", 7))
        return -EPROTO;
    size_t uid_close = nsp_open - 7 - 1;
    if (nsp_open < 8 + i || p[uid_close] != '"')
        return -EPROTO;
    size_t uid_open = uid_close;
    if (!quoted_back(p, &uid_open) || !ends_with(p, uid_open, ",\"uid\":", 7) || uid_open < i + 7)
        return -EPROTO;
    *type = (int)t;
    uid->p = (const char *)p + uid_open + 1;
    uid->len = uid_close - uid_open - 1;
    return 0;
}

/* ------------------------------------------------------------------ msgpack request (type 7) */

/* What a request's fields said, beside what they set in m. */
typedef struct request_parts {
    adapter_msg_t *m;
    int64_t type;
    bool has_packet, has_opts;
} request_parts_t;

static int request_field(mpack_reader_t *r, const mpack_item_t *key, void *arg)
{
    request_parts_t *q = arg;
    if (key_eq(key, "uid"))
        return read_str(r, &q->m->uid);
    if (key_eq(key, "requestId"))
        return read_str(r, &q->m->request_id);
    if (key_eq(key, "type"))
        return read_type(r, &q->type);
    if (key_eq(key, "packet")) {
        q->has_packet = true;
        return read_packet(r, q->m);
    }
    if (key_eq(key, "opts")) {
        q->has_opts = true;
        return read_opts(r, q->m);
    }
    return mpack_skip(r);
}

static int decode_request_mpack(const uint8_t *p, size_t len, adapter_msg_t *out)
{
    request_parts_t q = {out, -1, false, false};
    int rc = read_message(p, len, request_field, &q);
    if (rc)
        return rc;
    if (q.type < 0)
        return -EPROTO;
    if (q.type != 7)
        return 0; /* only a broadcast with acks can carry binary: others are not expected here */
    if (!q.has_packet || !q.has_opts || out->packet_type < 0 || !out->request_id.len)
        return -EPROTO;
    out->op = ADAPTER_OP_BROADCAST;
    return 0;
}

/* ------------------------------------------------------------------ cluster message data */

/* What a ClusterAdapter message's `data` held, whatever its encoding. */
typedef struct cluster_parts {
    bool has_packet, has_opts, has_rooms;
} cluster_parts_t;

/* A msgpack `data` being read: its message's type, into m. */
typedef struct cluster_fields {
    adapter_msg_t *m;
    int64_t type;
    cluster_parts_t q;
} cluster_fields_t;

/* The op a ClusterAdapter message type asks for, once its data was read into m (types without
 * data for this server: responses, heartbeats, unknown ones: ADAPTER_OP_NONE). */
static int cluster_op(int64_t type, const cluster_parts_t *q, adapter_msg_t *m)
{
    switch (type) {
    case 3:
        m->op = ADAPTER_OP_BROADCAST;
        return q->has_packet && q->has_opts && m->packet_type >= 0 ? 0 : -EPROTO;
    case 4:
    case 5:
        m->op = type == 4 ? ADAPTER_OP_JOIN : ADAPTER_OP_LEAVE;
        return q->has_opts && q->has_rooms ? 0 : -EPROTO;
    case 6:
        m->op = ADAPTER_OP_DISCONNECT;
        return q->has_opts ? 0 : -EPROTO;
    case 7:
        m->op = ADAPTER_OP_FETCH;
        return q->has_opts && m->request_id.len ? 0 : -EPROTO;
    case 9:
        m->op = ADAPTER_OP_SERVER_SIDE_EMIT;
        return q->has_packet ? 0 : -EPROTO;
    default:
        return 0;
    }
}

/* A requestId: absent when nil or undefined. */
static int read_request_id(mpack_reader_t *r, adapter_msg_t *m)
{
    mpack_item_t it;
    mpack_reader_t peek = *r;
    int rc = mpack_read(&peek, &it);
    if (!rc && (it.type == MPACK_NIL || at_undefined(r)))
        return read_value(r, &it);
    return rc ? rc : read_str(r, &m->request_id);
}

/* A serverSideEmit packet, [event, ...args]: kept as msgpack (it may hold binary). */
static int read_emit_packet(mpack_reader_t *r, adapter_msg_t *m)
{
    const uint8_t *start = r->p;
    mpack_item_t it;
    int rc = read_value(r, &it);
    if (rc || it.type != MPACK_ARRAY)
        return rc ? rc : -EPROTO;
    m->data = start;
    m->data_len = (size_t)(r->p - start);
    return 0;
}

static int cluster_field(mpack_reader_t *r, const mpack_item_t *key, void *arg)
{
    cluster_fields_t *f = arg;
    adapter_msg_t *m = f->m;
    if (key_eq(key, "packet") && (f->type == 3 || f->type == 9)) {
        f->q.has_packet = true;
        adapter_str_t nsp = m->nsp; /* the message's nsp decides, never the packet's */
        int rc = f->type == 9 ? read_emit_packet(r, m) : read_packet(r, m);
        m->nsp = nsp;
        return rc;
    }
    if (key_eq(key, "opts") && f->type != 9) {
        f->q.has_opts = true;
        return read_opts(r, m);
    }
    if (key_eq(key, "requestId"))
        return read_request_id(r, m);
    if (key_eq(key, "rooms") && (f->type == 4 || f->type == 5)) {
        f->q.has_rooms = true;
        return read_rooms(r, m->targets, &m->ntargets);
    }
    if (key_eq(key, "close"))
        return read_truthy(r, &m->close);
    return mpack_skip(r);
}

/* `data` of a ClusterAdapter message of `type` as msgpack, one whole value at r. */
static int read_cluster_data(mpack_reader_t *r, int64_t type, adapter_msg_t *m)
{
    mpack_item_t it;
    if (type < 3 || type > 9 || type == 8)
        return mpack_skip(r); /* responses, heartbeats: nothing for this decoder's callers */
    int rc = mpack_read(r, &it);
    if (rc)
        return rc;
    cluster_fields_t f = {m, type, {0}};
    rc = read_fields(r, &it, cluster_field, &f);
    return rc ? rc : cluster_op(type, &f.q, m);
}

/* A ClusterAdapter message sent as msgpack ({type, data, uid, nsp}): the sharded adapter's
 * messages that carry binary, and every pub/sub message of the streams adapter. */
/* The envelope of a msgpack ClusterAdapter message being read, into m. */
typedef struct cluster_envelope {
    adapter_msg_t *m;
    int64_t type;
    bool has_nsp;
    const uint8_t *data;
} cluster_envelope_t;

static int envelope_field(mpack_reader_t *r, const mpack_item_t *key, void *arg)
{
    cluster_envelope_t *e = arg;
    if (key_eq(key, "type"))
        return read_type(r, &e->type);
    if (key_eq(key, "uid"))
        return read_str(r, &e->m->uid);
    if (key_eq(key, "nsp")) {
        e->has_nsp = true;
        return read_str(r, &e->m->nsp);
    }
    if (key_eq(key, "data"))
        e->data = r->p; /* read once the nsp is known, wherever it comes */
    return mpack_skip(r);
}

static int decode_cluster_mpack(const uint8_t *p, size_t len, adapter_msg_t *m)
{
    cluster_envelope_t e = {m, -1, false, NULL};
    int rc = read_message(p, len, envelope_field, &e);
    int64_t type = e.type;
    const uint8_t *data = e.data;
    if (rc || type < 0 || !e.has_nsp)
        return rc ? rc : -EPROTO;
    if (!data || *data == 0xc0 || (*data == 0xd4 && p + len - data >= 3 && data[1] == 0))
        return type >= 3 && type <= 9 && type != 8 ? -EPROTO : 0; /* these always carry data */
    mpack_reader_t r;
    mpack_reader_init(&r, data, (size_t)(p + len - data));
    return read_cluster_data(&r, type, m);
}

/* A string array; null means empty. */
static int jrooms(buf_t *scratch, const json_span_t *v, adapter_str_t *rooms, size_t *n)
{
    *n = 0;
    if (v->type == JSON_NULL)
        return 0;
    ajson_walk_t w;
    json_span_t e;
    int rc = ajson_open(v, JSON_ARRAY, &w);
    while (!rc && ajson_next(&w, NULL, &e)) {
        if (*n == ADAPTER_MSG_MAX_ROOMS)
            return -E2BIG;
        rc = ajson_str(scratch, &e, &rooms[*n]);
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
    ajson_walk_t w;
    json_span_t k, e;
    int rc = ajson_open(v, JSON_OBJECT, &w);
    while (!rc && ajson_next(&w, &k, &e)) {
        if (ajson_key_is(&k, "volatile")) {
            m->flag_volatile = jtruthy(&e);
        } else if (ajson_key_is(&k, "local")) {
            m->flag_local = jtruthy(&e);
        } else if (ajson_key_is(&k, "timeout") && e.type == JSON_NUMBER) {
            double d = 0;
            json_number_parse(e.p, e.len, &d);
            m->timeout_ms = d > 0 && d < 1e15 ? (uint64_t)d : 0;
        }
    }
    return rc;
}

static int jopts(buf_t *scratch, const json_span_t *v, adapter_msg_t *m)
{
    ajson_walk_t w;
    json_span_t k, e;
    int rc = ajson_open(v, JSON_OBJECT, &w);
    while (!rc && ajson_next(&w, &k, &e)) {
        if (ajson_key_is(&k, "rooms"))
            rc = jrooms(scratch, &e, m->rooms, &m->nrooms);
        else if (ajson_key_is(&k, "except"))
            rc = jrooms(scratch, &e, m->except, &m->nexcept);
        else if (ajson_key_is(&k, "flags"))
            rc = jflags(&e, m);
    }
    return rc;
}

/* A socket.io packet {type, data[, nsp]} sent as JSON. */
static int jpacket(buf_t *scratch, const json_span_t *v, adapter_msg_t *m)
{
    ajson_walk_t w;
    json_span_t k, e;
    int64_t type = -1;
    int rc = ajson_open(v, JSON_OBJECT, &w);
    while (!rc && ajson_next(&w, &k, &e)) {
        if (ajson_key_is(&k, "type")) {
            rc = ajson_int(&e, &type);
        } else if (ajson_key_is(&k, "data")) {
            m->data_json = e.p;
            m->data_json_len = e.len;
        } else if (ajson_key_is(&k, "nsp")) {
            rc = ajson_str(scratch, &e, &m->nsp);
        } else if (ajson_key_is(&k, "id")) {
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
    ajson_reserve(scratch, in, len);
    size_t pos = json_skip_ws(in, len, 0);
    ajson_span_at(in, len, pos, root);
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
    ajson_walk_t w;
    json_span_t k, e;
    q->type = -1;
    int rc = ajson_open(root, JSON_OBJECT, &w);
    while (!rc && ajson_next(&w, &k, &e)) {
        if (ajson_key_is(&k, "uid")) {
            rc = ajson_str(scratch, &e, &m->uid);
        } else if (ajson_key_is(&k, "requestId")) {
            rc = e.type == JSON_NULL ? 0 : ajson_str(scratch, &e, &m->request_id);
        } else if (ajson_key_is(&k, "type")) {
            rc = ajson_int(&e, &q->type);
        } else if (ajson_key_is(&k, "close")) {
            m->close = jtruthy(&e);
        } else if (ajson_key_is(&k, "rooms")) {
            q->rooms = e;
            q->has_rooms = true;
        } else if (ajson_key_is(&k, "opts")) {
            q->opts = e;
            q->has_opts = e.type != JSON_NULL;
        } else if (ajson_key_is(&k, "data")) {
            q->data = e;
            q->has_data = true;
        } else if (ajson_key_is(&k, "packet")) {
            q->packet = e;
            q->has_packet = true;
        } else if (ajson_key_is(&k, "sid")) {
            q->sid = e;
            q->has_sid = true;
        } else if (ajson_key_is(&k, "room")) {
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
    rc = ajson_str(scratch, &q->sid, &m->rooms[0]);
    if (!rc && m->op != ADAPTER_OP_DISCONNECT) {
        m->ntargets = 1;
        rc = q->has_room ? ajson_str(scratch, &q->room, &m->targets[0]) : -EPROTO;
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

/* `data` of a ClusterAdapter message of `type` as JSON (an object). */
static int cluster_data(buf_t *scratch, int64_t type, const json_span_t *data, adapter_msg_t *m)
{
    ajson_walk_t w;
    json_span_t k, e, packet = {0}, rooms = {0};
    cluster_parts_t q = {0};
    int rc = ajson_open(data, JSON_OBJECT, &w);
    while (!rc && ajson_next(&w, &k, &e)) {
        if (ajson_key_is(&k, "requestId")) {
            rc = e.type == JSON_NULL ? 0 : ajson_str(scratch, &e, &m->request_id);
        } else if (ajson_key_is(&k, "opts")) {
            q.has_opts = true;
            rc = jopts(scratch, &e, m);
        } else if (ajson_key_is(&k, "packet")) {
            packet = e;
            q.has_packet = true;
        } else if (ajson_key_is(&k, "rooms")) {
            rooms = e;
            q.has_rooms = true;
        } else if (ajson_key_is(&k, "close")) {
            m->close = jtruthy(&e);
        }
    }
    if (!rc && q.has_rooms && (type == 4 || type == 5))
        rc = jrooms(scratch, &rooms, m->targets, &m->ntargets);
    if (!rc && q.has_packet && type == 3) {
        adapter_str_t nsp = m->nsp; /* the message's nsp decides, never the packet's */
        rc = jpacket(scratch, &packet, m);
        m->nsp = nsp;
    } else if (!rc && q.has_packet && type == 9) {
        if (packet.type != JSON_ARRAY)
            return -EPROTO;
        m->data_json = packet.p;
        m->data_json_len = packet.len;
    }
    return rc ? rc : cluster_op(type, &q, m);
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
    ajson_walk_t w;
    int64_t type = -1;
    bool has_data = false, has_nsp = false;
    int rc = json_prepare(p, len, scratch, &root);
    if (!rc)
        rc = ajson_open(&root, JSON_OBJECT, &w);
    while (!rc && ajson_next(&w, &k, &e)) {
        if (ajson_key_is(&k, "type")) {
            rc = ajson_int(&e, &type);
        } else if (ajson_key_is(&k, "uid")) {
            rc = ajson_str(scratch, &e, &m->uid);
        } else if (ajson_key_is(&k, "nsp")) {
            has_nsp = true;
            rc = ajson_str(scratch, &e, &m->nsp);
        } else if (ajson_key_is(&k, "data")) {
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

int adapter_msg_decode_cluster_parts(const adapter_str_t *uid, const adapter_str_t *nsp,
                                     int64_t type, const uint8_t *data, size_t len, buf_t *scratch,
                                     adapter_msg_t *m)
{
    init_msg(m);
    m->uid = *uid;
    m->nsp = *nsp;
    int rc;
    if (len == 0) {
        rc = type >= 3 && type <= 9 && type != 8 ? -EPROTO : 0;
    } else if (data[0] == '{') {
        json_span_t root;
        rc = json_prepare(data, len, scratch, &root);
        if (!rc)
            rc = cluster_data(scratch, type, &root, m);
    } else {
        mpack_reader_t r;
        mpack_reader_init(&r, data, len);
        rc = read_cluster_data(&r, type, m);
        if (!rc && r.p != r.end)
            rc = -EPROTO;
    }
    if (rc)
        m->op = ADAPTER_OP_NONE;
    return rc;
}

/* ------------------------------------------------------------------ JSON encoders */

/* compact: data_json is known valid and minified (this process's own encoding): copied as is. */
static int broadcast_data(buf_t *out, const char *data_json, size_t data_len, bool compact,
                          const adapter_str_t *rooms, size_t nrooms)
{
    size_t mark = out->len;
    buf_puts(out, "{\"packet\":{\"type\":2,\"data\":");
    if (compact) {
        buf_append(out, data_json, data_len);
    } else {
        int rc = json_minify(out, data_json, data_len);
        if (rc)
            return ajson_rollback(out, mark, rc);
    }
    buf_puts(out, "},\"opts\":{\"rooms\":");
    ajson_put_rooms(out, rooms, nrooms);
    buf_puts(out, ",\"except\":[],\"flags\":{}}}");
    return 0;
}

int adapter_msg_encode_broadcast_data(buf_t *out, const char *data_json, size_t data_len,
                                      const adapter_str_t *rooms, size_t nrooms)
{
    return broadcast_data(out, data_json, data_len, false, rooms, nrooms);
}

static int cluster_broadcast(buf_t *out, const char *uid, size_t uid_len, const char *nsp,
                             size_t nsp_len, const char *data_json, size_t data_len, bool compact,
                             const adapter_str_t *rooms, size_t nrooms)
{
    size_t mark = out->len;
    buf_puts(out, "{\"type\":3,\"data\":");
    int rc = broadcast_data(out, data_json, data_len, compact, rooms, nrooms);
    if (rc)
        return ajson_rollback(out, mark, rc);
    ajson_put_member(out, ",\"uid\":", uid, uid_len);
    ajson_put_member(out, ",\"nsp\":", nsp, nsp_len);
    buf_putc(out, '}');
    return 0;
}

int adapter_msg_encode_cluster_broadcast(buf_t *out, const char *uid, size_t uid_len,
                                         const char *nsp, size_t nsp_len, const char *data_json,
                                         size_t data_len, const adapter_str_t *rooms, size_t nrooms)
{
    return cluster_broadcast(out, uid, uid_len, nsp, nsp_len, data_json, data_len, false, rooms,
                             nrooms);
}

int adapter_msg_encode_cluster_broadcast_compact(buf_t *out, const char *uid, size_t uid_len,
                                                 const char *nsp, size_t nsp_len,
                                                 const char *data_json, size_t data_len,
                                                 const adapter_str_t *rooms, size_t nrooms)
{
    return cluster_broadcast(out, uid, uid_len, nsp, nsp_len, data_json, data_len, true, rooms,
                             nrooms);
}

static int ack_mpack(buf_t *out, const adapter_str_t *rid, const char *body, size_t body_len)
{
    mpack_write_map(out, body ? 3 : 2);
    put_key(out, "type");
    mpack_write_uint(out, 9);
    put_key(out, "requestId");
    int rc = mpack_write_str(out, rid->p, rid->len);
    if (!rc && body) {
        put_key(out, "packet");
        rc = mpack_from_json(out, body, body_len);
    }
    return rc;
}

static int put_body(buf_t *out, const char *key, const char *body, size_t len)
{
    if (!body)
        return 0;
    buf_printf(out, ",\"%s\":", key);
    return json_minify(out, body, len);
}

static int classic_resp(buf_t *out, adapter_resp_t kind, const char *uid, size_t uid_len,
                        const adapter_str_t *rid, const char *body, size_t len, uint64_t count)
{
    if (kind == ADAPTER_RESP_BROADCAST_ACK)
        return ack_mpack(out, rid, body, len);
    int rc = 0;
    if (kind == ADAPTER_RESP_SSE)
        buf_puts(out, "{\"type\":6,\"requestId\":");
    else if (kind == ADAPTER_RESP_CLIENT_COUNT)
        buf_puts(out, "{\"type\":8,\"requestId\":");
    else
        buf_puts(out, "{\"requestId\":");
    json_write_string(out, rid->p, rid->len);
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
        buf_printf(out, ",\"clientCount\":%" PRIu64, count);
        break;
    }
    /* who answered: Node ignores the extra member, streamioctl's cluster view names the server */
    bool named = kind == ADAPTER_RESP_SOCKETS || kind == ADAPTER_RESP_FETCH ||
                 kind == ADAPTER_RESP_ALL_ROOMS || kind == ADAPTER_RESP_SSE;
    if (rc)
        return rc;
    if (uid && named)
        ajson_put_member(out, ",\"uid\":", uid, uid_len);
    buf_putc(out, '}');
    return 0;
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
    buf_printf(out, "{\"type\":%d,\"data\":{\"requestId\":", type);
    json_write_string(out, rid->p, rid->len);
    int rc = 0;
    if (kind == ADAPTER_RESP_FETCH)
        rc = put_body(out, "sockets", body, len);
    else if (kind == ADAPTER_RESP_CLIENT_COUNT)
        buf_printf(out, ",\"clientCount\":%" PRIu64, count);
    else
        rc = put_body(out, "packet", body, len);
    if (rc)
        return rc;
    ajson_put_member(out, "},\"uid\":", uid, uid_len);
    ajson_put_member(out, ",\"nsp\":", nsp, nsp_len);
    buf_putc(out, '}');
    return 0;
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
    return ajson_rollback(out, mark, rc);
}

/* ------------------------------------------------------------------ client frame */

/* The namespace and its ',' unless it is "/" (or empty). */
static void put_nsp(buf_t *out, const adapter_msg_t *m)
{
    if (m->nsp.len && !(m->nsp.len == 1 && m->nsp.p[0] == '/')) {
        buf_append(out, m->nsp.p, m->nsp.len);
        buf_putc(out, ',');
    }
}

/* Appends `,"<offset>"` inside the data array just written (it ends with ']'): the offset a
 * ClusterAdapter member adds to an EVENT it broadcasts when recovery is on. -EPROTO when the data
 * written is not an array. */
static int put_offset(buf_t *out, size_t data_at, const adapter_str_t *offset)
{
    if (out->len - data_at < 2 || out->data[data_at] != '[' || out->data[out->len - 1] != ']')
        return -EPROTO;
    out->len--;
    if (out->len - data_at > 1)
        buf_putc(out, ',');
    json_write_string(out, offset->p, offset->len);
    buf_putc(out, ']');
    return 0;
}

static int sio_text(buf_t *out, const adapter_msg_t *m, const uint64_t *ack_id,
                    const adapter_str_t *offset)
{
    char head[2] = {'4', (char)('0' + m->packet_type)};
    buf_append(out, head, 2);
    put_nsp(out, m);
    if (ack_id)
        buf_printf(out, "%" PRIu64, *ack_id);
    size_t data_at = out->len;
    int rc = 0;
    if (m->data_json) {
        if (m->data_json_len == 4 && !memcmp(m->data_json, "null", 4))
            return offset ? -EPROTO : 0;
        rc = json_minify_utf8(out, m->data_json, m->data_json_len);
    } else if (!m->data_len || m->data[0] == 0xc0) {
        return offset ? -EPROTO : 0;
    } else {
        size_t used;
        rc = mpack_to_json(out, m->data, m->data_len, &used);
        if (!rc && used != m->data_len)
            rc = -EPROTO;
    }
    return rc || !offset ? rc : put_offset(out, data_at, offset);
}

static int sio_text_checked(buf_t *out, const adapter_msg_t *m, const uint64_t *ack_id,
                            const adapter_str_t *offset)
{
    if (m->packet_type == 5 || m->packet_type == 6)
        return -ENOTSUP;
    if (m->packet_type < 0 || m->packet_type > 6)
        return -EPROTO;
    size_t mark = out->len;
    return ajson_rollback(out, mark, sio_text(out, m, ack_id, offset));
}

int adapter_msg_sio_text(buf_t *out, const adapter_msg_t *m)
{
    return sio_text_checked(out, m, NULL, NULL);
}

int adapter_msg_sio_text_ack(buf_t *out, const adapter_msg_t *m, uint64_t ack_id)
{
    return sio_text_checked(out, m, &ack_id, NULL);
}

int adapter_msg_sio_text_offset(buf_t *out, const adapter_msg_t *m, const char *offset,
                                size_t offset_len)
{
    adapter_str_t o = {offset, offset_len};
    return sio_text_checked(out, m, NULL, &o);
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
    buf_append(b->atts, &n32, sizeof(n32));
    buf_append(b->atts, p, len);
    buf_printf(out, "{\"_placeholder\":true,\"num\":%u}", b->n++);
    return 0;
}

static int sio_binary(buf_t *out, buf_t *atts, const adapter_msg_t *m, const uint64_t *ack_id,
                      const adapter_str_t *offset, unsigned *natt)
{
    if (m->packet_type != 2 && m->packet_type != 5)
        return -ENOTSUP; /* acks and the rest are never broadcast */
    if (m->data_json || !m->data_len)
        return -EPROTO; /* JSON has no binary: a type 5 without it is malformed */
    size_t amark = atts->len;
    buf_t json;
    buf_init(&json);
    bin_out_t b = {atts, 0};
    size_t used = 0;
    int rc = mpack_to_json_bin(&json, m->data, m->data_len, &used, put_placeholder, &b);
    if (!rc && used != m->data_len)
        rc = -EPROTO;
    if (!rc && offset)
        rc = put_offset(&json, 0, offset);
    if (!rc) {
        buf_printf(out, "45%u-", b.n);
        put_nsp(out, m);
        if (ack_id)
            buf_printf(out, "%" PRIu64, *ack_id);
        buf_append(out, json.data, json.len);
        *natt = b.n;
    }
    buf_free(&json);
    return ajson_rollback(atts, amark, rc);
}

int adapter_msg_sio_binary(buf_t *out, buf_t *atts, const adapter_msg_t *m, const uint64_t *ack_id,
                           unsigned *natt)
{
    return sio_binary(out, atts, m, ack_id, NULL, natt);
}

int adapter_msg_sio_binary_offset(buf_t *out, buf_t *atts, const adapter_msg_t *m,
                                  const char *offset, size_t offset_len, unsigned *natt)
{
    adapter_str_t o = {offset, offset_len};
    return sio_binary(out, atts, m, NULL, &o, natt);
}
