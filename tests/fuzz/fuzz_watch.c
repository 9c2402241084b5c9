/*
 * Fuzzes what `streamioctl watch` reads from a server, which it must not trust: the answer to the
 * WebSocket upgrade (ws_client_check_upgrade), the URL parser, the frames ws_client_recv reads
 * (ws_frame_parse over the bytes, frame after frame: every payload inside them), and a sequence
 * of Engine.IO messages (split on '\n') through sio_client_feed, after a valid open packet so the
 * Socket.IO paths are reached. Every printed line must be valid JSON (json_validate).
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "common/buf.h"
#include "common/json.h"
#include "common/proto/ws_frame.h"
#include "ctl/sio_client.h"
#include "ctl/ws_client.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int sink_send(void *arg, const char *msg, size_t len)
{
    (void)arg;
    (void)msg;
    (void)len;
    return 0;
}

static void sink_message(void *arg, const char *json, size_t len)
{
    (void)arg;
    if (json_validate(json, len) != 0)
        __builtin_trap();
}

static void sink_note(void *arg, const char *text)
{
    (void)arg;
    (void)text;
}

/* The frames the client would take from these bytes, as ws_client_recv walks them. */
static void frames(const uint8_t *d, size_t len)
{
    const uint8_t *payload;
    size_t plen, hl;
    while (len >= 2 && (hl = ws_frame_parse(d, len, &payload, &plen)) != 0) {
        if (hl > len || payload != d + hl || plen > len - hl)
            __builtin_trap();
        d += hl + plen;
        len -= hl + plen;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    buf_t err, text;
    buf_init(&err);
    buf_init(&text);
    buf_append(&text, in, size); /* NUL-terminated copy for the text parsers */
    frames(data, size);
    ws_url_t u;
    if (text.data) {
        ws_url_parse(text.data, &u, &err);
        buf_reset(&err);
        ws_client_check_upgrade(text.data, text.len, "dGhlIHNhbXBsZSBub25jZQ==", &err);
    }
    const char *rooms[] = {"r1", "r2"};
    sio_client_cb_t cb = {sink_send, sink_message, sink_note, NULL};
    sio_client_t *c;
    if (sio_client_new(&c, rooms, 2, "tok", &cb) == 0) {
        static const char open[] = "0{\"sid\":\"s\",\"pingInterval\":25000,\"pingTimeout\":20000}";
        sio_client_feed(c, open, sizeof(open) - 1, &err);
        for (size_t pos = 0; pos < size;) {
            const char *nl = memchr(in + pos, '\n', size - pos);
            size_t len = nl ? (size_t)(nl - in - pos) : size - pos;
            buf_reset(&err);
            if (sio_client_feed(c, in + pos, len, &err) == -ECONNRESET)
                sio_client_restart(c);
            pos += len + 1;
        }
        sio_client_free(c);
    }
    buf_free(&err);
    buf_free(&text);
    return 0;
}
