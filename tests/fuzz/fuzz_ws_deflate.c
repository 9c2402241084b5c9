/*
 * Fuzzes the permessage-deflate side a client controls: the Sec-WebSocket-Extensions offer and
 * the compressed payloads it sends. The first byte picks the inflate limit (so the -EMSGSIZE path
 * is reached with small inputs) and whether the rest is an offer or a payload. A payload is
 * inflated twice on one stream (nothing may carry over), must never produce more than the limit
 * plus one byte, and what inflates completely must compress and inflate back to itself.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/proto/ws_deflate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static ws_deflate_t *stream(void)
{
    static ws_deflate_t *d;
    if (!d)
        d = ws_deflate_new();
    return d;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t mode = data[0];
    data++;
    size--;
    if (mode & 1) {
        (void)ws_deflate_accept((const char *)data, size);
        return 0;
    }
    size_t max = (size_t)1 << (4 + (mode >> 4)); /* 16 B .. 512 KiB */
    ws_deflate_t *d = stream();
    buf_t a, b;
    buf_init(&a);
    buf_init(&b);
    int ra = ws_deflate_inflate(d, data, size, max, &a);
    int rb = ws_deflate_inflate(d, data, size, max, &b);
    if (ra != rb || a.len != b.len || (a.len && memcmp(a.data, b.data, a.len) != 0))
        abort(); /* the stream kept something from the first message */
    if (ra != 0 && ra != -EMSGSIZE && ra != -EINVAL)
        abort();
    if (a.len > max + 1)
        abort();
    if (ra == 0) {
        buf_t z, back;
        buf_init(&z);
        buf_init(&back);
        ws_deflate_compress(d, a.data, a.len, &z);
        if (ws_deflate_inflate(d, z.data, z.len, a.len, &back) != 0 || back.len != a.len ||
            (a.len && memcmp(back.data, a.data, a.len) != 0))
            abort();
        buf_free(&z);
        buf_free(&back);
    }
    buf_free(&a);
    buf_free(&b);
    return 0;
}
