/*
 * Fuzzes WebSocket frame handling the way worker/conn.c drives wslay: a server context whose recv
 * callback hands out the bytes read so far (then WOULDBLOCK), whose send callback collects
 * everything, with the same maximum message length; after each read the queued control frames
 * are sent. Text messages then take the session's Engine.IO path (type byte, Socket.IO decode).
 * The first input byte picks the read size and the maximum message length; the bytes are read
 * once whole and once in small reads, and both must deliver the same messages.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <wslay/wslay.h>

#include "common/buf.h"
#include "worker/sio_packet.h"
#include "worker/ws_feed.h"
#include "worker/ws_frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct peer {
    ws_feed_t rd;
    buf_t out;
    buf_t story; /* every message received */
} peer_t;

static ssize_t recv_cb(wslay_event_context_ptr ws, uint8_t *buf, size_t len, int flags, void *ud)
{
    (void)flags;
    return ws_feed_read(ws, &((peer_t *)ud)->rd, buf, len);
}

static ssize_t send_cb(wslay_event_context_ptr ws, const uint8_t *p, size_t len, int flags,
                       void *ud)
{
    (void)flags;
    peer_t *c = ud;
    if (c->out.len > 1 << 20)
        buf_reset(&c->out);
    return ws_feed_write(ws, &c->out, p, len);
}

static void msg_cb(wslay_event_context_ptr ws, const struct wslay_event_on_msg_recv_arg *arg,
                   void *ud)
{
    (void)ws;
    peer_t *c = ud;
    /* what conn.c passes on: text and binary messages (wslay 1.1.1 checks a Close reason's
     * UTF-8 only when the frame arrives in one read; conn.c ignores Close payloads) */
    if (arg->opcode == WSLAY_TEXT_FRAME || arg->opcode == WSLAY_BINARY_FRAME) {
        buf_printf(&c->story, "%d %zu:", arg->opcode, (size_t)arg->msg_length);
        buf_append(&c->story, arg->msg, (size_t)arg->msg_length);
    }
    const uint8_t *msg = arg->msg ? arg->msg : (const uint8_t *)"";
    if (arg->opcode == WSLAY_TEXT_FRAME && arg->msg_length > 0 && msg[0] == '4') {
        sio_packet_t pk;
        (void)sio_packet_decode((const char *)msg + 1, arg->msg_length - 1, &pk);
    }
    /* the server's own frames are built outside wslay: echo one per message */
    refbuf_t *rb = ws_frame_new(WS_FRAME_TEXT, msg, arg->msg_length);
    refbuf_unref(rb);
}

/* Reads data in chunks of `chunk` bytes as conn.c would; the story goes to *story. */
static void run(const uint8_t *data, size_t size, size_t chunk, uint64_t max_msg, buf_t *story)
{
    static const struct wslay_event_callbacks cb = {
        .recv_callback = recv_cb,
        .send_callback = send_cb,
        .on_msg_recv_callback = msg_cb,
    };
    peer_t c = {0};
    buf_init(&c.out);
    c.story = *story;
    wslay_event_context_ptr ws;
    if (wslay_event_context_server_init(&ws, &cb, &c) != 0)
        __builtin_trap();
    wslay_event_config_set_max_recv_msg_length(ws, max_msg);
    size_t off = 0;
    while (off < size) {
        size_t n = size - off < chunk ? size - off : chunk;
        c.rd = (ws_feed_t){(const char *)data + off, n};
        int r = wslay_event_recv(ws);
        off += n - c.rd.len;
        c.rd = (ws_feed_t){NULL, 0};
        if (r != 0)
            break; /* conn.c marks the socket dead and closes it */
        if (wslay_event_want_write(ws) && wslay_event_send(ws) != 0)
            break;
        if (!wslay_event_get_read_enabled(ws))
            break;
    }
    wslay_event_context_free(ws);
    buf_free(&c.out);
    *story = c.story;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t chunk = (size_t)(data[0] & 0x0f) * 13 + 1;
    uint64_t max_msg = (data[0] & 0x10) ? 1024 : 1000000;
    data++;
    size--;
    /* the same bytes in one read and in small reads must give the same messages (when a bad frame
     * is noticed may differ: wslay sees reserved bits at once in a whole read, at the end of the
     * frame in small reads, and delivers nothing of it either way) */
    buf_t whole, split;
    buf_init(&whole);
    buf_init(&split);
    run(data, size, size ? size : 1, max_msg, &whole);
    run(data, size, chunk, max_msg, &split);
    if (whole.len != split.len || (whole.len && memcmp(whole.data, split.data, whole.len) != 0))
        __builtin_trap();
    buf_free(&whole);
    buf_free(&split);
    return 0;
}
