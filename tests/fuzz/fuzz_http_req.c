/*
 * Fuzzes worker/http_req: arbitrary bytes, pipelined requests, every accessor after each head.
 * The same bytes are parsed twice, in one piece and in small chunks (the first input byte picks
 * the chunk size and the head limit): both parses must tell the same story (heads, their values,
 * where messages end, whether it fails), since TCP may split a request anywhere. The second
 * parse reuses the first one's parser (http_req_reuse, as the server does for its next accept),
 * so a parser must forget everything of its last connection. Each head's handshake record
 * (common/proto/handshake) is rendered into the story too, with what the worker decides from
 * its headers and path (worker/http/cors headers and WebSocket check for a list of origins,
 * common/proto/http_gzip's Accept-Encoding, worker/http/router's match, the percent-decoded
 * path), and each message's body (kept up to a limit the first byte also picks: 0, which drops
 * bodies, 256 or 512 bytes, as polling POSTs are kept).
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <stdlib.h>

#include "common/buf.h"
#include "common/proto/handshake.h"
#include "common/proto/http_gzip.h"
#include "common/proto/http_req.h"
#include "worker/http/cors.h"
#include "worker/http/router.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void put(buf_t *t, const char *s)
{
    buf_puts(t, s ? s : "(null)");
    buf_putc(t, '\n');
}

/* Everything the worker can learn from a completed head. */
static void describe_head(http_req_t *r, buf_t *t, buf_t *tmp)
{
    static const char *const keys[] = {"EIO", "transport", "sid", "token", ""};
    put(t, http_req_method(r));
    put(t, http_req_path(r));
    put(t, http_req_query_string(r));
    for (int h = 0; h < HTTP_REQ_HDR_COUNT; h++)
        put(t, http_req_header(r, (http_req_hdr_t)h));
    buf_printf(t, "%d%d%d\n", http_req_keep_alive(r), http_req_is_upgrade(r),
               http_req_is_websocket(r));
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        int rc = http_req_query(r, keys[i], tmp);
        buf_printf(t, "q%d:", rc);
        if (rc == 0)
            buf_append(t, tmp->data, tmp->len);
        buf_putc(t, '\n');
    }
    const char *path = http_req_path(r);
    /* as the room of GET /presence/<room> is read (worker/bridge/presence_route) */
    http_req_path_decode(path, strlen(path), tmp);
    buf_printf(t, "%zu:", tmp->len);
    buf_append(t, tmp->data, tmp->len);
    buf_putc(t, '\n');
    static cors_t *cors;
    if (!cors)
        cors = cors_new("http://a.example,https://b.example:8443");
    cors_headers(cors, r, t);
    const char *origin = http_req_header(r, HTTP_REQ_ORIGIN);
    buf_printf(t, "%d%d%d%d%d\n", origin && cors_same_origin(r, origin), cors_ws_allowed(cors, r),
               http_gzip_accepted(http_req_header(r, HTTP_REQ_ACCEPT_ENCODING)),
               router_match("/socket.io/", http_req_path(r)),
               router_match("/health", http_req_path(r)));
    char *rec = handshake_capture(r, 0);
    handshake_write(t, rec, NULL);
    buf_putc(t, '\n');
    free(rec);
}

/* Parses data in chunks of `chunk` bytes, writing the story to t. */
static void parse(http_req_t *r, const uint8_t *data, size_t size, size_t chunk, buf_t *t)
{
    buf_t tmp;
    buf_init(&tmp);
    size_t off = 0, end = 0;
    while (off < size) {
        if (off >= end)
            end = size - off < chunk ? size : off + chunk;
        size_t used = 0;
        int rc = http_req_feed(r, data + off, end - off, &used);
        if (used > end - off)
            __builtin_trap();
        off += used;
        if (rc < 0) {
            /* which error (400 or 431) may depend on the split: http-parser reports header bytes
             * to the callbacks lazily, so a bad token and the arena limit can race */
            buf_puts(t, "error\n");
            break;
        }
        if (rc == 0 && used != end - off + used)
            __builtin_trap(); /* 0 means every byte was used */
        if (rc & HTTP_REQ_HEAD) {
            buf_printf(t, "head at %zu\n", off);
            describe_head(r, t, &tmp);
        }
        if (rc & HTTP_REQ_DONE) {
            size_t blen;
            const char *body = http_req_body(r, &blen);
            buf_printf(t, "done at %zu, body %zu:", off, blen);
            buf_append(t, body, blen);
            buf_putc(t, '\n');
        }
        if ((rc & HTTP_REQ_HEAD) && http_req_is_upgrade(r))
            break; /* the rest belongs to the new protocol */
    }
    buf_free(&tmp);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t max_head = (data[0] & 0x0f) * 64; /* 0 = the default limit */
    size_t chunk = (size_t)(data[0] >> 4) * 7 + 1;
    size_t max_body = (size_t)(data[0] & 0x0f) % 3 * 256; /* 0 = bodies dropped */
    data++;
    size--;
    buf_t whole, split;
    buf_init(&whole);
    buf_init(&split);
    http_req_t *r = http_req_new(max_head);
    http_req_set_max_body(r, max_body);
    parse(r, data, size, size ? size : 1, &whole);
    http_req_reuse(r);
    http_req_set_max_body(r, max_body);
    parse(r, data, size, chunk, &split);
    http_req_free(r);
    if (whole.len != split.len || (whole.len && memcmp(whole.data, split.data, whole.len) != 0))
        __builtin_trap();
    buf_free(&whole);
    buf_free(&split);
    return 0;
}
