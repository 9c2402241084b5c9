/*
 * Fuzzes the Redis streams adapter codec (common/proto/streams_msg) as a worker meets it. The first
 * byte picks what the rest is:
 *   0: a stream entry, fields as name\0value\0... pairs: streams_msg_decode_entry, then the client
 *      frame with an offset (text, or binary with attachments);
 *   1: a stored session (base64 text): streams_msg_decode_session, its rooms, the missed-packet
 *      filter against an entry, and a re-encoding that must decode to the same session;
 *   2: a pub/sub message (msgpack): adapter_msg_decode_cluster, then its frame;
 *   3: a namespace: streams_msg_stream_index for the next byte as the stream count.
 * Every JSON produced must validate, and nothing may exceed the codec's bounds.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "common/buf.h"
#include "common/json.h"
#include "common/proto/streams_msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_FIELDS 16

static void render(const adapter_msg_t *m)
{
    if (m->nrooms > ADAPTER_MSG_MAX_ROOMS || m->nexcept > ADAPTER_MSG_MAX_ROOMS ||
        m->ntargets > ADAPTER_MSG_MAX_ROOMS)
        __builtin_trap();
    if (m->op != ADAPTER_OP_BROADCAST)
        return;
    buf_t out, atts;
    buf_init(&out);
    buf_init(&atts);
    int rc = adapter_msg_sio_text_offset(&out, m, "1-0", 3);
    /* the data array follows the type digit, and the namespace and its ',' when not "/" */
    size_t at = 2 + (m->nsp.len && !(m->nsp.len == 1 && m->nsp.p[0] == '/') ? m->nsp.len + 1 : 0);
    if (rc == 0 && (out.len < at || out.data[0] != '4' ||
                    json_validate(out.data + at, out.len - at) != 0))
        __builtin_trap();
    unsigned n = 0;
    if (rc == -ENOTSUP && adapter_msg_sio_binary_offset(&out, &atts, m, "1-0", 3, &n) == 0) {
        if (out.len < 4 || memcmp(out.data, "45", 2) != 0 || n > ADAPTER_MSG_MAX_ATTACHMENTS)
            __builtin_trap();
    }
    buf_free(&out);
    buf_free(&atts);
}

static size_t split_fields(const uint8_t *p, size_t len, payload_field_t *f)
{
    size_t n = 0, i = 0;
    while (i < len && n < MAX_FIELDS) {
        const uint8_t *name = p + i;
        const uint8_t *z = memchr(name, 0, len - i);
        size_t nl = z ? (size_t)(z - name) : len - i;
        i += nl + 1;
        const uint8_t *value = p + (i < len ? i : len);
        z = i < len ? memchr(value, 0, len - i) : NULL;
        size_t vl = i < len ? (z ? (size_t)(z - value) : len - i) : 0;
        i += vl + 1;
        f[n++] = (payload_field_t){(const char *)name, nl, (const char *)value, vl};
    }
    return n;
}

static void entry(const uint8_t *p, size_t len, buf_t *scratch, buf_t *bin)
{
    payload_field_t f[MAX_FIELDS];
    size_t n = split_fields(p, len, f);
    adapter_msg_t m;
    int rc = streams_msg_decode_entry(f, n, scratch, bin, &m);
    if (rc == 0)
        render(&m);
    else if (m.op != ADAPTER_OP_NONE)
        __builtin_trap();
}

static void count_room(const char *room, size_t len, void *arg)
{
    (void)room;
    *(size_t *)arg += len + 1;
}

static void session(const uint8_t *p, size_t len, buf_t *bin)
{
    streams_session_t s;
    if (streams_msg_decode_session((const char *)p, len, bin, &s))
        return;
    size_t total = 0;
    streams_msg_session_rooms(&s, count_room, &total);
    adapter_msg_t m;
    memset(&m, 0, sizeof(m));
    (void)streams_msg_session_missed(&s, &m);
    /* the same session written again reads back the same */
    adapter_str_t none = {"", 0};
    buf_t again, bin2;
    buf_init(&again);
    buf_init(&bin2);
    if (streams_msg_encode_session(&again, s.sid.p, s.sid.len, s.pid.p, s.pid.len, &none, 0,
                                   s.data, s.data_len) == 0) {
        streams_session_t t;
        if (streams_msg_decode_session(again.data, again.len, &bin2, &t) != 0 ||
            t.sid.len != s.sid.len || memcmp(t.sid.p, s.sid.p, s.sid.len) != 0 ||
            t.pid.len != s.pid.len || t.nrooms != 0)
            __builtin_trap();
    }
    buf_free(&again);
    buf_free(&bin2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    buf_t scratch, bin;
    buf_init(&scratch);
    buf_init(&bin);
    const uint8_t *p = data + 1;
    size_t len = size - 1;
    switch (data[0] & 3) {
    case 0:
        entry(p, len, &scratch, &bin);
        break;
    case 1:
        session(p, len, &bin);
        break;
    case 2: {
        adapter_msg_t m;
        if (adapter_msg_decode_cluster(p, len, &scratch, &m) == 0)
            render(&m);
        break;
    }
    default:
        if (len >= 1) {
            int count = p[0] ? p[0] : 1;
            int i = streams_msg_stream_index((const char *)p + 1, len - 1, count);
            if (i <= -count || i >= count)
                __builtin_trap();
        }
        break;
    }
    buf_free(&scratch);
    buf_free(&bin);
    return 0;
}
