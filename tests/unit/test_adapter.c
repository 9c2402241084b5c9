/*
 * Unit tests for worker/adapter against a fake host: what each received message makes the host
 * do (deliver which packet to which target, join, leave, disconnect), own-uid and namespace
 * filtering, malformed messages, and client acks of a broadcast with acks. Redis is unreachable
 * on purpose (port 1): responses cannot be sent and must not matter to the host side. The relay's
 * subscription state is tested against a scripted Redis (tests/unit/redis_fake.c).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/buf.h"
#include "common/config.h"
#include "common/log.h"
#include "common/mpack.h"
#include "tests/unit/fake_host.h"
#include "tests/unit/redis_fake.h"
#include "worker/cluster/adapter.h"
#include "worker/cluster/relay_cut.h"

typedef struct env {
    uv_loop_t loop;
    cfg_t cfg;
    stats_worker_t stats;
    host_fake_t fake;
    redis_topology_t *topo;
    adapter_t *a;
    fake_t *srv; /* the scripted Redis, or NULL (nothing listens) */
} env_t;

static const char *getenv_fake(const char *name, void *arg)
{
    if (strcmp(name, "REDIS_PORT") == 0)
        return arg; /* by default "1": nothing listens there, connects fail at once */
    return NULL;
}

static void closed(void *arg)
{
    *(bool *)arg = true;
}

static const adapter_str_t nsps[] = {{"/", 1}, {"/admin", 6}};

static void on_redis_cmd(fake_conn_t *fc, int argc, char **argv, size_t *lens, void *arg);

static env_t *start_on(adapter_mode_t mode, size_t nnsp, bool scripted)
{
    env_t *e = calloc(1, sizeof(*e));
    assert_non_null(e);
    assert_int_equal(uv_loop_init(&e->loop), 0);
    char port[16] = "1";
    if (scripted) {
        e->srv = fake_new(&e->loop, on_redis_cmd, e);
        snprintf(port, sizeof(port), "%d", fake_port(e->srv));
    }
    buf_t err;
    buf_init(&err);
    assert_int_equal(config_load(&e->cfg, getenv_fake, port, &err), 0);
    buf_free(&err);
    adapter_host_t host = fake_host(&e->fake, nsps, nnsp);
    e->fake.each_sockets = 1;
    redis_topology_opts_t o;
    redis_topology_opts_from_cfg(&o, &e->cfg);
    buf_init(&err);
    assert_int_equal(redis_topology_new(&e->topo, &e->loop, &o, &err), 0);
    buf_free(&err);
    assert_int_equal(adapter_new(&e->a, e->topo, &e->cfg, mode, "socket.io", &host, &e->stats), 0);
    return e;
}

static env_t *start_nsp(adapter_mode_t mode, size_t nnsp)
{
    return start_on(mode, nnsp, false);
}

static env_t *start(adapter_mode_t mode)
{
    return start_nsp(mode, 0); /* no namespaces named: "/" only */
}

static void finish(env_t *e)
{
    bool done = false;
    adapter_close(e->a, closed, &done);
    for (int i = 0; i < 1000 && !done; i++)
        uv_run(&e->loop, UV_RUN_ONCE);
    assert_true(done);
    done = false;
    redis_topology_close(e->topo, closed, &done);
    for (int i = 0; i < 1000 && !done; i++)
        uv_run(&e->loop, UV_RUN_ONCE);
    assert_true(done);
    if (e->srv)
        fake_free(e->srv);
    assert_int_equal(fake_loop_close(&e->loop), 0);
    buf_free(&e->fake.last_text);
    buf_free(&e->fake.last_frames);
    free(e);
}

static void rx(env_t *e, const char *chan, const void *msg, size_t len)
{
    adapter_receive(e->a, chan, strlen(chan), msg, len);
}

static void rx_str(env_t *e, const char *chan, const char *msg)
{
    rx(e, chan, msg, strlen(msg));
}

/* msgpack [uid, {type:2, data, nsp}, {rooms:[room], except:[], flags:{}}] */
static void classic_msg(buf_t *b, const char *uid, const char *nsp, const char *room)
{
    adapter_str_t r = {room, strlen(room)};
    assert_int_equal(
        adapter_msg_encode_broadcast(b, uid, strlen(uid), nsp, strlen(nsp), "[\"ev\",1]", 8, &r, 1),
        0);
}

static void test_classic_broadcasts(void **state)
{
    (void)state;
    env_t *e = start(ADAPTER_MODE_CLASSIC);
    buf_t b;
    buf_init(&b);
    classic_msg(&b, "peer01", "/", "here");
    rx(e, "socket.io#/#here#", b.data, b.len);
    assert_int_equal(e->fake.broadcasts, 1);
    assert_string_equal(e->fake.last_text.data, "42[\"ev\",1]");
    assert_string_equal(e->fake.room0, "here");
    /* a room nobody holds here: filtered by channel before decoding */
    rx(e, "socket.io#/#elsewhere#", b.data, b.len);
    /* own echo */
    buf_reset(&b);
    classic_msg(&b, adapter_uid(e->a), "/", "here");
    rx(e, "socket.io#/#here#", b.data, b.len);
    /* another namespace, by packet and by channel */
    buf_reset(&b);
    classic_msg(&b, "peer01", "/admin", "here");
    rx(e, "socket.io#/#", b.data, b.len);
    rx(e, "socket.io#/admin#here#", b.data, b.len);
    /* malformed */
    rx(e, "socket.io#/#", "\x93\xa1x", 3);
    rx_str(e, "socket.io#/#", "{\"type\":3}");
    assert_int_equal(e->fake.broadcasts, 1);
    buf_free(&b);
    finish(e);
}

static void test_classic_requests(void **state)
{
    (void)state;
    env_t *e = start(ADAPTER_MODE_CLASSIC);
    e->fake.each_sockets = 2;
    rx_str(e, "socket.io-request#/#",
           "{\"uid\":\"fY_sjB\",\"type\":2,\"opts\":{\"rooms\":[\"here\"],\"except\":[]},"
           "\"rooms\":[\"joined-room\"]}");
    assert_int_equal(e->fake.joins, 2);
    assert_string_equal(e->fake.joined, "joined-room");
    rx_str(e, "socket.io-request#/#",
           "{\"type\":3,\"opts\":{\"rooms\":[\"here\"],\"except\":[]},\"rooms\":[\"a\",\"b\"]}");
    assert_int_equal(e->fake.leaves, 4);
    rx_str(e, "socket.io-request#/#",
           "{\"uid\":\"u\",\"type\":4,\"opts\":{\"rooms\":[],\"except\":[]},\"close\":true}");
    assert_int_equal(e->fake.disconnects, 2);
    assert_true(e->fake.closed);
    /* requests that only need answers do not touch sockets */
    rx_str(e, "socket.io-request#/#", "{\"uid\":\"u\",\"requestId\":\"r\",\"type\":1}");
    rx_str(e, "socket.io-request#/#",
           "{\"uid\":\"u\",\"requestId\":\"r\",\"type\":5,\"opts\":{\"rooms\":[]}}");
    rx_str(e, "socket.io-request#/#",
           "{\"uid\":\"u\",\"requestId\":\"r\",\"type\":6,\"data\":[\"x\"]}");
    /* malformed requests are dropped */
    rx_str(e, "socket.io-request#/#", "{\"type\":2,\"opts\":7}");
    rx_str(e, "socket.io-request#/#", "\xc1");
    assert_int_equal(e->fake.joins, 2);
    assert_int_equal(e->fake.broadcasts, 0);
    finish(e);
}

static void test_broadcast_with_acks(void **state)
{
    (void)state;
    env_t *e = start(ADAPTER_MODE_SHARDED);
    e->fake.each_sockets = 2;
    rx_str(
        e, "socket.io#/#",
        "{\"type\":3,\"data\":{\"packet\":{\"type\":2,\"data\":[\"ack-req\",\"q\"]},\"requestId\":"
        "\"c9e9\",\"opts\":{\"rooms\":[\"here\"],\"except\":[],\"flags\":{\"timeout\":1000}}},"
        "\"uid\":\"8ae8271815577a7e\",\"nsp\":\"/\"}");
    assert_int_equal(e->fake.broadcasts, 1);
    assert_string_equal(e->fake.last_text.data, "421000000000[\"ack-req\",\"q\"]");
    const char *a0 = fake_ids[0], *a1 = fake_ids[1], *stranger = fake_ids[2];
    uint64_t id = ADAPTER_ACK_ID_BASE;
    /* delivered to sockets A and B: a socket it did not reach cannot answer, not even first */
    assert_int_equal(adapter_client_ack(e->a, stranger, id, "[\"forged\"]", 10),
                     ADAPTER_ACK_DROPPED);
    assert_int_equal(adapter_client_ack(e->a, NULL, id, "[]", 2), ADAPTER_ACK_DROPPED);
    assert_int_equal(adapter_client_ack(e->a, "AAAA", id, "[]", 2), ADAPTER_ACK_DROPPED);
    /* each recipient answers once; a repeat is dropped and does not use up another's turn */
    assert_int_equal(adapter_client_ack(e->a, a1, id, "[\"client-ack:q\"]", 16),
                     ADAPTER_ACK_FORWARDED);
    assert_int_equal(adapter_client_ack(e->a, a1, id, "[\"again\"]", 9), ADAPTER_ACK_DROPPED);
    assert_int_equal(adapter_client_ack(e->a, a0, id, "[]", 2), ADAPTER_ACK_FORWARDED);
    assert_int_equal(adapter_client_ack(e->a, a0, id, "[1]", 3), ADAPTER_ACK_DROPPED);
    /* ids below the base are the host's own; unknown ids above the next one are not ours */
    assert_int_equal(adapter_client_ack(e->a, a0, 7, "[]", 2), ADAPTER_ACK_HOST);
    assert_int_equal(adapter_client_ack(e->a, a0, id + 5, "[]", 2), ADAPTER_ACK_HOST);
    assert_int_equal(adapter_client_ack(NULL, a0, id, "[]", 2), ADAPTER_ACK_HOST);
    finish(e);
}

static void test_sharded_messages(void **state)
{
    (void)state;
    env_t *e = start(ADAPTER_MODE_SHARDED);
    const char *bcast = "{\"type\":3,\"data\":{\"packet\":{\"type\":2,\"data\":[\"ev\",{\"a\":1}]},"
                        "\"opts\":{\"rooms\":[\"here\"],\"except\":[\"x\"],\"flags\":{\"volatile\":"
                        "true}}},\"uid\":\"8ae8271815577a7e\",\"nsp\":\"/\"}";
    rx_str(e, "socket.io#/#here#", bcast);
    assert_int_equal(e->fake.broadcasts, 1);
    assert_string_equal(e->fake.last_text.data, "42[\"ev\",{\"a\":1}]");
    assert_int_equal(e->fake.nexcept, 1);
    assert_true(e->fake.skip_busy);
    /* a room channel we do not hold (just left) */
    rx_str(e, "socket.io#/#gone#", bcast);
    /* own uid, other namespace */
    buf_t b;
    buf_init(&b);
    buf_printf(
        &b,
        "{\"type\":3,\"data\":{\"packet\":{\"type\":2,\"data\":[\"ev\"]},\"opts\":{\"rooms\":"
        "[]}},\"uid\":\"%s\",\"nsp\":\"/\"}",
        adapter_uid(e->a));
    rx(e, "socket.io#/#", b.data, b.len);
    rx_str(
        e, "socket.io#/#",
        "{\"type\":3,\"data\":{\"packet\":{\"type\":2,\"data\":[\"ev\"]},\"opts\":{\"rooms\":[]}},"
        "\"uid\":\"x\",\"nsp\":\"/admin\"}");
    /* binary and malformed */
    rx(e, "socket.io#/#", "\x84\xa4type\x03", 7);
    rx_str(e, "socket.io#/#", "{\"type\":3,\"data\":{\"opts\":[]},\"nsp\":\"/\"}");
    assert_int_equal(e->fake.broadcasts, 1);
    rx_str(e, "socket.io#/#",
           "{\"type\":4,\"data\":{\"opts\":{\"rooms\":[\"here\"],\"except\":[],\"flags\":{}},"
           "\"rooms\":[\"j\"]},\"uid\":\"x\",\"nsp\":\"/\"}");
    assert_int_equal(e->fake.joins, 1);
    assert_string_equal(e->fake.joined, "j");
    rx_str(
        e, "socket.io#/#",
        "{\"type\":6,\"data\":{\"opts\":{\"rooms\":[],\"except\":[],\"flags\":{}},\"close\":false},"
        "\"uid\":\"x\",\"nsp\":\"/\"}");
    assert_int_equal(e->fake.disconnects, 1);
    assert_false(e->fake.closed);
    /* room hooks while Redis is away: nothing to send, nothing breaks */
    adapter_room_created(e->a, "new-room", 8);
    adapter_room_deleted(e->a, "new-room", 8);
    adapter_room_created(NULL, "x", 1);
    assert_false(adapter_connected(e->a));
    buf_free(&b);
    finish(e);
}

static bool sibling_is_sib01(const char *uid, size_t len, void *arg)
{
    (*(int *)arg)++;
    return len == 5 && memcmp(uid, "sib01", 5) == 0;
}

/* Broadcasts of a sibling worker's uid are dropped (they came over local IPC); its requests and
 * everybody else's broadcasts are not. */
static void test_sibling_filter(void **state)
{
    (void)state;
    for (int sharded = 0; sharded < 2; sharded++) {
        env_t *e = start(sharded ? ADAPTER_MODE_SHARDED : ADAPTER_MODE_CLASSIC);
        int asked = 0;
        adapter_set_sibling_filter(e->a, sibling_is_sib01, &asked);
        buf_t b;
        buf_init(&b);
        for (int k = 0; k < 2; k++) {
            const char *uid = k ? "peer01" : "sib01";
            buf_reset(&b);
            if (sharded)
                buf_printf(&b,
                           "{\"type\":3,\"data\":{\"packet\":{\"type\":2,\"data\":[\"ev\",1]},"
                           "\"opts\":{\"rooms\":[\"here\"],\"except\":[]}},\"uid\":\"%s\","
                           "\"nsp\":\"/\"}",
                           uid);
            else
                classic_msg(&b, uid, "/", "here");
            rx(e, "socket.io#/#here#", b.data, b.len);
            assert_int_equal(e->fake.broadcasts, k);
        }
        /* sib01's on arrival (its first bytes); peer01's on arrival and once decoded */
        assert_int_equal(asked, 3);
        if (sharded) { /* a sibling's request (socketsJoin) still applies */
            rx_str(e, "socket.io#/#",
                   "{\"type\":4,\"data\":{\"opts\":{\"rooms\":[\"here\"],\"except\":[],"
                   "\"flags\":{}},\"rooms\":[\"j\"]},\"uid\":\"sib01\",\"nsp\":\"/\"}");
            assert_int_equal(e->fake.joins, 1);
        }
        buf_free(&b);
        finish(e);
    }
}

typedef struct relay_seen {
    int calls;
    bool apply; /* what the relay answers: this worker is the holder */
    char chan[64];
    size_t msg_len;
    unsigned nsp;
    int marks, mine; /* handover markers seen, of them this adapter's own */
    unsigned mark_nsp;
    char mark_uid[17];
    char mark_chan[64]; /* sharded: the channel a marker came on */
    int chan_events[4]; /* sharded: channel events, by relay_cut_chan_t */
} relay_seen_t;

static bool relay_fake(unsigned nsp, const char *chan, size_t chan_len, const uint8_t *msg,
                       size_t msg_len, void *arg)
{
    (void)msg;
    relay_seen_t *r = arg;
    r->calls++;
    r->nsp = nsp;
    snprintf(r->chan, sizeof(r->chan), "%.*s", (int)chan_len, chan);
    r->msg_len = msg_len;
    return r->apply;
}

/* One subscriber per server: another server's broadcast goes to the relay first, as received;
 * it is applied here only when the relay says this worker holds the subscription. This server's
 * own echoes and the requests never reach the relay; what a sibling relays is applied as is. */
static void test_relay(void **state)
{
    (void)state;
    env_t *e = start(ADAPTER_MODE_CLASSIC);
    relay_seen_t r = {0};
    adapter_set_relay(e->a, relay_fake, NULL, NULL, &r);
    assert_false(adapter_relay_up(e->a)); /* not wanted yet, and no Redis here */
    adapter_relay_subscribe(e->a, true);
    assert_false(adapter_relay_up(e->a)); /* wanted, never confirmed */
    buf_t b;
    buf_init(&b);
    classic_msg(&b, "peer01", "/", "here");
    rx(e, "socket.io#/#here#", b.data, b.len); /* another worker relays now */
    assert_int_equal(r.calls, 1);
    assert_string_equal(r.chan, "socket.io#/#here#");
    assert_int_equal(r.msg_len, b.len);
    assert_int_equal(e->fake.broadcasts, 0);
    r.apply = true; /* this worker is the holder: relayed and applied */
    rx(e, "socket.io#/#here#", b.data, b.len);
    assert_int_equal(r.calls, 2);
    assert_int_equal(e->fake.broadcasts, 1);
    /* a room nobody here is in is still relayed: the siblings have rooms of their own */
    buf_reset(&b);
    classic_msg(&b, "peer01", "/", "elsewhere");
    rx(e, "socket.io#/#elsewhere#", b.data, b.len);
    assert_int_equal(r.calls, 3);
    assert_int_equal(e->fake.broadcasts, 1);
    /* this server's own echo is dropped before the relay */
    buf_reset(&b);
    classic_msg(&b, adapter_uid(e->a), "/", "here");
    rx(e, "socket.io#/#here#", b.data, b.len);
    assert_int_equal(r.calls, 3);
    /* requests are every worker's own */
    rx_str(e, "socket.io-request#/#", "{\"type\":2,\"requestId\":\"q\",\"uid\":\"peer01\"}");
    assert_int_equal(r.calls, 3);
    /* what a sibling relays is applied without going round again; requests are never relayed */
    buf_reset(&b);
    classic_msg(&b, "peer01", "/", "here");
    adapter_receive_relayed(e->a, "socket.io#/#here#", 17, (const uint8_t *)b.data, b.len);
    assert_int_equal(r.calls, 3);
    assert_int_equal(e->fake.broadcasts, 2);
    adapter_receive_relayed(e->a, "socket.io-request#/#", 20, (const uint8_t *)b.data, b.len);
    assert_int_equal(e->fake.broadcasts, 2);
    adapter_relay_subscribe(e->a, false);
    buf_free(&b);
    finish(e);
}

static const char *sharded_bcast(const char *room)
{
    static char out[256];
    snprintf(out, sizeof(out),
             "{\"type\":3,\"data\":{\"packet\":{\"type\":2,\"data\":[\"ev\"]},\"opts\":{"
             "\"rooms\":[\"%s\"],\"except\":[],\"flags\":{}}},\"uid\":\"8ae8271815577a7e\","
             "\"nsp\":\"/\"}",
             room);
    return out;
}

/* Sharded mode, one subscriber per server: what arrives on a room's channel or another
 * namespace's goes to the relay first (a room no worker here holds is still relayed: a sibling
 * holds it); the main and uid channels are every worker's own, requests are never relayed, and
 * what a sibling relays is applied as a broadcast only. */
static void test_sharded_relay(void **state)
{
    (void)state;
    env_t *e = start_nsp(ADAPTER_MODE_SHARDED, 2);
    relay_seen_t r = {0};
    adapter_set_relay(e->a, relay_fake, NULL, NULL, &r);
    rx_str(e, "socket.io#/#here#", sharded_bcast("here")); /* another worker relays now */
    assert_int_equal(r.calls, 1);
    assert_string_equal(r.chan, "socket.io#/#here#");
    assert_int_equal(e->fake.broadcasts, 0);
    r.apply = true;
    rx_str(e, "socket.io#/#here#", sharded_bcast("here"));
    assert_int_equal(r.calls, 2);
    assert_int_equal(e->fake.broadcasts, 1);
    rx_str(e, "socket.io#/#elsewhere#", sharded_bcast("elsewhere"));
    assert_int_equal(r.calls, 3);
    assert_int_equal(e->fake.broadcasts, 1);
    rx_str(e, "socket.io#/admin#",
           "{\"type\":3,\"data\":{\"packet\":{\"type\":2,\"data\":[\"ev\"]},\"opts\":{"
           "\"rooms\":[],\"except\":[],\"flags\":{}}},\"uid\":\"x\",\"nsp\":\"/admin\"}");
    assert_int_equal(r.calls, 4);
    assert_int_equal(e->fake.broadcasts, 2);
    /* every worker's own channels: applied here, never relayed */
    rx_str(e, "socket.io#/#", sharded_bcast("here"));
    assert_int_equal(r.calls, 4);
    assert_int_equal(e->fake.broadcasts, 3);
    char own[64];
    snprintf(own, sizeof(own), "socket.io#/#%s#", adapter_uid(e->a));
    rx_str(e, own, "{\"type\":2,\"data\":{\"requestId\":\"q\"},\"uid\":\"x\",\"nsp\":\"/\"}");
    assert_int_equal(r.calls, 4);
    /* a request on another namespace's channel is answered by the holder alone */
    rx_str(e, "socket.io#/admin#",
           "{\"type\":7,\"data\":{\"opts\":{\"rooms\":[]},\"requestId\":\"r\"},"
           "\"uid\":\"x\",\"nsp\":\"/admin\"}");
    assert_int_equal(r.calls, 4);
    /* this server's own echo is dropped before the relay */
    buf_t b;
    buf_init(&b);
    buf_printf(&b,
               "{\"type\":3,\"data\":{\"packet\":{\"type\":2,\"data\":[\"ev\"]},\"opts\":{"
               "\"rooms\":[\"here\"]}},\"uid\":\"%s\",\"nsp\":\"/\"}",
               adapter_uid(e->a));
    rx(e, "socket.io#/#here#", b.data, b.len);
    assert_int_equal(r.calls, 4);
    /* relayed by the holder: applied here as a broadcast, requests dropped, rooms checked */
    const char *bc = sharded_bcast("here");
    adapter_receive_relayed(e->a, "socket.io#/#here#", 17, (const uint8_t *)bc, strlen(bc));
    assert_int_equal(e->fake.broadcasts, 4);
    bc = sharded_bcast("gone");
    adapter_receive_relayed(e->a, "socket.io#/#gone#", 17, (const uint8_t *)bc, strlen(bc));
    assert_int_equal(e->fake.broadcasts, 4);
    const char *join = "{\"type\":4,\"data\":{\"opts\":{\"rooms\":[]},\"rooms\":[\"j\"]},"
                       "\"uid\":\"x\",\"nsp\":\"/admin\"}";
    adapter_receive_relayed(e->a, "socket.io#/admin#", 17, (const uint8_t *)join, strlen(join));
    assert_int_equal(e->fake.joins, 0);
    assert_int_equal(r.calls, 4);
    buf_free(&b);
    finish(e);
}

static void marked_fake(unsigned nsp, const char *chan, size_t chan_len, const char *uid,
                        size_t uid_len, bool mine, void *arg)
{
    relay_seen_t *r = arg;
    snprintf(r->mark_chan, sizeof(r->mark_chan), "%.*s", (int)chan_len, chan ? chan : "");
    r->marks++;
    r->mine += mine;
    r->mark_nsp = nsp;
    snprintf(r->mark_uid, sizeof(r->mark_uid), "%.*s", (int)uid_len, uid);
}

/* A handover marker ("<key>#<nsp>#streamio-handover:<uid>#") goes to the marker callback, this
 * adapter's own or another's, and is neither relayed nor applied; a broadcast's namespace index
 * goes to the relay. A room that only looks like a marker is an ordinary broadcast. */
static void test_relay_markers(void **state)
{
    (void)state;
    env_t *e = start_nsp(ADAPTER_MODE_CLASSIC, 2);
    relay_seen_t r = {.apply = true};
    adapter_set_relay(e->a, relay_fake, marked_fake, NULL, &r);
    char chan[96];
    snprintf(chan, sizeof(chan), "socket.io#/admin#streamio-handover:%s#", adapter_uid(e->a));
    rx_str(e, chan, "");
    assert_int_equal(r.marks, 1);
    assert_int_equal(r.mine, 1);
    assert_int_equal(r.mark_nsp, 1);
    assert_string_equal(r.mark_uid, adapter_uid(e->a));
    rx_str(e, "socket.io#/#streamio-handover:SIBLINGSIBLING01#", "");
    assert_int_equal(r.marks, 2);
    assert_int_equal(r.mine, 1);
    assert_int_equal(r.mark_nsp, 0);
    assert_string_equal(r.mark_uid, "SIBLINGSIBLING01");
    assert_int_equal(r.calls, 0);
    assert_int_equal(e->fake.broadcasts, 0);
    buf_t b;
    buf_init(&b);
    classic_msg(&b, "peer01", "/admin", "");
    rx(e, "socket.io#/admin#", b.data, b.len);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.nsp, 1);
    assert_int_equal(e->fake.broadcasts, 1);
    buf_reset(&b);
    classic_msg(&b, "peer01", "/", "streamio-handover:short");
    rx(e, "socket.io#/#streamio-handover:short#", b.data, b.len);
    assert_int_equal(r.calls, 2);
    assert_int_equal(r.nsp, 0);
    assert_int_equal(r.marks, 2);
    /* markers are sent through a connection of their own: none here (Redis unreachable) */
    assert_int_equal(adapter_relay_mark(e->a), -ENOTCONN);
    buf_free(&b);
    finish(e);
}

/* Sharded mode: a handover marker ({"type":0,"uid":"","nsp":"streamio-handover:<uid>"}) on a
 * relayed channel (a room's, another namespace's) goes to the marker callback with its channel,
 * this adapter's own or another's, and is neither relayed nor applied; on the main channel (never
 * relayed) it is dropped like any message of another namespace; and it goes out with SPUBLISH on
 * the channel it cuts (no Redis here: not connected). */
static void test_sharded_markers(void **state)
{
    (void)state;
    env_t *e = start_nsp(ADAPTER_MODE_SHARDED, 2);
    relay_seen_t r = {.apply = true};
    adapter_set_relay(e->a, relay_fake, marked_fake, NULL, &r);
    char mark[128];
    snprintf(mark, sizeof(mark), "{\"type\":0,\"uid\":\"\",\"nsp\":\"streamio-handover:%s\"}",
             adapter_uid(e->a));
    rx_str(e, "socket.io#/#here#", mark);
    assert_int_equal(r.marks, 1);
    assert_int_equal(r.mine, 1);
    assert_string_equal(r.mark_chan, "socket.io#/#here#");
    assert_string_equal(r.mark_uid, adapter_uid(e->a));
    rx_str(e, "socket.io#/admin#",
           "{\"type\":0,\"uid\":\"\",\"nsp\":\"streamio-handover:0123456789abcdef\"}");
    assert_int_equal(r.marks, 2);
    assert_int_equal(r.mine, 1);
    assert_int_equal(r.mark_nsp, 1);
    assert_string_equal(r.mark_chan, "socket.io#/admin#");
    assert_string_equal(r.mark_uid, "0123456789abcdef");
    assert_int_equal(r.calls, 0);
    assert_int_equal(e->fake.broadcasts, 0);
    rx_str(e, "socket.io#/#", mark); /* the main channel is nobody's to cut */
    /* a uid of another length: not a marker, and dropped as another namespace's message */
    rx_str(e, "socket.io#/#here#", "{\"type\":0,\"uid\":\"\",\"nsp\":\"streamio-handover:0123\"}");
    assert_int_equal(r.marks, 2);
    assert_int_equal(e->fake.broadcasts, 0);
    assert_int_equal(adapter_relay_mark_channel(e->a, "socket.io#/#here#", 17), -ENOTCONN);
    assert_int_equal(adapter_relay_mark(e->a), -EINVAL);
    finish(e);
    e = start_nsp(ADAPTER_MODE_CLASSIC, 1);
    assert_int_equal(adapter_relay_mark_channel(e->a, "socket.io#/#here#", 17), -EINVAL);
    finish(e);
}

/* ---- against a scripted Redis ---- */

/* What a connection PSUBSCRIBEd to (kept in its data slot): the pattern's prefix. */
#define BROKER_PREFIX "socket.io#/#"

/* PUBLISH on a channel of the pattern: a pmessage to every connection subscribed to it, in the
 * order the PUBLISHes arrive (one Redis node). */
static int broker_publish(env_t *e, const char *chan, const char *msg)
{
    int n = 0;
    if (strncmp(chan, BROKER_PREFIX, strlen(BROKER_PREFIX)) != 0)
        return 0;
    buf_t out;
    buf_init(&out);
    for (fake_conn_t *fc = fake_first(e->srv); fc; fc = fake_next(fc)) {
        if (!*fake_conn_data(fc))
            continue;
        buf_reset(&out);
        buf_printf(&out, "*4\r\n$8\r\npmessage\r\n$%zu\r\n%s*\r\n$%zu\r\n%s\r\n$%zu\r\n%s\r\n",
                   strlen(BROKER_PREFIX) + 1, BROKER_PREFIX, strlen(chan), chan, strlen(msg), msg);
        buf_putc(&out, '\0');
        fake_send(fc, out.data);
        n++;
    }
    buf_free(&out);
    return n;
}

/* The adapter's connections: subscriptions confirmed, PUBLISH reaches the pattern's subscribers. */
static void on_redis_cmd(fake_conn_t *fc, int argc, char **argv, size_t *lens, void *arg)
{
    (void)lens;
    bool pattern = argc == 2 && strcmp(argv[1], BROKER_PREFIX "*") == 0;
    void **slot = fake_conn_data(fc); /* freed by the fake with the connection */
    if (pattern && strcmp(argv[0], "PSUBSCRIBE") == 0 && !*slot)
        *slot = strdup(BROKER_PREFIX);
    if (pattern && strcmp(argv[0], "PUNSUBSCRIBE") == 0) {
        free(*slot);
        *slot = NULL;
        fake_sub_confirm(fc, "punsubscribe", argv[1], 0);
        return;
    }
    if (argc == 3 && strcmp(argv[0], "PUBLISH") == 0) {
        char reply[32];
        snprintf(reply, sizeof(reply), ":%d\r\n", broker_publish(arg, argv[1], argv[2]));
        fake_send(fc, reply);
        return;
    }
    if (!fake_pubsub(fc, argc, argv))
        fake_send(fc, ":0\r\n");
}

/* The connection of the adapter's subscribing client that subscribed (or did not). */
static fake_conn_t *adapter_conn(env_t *e, bool subscribed)
{
    fake_conn_t *found;
    assert_int_equal(fake_named(e->srv, "adapter", subscribed, &found), 1);
    return found;
}

static bool relay_is_up(void *arg)
{
    return adapter_relay_up(((env_t *)arg)->a);
}

static bool relay_is_down(void *arg)
{
    return !adapter_relay_up(((env_t *)arg)->a);
}

static bool connected(void *arg)
{
    return adapter_connected(((env_t *)arg)->a);
}

typedef struct reconnect_wait {
    env_t *e;
    size_t accepted; /* connections accepted before the loss */
} reconnect_wait_t;

static bool reconnected(void *arg)
{
    reconnect_wait_t *w = arg;
    return fake_accepted(w->e->srv) > w->accepted && adapter_connected(w->e->a);
}

#define PATTERN "PSUBSCRIBE socket.io#/#*"
#define WAIT_FOR(cond, arg) assert_true(fake_run_until(&e->loop, cond, arg, 10000))

static void chan_fake(const char *chan, size_t chan_len, relay_cut_chan_t ev, void *arg)
{
    (void)chan, (void)chan_len;
    ((relay_seen_t *)arg)->chan_events[ev]++;
}

static bool r2_subscribed(void *arg)
{
    return fake_count(((env_t *)arg)->srv, "SSUBSCRIBE socket.io#/#r2#") == 1;
}

static bool sub_count_is(void *arg)
{
    env_t *e = arg;
    return fake_count(e->srv, "SUNSUBSCRIBE socket.io#/#r1#") == 1 &&
           fake_count(e->srv, "SUNSUBSCRIBE socket.io#/#r2#") == 1;
}

/* Sharded mode, one subscriber per server: the holder subscribes to the channels of every room
 * any worker of the server holds, once each, and to the other namespaces' channels; its relay
 * comes up only once all are confirmed, and stays up while wanted; a room leaves with its last
 * holder. The main channel stays this worker's own. */
static void test_sharded_relay_up(void **state)
{
    (void)state;
    env_t *e = start_on(ADAPTER_MODE_SHARDED, 2, true);
    relay_seen_t r = {.apply = true};
    adapter_set_relay(e->a, relay_fake, NULL, chan_fake, &r);
    adapter_relay_room(e->a, 1, "r1", 2, true);
    adapter_room_created(e->a, "local", 5); /* this worker's rooms come through relay_room too */
    WAIT_FOR(connected, e);
    assert_int_equal(fake_count(e->srv, "SSUBSCRIBE socket.io#/#"), 1);
    assert_int_equal(fake_count(e->srv, "SSUBSCRIBE socket.io#/#r1#"), 0); /* not the holder */
    assert_int_equal(fake_count(e->srv, "SSUBSCRIBE socket.io#/admin#"), 0);
    assert_false(adapter_relay_up(e->a));
    adapter_relay_subscribe(e->a, true);
    WAIT_FOR(relay_is_up, e);
    assert_int_equal(fake_count(e->srv, "SSUBSCRIBE socket.io#/#r1#"), 1);
    assert_int_equal(fake_count(e->srv, "SSUBSCRIBE socket.io#/admin#"), 1);
    assert_int_equal(fake_count(e->srv, "SSUBSCRIBE socket.io#/#local#"), 0);
    /* the cut follows the holder's channels: r1, /admin; the main one is not relayed */
    assert_int_equal(r.chan_events[RELAY_CUT_CHAN_WANTED], 2);
    assert_int_equal(r.chan_events[RELAY_CUT_CHAN_CONFIRMED], 2);
    int gone = r.chan_events[RELAY_CUT_CHAN_GONE]; /* /admin, given up when the relay was set */
    /* a room added later, or one whose channel is subscribed again (a slot move), does not
     * demote the holder: every other room's broadcasts would be dropped meanwhile */
    adapter_relay_room(e->a, 0, "r2", 2, true);
    assert_true(adapter_relay_up(e->a));
    WAIT_FOR(r2_subscribed, e);
    adapter_relay_room(e->a, 0, "r1", 2, true); /* a second holder: no second subscription */
    adapter_relay_room(e->a, 0, "AAAAAAAAAAAAAAAAAAAA", 20, true); /* an id: main channel */
    adapter_relay_forget(e->a, 1);
    adapter_relay_forget(e->a, 0);
    WAIT_FOR(sub_count_is, e);
    assert_int_equal(r.chan_events[RELAY_CUT_CHAN_GONE], gone + 2); /* r1, r2 */
    assert_int_equal(fake_count(e->srv, "SSUBSCRIBE socket.io#/#r1#"), 1);
    assert_int_equal(fake_count(e->srv, "SSUBSCRIBE socket.io#/#r2#"), 1);
    assert_int_equal(fake_count_prefix(e->srv, "SSUBSCRIBE socket.io#/#AAAA"), 0);
    assert_true(adapter_relay_up(e->a));
    adapter_relay_subscribe(e->a, false);
    assert_false(adapter_relay_up(e->a));
    adapter_relay_subscribe(e->a, true);
    WAIT_FOR(relay_is_up, e);
    assert_int_equal(fake_count(e->srv, "SSUBSCRIBE socket.io#/admin#"), 2);
    assert_int_equal(fake_count(e->srv, "SUNSUBSCRIBE socket.io#/#"), 0);
    finish(e);
}

/* The relay counts as up while the pub/sub connection that confirmed the broadcast pattern holds
 * it. A partition that only the command connection of the adapter's client reports (the
 * subscription outlives it, REDIS_PUBSUB_DEAD_AFTER_MS) leaves it up, with nothing to confirm it
 * again; losing the subscription's own connection takes it down until Redis confirms the pattern
 * on the new connection. */
static void test_relay_up_follows_its_subscription(void **state)
{
    (void)state;
    env_t *e = start_on(ADAPTER_MODE_CLASSIC, 0, true);
    relay_seen_t r = {.apply = true};
    adapter_set_relay(e->a, relay_fake, NULL, NULL, &r);
    adapter_relay_subscribe(e->a, true);
    WAIT_FOR(relay_is_up, e);
    WAIT_FOR(connected, e);
    assert_int_equal(fake_count(e->srv, PATTERN), 1);

    /* the command connection of the subscribing client is lost, and comes back */
    reconnect_wait_t w = {e, fake_accepted(e->srv)};
    fake_drop(adapter_conn(e, false));
    WAIT_FOR(reconnected, &w);
    assert_true(adapter_relay_up(e->a));
    assert_int_equal(fake_count(e->srv, PATTERN), 1); /* never sent again: still in effect */
    buf_t b;
    buf_init(&b);
    classic_msg(&b, "peer01", "/", "here");
    rx(e, "socket.io#/#here#", b.data, b.len);
    assert_int_equal(r.calls, 1);
    assert_int_equal(e->fake.broadcasts, 1);

    /* the subscription's own connection is lost: down until confirmed on the next one */
    fake_drop(adapter_conn(e, true));
    WAIT_FOR(relay_is_down, e);
    WAIT_FOR(relay_is_up, e);
    assert_int_equal(fake_count(e->srv, PATTERN), 2);
    buf_free(&b);
    finish(e);
}

/* Other namespaces: their broadcasts reach all their sockets, never those of "/"; rooms there
 * name nobody; their sharded requests touch no socket. */
/* One worker of a handover, as worker.c wires it: its relay_cut decides per namespace. */
typedef struct cut_worker {
    relay_cut_t *cut;
    const char *sibling; /* the other adapter's uid */
    int relayed;
} cut_worker_t;

static bool cut_relay(unsigned nsp, const char *chan, size_t chan_len, const uint8_t *msg,
                      size_t msg_len, void *arg)
{
    (void)chan, (void)chan_len, (void)msg, (void)msg_len;
    cut_worker_t *w = arg;
    if (!relay_cut_applies(w->cut, nsp))
        return false;
    w->relayed++;
    return true;
}

static void cut_marked(unsigned nsp, const char *chan, size_t chan_len, const char *uid,
                       size_t uid_len, bool mine, void *arg)
{
    (void)chan, (void)chan_len;
    cut_worker_t *w = arg;
    if (mine || (uid_len == strlen(w->sibling) && memcmp(uid, w->sibling, uid_len) == 0))
        relay_cut_marker(w->cut, nsp, mine);
}

typedef struct handover {
    env_t *e;
    adapter_t *b;
    host_fake_t *fake_b;
    cut_worker_t *old, *succ;
} handover_t;

static bool b_relay_up(void *arg)
{
    handover_t *h = arg;
    return adapter_relay_up(h->b) && adapter_connected(h->b) && adapter_connected(h->e->a);
}

static bool marker_published(void *arg)
{
    return fake_count_prefix(((handover_t *)arg)->e->srv,
                             "PUBLISH socket.io#/#streamio-handover:") == 1;
}

static bool all_applied(void *arg)
{
    handover_t *h = arg;
    return h->e->fake.broadcasts + h->fake_b->broadcasts == 6 &&
           relay_cut_holds(h->old->cut) == RELAY_CUT_HOLDS_NONE &&
           relay_cut_holds(h->succ->cut) == RELAY_CUT_HOLDS_ALL;
}

/* Another server's broadcast, published on the room's channel. */
static void other_server_publishes(env_t *e, int subscribers)
{
    buf_t b;
    buf_init(&b);
    classic_msg(&b, "peer01", "/", "here");
    buf_putc(&b, '\0'); /* the broker sends C strings: this message has no NUL of its own */
    assert_int_equal(broker_publish(e, "socket.io#/#here#", b.data), subscribers);
    buf_free(&b);
}

/* A handover between two workers of one server (two adapters on one Redis): while both are
 * subscribed, the successor publishes its marker through Redis; the old holder applies (and
 * relays) what came before it and lets go there, the successor what comes after: each broadcast
 * once, whatever each worker had read when the marker was sent. */
static void test_handover_at_the_marker(void **state)
{
    (void)state;
    env_t *e = start_on(ADAPTER_MODE_CLASSIC, 0, true);
    host_fake_t fake_b = {.each_sockets = 1};
    adapter_host_t host_b = fake_host(&fake_b, nsps, 0);
    stats_worker_t stats_b = {0};
    adapter_t *b;
    assert_int_equal(
        adapter_new(&b, e->topo, &e->cfg, ADAPTER_MODE_CLASSIC, "socket.io", &host_b, &stats_b), 0);
    cut_worker_t old = {relay_cut_new(1, RELAY_CUT_NAMESPACES, 3000), adapter_uid(b), 0};
    cut_worker_t succ = {relay_cut_new(1, RELAY_CUT_NAMESPACES, 3000), adapter_uid(e->a), 0};
    handover_t h = {e, b, &fake_b, &old, &succ};
    adapter_set_relay(e->a, cut_relay, cut_marked, NULL, &old);
    adapter_set_relay(b, cut_relay, cut_marked, NULL, &succ);

    /* the holder: alone, it takes the role at once */
    adapter_relay_subscribe(e->a, true);
    WAIT_FOR(relay_is_up, e);
    relay_cut_input_t in = {.up = true, .candidate = false, .others = RELAY_CUT_HOLDS_NONE};
    assert_int_equal(relay_cut_update(old.cut, &in, 0), RELAY_CUT_NONE);
    assert_int_equal(relay_cut_holds(old.cut), RELAY_CUT_HOLDS_ALL);
    other_server_publishes(e, 1);

    /* the successor subscribes: both receive what follows; it publishes its marker */
    adapter_relay_subscribe(b, true);
    WAIT_FOR(b_relay_up, &h);
    other_server_publishes(e, 2);
    other_server_publishes(e, 2);
    in = (relay_cut_input_t){.up = true, .candidate = true, .others = RELAY_CUT_HOLDS_ALL};
    assert_int_equal(relay_cut_update(succ.cut, &in, 0), RELAY_CUT_MARK);
    assert_int_equal(adapter_relay_mark(b), 0);
    other_server_publishes(e, 2); /* may reach Redis before the marker: still the old holder's */
    WAIT_FOR(marker_published, &h);
    other_server_publishes(e, 2);
    other_server_publishes(e, 2);
    WAIT_FOR(all_applied, &h);
    assert_int_equal(e->fake.broadcasts, 4); /* the first, and the three before the marker */
    assert_int_equal(old.relayed, 4);
    assert_int_equal(fake_b.broadcasts, 2); /* the two after it */
    assert_int_equal(succ.relayed, 2);
    assert_int_equal(fake_count(e->srv, "PUBLISH socket.io#/#here#"), 0); /* nothing else sent */

    bool done = false;
    adapter_close(b, closed, &done);
    for (int i = 0; i < 1000 && !done; i++)
        uv_run(&e->loop, UV_RUN_ONCE);
    assert_true(done);
    buf_free(&fake_b.last_text);
    buf_free(&fake_b.last_frames);
    relay_cut_free(old.cut);
    relay_cut_free(succ.cut);
    finish(e);
}

static void test_other_namespaces(void **state)
{
    (void)state;
    for (int sharded = 0; sharded < 2; sharded++) {
        env_t *e = start_nsp(sharded ? ADAPTER_MODE_SHARDED : ADAPTER_MODE_CLASSIC, 2);
        buf_t b;
        buf_init(&b);
        if (sharded)
            buf_puts(&b, "{\"type\":3,\"data\":{\"packet\":{\"type\":2,\"data\":[\"ev\",1]},"
                         "\"opts\":{\"rooms\":[],\"except\":[],\"flags\":{}}},\"uid\":\"x\","
                         "\"nsp\":\"/admin\"}");
        else /* to everyone in /admin */
            assert_int_equal(adapter_msg_encode_broadcast(&b, "peer01", 6, "/admin", 6,
                                                          "[\"ev\",1]", 8, NULL, 0),
                             0);
        rx(e, "socket.io#/admin#", b.data, b.len);
        assert_int_equal(e->fake.broadcasts, 1);
        assert_int_equal(e->fake.nsp, 1);
        assert_int_equal(e->fake.nrooms, 0);
        /* socket.io-parser writes the namespace: 42/admin,[...] */
        assert_string_equal(e->fake.last_text.data, "42/admin,[\"ev\",1]");
        /* the channel's namespace must be the message's; unknown namespaces are not served */
        rx(e, "socket.io#/#", b.data, b.len);
        rx(e, "socket.io#/other#", b.data, b.len);
        rx(e, "socket.io#/admin", b.data, b.len);
        /* a room channel of /admin: nobody holds rooms there */
        rx(e, "socket.io#/admin#here#", b.data, b.len);
        assert_int_equal(e->fake.broadcasts, 1);
        if (sharded) {
            /* requests there are answered (no Redis here) without touching sockets */
            rx_str(e, "socket.io#/admin#",
                   "{\"type\":7,\"data\":{\"opts\":{\"rooms\":[]},\"requestId\":\"r\"},"
                   "\"uid\":\"x\",\"nsp\":\"/admin\"}");
            rx_str(e, "socket.io#/admin#",
                   "{\"type\":4,\"data\":{\"opts\":{\"rooms\":[]},\"rooms\":[\"j\"]},"
                   "\"uid\":\"x\",\"nsp\":\"/admin\"}");
            assert_int_equal(e->fake.joins, 0);
        }
        /* "/" still works alongside */
        buf_reset(&b);
        classic_msg(&b, "peer01", "/", "here");
        if (!sharded) {
            rx(e, "socket.io#/#here#", b.data, b.len);
            assert_int_equal(e->fake.broadcasts, 2);
            assert_int_equal(e->fake.nsp, 0);
        }
        buf_free(&b);
        finish(e);
    }
}

/* What adapter_publish hands to its send function: the command, one argument per line. */
static int capture_send(int argc, const char **argv, const size_t *lens, void *arg)
{
    buf_t *out = arg;
    for (int i = 0; i < argc; i++) {
        buf_append(out, argv[i], lens[i]);
        buf_putc(out, '\n');
    }
    return 0;
}

/* An entry is published as Node would (the command, the channel, the message), from its JSON or
 * from the msgpack the worker built beside it; a sibling worker drops it on its uid. */
static void test_publish(void **state)
{
    (void)state;
    static const char json[] = "[\"room:message\",{\"a\":1}]";
    static const uint8_t mp[] = {0x92, 0xac, 'r', 'o', 'o', 'm',  ':',  'm', 'e',
                                 's',  's',  'a', 'g', 'e', 0x81, 0xa1, 'a', 0x01};
    for (int sharded = 0; sharded < 2; sharded++) {
        env_t *e = start(sharded ? ADAPTER_MODE_SHARDED : ADAPTER_MODE_CLASSIC);
        assert_int_equal(adapter_wants_mpack(e->a), !sharded);
        buf_t from_json, from_mpack;
        buf_init(&from_json);
        buf_init(&from_mpack);
        adapter_data_t d = {json, strlen(json), NULL, 0};
        assert_int_equal(adapter_publish(e->a, capture_send, &from_json, "here", 4, &d), 0);
        d.mpack = mp;
        d.mpack_len = sizeof(mp);
        assert_int_equal(adapter_publish(e->a, capture_send, &from_mpack, "here", 4, &d), 0);
        assert_int_equal(from_json.len, from_mpack.len);
        assert_memory_equal(from_json.data, from_mpack.data, from_json.len);
        const char *want =
            sharded ? "SPUBLISH\nsocket.io#/#here#\n" : "PUBLISH\nsocket.io#/#here#\n";
        assert_memory_equal(from_json.data, want, strlen(want));

        /* the same message coming back is ours: dropped on its uid before the room lookup and
         * the decoding, never delivered */
        const char *msg = from_json.data + strlen(want);
        size_t msg_len = from_json.len - strlen(want) - 1;
        rx(e, "socket.io#/#here#", msg, msg_len);
        assert_int_equal(e->fake.broadcasts, 0);
        assert_int_equal(e->fake.room_lookups, 0);
        /* a peer's message of the same shape is looked at and delivered */
        buf_t peer;
        buf_init(&peer);
        buf_append(&peer, msg, msg_len);
        char *uid = memmem(peer.data, peer.len, adapter_uid(e->a), 16);
        assert_non_null(uid);
        memcpy(uid, "peer0123peer0123", 16);
        rx(e, "socket.io#/#here#", peer.data, peer.len);
        assert_int_equal(e->fake.broadcasts, 1);
        assert_int_equal(e->fake.room_lookups, 1);
        /* a sibling's copy with a body that would not even decode is dropped just as early */
        int asked = 0;
        adapter_set_sibling_filter(e->a, sibling_is_sib01, &asked);
        buf_reset(&peer);
        if (sharded)
            buf_puts(&peer, "{\"type\":3,\"data\":{not json},\"uid\":\"sib01\",\"nsp\":\"/\"}");
        else
            buf_append(&peer, "\x93\xa5sib01\xc1", 8);
        rx(e, "socket.io#/#here#", peer.data, peer.len);
        assert_int_equal(asked, 1);
        assert_int_equal(e->fake.broadcasts, 1);
        assert_int_equal(e->fake.room_lookups, 1);
        buf_free(&peer);
        buf_free(&from_json);
        buf_free(&from_mpack);
        finish(e);
    }
}

int main(void)
{
    log_setup(LOG_LVL_ERROR, "test", -1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_classic_broadcasts),
        cmocka_unit_test(test_classic_requests),
        cmocka_unit_test(test_broadcast_with_acks),
        cmocka_unit_test(test_sharded_messages),
        cmocka_unit_test(test_other_namespaces),
        cmocka_unit_test(test_sibling_filter),
        cmocka_unit_test(test_relay),
        cmocka_unit_test(test_relay_markers),
        cmocka_unit_test(test_sharded_markers),
        cmocka_unit_test(test_handover_at_the_marker),
        cmocka_unit_test(test_sharded_relay),
        cmocka_unit_test(test_sharded_relay_up),
        cmocka_unit_test(test_relay_up_follows_its_subscription),
        cmocka_unit_test(test_publish),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
