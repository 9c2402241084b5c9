/*
 * Fuzzes a client's session end to end on what the client controls after the handshake: the real
 * Engine.IO session (worker/eio) and Socket.IO layer (worker/sio) with the seed's events
 * (join-room, leave-room) and the conformance handlers (echo, acks, attachments kept), over the
 * unit tests' fake transport (tests/unit/fake_transport.h). The first input byte picks the
 * transport: a WebSocket session, whose messages are the rest split on '\n' (a message starting
 * with 0x00 is a binary one, the rest its bytes), or a polling one, whose POST bodies are the
 * rest split on '\n' (records of an Engine.IO payload, `b` + base64 for binary). The sid the
 * session got is read back as a client's query would carry it. The bridge is on (worker/bridge:
 * client events into SOCKETIO_INBOUND_STREAM, PRESENCE, a per-user limit of 2) over a fake Redis
 * that answers each command after each message with, in turn from a start the first byte picks,
 * [1, 1, 1000], "1-0", an error or a lost connection. Each input starts from a fresh worker
 * (namespaces "/" and "/admin") and ends with every session closed and freed.
 */
#include <errno.h>
#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <uv.h>

#include "common/buf.h"
#include "common/config.h"
#include "tests/fuzz/fuzz_worker.h"
#include "tests/unit/fake_transport.h"
#include "worker/bridge/bridge_hooks.h"
#include "worker/bridge/inbound.h"
#include "worker/bridge/presence.h"
#include "worker/eio/eio_session.h"
#include "worker/sio/conformance.h"
#include "worker/sio/seed_events.h"
#include "worker/sio/sio.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NCONN 4

/* The bridge's Redis: commands wait until answered, in order, by fake_redis_answer. */
#define FAKE_REDIS_QUEUE 64

typedef struct fake_redis {
    struct {
        redis_reply_fn cb;
        void *arg;
    } q[FAKE_REDIS_QUEUE];
    size_t n;
    unsigned turn;
} fake_redis_t;

static int fake_redis_command(void *ctx, const char *key, size_t key_len, redis_reply_fn cb,
                              void *arg, int argc, const char **argv, const size_t *lens)
{
    fake_redis_t *f = ctx;
    volatile unsigned h = (unsigned)key_len;
    for (int i = 0; i < argc; i++) /* every argument must be readable */
        for (size_t j = 0; j < lens[i]; j++)
            h += (unsigned char)argv[i][j];
    (void)key;
    if (!cb)
        return 0;
    if (f->n == FAKE_REDIS_QUEUE)
        return -ENOBUFS;
    f->q[f->n].cb = cb;
    f->q[f->n].arg = arg;
    f->n++;
    return 0;
}

/* Answers what waits (and what the answers send), with lost connections only when `lost`. */
static void fake_redis_answer(fake_redis_t *f, bool lost)
{
    static redisReply one = {.type = REDIS_REPLY_INTEGER, .integer = 1},
                      ts = {.type = REDIS_REPLY_INTEGER, .integer = 1000};
    static redisReply *ints[] = {&one, &one, &ts};
    static redisReply arr = {.type = REDIS_REPLY_ARRAY, .elements = 3, .element = ints};
    static redisReply id = {.type = REDIS_REPLY_STRING, .str = "1-0", .len = 3};
    static redisReply err = {.type = REDIS_REPLY_ERROR, .str = "ERR no", .len = 6};
    redisReply *const replies[] = {&arr, &id, &err, NULL};
    for (unsigned k = 0; f->n && k < 4 * FAKE_REDIS_QUEUE; k++) {
        redis_reply_fn cb = f->q[0].cb;
        void *arg = f->q[0].arg;
        memmove(f->q, f->q + 1, --f->n * sizeof(f->q[0]));
        cb(lost ? NULL : replies[f->turn++ % 4], arg);
    }
}

/* Reads the attachments of every event, so binary packets keep them while collected. */
static void on_event(void *arg, sio_socket_t *s, const sio_event_t *ev)
{
    (void)arg;
    (void)s;
    volatile unsigned h = 0;
    for (size_t i = 0; i < ev->atts_len; i++)
        h += (unsigned char)ev->atts[i];
}

/* A parsed polling handshake request, as the endpoint hands it to eio_session_open. */
static http_req_t *polling_request(void)
{
    static const char head[] = "GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\n"
                               "Host: localhost\r\n\r\n";
    http_req_t *r = http_req_new(0);
    size_t used;
    if (http_req_feed(r, head, sizeof(head) - 1, &used) <= 0)
        __builtin_trap();
    return r;
}

/* The sid a session was given, as the endpoint reads it from a request's query. */
static void check_sid(eio_session_t *s)
{
    const char *sid = eio_session_sid(s);
    size_t len = strlen(sid);
    int slot = eio_sid_slot(sid, len);
    const char *tag = eio_sid_tag(sid, len);
    if (slot != 0 || !tag || tag != sid + 2 || !sio_id_ok(sid, len))
        __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uv_loop_t *loop;
    const cfg_t *cfg;
    fuzz_worker(&loop, &cfg);
    if (size < 1)
        return 0;
    bool ws = !(data[0] & 1);
    static char tokens[NCONN];
    eio_session_t *sess[NCONN] = {0};
    buf_t log[NCONN];
    for (int i = 0; i < NCONN; i++)
        buf_init(&log[i]);
    fake_tr_t ft = {tokens, log, 0, sess};
    eio_transport_t tr = fake_transport(&ft);
    eio_config_t ec = fake_eio_config();
    ec.tag[0] = '\0';
    timerq_clock_t clock = {NULL, ft_clock_now, ft_clock_wake, ft_clock_cancel};
    stats_worker_t stats = {0};
    eio_t *e;
    sio_t *sio;
    conformance_t *conf;
    if (eio_new(&e, loop, &clock, &ec, &tr, &stats) || sio_new(&sio, loop, cfg, true, &stats))
        __builtin_trap();
    seed_events_t *seed = seed_events_new(sio);
    if (conformance_new(&conf, loop, sio))
        __builtin_trap();
    fake_redis_t redis = {.turn = data[0] >> 1};
    bridge_redis_t ops = {&redis, fake_redis_command};
    inbound_t *inbound = inbound_new(&ops, cfg, "writer", &stats);
    presence_t *presence = presence_new(&ops, cfg, "writer", &stats);
    bridge_hooks_t *hooks;
    if (!inbound || !presence || bridge_hooks_new(&hooks, sio, NULL, presence, inbound))
        __builtin_trap();
    sio_observer_t reader = {.event = on_event, .reads_attachments = true};
    if (sio_observe(sio, &reader) < 0)
        __builtin_trap();
    http_req_t *req = ws ? fake_ws_request() : polling_request();
    struct sockaddr_storage peer = {0};
    peer.ss_family = AF_INET;
    /* a polling session: the open packet goes out with the handshake's response; the client
     * then POSTs on another connection */
    eio_session_t *s = NULL;
    if (eio_session_open(e, sio_handlers(sio), (conn_t *)&tokens[0], req, &peer, ws, true, &s))
        s = NULL;
    if (s)
        check_sid(s);
    const char *in = (const char *)data + 1;
    size_t n = size - 1;
    /* a session no connection holds is freed as it ends: eio_sessions tells */
    for (size_t pos = 0; pos < n && s && eio_sessions(e) && !eio_session_closed(s);) {
        const char *nl = memchr(in + pos, '\n', n - pos);
        size_t len = nl ? (size_t)(nl - in - pos) : n - pos;
        const char *m = in + pos;
        if (!ws)
            eio_session_poll_post(s, (conn_t *)&tokens[1], m, len);
        else if (len && m[0] == '\0')
            eio_ws_binary((conn_t *)&tokens[0], s, (const uint8_t *)m + 1, len - 1);
        else
            eio_ws_text((conn_t *)&tokens[0], s, m, len);
        pos += len + 1;
        fake_redis_answer(&redis, false);
    }
    ft_close_all(&ft, e, NCONN);
    fake_redis_answer(&redis, true);
    eio_free(e);
    conformance_free(conf);
    seed_events_free(seed);
    sio_free(sio);
    bridge_hooks_free(hooks);
    fake_redis_answer(&redis, true);
    presence_free(presence);
    inbound_free(inbound);
    http_req_free(req);
    uv_run(loop, UV_RUN_NOWAIT);
    for (int i = 0; i < NCONN; i++)
        buf_free(&log[i]);
    return 0;
}
