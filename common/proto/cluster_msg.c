/* cluster_msg: see cluster_msg.h. */
#include "common/proto/cluster_msg.h"

#include <errno.h>
#include <string.h>

#include "common/json.h"
#include "common/mpack.h"
#include "common/proto/adapter_json.h"

static void put_request_opts(buf_t *out, const adapter_str_t *rooms, size_t nrooms, bool flags)
{
    buf_puts(out, "\"opts\":{\"rooms\":");
    ajson_put_rooms(out, rooms, nrooms);
    buf_puts(out, flags ? ",\"except\":[],\"flags\":{}}" : ",\"except\":[]}");
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

/* The members after the opts: "rooms" to join/leave, "close", the emitted event (validated). */
static void request_body(buf_t *out, const cluster_request_t *q, bool sharded)
{
    switch (q->op) {
    case ADAPTER_OP_JOIN:
    case ADAPTER_OP_LEAVE:
        buf_puts(out, ",\"rooms\":");
        ajson_put_rooms(out, q->targets, q->ntargets);
        return;
    case ADAPTER_OP_DISCONNECT:
        buf_puts(out, q->close ? ",\"close\":true" : ",\"close\":false");
        return;
    case ADAPTER_OP_SERVER_SIDE_EMIT:
        buf_puts(out, sharded ? "\"packet\":" : ",\"data\":");
        (void)json_minify(out, q->data_json, q->data_len);
        return;
    default:
        return;
    }
}

static bool has_opts(adapter_op_t op)
{
    return op != ADAPTER_OP_ALL_ROOMS && op != ADAPTER_OP_SERVER_SIDE_EMIT;
}

/* Checks q against its format; the JSON "type" it gets, or 0 when it cannot be sent. */
static int check_request(bool sharded, const adapter_str_t *request_id, const cluster_request_t *q)
{
    int type = request_type(q->op, sharded);
    bool answered = q->op == ADAPTER_OP_ALL_ROOMS || q->op == ADAPTER_OP_FETCH ||
                    q->op == ADAPTER_OP_SERVER_SIDE_EMIT;
    if (!type || q->nrooms > ADAPTER_MSG_MAX_ROOMS || q->ntargets > ADAPTER_MSG_MAX_ROOMS ||
        answered != (request_id != NULL))
        return 0;
    json_type_t t;
    if (q->op == ADAPTER_OP_SERVER_SIDE_EMIT &&
        (!q->data_json || json_validate(q->data_json, q->data_len) ||
         json_type_of(q->data_json, q->data_len, &t) || t != JSON_ARRAY))
        return 0; /* the event and its arguments: [event, ...args] */
    return type;
}

/* The ClusterAdapter `data` object of a checked request. */
static void cluster_data(buf_t *out, const adapter_str_t *request_id, const cluster_request_t *q)
{
    buf_putc(out, '{');
    if (has_opts(q->op))
        put_request_opts(out, q->rooms, q->nrooms, true);
    request_body(out, q, true);
    if (request_id)
        ajson_put_member(out, ",\"requestId\":", request_id->p, request_id->len);
    buf_putc(out, '}');
}

int cluster_msg_encode_request(buf_t *out, bool sharded, const char *uid, size_t uid_len,
                               const char *nsp, size_t nsp_len, const adapter_str_t *request_id,
                               const cluster_request_t *q)
{
    int type = check_request(sharded, request_id, q);
    if (!type)
        return -EINVAL;
    if (sharded) {
        buf_printf(out, "{\"type\":%d,\"data\":", type);
        cluster_data(out, request_id, q);
        ajson_put_member(out, ",\"uid\":", uid, uid_len);
        ajson_put_member(out, ",\"nsp\":", nsp, nsp_len);
    } else {
        ajson_put_member(out, "{\"uid\":", uid, uid_len);
        if (request_id)
            ajson_put_member(out, ",\"requestId\":", request_id->p, request_id->len);
        buf_printf(out, ",\"type\":%d", type);
        if (has_opts(q->op)) {
            buf_putc(out, ',');
            put_request_opts(out, q->rooms, q->nrooms, false);
        }
        request_body(out, q, false);
    }
    buf_putc(out, '}');
    return 0;
}

int cluster_msg_encode_request_data(buf_t *out, const adapter_str_t *request_id,
                                    const cluster_request_t *q, int *type)
{
    *type = check_request(true, request_id, q);
    if (!*type)
        return -EINVAL;
    cluster_data(out, request_id, q);
    return 0;
}

/* The members a response may carry, at the top (classic) or inside `data` (sharded). */
typedef struct resp_parts {
    json_span_t rooms, sockets, value, count;
    bool has_rooms, has_sockets, has_value, has_count;
} resp_parts_t;

static int resp_members(buf_t *scratch, const json_span_t *obj, bool top, cluster_reply_t *out,
                        resp_parts_t *q, int64_t *type, json_span_t *data, bool *has_nsp)
{
    ajson_walk_t w;
    json_span_t k, e;
    int rc = ajson_open(obj, JSON_OBJECT, &w);
    while (!rc && ajson_next(&w, &k, &e)) {
        if (ajson_key_is(&k, "requestId")) {
            rc = ajson_str(scratch, &e, &out->request_id);
        } else if (ajson_key_is(&k, "rooms")) {
            q->rooms = e;
            q->has_rooms = true;
        } else if (ajson_key_is(&k, "sockets")) {
            q->sockets = e;
            q->has_sockets = true;
        } else if (ajson_key_is(&k, "packet") || (top && ajson_key_is(&k, "data"))) {
            q->value = e;
            q->has_value = true;
            if (top)
                *data = e;
        } else if (ajson_key_is(&k, "clientCount")) {
            q->count = e;
            q->has_count = true;
        } else if (top && ajson_key_is(&k, "uid")) {
            rc = ajson_str(scratch, &e, &out->uid);
        } else if (top && ajson_key_is(&k, "type")) {
            rc = ajson_int(&e, type);
        } else if (top && ajson_key_is(&k, "nsp")) {
            *has_nsp = true;
        }
    }
    return rc;
}

static void set_body(cluster_reply_t *out, const json_span_t *v)
{
    out->body = v->p;
    out->body_len = v->len;
}

/* Which response the members make; -ENOMSG when they are no response. */
static int resp_kind(bool sharded, int64_t type, const resp_parts_t *q, cluster_reply_t *out)
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
        if (!q->has_count || ajson_int(&q->count, &count))
            return -EPROTO;
        out->count = (uint64_t)count;
    } else {
        return -ENOMSG;
    }
    return 0;
}

int cluster_msg_decode_response(const uint8_t *p, size_t len, buf_t *scratch, cluster_reply_t *out)
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
            return rc == -ENOTSUP ? rc : -EPROTO;
        if (used != len)
            return -EPROTO;
        len = scratch->len;
        in = scratch->data;
    }
    ajson_reserve(scratch, in, len);
    if (p[0] != '{')
        in = scratch->data; /* the reserve may have moved it */
    if (json_validate(in, len))
        return -EPROTO;
    json_span_t root, data = {0};
    ajson_span_at(in, len, json_skip_ws(in, len, 0), &root);
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
    if (!rc && out->request_id.len > CLUSTER_MSG_MAX_ID)
        rc = -E2BIG;
    return rc;
}

/* The rooms of one socket description. */
static int socket_rooms(buf_t *scratch, const json_span_t *sock,
                        void (*fn)(const char *room, size_t len, void *arg), void *arg)
{
    ajson_walk_t w, r;
    json_span_t k, e, room;
    adapter_str_t s;
    int rc = ajson_open(sock, JSON_OBJECT, &w);
    while (!rc && ajson_next(&w, &k, &e)) {
        if (!ajson_key_is(&k, "rooms"))
            continue;
        rc = ajson_open(&e, JSON_ARRAY, &r);
        while (!rc && ajson_next(&r, NULL, &room)) {
            size_t mark = scratch->len;
            rc = ajson_str(scratch, &room, &s);
            if (!rc)
                fn(s.p, s.len, arg);
            scratch->len = mark; /* one name at a time */
        }
    }
    return rc;
}

int cluster_msg_sockets_rooms(const char *sockets, size_t len, buf_t *scratch, size_t *nsockets,
                              void (*fn)(const char *room, size_t len, void *arg), void *arg)
{
    *nsockets = 0;
    if (json_validate(sockets, len))
        return -EPROTO;
    buf_reset(scratch);
    ajson_reserve(scratch, sockets, len);
    json_span_t root, sock;
    ajson_walk_t w;
    ajson_span_at(sockets, len, json_skip_ws(sockets, len, 0), &root);
    int rc = ajson_open(&root, JSON_ARRAY, &w);
    while (!rc && ajson_next(&w, NULL, &sock)) {
        rc = sock.type == JSON_OBJECT ? 0 : -EPROTO;
        if (!rc && fn)
            rc = socket_rooms(scratch, &sock, fn, arg);
        if (!rc)
            (*nsockets)++;
    }
    return rc;
}
