/*
 * Unit tests for worker/fanout/fanout's use of the ledger (shm/ledger): two workers of one server
 * in one process (each its own Engine.IO and Socket.IO over a fake transport, the siblings' real
 * datagram channel between them, one real ledger). Worker 0 reads the entries (fanout_publish),
 * worker 1 gets them from it; worker 1's pid is this process's (the region's), worker 0's is a
 * seam, so a successor is worker 0 with another pid (a new process with new sockets). Covered:
 * an entry read again that every live sibling's process noted is not handed over again, nor
 * delivered again by the process that noted it; everything the ledger does not prove goes: an
 * older id never handed out behind newer ones (a claim, an ownership move: what broke the "last
 * id" design), an entry a sibling has not taken yet, a sibling restarted since, the same id with
 * other bytes (a re-created stream).
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

#define BLOCKS 3

typedef struct fx {
    uv_loop_t loop;
    timerq_clock_t clock;
    shm_region_t *region;
    local_sock_t *socks;
    shm_ledger_t *ledger;
    cfg_t cfg;
    http_req_t *req;
    wk_t w[2];
    buf_t scratch;
} fx_t;

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
    fanout_keep_ledger(w->fanout, f->ledger, slot == 0 ? 1000 : (int32_t)getpid());
}

static fx_t *fx_new(void)
{
    fx_t *f = calloc(1, sizeof(*f));
    buf_t err;
    buf_init(&err);
    assert_int_equal(config_load(&f->cfg, ft_no_env, NULL, &err), 0);
    buf_free(&err);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    f->clock = (timerq_clock_t){f, ft_clock_now, ft_clock_wake, ft_clock_cancel};
    assert_int_equal(shm_region_new(&f->region, BLOCKS, 4096, sizeof(stats_worker_t), 0), 0);
    assert_int_equal(local_sock_new(&f->socks, BLOCKS), 0);
    assert_int_equal(shm_ledger_new(&f->ledger, BLOCKS), 0);
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
    shm_ledger_free(f->ledger);
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

static const payload_field_t tick[] = {{"event", 5, "tick", 4}, {"data", 4, "{}", 2}};
static const payload_field_t tock[] = {{"event", 5, "tock", 4}, {"data", 4, "{}", 2}};

/* Worker w reads entry `id` of stream `room` with fields fl (reread: read again) and publishes. */
static void publish_with(fx_t *f, int w, const char *room, const char *id, bool reread,
                         const payload_field_t *fl)
{
    fanout_packet_t pk;
    fanout_packet_entry(&pk, &f->scratch, NULL, room, strlen(room), id, strlen(id), fl, 2, true);
    pk.reread = reread;
    fanout_publish(f->w[w].fanout, &pk);
    fanout_packet_release(&pk);
}

static void publish(fx_t *f, int w, const char *room, const char *id, bool reread)
{
    publish_with(f, w, room, id, reread, tick);
}

/* Runs the loop until each worker has taken every entry the other handed over (and so each
 * sender's batch was flushed and its notes committed). */
static void settle(fx_t *f)
{
    for (int i = 0; i < 5000; i++) {
        uv_run(&f->loop, UV_RUN_NOWAIT);
        if (STATS_GET(f->w[1].stats.sibling_in) == STATS_GET(f->w[0].stats.sibling_out) &&
            STATS_GET(f->w[0].stats.sibling_in) == STATS_GET(f->w[1].stats.sibling_out))
            return;
    }
    fail_msg("the siblings did not take what was handed over");
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

static void successor(fx_t *f, int32_t pid)
{
    fanout_keep_ledger(f->w[0].fanout, f->ledger, pid);
}

/* A reader killed after handing entries over, before their XACK: its successor (a new process
 * in its block) reads them again. The sibling's sockets get none twice, checked once per entry
 * (two sockets there); the successor's own sockets (new connections) get them; an entry the dead
 * one never handed out goes everywhere. */
static void test_a_successor_does_not_hand_over_again(void **state)
{
    (void)state;
    fx_t *f = fx_new();
    join(f, 0, 0, "chat.a");
    join(f, 1, 0, "chat.a");
    join(f, 1, 1, "chat.a");
    publish(f, 0, "chat.a", "5-1", false);
    publish(f, 0, "chat.a", "5-2", false);
    settle(f);
    assert_string_equal(got(f, 0, 0), "5-1 5-2");
    assert_string_equal(got(f, 1, 0), "5-1 5-2");
    assert_string_equal(got(f, 1, 1), "5-1 5-2");
    successor(f, 2000);
    publish(f, 0, "chat.a", "5-1", true);
    publish(f, 0, "chat.a", "5-2", true);
    publish(f, 0, "chat.a", "5-3", true); /* read, never handed out */
    settle(f);
    assert_string_equal(got(f, 0, 0), "5-1 5-2 5-3");
    assert_string_equal(got(f, 1, 0), "5-3");
    assert_string_equal(got(f, 1, 1), "5-3");
    assert_int_equal(skipped(f, 0), 2);
    /* killed again: the next one finds the sibling's notes of all three */
    successor(f, 3000);
    publish(f, 0, "chat.a", "5-1", true);
    publish(f, 0, "chat.a", "5-3", true);
    publish(f, 0, "chat.a", "5-4", false);
    settle(f);
    assert_string_equal(got(f, 1, 0), "5-4");
    assert_string_equal(got(f, 1, 1), "5-4");
    assert_int_equal(skipped(f, 0), 4);
    assert_int_equal(skipped(f, 1), 0);
    fx_free(f);
}

/* One process whose Redis connection dropped before its XACKs reads its pending list again:
 * nothing goes twice, to its own sockets or to the sibling's. */
static void test_the_same_process_delivers_nothing_twice(void **state)
{
    (void)state;
    fx_t *f = fx_new();
    join(f, 0, 0, "chat.a");
    join(f, 1, 0, "chat.a");
    publish(f, 0, "chat.a", "7-1", false);
    settle(f);
    assert_string_equal(got(f, 0, 0), "7-1");
    assert_string_equal(got(f, 1, 0), "7-1");
    publish(f, 0, "chat.a", "7-1", true);
    publish(f, 0, "chat.a", "7-2", true);
    settle(f);
    assert_string_equal(got(f, 0, 0), "7-2");
    assert_string_equal(got(f, 1, 0), "7-2");
    assert_int_equal(skipped(f, 0), 1);
    fx_free(f);
}

/*
 * What made the "last id delivered" design lose entries: one worker number does not always hand
 * out a stream's entries in id order (an older pending entry claimed after newer ones went; a
 * stream that moved to another worker and back). An older entry never handed out goes, whatever
 * went before it; an entry another worker read and both delivered is not handed out again.
 */
static void test_an_older_entry_never_handed_out_goes(void **state)
{
    (void)state;
    fx_t *f = fx_new();
    join(f, 0, 0, "chat.a");
    join(f, 1, 0, "chat.a");
    publish(f, 0, "chat.a", "9-0", false);
    settle(f);
    /* claimed by worker 0 after 9-0 went, its process killed before delivering it */
    successor(f, 2000);
    publish(f, 0, "chat.a", "3-0", true);
    settle(f);
    assert_string_equal(got(f, 0, 0), "9-0 3-0");
    assert_string_equal(got(f, 1, 0), "9-0 3-0");
    /* the stream moves to worker 1, which reads 10-0, and back to worker 0, which finds 9-5
     * (read before the move, never handed out) in its pending list */
    publish(f, 1, "chat.a", "10-0", false);
    settle(f);
    publish(f, 0, "chat.a", "9-5", true);
    settle(f);
    assert_string_equal(got(f, 0, 0), "10-0 9-5");
    assert_string_equal(got(f, 1, 0), "10-0 9-5");
    assert_int_equal(skipped(f, 0), 0);
    /* worker 1's 10-0 claimed by worker 0: both processes noted it, so it goes nowhere again */
    publish(f, 0, "chat.a", "10-0", true);
    settle(f);
    assert_string_equal(got(f, 0, 0), "");
    assert_string_equal(got(f, 1, 0), "");
    assert_int_equal(skipped(f, 0), 1);
    fx_free(f);
}

/* Only the sibling's own note counts: an entry it has not taken from its queue yet (or lost
 * there) is handed over again, a duplicate at worst. */
static void test_an_entry_a_sibling_has_not_taken_goes_again(void **state)
{
    (void)state;
    fx_t *f = fx_new();
    join(f, 1, 0, "chat.a");
    publish(f, 0, "chat.a", "4-0", false); /* batched, not sent yet */
    successor(f, 2000);
    publish(f, 0, "chat.a", "4-0", true);
    settle(f);
    assert_string_equal(got(f, 1, 0), "4-0 4-0");
    assert_int_equal(skipped(f, 0), 0);
    fx_free(f);
}

/* A sibling whose process changed since (another pid in its block) has new sockets: the entry
 * goes to it again. */
static void test_a_restarted_sibling_gets_it_again(void **state)
{
    (void)state;
    fx_t *f = fx_new();
    join(f, 1, 0, "chat.a");
    publish(f, 0, "chat.a", "8-0", false);
    settle(f);
    assert_string_equal(got(f, 1, 0), "8-0");
    STATS_SET(((stats_worker_t *)shm_region_slot_stats(f->region, 1))->pid, 424242);
    successor(f, 2000);
    publish(f, 0, "chat.a", "8-0", true);
    settle(f);
    assert_string_equal(got(f, 1, 0), "8-0");
    assert_int_equal(skipped(f, 0), 0);
    STATS_SET(((stats_worker_t *)shm_region_slot_stats(f->region, 1))->pid, getpid());
    fx_free(f);
}

/* A sibling with nobody in the room notes nothing (the hot path stays cheap there): the entry
 * read again goes to it again, and reaches nobody that had it. */
static void test_a_sibling_with_nobody_in_the_room_gets_it_again(void **state)
{
    (void)state;
    fx_t *f = fx_new();
    join(f, 0, 0, "chat.a");
    publish(f, 0, "chat.a", "6-0", false);
    settle(f);
    successor(f, 2000);
    publish(f, 0, "chat.a", "6-0", true);
    settle(f);
    assert_int_equal(STATS_GET(f->w[1].stats.sibling_in), 2);
    join(f, 1, 0, "chat.a");
    publish(f, 0, "chat.a", "6-1", false);
    settle(f);
    assert_string_equal(got(f, 1, 0), "6-1");
    assert_int_equal(skipped(f, 0), 0);
    fx_free(f);
}

/* A stream deleted and written again with the same explicit ids: the same id with other bytes
 * is another entry, and goes. */
static void test_the_same_id_with_other_bytes_goes(void **state)
{
    (void)state;
    fx_t *f = fx_new();
    join(f, 0, 0, "chat.a");
    join(f, 1, 0, "chat.a");
    publish_with(f, 0, "chat.a", "1-1", false, tick);
    settle(f);
    assert_string_equal(got(f, 0, 0), "1-1");
    assert_string_equal(got(f, 1, 0), "1-1");
    publish_with(f, 0, "chat.a", "1-1", true, tock);
    settle(f);
    assert_string_equal(got(f, 0, 0), "1-1");
    assert_string_equal(got(f, 1, 0), "1-1");
    /* and another stream's 1-1 is another entry too */
    join(f, 1, 1, "chat.b");
    publish(f, 0, "chat.b", "1-1", true);
    settle(f);
    assert_string_equal(got(f, 1, 1), "1-1");
    assert_int_equal(skipped(f, 0), 0);
    fx_free(f);
}

/* With no live sibling the local sockets are everyone. */
static void test_alone(void **state)
{
    (void)state;
    fx_t *f = fx_new();
    STATS_SET(((stats_worker_t *)shm_region_slot_stats(f->region, 1))->pid, 0);
    join(f, 0, 0, "chat.a");
    publish(f, 0, "chat.a", "2-0", false);
    publish(f, 0, "chat.a", "2-0", true);
    assert_string_equal(got(f, 0, 0), "2-0");
    assert_int_equal(skipped(f, 0), 1);
    successor(f, 2000); /* a successor's sockets are new: they get it */
    publish(f, 0, "chat.a", "2-0", true);
    assert_string_equal(got(f, 0, 0), "2-0");
    assert_int_equal(skipped(f, 0), 1);
    STATS_SET(((stats_worker_t *)shm_region_slot_stats(f->region, 1))->pid, getpid());
    fx_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_successor_does_not_hand_over_again),
        cmocka_unit_test(test_the_same_process_delivers_nothing_twice),
        cmocka_unit_test(test_an_older_entry_never_handed_out_goes),
        cmocka_unit_test(test_an_entry_a_sibling_has_not_taken_goes_again),
        cmocka_unit_test(test_a_restarted_sibling_gets_it_again),
        cmocka_unit_test(test_a_sibling_with_nobody_in_the_room_gets_it_again),
        cmocka_unit_test(test_the_same_id_with_other_bytes_goes),
        cmocka_unit_test(test_alone),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
