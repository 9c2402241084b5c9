/*
 * A fake eio_transport_t for the unit tests of the layers over Engine.IO (sio, the bridge hooks):
 * a connection is the address of one byte of `tokens`; what the first `nlog` connections are sent
 * goes to their log, one line per text message (a shared message's WebSocket text frame too);
 * the session of each connection is remembered in `sess`. Nothing is ever backlogged, held or
 * closed. The clock seams of timerq that never fire are here too. Header-only: each test binary
 * includes it once.
 */
#ifndef STREAMIO_TESTS_UNIT_FAKE_TRANSPORT_H
#define STREAMIO_TESTS_UNIT_FAKE_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include "common/buf.h"
#include "common/proto/http_req.h"
#include "worker/eio/eio_session.h"

typedef struct fake_tr {
    char *tokens;         /* C(i) = (conn_t *)&tokens[i] */
    buf_t *log;           /* per logged connection */
    int nlog;             /* connections 0..nlog-1 are logged */
    eio_session_t **sess; /* per connection */
} fake_tr_t;

static int ft_no(const fake_tr_t *ft, conn_t *c)
{
    return (int)((char *)c - ft->tokens);
}

static int ft_ws_text(void *arg, conn_t *c, const char *p, size_t len)
{
    fake_tr_t *ft = arg;
    if (ft_no(ft, c) < ft->nlog)
        buf_printf(&ft->log[ft_no(ft, c)], "%.*s\n", (int)len, p);
    return 0;
}

static int ft_ws_msg(void *arg, conn_t *c, eio_msg_t *m)
{
    fake_tr_t *ft = arg;
    if (ft_no(ft, c) >= ft->nlog)
        return 0;
    refbuf_t *frames = eio_msg_frames(m);
    /* one text frame: its payload starts after a 2-byte header for short messages */
    const char *d = refbuf_data(frames);
    size_t n = refbuf_len(frames);
    if (n > 2 && (unsigned char)d[1] < 126)
        buf_printf(&ft->log[ft_no(ft, c)], "%.*s\n", (int)(n - 2), d + 2);
    return 0;
}

static int ft_ws_close(void *arg, conn_t *c, uint16_t code)
{
    (void)arg, (void)c, (void)code;
    return 0;
}

static size_t ft_backlog(void *arg, conn_t *c)
{
    (void)arg, (void)c;
    return 0;
}

static bool ft_open(void *arg, conn_t *c)
{
    (void)arg, (void)c;
    return true;
}

static void ft_respond(void *arg, conn_t *c, int status, const char *ctype, const char *body,
                       size_t len, bool cors)
{
    (void)arg, (void)c, (void)status, (void)ctype, (void)body, (void)len, (void)cors;
}

static int ft_hold(void *arg, conn_t *c)
{
    (void)arg, (void)c;
    return 0;
}

static void ft_close(void *arg, conn_t *c)
{
    (void)arg, (void)c;
}

static void ft_own(void *arg, conn_t *c, eio_session_t *s)
{
    fake_tr_t *ft = arg;
    ft->sess[ft_no(ft, c)] = s;
}

static eio_transport_t fake_transport(fake_tr_t *ft)
{
    return (eio_transport_t){ft,      ft_ws_text, ft_ws_msg, ft_ws_close, ft_backlog,
                             ft_open, ft_respond, ft_hold,   ft_close,    ft_own};
}

/* A clock that stands still, and an environment with nothing set (config_load's defaults). */
static inline uint64_t ft_clock_now(void *arg)
{
    (void)arg;
    return 1000;
}

static inline const char *ft_no_env(const char *name, void *arg)
{
    (void)name, (void)arg;
    return NULL;
}

static void ft_clock_wake(void *arg, timerq_t *q, uint64_t due)
{
    (void)arg, (void)q, (void)due;
}

static void ft_clock_cancel(void *arg, timerq_t *q)
{
    (void)arg, (void)q;
}

/* Node's Engine.IO defaults. */
static eio_config_t fake_eio_config(void)
{
    return (eio_config_t){.ping_interval_ms = 25000,
                          .ping_timeout_ms = 20000,
                          .upgrade_timeout_ms = 10000,
                          .ready_timeout_ms = 45000,
                          .max_payload = 1000000,
                          .max_poll_queue = 1u << 20};
}

/* A parsed WebSocket handshake request for eio_session_open; NULL if it did not parse. */
static http_req_t *fake_ws_request(void)
{
    static const char head[] = "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n"
                               "Host: localhost\r\n\r\n";
    http_req_t *r = http_req_new(0);
    size_t used;
    if (http_req_feed(r, head, sizeof(head) - 1, &used) <= 0) {
        http_req_free(r);
        return NULL;
    }
    return r;
}

/* Opens a WebSocket session from 127.0.0.1 on connection c (remembered in sess[c]): 0 or
 * eio_session_open's error. */
static int ft_open_ws(fake_tr_t *ft, eio_t *e, const eio_handlers_t *h, const http_req_t *req,
                      int c)
{
    struct sockaddr_storage peer = {0};
    struct sockaddr_in *in = (struct sockaddr_in *)&peer;
    in->sin_family = AF_INET;
    in->sin_addr.s_addr = htonl(0x7f000001);
    return eio_session_open(e, h, (conn_t *)&ft->tokens[c], req, &peer, true, false, &ft->sess[c]);
}

static void ft_all_closed(void *arg)
{
    (void)arg;
}

/* Ends every session of e, then tells it that each of the n first connections closed. */
static void ft_close_all(fake_tr_t *ft, eio_t *e, int n)
{
    eio_close_all(e, ft_all_closed, NULL);
    for (int i = 0; i < n; i++)
        if (ft->sess[i])
            eio_conn_closed((conn_t *)&ft->tokens[i], ft->sess[i]);
}

#endif
