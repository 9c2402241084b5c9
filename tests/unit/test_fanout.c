/*
 * Unit tests for worker/fanout/fanout: two workers of one server in one process (each its own
 * Engine.IO and Socket.IO over a fake transport, the siblings' real datagram channel between
 * them). Worker 0 reads the entries (fanout_publish), worker 1 gets them from it. Covered: an
 * entry re-read from a pending list (a worker killed, or its Redis connection lost, before its
 * XACK) reaches no socket that had it already, here or at the sibling, checked once per entry
 * and not per recipient; one re-read past what a room had goes out; a lower id read fresh (a
 * re-created stream) always goes out; each room keeps its own last id.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "common/proto/http_req.h"
#include "tests/unit/fake_transport.h"
#include "worker/eio/eio_session.h"
#include "worker/fanout/fanout.h"
#include "worker/sio/seed_events.h"
#include "worker/sio/sio.h"

#define NCONN 3

typedef struct wk {
    char tokens[NCONN];
    buf_t log[NCONN];
    eio_session_t *sess[NCONN];
    fake_tr_t ft;
    stats_worker_t stats;
    eio_t *e;
    sio_t *sio;
    seed_events_t *seed;
    fanout_t *fanout;
} wk_t;

typedef struct fx {
    uv_loop_t loop;
    timerq_clock_t clock;
    shm_region_t *region;
    local_sock_t *socks;
    cfg_t cfg;
    http_req_t *req;
    wk_t w[2];
    buf_t scratch;
} fx_t;

static uint64_t clk_now(void *arg)
{
    (void)arg;
    return 1000;
}

static const char *no_env(const char *name, void *arg)
{
    (void)name, (void)arg;
    return NULL;
}

/* A shared message (a broadcast) to c: its text, whatever its length, goes to c's log. */
static int log_msg(void *arg, conn_t *c, eio_msg_t *m)
{
    fake_tr_t *ft = arg;
    size_t len;
    const char *text = eio_msg_text(m, &len);
    buf_printf(&ft->log[ft_no(ft, c)], "%.*s\n", (int)len, text);
    return 0;
}

static void wk_init(fx_t *f, uint32_t slot)
{
    wk_t *w = &f->w[slot];
    for (int i = 0; i < NCONN; i++)
        buf_init(&w->log[i]);
    w->ft = (fake_tr_t){w->tokens, w->log, NCONN, w->sess};
    eio_transport_t tr = fake_transport(&w->ft);
    tr.ws_msg = log_msg;
    eio_config_t ec = fake_eio_config();
    assert_int_equal(eio_new(&w->e, &f->loop, &f->clock, &ec, &tr, &w->stats), 0);
    assert_int_equal(sio_new(&w->sio, &f->loop, &f->cfg, false, &w->stats), 0);
    w->seed = seed_events_new(w->sio);
    assert_int_equal(fanout_new(&w->fanout, &f->loop, w->sio, f->region, f->socks, slot, &w->stats),
                     0);
    /* both slots live (a pid in the region): the siblings hand entries over */
    stats_worker_t *st = shm_region_slot_stats(f->region, slot);
    STATS_SET(st->pid, getpid());
}

static fx_t *fx_new(void)
{
    fx_t *f = calloc(1, sizeof(*f));
    buf_t err;
    buf_init(&err);
    assert_int_equal(config_load(&f->cfg, no_env, NULL, &err), 0);
    buf_free(&err);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    f->clock = (timerq_clock_t){f, clk_now, ft_clock_wake, ft_clock_cancel};
    assert_int_equal(shm_region_new(&f->region, 2, 4096, sizeof(stats_worker_t), 0), 0);
    assert_int_equal(local_sock_new(&f->socks, 2), 0);
    f->req = fake_ws_request();
    assert_non_null(f->req);
    buf_init(&f->scratch);
    wk_init(f, 0);
    wk_init(f, 1);
    return f;
}

static void fx_free(fx_t *f)
{
    for (int i = 0; i < 2; i++) {
        wk_t *w = &f->w[i];
        fanout_free(w->fanout);
        ft_close_all(&w->ft, w->e, NCONN);
        eio_free(w->e);
        sio_free(w->sio);
        seed_events_free(w->seed);
        for (int c = 0; c < NCONN; c++)
            buf_free(&w->log[c]);
    }
    http_req_free(f->req);
    buf_free(&f->scratch);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    local_sock_free(f->socks);
    shm_region_free(f->region);
    free(f);
}

/* Client c of worker w connects to "/" over WebSocket and joins room (the seed's join-room). */
static void join(fx_t *f, int w, int c, const char *room)
{
    wk_t *k = &f->w[w];
    if (!k->sess[c]) {
        assert_int_equal(ft_open_ws(&k->ft, k->e, sio_handlers(k->sio), f->req, c), 0);
        eio_ws_text((conn_t *)&k->tokens[c], k->sess[c], "40", 2);
    }
    char msg[128];
    int n = snprintf(msg, sizeof(msg), "42[\"join-room\",\"%s\"]", room);
    eio_ws_text((conn_t *)&k->tokens[c], k->sess[c], msg, (size_t)n);
    buf_reset(&k->log[c]);
}

static const payload_field_t fields[] = {{"event", 5, "tick", 4}, {"data", 4, "{}", 2}};

/*
 * Worker 0 reads entry `id` of stream `room` (reread: from its pending list) and hands it on;
 * returns once worker 1 has taken it from the channel.
 */
static void publish(fx_t *f, const char *room, const char *id, bool reread)
{
    uint64_t before = STATS_GET(f->w[1].stats.sibling_in);
    fanout_packet_t pk;
    fanout_packet_entry(&pk, &f->scratch, NULL, room, strlen(room), id, strlen(id), fields, 2,
                        true);
    pk.reread = reread;
    fanout_publish(f->w[0].fanout, &pk);
    fanout_packet_release(&pk);
    for (int i = 0; i < 2000 && STATS_GET(f->w[1].stats.sibling_in) == before; i++)
        uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(STATS_GET(f->w[1].stats.sibling_in), before + 1);
}

/* The entry ids client c of worker w was sent since the last call, space-separated. */
static const char *got(fx_t *f, int w, int c)
{
    static char out[512];
    buf_t *log = &f->w[w].log[c];
    size_t n = 0;
    out[0] = '\0';
    const char *key = "\"messageId\":\"";
    for (const char *p = log->data; p && (p = strstr(p, key)) != NULL;) {
        p += strlen(key);
        size_t len = strcspn(p, "\"");
        n += (size_t)snprintf(out + n, sizeof(out) - n, "%s%.*s", n ? " " : "", (int)len, p);
        p += len;
    }
    buf_reset(log);
    return out;
}

static uint64_t skipped(fx_t *f, int w)
{
    return STATS_GET(f->w[w].stats.reread_skipped);
}

/* A reader killed after handing entries over but before their XACK: its successor reads them
 * again from its pending list; no socket, here or at the sibling, gets them twice. */
static void test_reread_entry_already_delivered_is_skipped(void **state)
{
    (void)state;
    fx_t *f = fx_new();
    join(f, 0, 0, "chat.a");
    join(f, 1, 0, "chat.a");
    join(f, 1, 1, "chat.a");
    publish(f, "chat.a", "5-1", false);
    publish(f, "chat.a", "5-2", false);
    assert_string_equal(got(f, 0, 0), "5-1 5-2");
    assert_string_equal(got(f, 1, 0), "5-1 5-2");
    assert_string_equal(got(f, 1, 1), "5-1 5-2");
    /* the re-read batch: the two it had handed over, then one it had not */
    publish(f, "chat.a", "5-1", true);
    publish(f, "chat.a", "5-2", true);
    publish(f, "chat.a", "5-3", true);
    assert_string_equal(got(f, 0, 0), "5-3");
    assert_string_equal(got(f, 1, 0), "5-3");
    assert_string_equal(got(f, 1, 1), "5-3");
    /* checked once per entry, not per recipient (worker 1 has two in the room) */
    assert_int_equal(skipped(f, 0), 2);
    assert_int_equal(skipped(f, 1), 2);
    /* new entries flow on */
    publish(f, "chat.a", "5-4", false);
    assert_string_equal(got(f, 1, 0), "5-4");
    fx_free(f);
}

/* A stream deleted and written again with explicit lower ids: read fresh, they go out (as with
 * Node), and what is re-read is then measured against them. */
static void test_fresh_lower_id_is_delivered(void **state)
{
    (void)state;
    fx_t *f = fx_new();
    join(f, 0, 0, "chat.a");
    join(f, 1, 0, "chat.a");
    publish(f, "chat.a", "9-0", false);
    publish(f, "chat.a", "1-1", false);
    assert_string_equal(got(f, 0, 0), "9-0 1-1");
    assert_string_equal(got(f, 1, 0), "9-0 1-1");
    publish(f, "chat.a", "1-1", true);
    publish(f, "chat.a", "1-2", true);
    assert_string_equal(got(f, 0, 0), "1-2");
    assert_string_equal(got(f, 1, 0), "1-2");
    assert_int_equal(skipped(f, 1), 1);
    fx_free(f);
}

/* Each room keeps its own last id: a re-read entry of one room is not measured against another
 * room's; a room nobody here is in delivers and records nothing. */
static void test_rooms_are_independent(void **state)
{
    (void)state;
    fx_t *f = fx_new();
    join(f, 1, 0, "chat.a");
    join(f, 1, 1, "chat.b");
    publish(f, "chat.a", "9-0", false);
    publish(f, "chat.b", "3-0", true);
    assert_string_equal(got(f, 1, 0), "9-0");
    assert_string_equal(got(f, 1, 1), "3-0");
    publish(f, "chat.b", "3-0", true);
    publish(f, "chat.a", "3-0", true);
    assert_string_equal(got(f, 1, 0), "");
    assert_string_equal(got(f, 1, 1), "");
    assert_int_equal(skipped(f, 1), 2);
    /* worker 0 has no socket in either room: nothing to skip there */
    assert_int_equal(skipped(f, 0), 0);
    fx_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reread_entry_already_delivered_is_skipped),
        cmocka_unit_test(test_fresh_lower_id_is_delivered),
        cmocka_unit_test(test_rooms_are_independent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
