/*
 * Fuzzes what a worker does with a message from Redis pub/sub: adapter_msg_decode_broadcast,
 * then the client frame text (adapter_msg_sio_text), plus mpack_to_json and mpack_skip on the raw
 * bytes. Every JSON produced must validate.
 */
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/json.h"
#include "common/mpack.h"
#include "worker/adapter_msg.h"

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
        if (adapter_msg_sio_text(&out, &m) == 0) {
            if (out.len < 2 || out.data[0] != '4')
                __builtin_trap();
        }
    }
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
