/*
 * Fuzzes what a worker does with a message from Redis pub/sub: adapter_msg_decode_broadcast,
 * then the client frame text (adapter_msg_sio_text, or adapter_msg_sio_binary for binary
 * content); the requests (classic and sharded, JSON and msgpack) and the response a worker
 * answers them with; what the master does with a response (cluster_msg_decode_response) and a
 * fetchSockets body (cluster_msg_sockets_rooms), plus mpack_to_json and mpack_skip on the raw
 * bytes, and the two echo peeks. Every JSON produced must validate. Every decoded string is read
 * in full, from a scratch buffer that starts empty each time, so ASan sees a string left pointing
 * into storage a realloc freed (the class of the escaped-invalid-UTF-8 bug, see the corpus).
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "common/buf.h"
#include "common/json.h"
#include "common/mpack.h"
#include "common/proto/cluster_msg.h"
#include "common/proto/adapter_msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile unsigned sink;

/* Reads every byte of s, so ASan checks that it is still live. */
static void touch(adapter_str_t s)
{
    unsigned h = 0;
    for (size_t i = 0; i < s.len; i++)
        h = h * 31 + (unsigned char)s.p[i];
    sink += h;
}

static void touch_msg(const adapter_msg_t *m)
{
    touch(m->uid);
    touch(m->request_id);
    touch(m->nsp);
    for (size_t i = 0; i < m->nrooms && i < ADAPTER_MSG_MAX_ROOMS; i++)
        touch(m->rooms[i]);
    for (size_t i = 0; i < m->nexcept && i < ADAPTER_MSG_MAX_ROOMS; i++)
        touch(m->except[i]);
    for (size_t i = 0; i < m->ntargets && i < ADAPTER_MSG_MAX_ROOMS; i++)
        touch(m->targets[i]);
}

/* A request decoder, then the response a worker would publish for it. */
static void request(int (*decode)(const uint8_t *, size_t, buf_t *, adapter_msg_t *), bool sharded,
                    const uint8_t *data, size_t size)
{
    buf_t scratch, out;
    buf_init(&scratch);
    buf_init(&out);
    adapter_msg_t m;
    if (decode(data, size, &scratch, &m) == 0) {
        if (m.nrooms > ADAPTER_MSG_MAX_ROOMS || m.nexcept > ADAPTER_MSG_MAX_ROOMS ||
            m.ntargets > ADAPTER_MSG_MAX_ROOMS)
            __builtin_trap();
        touch_msg(&m);
        /* JSON responses must parse (msgpack ones start otherwise) */
        if (m.request_id.len &&
            adapter_msg_encode_response(&out, ADAPTER_RESP_CLIENT_COUNT, sharded, m.uid.p,
                                        m.uid.len, m.nsp.p, m.nsp.len, &m.request_id, NULL, 0,
                                        3) == 0 &&
            out.data[0] == '{' && json_validate(out.data, out.len) != 0)
            __builtin_trap();
    }
    buf_free(&scratch);
    buf_free(&out);
}

static void on_room(const char *room, size_t len, void *arg)
{
    (void)arg;
    touch((adapter_str_t){room, len});
}

/* The echo checks read a message's ends without decoding it: what they return lies inside it. */
static void peeks(const uint8_t *data, size_t size)
{
    adapter_str_t uid;
    int type = -1;
    if (adapter_msg_peek_cluster(data, size, &type, &uid) == 0 &&
        (type < 0 || type > 9999 || uid.p < (const char *)data ||
         uid.p + uid.len > (const char *)data + size))
        __builtin_trap();
    if (adapter_msg_peek_broadcast_uid(data, size, &uid) == 0 &&
        (uid.p < (const char *)data || uid.p + uid.len > (const char *)data + size))
        __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    buf_t out;
    buf_init(&out);
    adapter_msg_t m;
    peeks(data, size);
    if (adapter_msg_decode_broadcast(data, size, &m) == 0) {
        if (m.nrooms > ADAPTER_MSG_MAX_ROOMS || m.nexcept > ADAPTER_MSG_MAX_ROOMS ||
            m.packet_type < 0 || m.packet_type > 6)
            __builtin_trap();
        int rc = adapter_msg_sio_text(&out, &m);
        if (rc == 0 && (out.len < 2 || out.data[0] != '4'))
            __builtin_trap();
        buf_t atts;
        buf_init(&atts);
        unsigned n = 0;
        if (rc == -ENOTSUP && adapter_msg_sio_binary(&out, &atts, &m, NULL, &n) == 0) {
            if (out.len < 4 || memcmp(out.data, "45", 2) != 0 || n > ADAPTER_MSG_MAX_ATTACHMENTS)
                __builtin_trap();
        }
        buf_free(&atts);
    }
    request(adapter_msg_decode_request, false, data, size);
    request(adapter_msg_decode_cluster, true, data, size);
    buf_t scratch;
    buf_init(&scratch);
    cluster_reply_t reply;
    if (cluster_msg_decode_response(data, size, &scratch, &reply) == 0) {
        if (!reply.request_id.len || reply.request_id.len > CLUSTER_MSG_MAX_ID ||
            (reply.body && json_validate(reply.body, reply.body_len) != 0))
            __builtin_trap();
        touch(reply.request_id);
        touch(reply.uid);
    }
    buf_free(&scratch);
    buf_init(&scratch);
    size_t nsockets;
    (void)cluster_msg_sockets_rooms((const char *)data, size, &scratch, &nsockets, on_room, NULL);
    buf_free(&scratch);
    buf_reset(&out);
    size_t used = 0;
    if (mpack_to_json(&out, data, size, &used) == 0) {
        if (used > size || json_validate(out.data, out.len) != 0)
            __builtin_trap();
    }
    mpack_reader_t r;
    mpack_reader_init(&r, data, size);
    while (r.p < r.end && mpack_skip(&r) == 0) {
    }
    if (r.p > r.end)
        __builtin_trap();
    buf_free(&out);
    return 0;
}
