/* ws_feed: see ws_feed.h. */
#include "worker/ws_feed.h"

#include <string.h>

ssize_t ws_feed_read(wslay_event_context_ptr ws, ws_feed_t *f, uint8_t *buf, size_t len)
{
    if (f->len == 0) {
        wslay_event_set_error(ws, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    size_t n = len < f->len ? len : f->len;
    memcpy(buf, f->p, n);
    f->p += n;
    f->len -= n;
    return (ssize_t)n;
}

ssize_t ws_feed_write(wslay_event_context_ptr ws, buf_t *out, const uint8_t *data, size_t len)
{
    if (buf_append(out, data, len) != 0) {
        wslay_event_set_error(ws, WSLAY_ERR_CALLBACK_FAILURE);
        return -1;
    }
    return (ssize_t)len;
}
