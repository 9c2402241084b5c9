/*
 * Fuzzes WebSocket frame handling the way worker/ws/ws_conn.c drives wslay: a server context
 * whose recv callback hands out the bytes read so far (then WOULDBLOCK), whose send callback
 * collects everything, with the same maximum message length; after each read the queued control
 * frames are sent. Text messages then take the session's Engine.IO path (type byte, Socket.IO
 * decode). The first input byte picks the read size, the maximum message length, the seed of random
 * cuts, and whether the rest is raw bytes or a list of frames to build (masked, all three length
 * forms, payloads up to 69 KiB: sizes raw inputs of 4 KiB cannot reach). The bytes are read once
 * whole, once in small reads, and once at random cuts holding the wslay context only while
 * ws_feed_at_rest says it is needed, freeing and re-creating it as ws_conn.c does, and taking the
 * small messages ws_feed_small finds without one: all three must deliver the same messages.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <wslay/wslay.h>

#include "common/buf.h"
#include "common/proto/sio_packet.h"
#include "common/proto/ws_feed.h"
#include "common/proto/ws_frame.h"

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

/* One message, from wslay or from ws_feed_small. */
static void on_message(peer_t *c, uint8_t opcode, const uint8_t *msg, size_t len)
{
    /* what ws_conn.c passes on: text and binary messages (wslay 1.1.1 checks a Close reason's
     * UTF-8 only when the frame arrives in one read; ws_conn.c ignores Close payloads) */
    if (opcode == WSLAY_TEXT_FRAME || opcode == WSLAY_BINARY_FRAME) {
        buf_printf(&c->story, "%d %zu:", opcode, len);
        buf_append(&c->story, msg, len);
    }
    if (opcode == WSLAY_TEXT_FRAME && len > 0 && msg[0] == '4') {
        sio_packet_t pk;
        (void)sio_packet_decode((const char *)msg + 1, len - 1, &pk);
    }
    /* the server's own frames are built outside wslay: echo one per message */
    refbuf_t *rb = ws_frame_new(WS_FRAME_TEXT, msg, len);
    refbuf_unref(rb);
}

static void msg_cb(wslay_event_context_ptr ws, const struct wslay_event_on_msg_recv_arg *arg,
                   void *ud)
{
    (void)ws;
    on_message(ud, arg->opcode, arg->msg ? arg->msg : (const uint8_t *)"", (size_t)arg->msg_length);
}

/* Reads data as ws_conn.c would, in reads of `chunk` bytes or, when seed is not 0, of random sizes
 * with the context held lazily; the story goes to *story. */
static void run(const uint8_t *data, size_t size, size_t chunk, uint32_t seed, uint64_t max_msg,
                buf_t *story)
{
    static const struct wslay_event_callbacks cb = {
        .recv_callback = recv_cb,
        .send_callback = send_cb,
        .on_msg_recv_callback = msg_cb,
    };
    peer_t c = {0};
    buf_init(&c.out);
    c.story = *story;
    wslay_event_context_ptr ws = NULL;
    size_t off = 0;
    while (off < size) {
        if (seed) { /* xorshift32: cuts anywhere, mostly short reads, sometimes long ones */
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            chunk = seed & 0x100 ? (seed >> 9) % 4096 + 1 : (seed >> 9) % 16 + 1;
        }
        size_t n = size - off < chunk ? size - off : chunk;
        if (seed && !ws) { /* as ws_conn.c: small messages need no context */
            uint8_t msg[WS_FEED_SMALL_MAX], op;
            size_t k, len;
            while (
                (k = ws_feed_small(&c.rd, (const char *)data + off, n, max_msg, msg, &len, &op))) {
                on_message(&c, op, msg, len);
                off += k;
                n -= k;
            }
            if (n == 0)
                continue;
        }
        if (!ws)
            ws = ws_feed_context_new(&cb, &c, max_msg);
        ws_feed_window(&c.rd, (const char *)data + off, n);
        int r = wslay_event_recv(ws);
        off += n - c.rd.len;
        ws_feed_window(&c.rd, NULL, 0);
        if (r != 0)
            break; /* ws_conn.c marks the socket dead and closes it */
        if (wslay_event_want_write(ws) && wslay_event_send(ws) != 0)
            break;
        if (!wslay_event_get_read_enabled(ws))
            break;
        if (seed && ws_feed_at_rest(&c.rd, ws)) {
            wslay_event_context_free(ws);
            ws = NULL;
        }
    }
    if (ws)
        wslay_event_context_free(ws);
    buf_free(&c.out);
    *story = c.story;
}

/* Builds client frames from 3 bytes each: A = FIN (bit 7), unmasked (bit 6), opcode (bits 0-2:
 * continuation, text, binary, close, ping, pong, or a reserved one), length form (bits 3-4);
 * B, C = length. Payloads are ASCII, masked with a key derived from A. */
static void build_frames(const uint8_t *d, size_t size, buf_t *out)
{
    static const uint8_t ops[8] = {0x0, 0x1, 0x2, 0x8, 0x9, 0xa, 0x1, 0x3};
    for (; size >= 3 && out->len < (80u << 10); d += 3, size -= 3) {
        uint8_t a = d[0];
        uint64_t len16 = (uint64_t)d[1] << 8 | d[2];
        uint8_t op = ops[a & 7];
        uint64_t len;
        switch ((a >> 3) & 3) {
        case 0:
            len = d[2] % 126;
            break;
        case 1:
            len = len16 < 126 ? 126 : len16;
            break;
        case 2:
            len = 65536 + len16 % 1024;
            break;
        default:
            len = len16 % 300;
        }
        if (op & 0x8)
            len %= 126; /* control frames: at most 125 bytes (FIN may still be wrong) */
        uint8_t hdr[WS_FRAME_HEADER_MAX];
        size_t hlen = ws_frame_header(hdr, op, len);
        hdr[0] = (uint8_t)((a & 0x80) | op);
        bool masked = !(a & 0x40);
        uint8_t key[4] = {a, (uint8_t)(a * 3), (uint8_t)(a * 7), (uint8_t)(a ^ 0x5a)};
        if (masked)
            hdr[1] |= 0x80;
        buf_append(out, hdr, hlen);
        if (masked)
            buf_append(out, key, 4);
        for (uint64_t i = 0; i < len; i++) {
            uint8_t ch = (uint8_t)('a' + (i + a) % 26);
            buf_putc(out, (char)(masked ? ch ^ key[i % 4] : ch));
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t chunk = (size_t)(data[0] & 0x0f) * 13 + 1;
    uint64_t max_msg = (data[0] & 0x10) ? 1024 : 1000000;
    bool structured = data[0] & 0x20;
    uint32_t seed = (uint32_t)(data[0] >> 6) * 2654435761u + (uint32_t)size | 1;
    data++;
    size--;
    buf_t frames;
    buf_init(&frames);
    if (structured) {
        build_frames(data, size, &frames);
        data = (const uint8_t *)frames.data;
        size = frames.len;
    }
    /* the same bytes in one read and in small reads must give the same messages (when a bad frame
     * is noticed may differ: wslay sees reserved bits at once in a whole read, at the end of the
     * frame in small reads, and delivers nothing of it either way) */
    buf_t whole, split, lazy;
    buf_init(&whole);
    buf_init(&split);
    buf_init(&lazy);
    run(data, size, size ? size : 1, 0, max_msg, &whole);
    run(data, size, chunk, 0, max_msg, &split);
    run(data, size, 0, seed, max_msg, &lazy);
    if (whole.len != split.len || (whole.len && memcmp(whole.data, split.data, whole.len) != 0))
        __builtin_trap();
    if (whole.len != lazy.len || (whole.len && memcmp(whole.data, lazy.data, whole.len) != 0))
        __builtin_trap();
    buf_free(&whole);
    buf_free(&split);
    buf_free(&lazy);
    buf_free(&frames);
    return 0;
}
