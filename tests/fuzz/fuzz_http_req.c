/*
 * Fuzzes worker/http_req: arbitrary bytes fed in arbitrary splits, pipelined requests, every
 * accessor after the head. The first input byte picks the head limit and the chunk size.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "common/buf.h"
#include "worker/http_req.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void use_head(http_req_t *r, buf_t *tmp)
{
    static const char *const keys[] = {"EIO", "transport", "sid", "token", ""};
    volatile size_t sink = 0;
    sink += strlen(http_req_method(r));
    sink += strlen(http_req_path(r));
    sink += strlen(http_req_query_string(r));
    for (int h = 0; h < HTTP_REQ_HDR_COUNT; h++) {
        const char *v = http_req_header(r, (http_req_hdr_t)h);
        if (v)
            sink += strlen(v);
    }
    sink += http_req_keep_alive(r) + http_req_is_upgrade(r) + http_req_is_websocket(r);
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        if (http_req_query(r, keys[i], tmp) == 0)
            sink += tmp->len;
    }
    (void)sink;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t max_head = (data[0] & 0x0f) * 64; /* 0 = the default limit */
    size_t chunk = (size_t)(data[0] >> 4) * 7 + 1;
    data++;
    size--;
    http_req_t *r;
    if (http_req_new(&r, max_head))
        return 0;
    buf_t tmp;
    buf_init(&tmp);
    size_t off = 0;
    while (off < size) {
        size_t n = size - off < chunk ? size - off : chunk;
        size_t used = 0;
        int rc = http_req_feed(r, data + off, n, &used);
        if (used > n)
            __builtin_trap();
        off += used;
        if (rc < 0)
            break;
        if (rc & HTTP_REQ_HEAD)
            use_head(r, &tmp);
        if (rc == 0 && used == 0)
            break;
        if ((rc & HTTP_REQ_HEAD) && http_req_is_upgrade(r))
            break; /* the rest belongs to the new protocol */
    }
    buf_free(&tmp);
    http_req_free(r);
    return 0;
}
