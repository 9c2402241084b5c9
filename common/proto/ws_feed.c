/* ws_feed: see ws_feed.h. */
#include "common/proto/ws_feed.h"

#include <errno.h>
#include <string.h>

#include "common/json.h"
#include "common/xalloc.h"

#define CONTEXT_BYTES 9000 /* what a wslay context costs (ws_feed.h) */

/* ws_scan_t.part: the next bytes of a frame. */
enum { PART_B0, PART_B1, PART_EXTLEN, PART_MASK, PART_PAYLOAD };

/* The payload length is known: the mask key, if any, then the payload follow. */
static void scan_len_done(ws_scan_t *s)
{
    s->part = s->masked ? PART_MASK : PART_PAYLOAD;
    s->need = s->masked ? 4 : 0;
}

/* Follows the frame grammar over p[0..len). Malformed headers need no care: wslay rejects them
 * and the connection then closes, so the scan is never consulted again. */
static void scan(ws_scan_t *s, const uint8_t *p, size_t len)
{
    for (;;) {
        if (s->part == PART_PAYLOAD && s->n == 0) {
            if (!(s->b0 &
                  0x08)) /* data frame: a message ends with FIN; control frames interleave */
                s->fragmented = !(s->b0 & 0x80);
            s->part = PART_B0;
        }
        if (len == 0)
            return;
        switch (s->part) {
        case PART_B0:
            s->b0 = *p++;
            len--;
            s->part = PART_B1;
            break;
        case PART_B1: {
            uint8_t l = *p & 0x7f;
            s->masked = (*p & 0x80) != 0;
            p++;
            len--;
            s->n = 0;
            if (l >= 126) {
                s->part = PART_EXTLEN;
                s->need = l == 126 ? 2 : 8;
            } else {
                s->n = l;
                scan_len_done(s);
            }
            break;
        }
        case PART_EXTLEN:
            s->n = s->n << 8 | *p++;
            len--;
            if (--s->need == 0)
                scan_len_done(s);
            break;
        case PART_MASK: {
            size_t k = len < s->need ? len : s->need;
            p += k;
            len -= k;
            s->need -= (uint8_t)k;
            if (s->need == 0)
                s->part = PART_PAYLOAD;
            break;
        }
        default: { /* PART_PAYLOAD */
            size_t k = (uint64_t)len < s->n ? len : (size_t)s->n;
            p += k;
            len -= k;
            s->n -= k;
            break;
        }
        }
    }
}

void ws_feed_window(ws_feed_t *f, const char *p, size_t len)
{
    f->p = p;
    f->len = len;
}

ssize_t ws_feed_read(wslay_event_context_ptr ws, ws_feed_t *f, uint8_t *buf, size_t len)
{
    if (f->len == 0) {
        wslay_event_set_error(ws, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    size_t n = len < f->len ? len : f->len;
    memcpy(buf, f->p, n);
    scan(&f->scan, buf, n);
    f->p += n;
    f->len -= n;
    return (ssize_t)n;
}

ssize_t ws_feed_write(wslay_event_context_ptr ws, buf_t *out, const uint8_t *data, size_t len)
{
    (void)ws;
    buf_append(out, data, len);
    return (ssize_t)len;
}

wslay_event_context_ptr ws_feed_context_new(const struct wslay_event_callbacks *cb, void *ud,
                                            uint64_t max_msg)
{
    wslay_event_context_ptr ws;
    /* its only failure is WSLAY_ERR_NOMEM, for about CONTEXT_BYTES */
    if (wslay_event_context_server_init(&ws, cb, ud) != 0)
        xalloc_die(CONTEXT_BYTES);
    wslay_event_config_set_max_recv_msg_length(ws, max_msg);
    return ws;
}

bool ws_feed_at_rest(const ws_feed_t *f, wslay_event_context_ptr ws)
{
    return f->scan.part == PART_B0 && !f->scan.fragmented && wslay_event_get_read_enabled(ws) &&
           !wslay_event_want_write(ws) && !wslay_event_get_close_sent(ws) &&
           !wslay_event_get_close_received(ws);
}

size_t ws_feed_small(const ws_feed_t *f, const char *p, size_t len, uint64_t max_msg,
                     uint8_t out[WS_FEED_SMALL_MAX], size_t *plen, uint8_t *opcode)
{
    if (f->scan.part != PART_B0 || f->scan.fragmented || len < 6)
        return 0;
    const uint8_t *d = (const uint8_t *)p;
    uint8_t op = d[0] & 0x0f;
    size_t n = d[1] & 0x7f;
    /* FIN, no RSV bit, a data opcode, the mask bit and the 7-bit length form */
    if ((d[0] & 0xf0) != 0x80 || (op != WSLAY_TEXT_FRAME && op != WSLAY_BINARY_FRAME) ||
        !(d[1] & 0x80) || n > WS_FEED_SMALL_MAX || n > max_msg || len < 6 + n)
        return 0;
    for (size_t i = 0; i < n; i++)
        out[i] = d[6 + i] ^ d[2 + (i & 3)];
    if (op == WSLAY_TEXT_FRAME && !json_utf8_valid((const char *)out, n))
        return 0; /* wslay fails the connection with 1007 */
    *plen = n;
    *opcode = op;
    return 6 + n;
}
