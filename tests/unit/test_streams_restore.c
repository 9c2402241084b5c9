/*
 * Unit tests for worker/cluster/streams_restore (connection state recovery in streams mode) through
 * its seams: a scripted Redis (tests/unit/redis_fake.c) that keeps what SET stores for GETDEL, the
 * real streams adapter reading from it (its main stream's last id decides how far a restore
 * reads), and the real sio over Engine.IO sessions with a fake transport that records what each
 * connection is sent. Covered: the pid in the CONNECT reply, a lost session stored as the adapter
 * stores it, a restore that replays what the session's rooms missed (offset appended) before its
 * CONNECT reply under the old id, and a restore that finds no session or no offset (a new one).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/proto/streams_msg.h"
#include "common/redis/redis_topology.h"
#include "tests/unit/fake_host.h"
#include "tests/unit/fake_transport.h"
#include "tests/unit/redis_fake.h"
#include "worker/cluster/streams_adapter.h"
#include "worker/cluster/streams_restore.h"
#include "worker/sio/seed_events.h"
#include "worker/sio/sio.h"

#define NCONN 4

static char conn_tokens[NCONN];
#define C(i) ((conn_t *)&conn_tokens[i])

typedef struct fx {
    uv_loop_t loop;
    fake_t *srv;
    cfg_t cfg;
    stats_worker_t stats;
    host_fake_t host;
    redis_topology_t *topo;
    streams_adapter_t *sa;
    fake_conn_t *reader; /* the adapter's connection blocked in XREAD */
    int xreads;
    /* what SET stored (one key), handed out once by GETDEL */
    char key[64];
    char *value;
    char px[16];
    int sets, getdels;
    const char *check_reply; /* XRANGE id id: whether the client's offset is in the stream */
    const char *range_reply; /* XRANGE (from to COUNT 1000: what the session missed */
    char range[64];          /* that XRANGE's "(from to" */
    /* Engine.IO and Socket.IO */
    timerq_clock_t clock;
    buf_t log[NCONN];
    fake_tr_t ft;
    eio_session_t *sess[NCONN];
    eio_t *e;
    sio_t *sio;
    seed_events_t *seed;
    http_req_t *req;
    streams_restore_t *restore;
    int answering; /* the connection `answered` looks at */
    int closed;
} fx_t;

static void reply_bulk(fake_conn_t *fc, const char *s)
{
    char head[32];
    snprintf(head, sizeof(head), "$%zu\r\n", strlen(s));
    fake_send(fc, head);
    fake_send(fc, s);
    fake_send(fc, "\r\n");
}

static void on_cmd(fake_conn_t *fc, int argc, char **argv, size_t *lens, void *arg)
{
    (void)lens;
    fx_t *f = arg;
    if (fake_handshake(fc, argc, argv))
        return;
    if (strcasecmp(argv[0], "XREVRANGE") == 0) {
        fake_send(fc, "*1\r\n*2\r\n$3\r\n7-1\r\n*0\r\n"); /* the stream ends at 7-1 */
    } else if (strcasecmp(argv[0], "XREAD") == 0) {
        f->xreads++;
        f->reader = fc;
    } else if (strcasecmp(argv[0], "SUBSCRIBE") == 0) {
        fake_sub_confirm(fc, "subscribe", argv[1], 1);
    } else if (argc == 3 && strcasecmp(argv[0], "CLIENT") == 0 &&
               strcasecmp(argv[1], "UNBLOCK") == 0) {
        fake_send(fc, ":1\r\n");
        if (f->reader)
            fake_send(f->reader, "*-1\r\n");
    } else if (argc == 5 && strcasecmp(argv[0], "SET") == 0) {
        f->sets++;
        snprintf(f->key, sizeof(f->key), "%s", argv[1]);
        free(f->value);
        f->value = strdup(argv[2]);
        snprintf(f->px, sizeof(f->px), "%s %s", argv[3], argv[4]);
        fake_send(fc, "+OK\r\n");
    } else if (argc == 2 && strcasecmp(argv[0], "GETDEL") == 0) {
        f->getdels++;
        if (f->value && strcmp(argv[1], f->key) == 0) {
            reply_bulk(fc, f->value);
            free(f->value);
            f->value = NULL;
        } else {
            fake_send(fc, "$-1\r\n");
        }
    } else if (argc == 4 && strcasecmp(argv[0], "XRANGE") == 0) {
        fake_send(fc, f->check_reply);
    } else if (argc == 6 && strcasecmp(argv[0], "XRANGE") == 0) {
        snprintf(f->range, sizeof(f->range), "%s %s", argv[2], argv[3]);
        fake_send(fc, f->range_reply);
    } else {
        fake_send(fc, "-ERR unknown command\r\n");
    }
}

static const char *env_get(const char *name, void *arg)
{
    (void)arg;
    if (strcmp(name, "SOCKETIO_REDIS_ADAPTER") == 0)
        return "streams";
    if (strcmp(name, "CONNECTION_RECOVERY") == 0)
        return "true";
    return NULL;
}

static uint64_t clk_now(void *arg)
{
    (void)arg;
    return 1000;
}

static const adapter_str_t nsps[] = {{"/", 1}};

static bool reading(void *arg)
{
    fx_t *f = arg;
    return f->xreads > 0 && streams_adapter_connected(f->sa);
}

#define WAIT(fn) assert_true(fake_run_until(&f->loop, fn, f, FAKE_WAIT_MS))

static int setup(void **state)
{
    fx_t *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    f->srv = fake_new(&f->loop, on_cmd, f);
    f->check_reply = "*1\r\n*2\r\n$3\r\n7-1\r\n*0\r\n";
    f->range_reply = "*0\r\n";
    buf_t err;
    buf_init(&err);
    assert_int_equal(config_load(&f->cfg, env_get, NULL, &err), 0);
    buf_free(&err);
    f->topo = fake_topology(f->srv, &f->loop, 2000);
    adapter_host_t host = fake_host(&f->host, nsps, 1);
    assert_int_equal(streams_adapter_new(&f->sa, f->topo, &f->cfg, &host, &f->stats), 0);
    for (int i = 0; i < NCONN; i++)
        buf_init(&f->log[i]);
    f->clock = (timerq_clock_t){f, clk_now, ft_clock_wake, ft_clock_cancel};
    f->ft = (fake_tr_t){conn_tokens, f->log, NCONN, f->sess};
    eio_transport_t tr = fake_transport(&f->ft);
    eio_config_t ec = fake_eio_config();
    assert_int_equal(eio_new(&f->e, &f->loop, &f->clock, &ec, &tr, &f->stats), 0);
    assert_int_equal(sio_new(&f->sio, &f->loop, &f->cfg, false, &f->stats), 0);
    f->seed = seed_events_new(f->sio);
    f->restore = streams_restore_new(&f->cfg, f->topo, f->sio, f->sa, &f->stats);
    f->req = fake_ws_request();
    assert_non_null(f->req);
    WAIT(reading);
    *state = f;
    return 0;
}

static void on_closed(void *arg)
{
    ((fx_t *)arg)->closed++;
}

static int want_closed;
static bool closed_enough(void *arg)
{
    return ((fx_t *)arg)->closed >= want_closed;
}

static int teardown(void **state)
{
    fx_t *f = *state;
    ft_close_all(&f->ft, f->e, NCONN);
    streams_restore_close(f->restore, on_closed, f);
    want_closed = 1;
    WAIT(closed_enough);
    eio_free(f->e);
    sio_free(f->sio);
    seed_events_free(f->seed);
    http_req_free(f->req);
    streams_adapter_close(f->sa, on_closed, f);
    want_closed = 2;
    WAIT(closed_enough);
    redis_topology_close(f->topo, on_closed, f);
    want_closed = 3;
    WAIT(closed_enough);
    fake_free(f->srv);
    assert_int_equal(fake_loop_close(&f->loop), 0);
    for (int i = 0; i < NCONN; i++)
        buf_free(&f->log[i]);
    buf_free(&f->host.last_text);
    buf_free(&f->host.last_frames);
    free(f->value);
    free(f);
    return 0;
}

/* ---- helpers ---- */

/* The client on c sends a Socket.IO packet (an Engine.IO message: `4` + text). */
static void say(fx_t *f, int c, const char *text)
{
    char msg[512];
    int n = snprintf(msg, sizeof(msg), "4%s", text);
    eio_ws_text(C(c), f->sess[c], msg, (size_t)n);
}

static void open_ws(fx_t *f, int c)
{
    assert_int_equal(ft_open_ws(&f->ft, f->e, sio_handlers(f->sio), f->req, c), 0);
    buf_reset(&f->log[c]); /* the Engine.IO handshake */
}

/* What c was sent since the last call, one line per message. */
static const char *sent(fx_t *f, int c)
{
    static char out[4096];
    snprintf(out, sizeof(out), "%s", f->log[c].data ? f->log[c].data : "");
    buf_reset(&f->log[c]);
    return out;
}

/* The value of "name":"..." (20 characters) in text. */
static void member_id(const char *text, const char *name, char id[SIO_ID_LEN + 1])
{
    char key[16];
    snprintf(key, sizeof(key), "\"%s\":\"", name);
    const char *p = strstr(text, key);
    assert_non_null(p);
    memcpy(id, p + strlen(key), SIO_ID_LEN);
    id[SIO_ID_LEN] = '\0';
    assert_true(sio_id_ok(id, SIO_ID_LEN));
}

static int want_sets;
static bool stored(void *arg)
{
    return ((fx_t *)arg)->sets >= want_sets;
}

static bool answered(void *arg)
{
    fx_t *f = arg;
    return f->log[f->answering].len > 0;
}

/* Connects c to "/" and joins room; its sid and pid. */
static void connect_and_join(fx_t *f, int c, const char *room, char sid[SIO_ID_LEN + 1],
                             char pid[SIO_ID_LEN + 1])
{
    open_ws(f, c);
    say(f, c, "0");
    const char *reply = sent(f, c);
    member_id(reply, "sid", sid);
    member_id(reply, "pid", pid);
    char join[128];
    snprintf(join, sizeof(join), "2[\"join-room\",\"%s\"]", room);
    say(f, c, join);
    sent(f, c);
}

/* c's transport is lost: the session is stored. */
static void lose(fx_t *f, int c)
{
    want_sets = f->sets + 1;
    eio_conn_closed(C(c), f->sess[c]);
    f->sess[c] = NULL;
    WAIT(stored);
}

/* One adapter entry, as test_streams_adapter writes them: a broadcast of "/" to rooms. */
static void entry(buf_t *b, const char *id, const char *rooms)
{
    char data[256];
    snprintf(data, sizeof(data),
             "{\"packet\":{\"type\":2,\"data\":[\"ev\",\"%s\"]},\"opts\":{\"rooms\":[%s],"
             "\"except\":[],\"flags\":{}}}",
             id, rooms);
    buf_printf(b, "*2\r\n$%zu\r\n%s\r\n*8\r\n$3\r\nuid\r\n$5\r\nnode1\r\n$3\r\nnsp\r\n$1\r\n/\r\n",
               strlen(id), id);
    buf_printf(b, "$4\r\ntype\r\n$1\r\n3\r\n$4\r\ndata\r\n$%zu\r\n%s\r\n", strlen(data), data);
}

static int want_xreads;
static bool read_again(void *arg)
{
    return ((fx_t *)arg)->xreads >= want_xreads;
}

/* The adapter's reader gets entries (n of them, RESP): its last id moves to the last one. */
static void reader_gets(fx_t *f, const char *entries, int n)
{
    buf_t b;
    buf_init(&b);
    buf_printf(&b, "*1\r\n*2\r\n$9\r\nsocket.io\r\n*%d\r\n%s", n, entries);
    want_xreads = f->xreads + 1;
    fake_send(f->reader, b.data);
    WAIT(read_again);
    buf_free(&b);
}

/* c connects to "/" with {pid, offset}: what it was sent once answered (the CONNECT reply last). */
static const char *come_back(fx_t *f, int c, const char *pid, const char *offset)
{
    char hello[128];
    snprintf(hello, sizeof(hello), "0{\"pid\":\"%s\",\"offset\":\"%s\"}", pid, offset);
    open_ws(f, c);
    say(f, c, hello);
    f->answering = c;
    WAIT(answered);
    return sent(f, c);
}

/* reply is the CONNECT reply of a new session: neither the old sid nor the old pid. */
static void assert_new_session(const char *reply, const char *sid, const char *pid)
{
    assert_int_equal(strncmp(reply, "40{\"sid\":\"", 10), 0);
    char sid2[SIO_ID_LEN + 1], pid2[SIO_ID_LEN + 1];
    member_id(reply, "sid", sid2);
    member_id(reply, "pid", pid2);
    assert_string_not_equal(sid2, sid);
    assert_string_not_equal(pid2, pid);
}

/* ---- tests ---- */

/* The main CONNECT reply carries a pid; a lost session is stored as the adapter stores it:
 * SET sio:session:<pid> <base64 msgpack {sid, pid, rooms, data}> PX <window>, its own id first
 * among its rooms. */
static void test_lost_session_is_stored(void **state)
{
    fx_t *f = *state;
    char sid[SIO_ID_LEN + 1], pid[SIO_ID_LEN + 1];
    connect_and_join(f, 0, "r1", sid, pid);
    assert_string_not_equal(sid, pid);
    lose(f, 0);
    char key[64];
    snprintf(key, sizeof(key), "sio:session:%s", pid);
    assert_string_equal(f->key, key);
    char px[16];
    snprintf(px, sizeof(px), "PX %d", f->cfg.recovery_window_ms);
    assert_string_equal(f->px, px);
    buf_t bin;
    buf_init(&bin);
    streams_session_t s;
    assert_int_equal(streams_msg_decode_session(f->value, strlen(f->value), &bin, &s), 0);
    assert_int_equal(s.sid.len, SIO_ID_LEN);
    assert_memory_equal(s.sid.p, sid, SIO_ID_LEN);
    assert_memory_equal(s.pid.p, pid, SIO_ID_LEN);
    assert_int_equal(s.nrooms, 2);
    buf_free(&bin);
}

/* A CONNECT with the stored pid and an offset still in the stream takes the session back: what
 * its rooms missed up to where the reader is (read from after the offset) comes first, offset
 * appended, then the CONNECT reply under the old id and pid; a broadcast to another room is not
 * replayed. The session is taken (GETDEL): a second try gets a new one. */
static void test_restore_replays_what_was_missed(void **state)
{
    fx_t *f = *state;
    char sid[SIO_ID_LEN + 1], pid[SIO_ID_LEN + 1];
    connect_and_join(f, 0, "r1", sid, pid);
    lose(f, 0);
    buf_t b;
    buf_init(&b);
    entry(&b, "8-0", "\"r1\"");
    entry(&b, "8-1", "\"r2\"");
    entry(&b, "8-2", "");
    reader_gets(f, b.data, 3);
    assert_string_equal(streams_adapter_main_last(f->sa), "8-2");
    buf_t range;
    buf_init(&range);
    buf_printf(&range, "*3\r\n%s", b.data); /* XRANGE (7-1 8-2 finds the same three */
    f->range_reply = range.data;
    const char *got = come_back(f, 1, pid, "7-1");
    assert_string_equal(f->range, "(7-1 8-2");
    char want[512];
    snprintf(want, sizeof(want),
             "42[\"ev\",\"8-0\",\"8-0\"]\n42[\"ev\",\"8-2\",\"8-2\"]\n40{\"sid\":\"%s\",\"pid\":\"%"
             "s\"}\n",
             sid, pid);
    assert_string_equal(got, want);
    assert_int_equal(f->getdels, 1);
    /* the session was taken: the same pid again is a new session */
    assert_new_session(come_back(f, 2, pid, "7-1"), sid, pid);
    assert_int_equal(f->getdels, 2);
    f->range_reply = "*0\r\n";
    buf_free(&range);
    buf_free(&b);
}

/* An offset no longer in the stream (trimmed) gets a new session, and nothing is replayed. */
static void test_offset_gone_is_a_new_session(void **state)
{
    fx_t *f = *state;
    char sid[SIO_ID_LEN + 1], pid[SIO_ID_LEN + 1];
    connect_and_join(f, 0, "r1", sid, pid);
    lose(f, 0);
    f->check_reply = "*0\r\n";
    assert_new_session(come_back(f, 1, pid, "7-1"), sid, pid);
    assert_int_equal(f->getdels, 1);
    assert_int_equal(f->range[0], '\0'); /* no replay read */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_lost_session_is_stored, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restore_replays_what_was_missed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_offset_gone_is_a_new_session, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
