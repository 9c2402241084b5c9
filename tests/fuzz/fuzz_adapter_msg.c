/*
 * Fuzzes what a worker does with a message from Redis pub/sub: adapter_msg_decode_broadcast,
 * then the client frame text (adapter_msg_sio_text, or adapter_msg_sio_binary for binary
 * content), what the master does with a response (cluster_msg_decode_response), plus
 * mpack_to_json and mpack_skip on the raw bytes. Every JSON produced must validate.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "common/buf.h"
#include "common/json.h"
#include "common/mpack.h"
#include "common/proto/cluster_msg.h"
#include "common/proto/adapter_msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    buf_t out;
    buf_init(&out);
    adapter_msg_t m;
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
    buf_t scratch;
    buf_init(&scratch);
    cluster_reply_t reply;
    if (cluster_msg_decode_response(data, size, &scratch, &reply) == 0) {
        if (!reply.request_id.len || reply.request_id.len > CLUSTER_MSG_MAX_ID ||
            (reply.body && json_validate(reply.body, reply.body_len) != 0))
            __builtin_trap();
    }
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
