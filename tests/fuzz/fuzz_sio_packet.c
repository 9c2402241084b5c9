/*
 * Fuzzes the Engine.IO/Socket.IO text path of a session: the Engine.IO type byte, then
 * sio_packet_decode, then what the session does with an EVENT (json_array_items, room name
 * decoding). A decoded packet re-encoded with sio_packet_encode must decode to the same packet.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "common/buf.h"
#include "common/json.h"
#include "common/proto/sio_packet.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_roundtrip(const sio_packet_t *pk)
{
    buf_t out;
    buf_init(&out);
    const uint64_t *id = pk->has_id ? &pk->id : NULL;
    int rc;
    if (pk->type == SIO_BINARY_EVENT || pk->type == SIO_BINARY_ACK)
        rc = sio_packet_encode_binary(&out, pk->type, pk->attachments, pk->nsp, pk->nsp_len, id,
                                      pk->data, pk->data_len);
    else
        rc = sio_packet_encode(&out, pk->type, pk->nsp, pk->nsp_len, id, pk->data, pk->data_len);
    if (rc == 0) {
        sio_packet_t again;
        if (out.len < 1 || out.data[0] != '4' ||
            sio_packet_decode(out.data + 1, out.len - 1, &again) != 0)
            __builtin_trap();
        if (again.type != pk->type || again.has_id != pk->has_id || again.id != pk->id ||
            again.attachments != pk->attachments || again.data_len != pk->data_len ||
            (pk->data_len && memcmp(again.data, pk->data, pk->data_len) != 0))
            __builtin_trap();
    }
    buf_free(&out);
}

static void on_event(const sio_packet_t *pk)
{
    json_span_t items[3];
    size_t n = 0;
    int rc = json_array_items(pk->data, pk->data_len, items, 3, &n);
    if (rc != 0 && rc != -E2BIG)
        __builtin_trap(); /* the decoder promised a valid array */
    buf_t name;
    buf_init(&name);
    for (size_t i = 0; i < n; i++) {
        if (items[i].type == JSON_STRING) {
            size_t want;
            if (json_string_decoded_len(items[i].p, items[i].len, &want) != 0)
                __builtin_trap();
            buf_reset(&name);
            if (json_string_decode(items[i].p, items[i].len, &name) == 0 && name.len != want)
                __builtin_trap();
        } else if (items[i].type == JSON_NUMBER) {
            double d;
            if (json_number_parse(items[i].p, items[i].len, &d) != 0)
                __builtin_trap();
        }
    }
    buf_free(&name);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || data[0] != '4')
        return 0; /* the other Engine.IO types carry no payload the server parses */
    sio_packet_t pk;
    if (sio_packet_decode((const char *)data + 1, size - 1, &pk) != 0)
        return 0;
    if (pk.nsp == NULL || pk.nsp_len == 0 || pk.nsp[0] != '/')
        __builtin_trap();
    if (pk.data && json_validate(pk.data, pk.data_len) != 0)
        __builtin_trap();
    if (pk.type == SIO_EVENT || pk.type == SIO_BINARY_EVENT || pk.type == SIO_ACK)
        on_event(&pk);
    check_roundtrip(&pk);
    return 0;
}
