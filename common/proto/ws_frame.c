/* ws_frame: header encoding, pre-framed refbufs and the handshake accept key. */
#include "common/proto/ws_frame.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "common/base64.h"
#include "common/proto/sha1.h"

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define WS_GUID_LEN (sizeof(WS_GUID) - 1)
#define ACCEPT_KEY_MAX_INPUT 256

size_t ws_frame_header(uint8_t hdr[WS_FRAME_HEADER_MAX], uint8_t opcode, uint64_t payload_len)
{
    hdr[0] = (uint8_t)(0x80u | (opcode & (WS_FRAME_RSV1 | 0x0fu)));
    if (payload_len < 126) {
        hdr[1] = (uint8_t)payload_len;
        return 2;
    }
    if (payload_len <= 0xffffu) {
        hdr[1] = 126;
        hdr[2] = (uint8_t)(payload_len >> 8);
        hdr[3] = (uint8_t)payload_len;
        return 4;
    }
    hdr[1] = 127;
    for (int i = 0; i < 8; i++)
        hdr[2 + i] = (uint8_t)(payload_len >> (56 - 8 * i));
    return 10;
}

static bool opcode_valid(uint8_t opcode, size_t len)
{
    switch (opcode) {
    case WS_FRAME_TEXT:
    case WS_FRAME_BINARY:
    case WS_FRAME_TEXT | WS_FRAME_RSV1:
    case WS_FRAME_BINARY | WS_FRAME_RSV1:
        return true;
    case WS_FRAME_CLOSE:
    case WS_FRAME_PING:
    case WS_FRAME_PONG:
        return len <= 125; /* RFC 6455 §5.5: control payloads are at most 125 bytes */
    default:
        return false;
    }
}

size_t ws_frame_parse(const uint8_t *d, size_t len, const uint8_t **payload, size_t *plen)
{
    if (len < 2)
        return 0;
    uint64_t n = d[1] & 0x7f;
    size_t hl = n == 126 ? 4 : n == 127 ? 10 : 2;
    if (len < hl)
        return 0;
    if (hl > 2) {
        n = 0;
        for (size_t i = 2; i < hl; i++)
            n = n << 8 | d[i];
    }
    if (n > len - hl)
        return 0;
    *payload = d + hl;
    *plen = (size_t)n;
    return hl;
}

refbuf_t *ws_frame_new(uint8_t opcode, const void *payload, size_t len)
{
    if (!opcode_valid(opcode, len) || len > SIZE_MAX - WS_FRAME_HEADER_MAX)
        return NULL;
    uint8_t hdr[WS_FRAME_HEADER_MAX];
    size_t hlen = ws_frame_header(hdr, opcode, len);
    refbuf_t *rb = refbuf_new(hlen + len);
    char *p = refbuf_data(rb);
    memcpy(p, hdr, hlen);
    if (len)
        memcpy(p + hlen, payload, len);
    return rb;
}

int ws_accept_key(const char *client_key, size_t len, char out[WS_ACCEPT_KEY_SIZE])
{
    if (len == 0 || len > ACCEPT_KEY_MAX_INPUT)
        return -EINVAL;
    char in[ACCEPT_KEY_MAX_INPUT + WS_GUID_LEN];
    memcpy(in, client_key, len);
    memcpy(in + len, WS_GUID, WS_GUID_LEN);
    uint8_t md[SHA1_DIGEST_LEN];
    sha1(in, len + WS_GUID_LEN, md);
    base64_encode_to(out, md, sizeof(md));
    return 0;
}
