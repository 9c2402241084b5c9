/*
 * Unit tests for worker/bridge/bridge_hooks: the real Socket.IO layer (sio over eio sessions with
 * a fake transport that records what each connection was sent, and a fake clock), the real
 * presence and inbound engines over a fake Redis seam (tests/unit/bridge_fake.c), and a real
 * fanout. Covered: the user id (auth.user_id without authentication; anonymous sockets), the
 * CONNECT that waits for MAX_CONNECTIONS_PER_USER's verdict and its CONNECT_ERROR, joins and
 * leaves (leave-room, the end of a session), client events with and without acks (stored,
 * refused, ignored, the seed's own), and presence events delivered to a room's members here.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "common/bridge/presence_store.h"
#include "common/proto/http_req.h"
#include "shm/region.h"
#include "tests/unit/bridge_fake.h"
#include "tests/unit/fake_transport.h"
#include "worker/bridge/bridge_hooks.h"
#include "worker/eio/eio_session.h"
#include "worker/fanout/fanout.h"
#include "worker/sio/seed_events.h"
#include "worker/sio/sio.h"

#define P "socket.io:presence"

static char conn_tokens[8];
#define C(i) ((conn_t *)&conn_tokens[i])

typedef struct fx {
    uv_loop_t loop;
    uint64_t now;
    timerq_clock_t clock; /* borrowed by eio */
    buf_t log[8];         /* per connection: what it was sent, one line per text message */
    fake_tr_t ft;
    eio_session_t *sess[8];
    cfg_t cfg;
    stats_worker_t stats;
    shm_region_t *region;
    local_sock_t *socks;
    eio_t *e;
    sio_t *sio;
    fanout_t *fanout;
    bridge_fake_t *fake;
    presence_t *presence;
    inbound_t *inbound;
    bridge_hooks_t *hooks;
    seed_events_t *seed;
    http_req_t *req;
} fx_t;

static uint64_t clk_now(void *arg)
{
    return ((fx_t *)arg)->now;
}

static fx_t *fx_new(const char *const *env)
{
    fx_t *f = calloc(1, sizeof(*f));
    f->now = 1000;
    for (int i = 0; i < 8; i++)
        buf_init(&f->log[i]);
    bridge_fake_config(&f->cfg, env);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    f->clock = (timerq_clock_t){f, clk_now, ft_clock_wake, ft_clock_cancel};
    f->ft = (fake_tr_t){conn_tokens, f->log, 8, f->sess};
    eio_transport_t tr = fake_transport(&f->ft);
    eio_config_t ec = fake_eio_config();
    assert_int_equal(eio_new(&f->e, &f->loop, &f->clock, &ec, &tr, &f->stats), 0);
    assert_int_equal(sio_new(&f->sio, &f->loop, &f->cfg, false, &f->stats), 0);
    assert_int_equal(
        shm_region_new(&f->region, 1, 4096, sizeof(stats_worker_t), sizeof(stats_global_t)), 0);
    assert_int_equal(local_sock_new(&f->socks, 1), 0);
    assert_int_equal(fanout_new(&f->fanout, &f->loop, f->sio, f->region, f->socks, 0, &f->stats),
                     0);
    f->seed = seed_events_new(f->sio);
    f->fake = bridge_fake_new();
    bridge_redis_t ops = bridge_fake_ops(f->fake);
    f->presence = presence_new(&ops, &f->cfg, "W1", &f->stats);
    f->inbound = inbound_new(&ops, &f->cfg, "W1", &f->stats);
    assert_int_equal(bridge_hooks_new(&f->hooks, f->sio, f->fanout, f->presence, f->inbound), 0);
    f->req = fake_ws_request();
    assert_non_null(f->req);
    return f;
}

static void fx_free(fx_t *f)
{
    ft_close_all(&f->ft, f->e, 8);
    bridge_fake_free(f->fake); /* answers still waited for: NULL */
    eio_free(f->e);
    fanout_free(f->fanout);
    sio_free(f->sio);
    seed_events_free(f->seed);
    bridge_hooks_free(f->hooks);
    presence_free(f->presence);
    inbound_free(f->inbound);
    http_req_free(f->req);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    uv_loop_close(&f->loop);
    shm_region_free(f->region);
    local_sock_free(f->socks);
    for (int i = 0; i < 8; i++)
        buf_free(&f->log[i]);
    free(f);
}

/* Opens a WebSocket session on connection c. */
static void open_ws(fx_t *f, int c)
{
    assert_int_equal(ft_open_ws(&f->ft, f->e, sio_handlers(f->sio), f->req, c), 0);
    buf_reset(&f->log[c]); /* the open packet */
}

/* The client on c sends a Socket.IO packet (an Engine.IO message: `4` + text). */
static void say(fx_t *f, int c, const char *text)
{
    char msg[512];
    int n = snprintf(msg, sizeof(msg), "4%s", text);
    eio_ws_text(C(c), f->sess[c], msg, (size_t)n);
}

/* What c was sent since the last call, one line per message; sids replaced by "<sid>". */
static const char *sent(fx_t *f, int c)
{
    static char out[4096];
    size_t o = 0;
    const char *p = f->log[c].data ? f->log[c].data : "";
    while (*p && o + 8 < sizeof(out)) {
        const char *sid = strstr(p, "\"sid\":\"");
        if (sid == p) {
            o += (size_t)snprintf(out + o, sizeof(out) - o, "\"sid\":\"<sid>\"");
            p = strchr(sid + 7, '"') + 1;
            continue;
        }
        out[o++] = *p++;
    }
    out[o] = '\0';
    buf_reset(&f->log[c]);
    return out;
}

static const char *next(fx_t *f)
{
    return bridge_fake_next(f->fake);
}

static redisReply *user_reply(long long total, long long mine)
{
    return bf_arr(3, bf_int(total), bf_int(mine), bf_int(1700000000123));
}

static void test_limit_and_rooms(void **state)
{
    (void)state;
    static const char *const env[] = {
        "PRESENCE", "true", "PRESENCE_ROOMS", "chat.*", "MAX_CONNECTIONS_PER_USER", "2", NULL};
    fx_t *f = fx_new(env);
    /* an anonymous socket: connected at once, never counted */
    open_ws(f, 0);
    say(f, 0, "0");
    assert_string_equal(sent(f, 0), "40{\"sid\":\"<sid>\"}\n");
    assert_string_equal(next(f), "(none)");
    /* a user: the CONNECT waits for the verdict */
    open_ws(f, 1);
    say(f, 1, "0{\"user_id\":\"alice\"}");
    assert_string_equal(sent(f, 1), "");
    assert_true(sio_connecting(f->sio)); /* a drain waits for the verdict */
    assert_string_equal(next(f), P ":srv:{W1} | HSET " P ":srv:{W1} u:alice 1");
    assert_string_equal(next(f), P ":user:{alice} | EVAL <script> 1 " P ":user:{alice} W1 1 2");
    bridge_fake_answer(f->fake, user_reply(1, 1));
    assert_string_equal(sent(f, 1), "40{\"sid\":\"<sid>\"}\n");
    /* a number is a user id too; over the limit: CONNECT_ERROR, and the session stays */
    open_ws(f, 2);
    say(f, 2, "0{\"user_id\":42}");
    next(f);
    assert_string_equal(next(f), P ":user:{42} | EVAL <script> 1 " P ":user:{42} W1 1 2");
    bridge_fake_answer(f->fake, bf_arr(3, bf_int(-1), bf_int(0), bf_int(1)));
    assert_string_equal(sent(f, 2), "44{\"message\":\"Too many connections for this user\"}\n");
    assert_int_equal(STATS_GET(f->stats.limit_rejections[STATS_LIMIT_PER_USER]), 1);
    /* answered: a drain does not wait for a CONNECT that may never come again */
    assert_false(sio_connecting(f->sio));
    /* joins and leaves of the counted socket */
    say(f, 1, "20[\"join-room\",\"chat.1\"]");
    assert_string_equal(sent(f, 1), "430[{\"ok\":true,\"roomId\":\"chat.1\"}]\n");
    assert_string_equal(next(f), P ":srv:{W1} | HSET " P ":srv:{W1} r:chat.1 1");
    assert_string_equal(next(f), P ":room:{chat.1} | EVAL <script> 2 " P ":room:{chat.1} " P
                                   ":room:{chat.1}:W1 W1 alice 1");
    bridge_fake_answer(f->fake, bf_arr(2, bf_int(1), bf_int(1)));
    assert_string_equal(next(f), " | PUBLISH socket.io-presence j6:chat.1alice");
    /* the event comes back on the channel: to the room's members here, once */
    bridge_hooks_presence_event(f->hooks, "j6:chat.1alice", 14);
    assert_string_equal(sent(f, 1),
                        "42[\"presence:join\",{\"roomId\":\"chat.1\",\"user\":\"alice\"}]\n");
    assert_string_equal(sent(f, 0), "");
    bridge_hooks_presence_event(f->hooks, "j6:chat.9alice", 14); /* nobody here */
    bridge_hooks_presence_event(f->hooks, "junk", 4);
    assert_string_equal(sent(f, 1), "");
    say(f, 1, "21[\"leave-room\",\"chat.1\"]");
    assert_string_equal(next(f), P ":room:{chat.1} | EVAL <script> 2 " P ":room:{chat.1} " P
                                   ":room:{chat.1}:W1 W1 alice -1");
    bridge_fake_answer(f->fake, bf_arr(2, bf_int(0), bf_int(0)));
    assert_string_equal(next(f), " | PUBLISH socket.io-presence l6:chat.1alice");
    /* the end of a session leaves its rooms, then its connection goes */
    say(f, 1, "22[\"join-room\",\"chat.2\"]");
    next(f);
    next(f);
    bridge_fake_answer(f->fake, bf_arr(2, bf_int(2), bf_int(1)));
    eio_session_close(f->sess[1]);
    eio_conn_closed(C(1), f->sess[1]);
    f->sess[1] = NULL;
    assert_string_equal(next(f), P ":room:{chat.2} | EVAL <script> 2 " P ":room:{chat.2} " P
                                   ":room:{chat.2}:W1 W1 alice -1");
    assert_string_equal(next(f), P ":user:{alice} | EVAL <script> 1 " P ":user:{alice} W1 -1 0");
    assert_string_equal(next(f), "(none)");
    fx_free(f);
}

static void test_client_events(void **state)
{
    (void)state;
    static const char *const env[] = {"SOCKETIO_INBOUND_STREAM", "in", "SOCKETIO_INBOUND_EVENTS",
                                      "chat.*", NULL};
    fx_t *f = fx_new(env);
    open_ws(f, 0);
    say(f, 0, "0");
    sent(f, 0);
    /* with an ack: answered once Redis stored it */
    say(f, 0, "27[\"chat.send\",{\"t\":1},2]");
    const char *cmd = next(f);
    assert_non_null(
        strstr(cmd, "in | XADD in MAXLEN ~ 100000 * event chat.send data [{\"t\":1},2] sid "));
    assert_non_null(strstr(cmd, " server W1 ts "));
    assert_string_equal(sent(f, 0), "");
    bridge_fake_answer(f->fake, bf_str("5-0"));
    assert_string_equal(sent(f, 0), "437[{\"ok\":true,\"id\":\"5-0\"}]\n");
    /* without an ack: the error event when it fails */
    say(f, 0, "2[\"chat.send\"]");
    next(f);
    bridge_fake_answer(f->fake, bf_err("ERR nope"));
    assert_string_equal(sent(f, 0), "42[\"error\",{\"message\":\"Event not stored\"}]\n");
    /* outside SOCKETIO_INBOUND_EVENTS: an ack is answered, nothing else */
    say(f, 0, "28[\"other\"]");
    assert_string_equal(sent(f, 0), "438[{\"ok\":false,\"error\":\"Event not accepted\"}]\n");
    say(f, 0, "2[\"other\"]");
    assert_string_equal(sent(f, 0), "");
    /* the seed's own events are the seed's */
    say(f, 0, "29[\"join-room\",\"chat.x\"]");
    assert_string_equal(sent(f, 0), "439[{\"ok\":true,\"roomId\":\"chat.x\"}]\n");
    assert_string_equal(next(f), "(none)");
    /* a binary attachment: refused */
    say(f, 0, "51-30[\"chat.bin\",{\"_placeholder\":true,\"num\":0}]");
    eio_ws_binary(C(0), f->sess[0], (const uint8_t *)"\x01\x02", 2);
    assert_string_equal(
        sent(f, 0), "4330[{\"ok\":false,\"error\":\"Binary attachments are not supported\"}]\n");
    fx_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_limit_and_rooms),
        cmocka_unit_test(test_client_events),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
