/* eio_echo: see eio_echo.h. A session's application state is the session itself. */
#include "worker/eio/eio_echo.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "common/buf.h"
#include "common/xalloc.h"

struct eio_echo {
    eio_handlers_t h;
    buf_t out; /* `4` + the message */
};

static void *on_open(void *arg, eio_session_t *s, const http_req_t *req,
                     const struct sockaddr_storage *peer)
{
    (void)arg;
    (void)req;
    (void)peer;
    eio_session_ready(s); /* no Socket.IO CONNECT to wait for */
    return s;
}

static int on_text(void *app, const char *p, size_t len)
{
    eio_session_t *s = app;
    eio_echo_t *x = (eio_echo_t *)eio_session_handlers(s)->arg;
    buf_reset(&x->out);
    buf_putc(&x->out, '4');
    buf_append(&x->out, p, len);
    eio_session_send_text(s, x->out.data, x->out.len);
    return 0;
}

static int on_binary(void *app, const uint8_t *p, size_t len)
{
    if (len > UINT32_MAX)
        return -EPROTO;
    uint32_t n = (uint32_t)len;
    buf_t att;
    buf_init(&att);
    buf_append(&att, &n, sizeof(n));
    buf_append(&att, p, len);
    eio_msg_t *m = eio_msg_new(NULL, 0, att.data, att.len, 1);
    eio_session_send_msg(app, m);
    eio_msg_unref(m);
    buf_free(&att);
    return 0;
}

static void on_close(void *app)
{
    (void)app;
}

eio_echo_t *eio_echo_new(void)
{
    eio_echo_t *x = xcalloc(1, sizeof(*x));
    x->h = (eio_handlers_t){
        .arg = x,
        .on_open = on_open,
        .on_text = on_text,
        .on_binary = on_binary,
        .on_close = on_close,
    };
    buf_init(&x->out);
    return x;
}

const eio_handlers_t *eio_echo_handlers(const eio_echo_t *x)
{
    return &x->h;
}

void eio_echo_free(eio_echo_t *x)
{
    if (!x)
        return;
    buf_free(&x->out);
    free(x);
}
