/*
 * Fuzzes the Engine.IO/Socket.IO text path of a session: the Engine.IO type byte, then
 * sio_packet_decode, then what the session does with an EVENT (json_array_items, room name
 * decoding). A decoded packet re-encoded with sio_packet_encode must decode to the same packet.
 * A binary packet's attachments are then collected from the bytes after a 0x1e in the input (the
 * packet's text ends there), split at each further 0x1e, kept or only counted (the first byte
 * after the separator decides): counted ones must never be held.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "common/buf.h"
#include "common/json.h"
#include "common/proto/sio_packet.h"
#include "worker/sio/attachments.h"

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

static void collect(const sio_packet_t *pk, const char *text, size_t len, const uint8_t *p,
                    size_t n)
{
    attachments_t a;
    attachments_init(&a);
    bool keep = n > 0 && (p[0] & 1);
    if (attachments_start(&a, text, len, pk, keep) != 0) {
        attachments_free(&a);
        return;
    }
    size_t held = 0;
    int rc = 0;
    for (size_t off = n > 0 ? 1 : 0; off <= n && rc == 0;) {
        const uint8_t *end = memchr(p + off, 0x1e, n - off);
        size_t k = end ? (size_t)(end - (p + off)) : n - off;
        rc = attachments_add(&a, p + off, k);
        held += sizeof(uint32_t) + k;
        off += k + 1;
    }
    if (rc < 0 || a.atts.len != (keep ? held : 0))
        __builtin_trap();
    if (rc == 1 && (a.have != pk->attachments || attachments_pending(&a)))
        __builtin_trap();
    attachments_free(&a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || data[0] != '4')
        return 0; /* the other Engine.IO types carry no payload the server parses */
    const uint8_t *sep = memchr(data, 0x1e, size);
    size_t text_len = sep ? (size_t)(sep - data) : size;
    sio_packet_t pk;
    if (sio_packet_decode((const char *)data + 1, text_len - 1, &pk) != 0)
        return 0;
    if (sep && (pk.type == SIO_BINARY_EVENT || pk.type == SIO_BINARY_ACK))
        collect(&pk, (const char *)data + 1, text_len - 1, sep + 1, size - text_len - 1);
    if (pk.nsp == NULL || pk.nsp_len == 0 || pk.nsp[0] != '/')
        __builtin_trap();
    if (pk.data && json_validate(pk.data, pk.data_len) != 0)
        __builtin_trap();
    if (pk.type == SIO_EVENT || pk.type == SIO_BINARY_EVENT || pk.type == SIO_ACK)
        on_event(&pk);
    check_roundtrip(&pk);
    return 0;
}
