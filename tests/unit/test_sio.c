/*
 * Unit tests for worker/sio/sio: the real Socket.IO layer over eio sessions with a fake transport
 * that records what each connection was sent, and the seed's join-room (seed_events). Covered:
 * what a socket id names in a target (that socket alone, never the members of a room a client
 * joined under that name, for `rooms` and for `except`), joining one's own id (a no-op that counts
 * against no limit, as in Node), and the index by id (every connected socket found, forgotten on
 * DISCONNECT and at the end of its session, unknown 20-character names found by no one).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "common/proto/http_req.h"
#include "tests/unit/fake_transport.h"
#include "worker/eio/eio_session.h"
#include "worker/sio/seed_events.h"
#include "worker/sio/sio.h"

#define NCONN 2048

static char conn_tokens[NCONN];
#define C(i) ((conn_t *)&conn_tokens[i])

typedef struct fx {
    uv_loop_t loop;
    timerq_clock_t clock;
    buf_t log[4]; /* what the first connections were sent, one line per text message */
    fake_tr_t ft;
    eio_session_t *sess[NCONN];
    cfg_t cfg;
    stats_worker_t stats;
    eio_t *e;
    sio_t *sio;
    seed_events_t *seed;
    http_req_t *req;
} fx_t;

static fx_t *fx_new(void)
{
    fx_t *f = calloc(1, sizeof(*f));
    for (int i = 0; i < 4; i++)
        buf_init(&f->log[i]);
    buf_t err;
    buf_init(&err);
    assert_int_equal(config_load(&f->cfg, ft_no_env, NULL, &err), 0);
    buf_free(&err);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    f->clock = (timerq_clock_t){f, ft_clock_now, ft_clock_wake, ft_clock_cancel};
    f->ft = (fake_tr_t){conn_tokens, f->log, 4, f->sess};
    eio_transport_t tr = fake_transport(&f->ft);
    eio_config_t ec = fake_eio_config();
    assert_int_equal(eio_new(&f->e, &f->loop, &f->clock, &ec, &tr, &f->stats), 0);
    assert_int_equal(sio_new(&f->sio, &f->loop, &f->cfg, false, &f->stats), 0);
    f->seed = seed_events_new(f->sio);
    f->req = fake_ws_request();
    assert_non_null(f->req);
    return f;
}

static void fx_free(fx_t *f)
{
    ft_close_all(&f->ft, f->e, NCONN);
    eio_free(f->e);
    sio_free(f->sio);
    seed_events_free(f->seed);
    http_req_free(f->req);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    uv_loop_close(&f->loop);
    for (int i = 0; i < 4; i++)
        buf_free(&f->log[i]);
    free(f);
}

/* The client on c sends a Socket.IO packet (an Engine.IO message: `4` + text). */
static void say(fx_t *f, int c, const char *text)
{
    char msg[512];
    int n = snprintf(msg, sizeof(msg), "4%s", text);
    eio_ws_text(C(c), f->sess[c], msg, (size_t)n);
}

/* Opens a WebSocket session on connection c and connects it to "/". */
static void connect_ws(fx_t *f, int c)
{
    assert_int_equal(ft_open_ws(&f->ft, f->e, sio_handlers(f->sio), f->req, c), 0);
    say(f, c, "0");
}

/* What c (< 4) was sent since the last call, one line per message. */
static const char *sent(fx_t *f, int c)
{
    static char out[4096];
    snprintf(out, sizeof(out), "%s", f->log[c].data ? f->log[c].data : "");
    buf_reset(&f->log[c]);
    return out;
}

/* The socket id from c's CONNECT reply (`40{"sid":"..."}`). */
static void sid_of(fx_t *f, int c, char id[SIO_ID_LEN + 1])
{
    const char *p = strstr(sent(f, c), "40{\"sid\":\"");
    assert_non_null(p);
    memcpy(id, p + 10, SIO_ID_LEN);
    id[SIO_ID_LEN] = '\0';
    assert_true(sio_id_ok(id, SIO_ID_LEN));
}

typedef struct hits {
    const char *ids[8];
    size_t n;
} hits_t;

static void hit(sio_socket_t *s, rooms_mark_t *mark, void *arg)
{
    (void)mark;
    hits_t *h = arg;
    assert_true(h->n < 8);
    h->ids[h->n++] = sio_socket_id(s);
}

static hits_t walk(fx_t *f, const char *room, const char *except)
{
    adapter_str_t r = {room, room ? strlen(room) : 0};
    adapter_str_t x = {except, except ? strlen(except) : 0};
    sio_target_t t = {&r, room ? 1 : 0, &x, except ? 1 : 0, 0};
    hits_t h = {{0}, 0};
    sio_each(f->sio, &t, hit, &h);
    return h;
}

/* A client that joins a room named like another socket's id (the seed answers it {ok:true}) never
 * receives what is sent to that id, and does not shield the socket from except(id). */
static void test_socket_id_names_only_its_socket(void **state)
{
    (void)state;
    fx_t *f = fx_new();
    char victim[SIO_ID_LEN + 1], squatter[SIO_ID_LEN + 1];
    connect_ws(f, 0);
    connect_ws(f, 1);
    sid_of(f, 0, victim);
    sid_of(f, 1, squatter);

    char pkt[128], want[128];
    snprintf(pkt, sizeof(pkt), "27[\"join-room\",\"%s\"]", victim);
    say(f, 1, pkt);
    snprintf(want, sizeof(want), "437[{\"ok\":true,\"roomId\":\"%s\"}]\n", victim);
    assert_string_equal(sent(f, 1), want);
    assert_true(sio_has_room(f->sio, victim, SIO_ID_LEN));

    hits_t h = walk(f, victim, NULL);
    assert_int_equal(h.n, 1);
    assert_string_equal(h.ids[0], victim);

    /* except(victim): everyone else, the squatter included */
    h = walk(f, NULL, victim);
    assert_int_equal(h.n, 1);
    assert_string_equal(h.ids[0], squatter);

    /* once the victim is gone, the name is a room like any other */
    eio_session_close(f->sess[0]);
    h = walk(f, victim, NULL);
    assert_int_equal(h.n, 1);
    assert_string_equal(h.ids[0], squatter);
    fx_free(f);
}

/* Joining one's own id is a no-op that Node answers {ok:true} even at MAX_ROOMS_PER_SOCKET. */
static void test_own_id_is_no_room(void **state)
{
    (void)state;
    fx_t *f = fx_new();
    char me[SIO_ID_LEN + 1];
    connect_ws(f, 0);
    sid_of(f, 0, me);
    char pkt[600], want[128];
    for (int i = 0; i < f->cfg.max_rooms_per_socket; i++) {
        snprintf(pkt, sizeof(pkt), "2[\"join-room\",\"room.%d\"]", i);
        say(f, 0, pkt);
    }
    assert_string_equal(sent(f, 0), "");
    snprintf(pkt, sizeof(pkt), "25[\"join-room\",\"%s\"]", me);
    say(f, 0, pkt);
    snprintf(want, sizeof(want), "435[{\"ok\":true,\"roomId\":\"%s\"}]\n", me);
    assert_string_equal(sent(f, 0), want);
    hits_t h = walk(f, me, NULL);
    assert_int_equal(h.n, 1);
    /* the next other room is over the limit, as in the seed */
    say(f, 0, "26[\"join-room\",\"one.more\"]");
    assert_string_equal(sent(f, 0), "42[\"error\",{\"message\":\"Max rooms limit reached\"}]\n"
                                    "436[{\"ok\":false,\"error\":\"Max rooms limit reached\"}]\n");
    fx_free(f);
}

typedef struct all {
    char (*ids)[SIO_ID_LEN + 1];
    size_t n;
} all_t;

static void collect(sio_socket_t *s, rooms_mark_t *mark, void *arg)
{
    (void)mark;
    all_t *a = arg;
    assert_true(a->n < NCONN);
    memcpy(a->ids[a->n++], sio_socket_id(s), SIO_ID_LEN + 1);
}

/* Every connected socket is found by its id; DISCONNECT and the end of a session forget it. */
static void test_index_by_id(void **state)
{
    (void)state;
    fx_t *f = fx_new();
    static char ids[NCONN][SIO_ID_LEN + 1];
    char two[SIO_ID_LEN + 1], three[SIO_ID_LEN + 1];
    for (int c = 0; c < NCONN; c++)
        connect_ws(f, c);
    sid_of(f, 2, two);
    sid_of(f, 3, three);
    all_t all = {ids, 0};
    sio_target_t every = {NULL, 0, NULL, 0, 0};
    sio_each(f->sio, &every, collect, &all);
    assert_int_equal(all.n, NCONN);
    for (int i = 0; i < NCONN; i++) {
        sio_socket_t *s = sio_socket_by_id(f->sio, ids[i], SIO_ID_LEN);
        assert_non_null(s);
        assert_string_equal(sio_socket_id(s), ids[i]);
    }
    assert_null(sio_socket_by_id(f->sio, "AAAAAAAAAAAAAAAAAAAA", SIO_ID_LEN));
    assert_null(sio_socket_by_id(f->sio, two, SIO_ID_LEN - 1));

    say(f, 2, "1"); /* DISCONNECT of "/" */
    assert_null(sio_socket_by_id(f->sio, two, SIO_ID_LEN));
    assert_false(sio_has_room(f->sio, two, SIO_ID_LEN));
    eio_session_close(f->sess[3]);
    assert_null(sio_socket_by_id(f->sio, three, SIO_ID_LEN));
    hits_t h = walk(f, three, NULL);
    assert_int_equal(h.n, 0);
    fx_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_socket_id_names_only_its_socket),
        cmocka_unit_test(test_own_id_is_no_room),
        cmocka_unit_test(test_index_by_id),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
