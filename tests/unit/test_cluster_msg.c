/*
 * Unit tests for common/proto/cluster_msg, the requests this server makes of the cluster: the request
 * encoder's exact bytes, and the response decoder on Node's captured shapes, on msgpack, and on
 * truncated, oversized and wrong-typed input; the rooms reader of fetchSockets answers.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/buf.h"
#include "common/mpack.h"
#include "common/proto/cluster_msg.h"
#include "common/proto/adapter_msg.h"

static void str_is(adapter_str_t s, const char *want)
{
    assert_int_equal(s.len, strlen(want));
    assert_memory_equal(s.p, want, s.len);
}

static void body_is(const cluster_reply_t *r, const char *want)
{
    if (!want) {
        assert_null(r->body);
        return;
    }
    assert_non_null(r->body);
    assert_int_equal(r->body_len, strlen(want));
    assert_memory_equal(r->body, want, r->body_len);
}

/* Decodes from an exact-size heap copy so ASan sees any read past the end; the copy is kept
 * until the next call (the reply borrows it). */
static uint8_t *copy;

static int decode(const void *p, size_t n, buf_t *sc, cluster_reply_t *r)
{
    free(copy);
    copy = malloc(n ? n : 1);
    assert_non_null(copy);
    if (n)
        memcpy(copy, p, n);
    return cluster_msg_decode_response(copy, n, sc, r);
}

static int decode_str(const char *s, buf_t *sc, cluster_reply_t *r)
{
    return decode(s, strlen(s), sc, r);
}

static int enc(buf_t *b, bool sharded, const adapter_str_t *rid, const cluster_request_t *q)
{
    return cluster_msg_encode_request(b, sharded, sharded ? "8ae8271815577a7e" : "fY_sjB",
                                      sharded ? 16 : 6, "/", 1, rid, q);
}

static void enc_is(bool sharded, const adapter_str_t *rid, const cluster_request_t *q,
                   const char *want)
{
    buf_t b;
    buf_init(&b);
    assert_int_equal(enc(&b, sharded, rid, q), 0);
    assert_string_equal(b.data, want);
    /* what the other side's decoder reads back */
    buf_t sc;
    buf_init(&sc);
    adapter_msg_t m;
    int rc = sharded ? adapter_msg_decode_cluster((const uint8_t *)b.data, b.len, &sc, &m)
                     : adapter_msg_decode_request((const uint8_t *)b.data, b.len, &sc, &m);
    assert_int_equal(rc, 0);
    assert_int_equal(m.op, q->op);
    assert_int_equal(m.nrooms, q->nrooms);
    assert_int_equal(m.request_id.len, rid ? rid->len : 0);
    if (q->op == ADAPTER_OP_JOIN || q->op == ADAPTER_OP_LEAVE)
        assert_int_equal(m.ntargets, q->ntargets);
    if (q->op == ADAPTER_OP_DISCONNECT)
        assert_int_equal(m.close, q->close);
    buf_free(&sc);
    buf_free(&b);
}

static void test_encode_requests(void **state)
{
    (void)state;
    adapter_str_t rid = {"0OhJKx", 6};
    adapter_str_t rooms[] = {{"chat.user.123", 13}, {"a\"b", 3}};
    adapter_str_t target = {"joined-room", 11};
    cluster_request_t all = {.op = ADAPTER_OP_ALL_ROOMS};
    cluster_request_t fetch1 = {.op = ADAPTER_OP_FETCH, .rooms = rooms, .nrooms = 1};
    cluster_request_t fetch2 = {.op = ADAPTER_OP_FETCH, .rooms = rooms, .nrooms = 2};
    cluster_request_t join = {
        .op = ADAPTER_OP_JOIN, .rooms = rooms, .nrooms = 1, .targets = &target, .ntargets = 1};
    cluster_request_t leave = join;
    leave.op = ADAPTER_OP_LEAVE;
    cluster_request_t disc = {
        .op = ADAPTER_OP_DISCONNECT, .rooms = rooms, .nrooms = 1, .close = true};
    cluster_request_t sse = {
        .op = ADAPTER_OP_SERVER_SIDE_EMIT, .data_json = "[ \"hello\", 1 ]", .data_len = 14};
    enc_is(false, &rid, &all, "{\"uid\":\"fY_sjB\",\"requestId\":\"0OhJKx\",\"type\":1}");
    enc_is(false, &rid, &fetch1,
           "{\"uid\":\"fY_sjB\",\"requestId\":\"0OhJKx\",\"type\":5,\"opts\":{\"rooms\":"
           "[\"chat.user.123\"],\"except\":[]}}");
    enc_is(false, NULL, &join,
           "{\"uid\":\"fY_sjB\",\"type\":2,\"opts\":{\"rooms\":[\"chat.user.123\"],\"except\":[]},"
           "\"rooms\":[\"joined-room\"]}");
    enc_is(false, NULL, &leave,
           "{\"uid\":\"fY_sjB\",\"type\":3,\"opts\":{\"rooms\":[\"chat.user.123\"],\"except\":[]},"
           "\"rooms\":[\"joined-room\"]}");
    enc_is(false, NULL, &disc,
           "{\"uid\":\"fY_sjB\",\"type\":4,\"opts\":{\"rooms\":[\"chat.user.123\"],\"except\":[]},"
           "\"close\":true}");
    enc_is(false, &rid, &sse,
           "{\"uid\":\"fY_sjB\",\"requestId\":\"0OhJKx\",\"type\":6,\"data\":[\"hello\",1]}");
    enc_is(true, &rid, &fetch2,
           "{\"type\":7,\"data\":{\"opts\":{\"rooms\":[\"chat.user.123\",\"a\\\"b\"],\"except\":[],"
           "\"flags\":{}},\"requestId\":\"0OhJKx\"},\"uid\":\"8ae8271815577a7e\",\"nsp\":\"/\"}");
    enc_is(
        true, NULL, &join,
        "{\"type\":4,\"data\":{\"opts\":{\"rooms\":[\"chat.user.123\"],\"except\":[],\"flags\":{}},"
        "\"rooms\":[\"joined-room\"]},\"uid\":\"8ae8271815577a7e\",\"nsp\":\"/\"}");
    enc_is(
        true, NULL, &disc,
        "{\"type\":6,\"data\":{\"opts\":{\"rooms\":[\"chat.user.123\"],\"except\":[],\"flags\":{}},"
        "\"close\":true},\"uid\":\"8ae8271815577a7e\",\"nsp\":\"/\"}");
    enc_is(true, &rid, &sse,
           "{\"type\":9,\"data\":{\"packet\":[\"hello\",1],\"requestId\":\"0OhJKx\"},\"uid\":"
           "\"8ae8271815577a7e\",\"nsp\":\"/\"}");
    /* no allRooms in the cluster protocol; request ids only where answers come; bad inputs */
    buf_t b;
    buf_init(&b);
    buf_puts(&b, "keep");
    assert_int_equal(enc(&b, true, &rid, &all), -EINVAL);
    assert_int_equal(enc(&b, false, NULL, &fetch1), -EINVAL);
    assert_int_equal(enc(&b, false, &rid, &join), -EINVAL);
    cluster_request_t bad = {.op = ADAPTER_OP_BROADCAST};
    assert_int_equal(enc(&b, false, NULL, &bad), -EINVAL);
    bad = fetch1;
    bad.nrooms = ADAPTER_MSG_MAX_ROOMS + 1;
    assert_int_equal(enc(&b, false, &rid, &bad), -EINVAL);
    bad = sse;
    bad.data_json = "{\"a\":1}";
    bad.data_len = 7;
    assert_int_equal(enc(&b, false, &rid, &bad), -EINVAL);
    bad.data_json = "[1,";
    bad.data_len = 3;
    assert_int_equal(enc(&b, true, &rid, &bad), -EINVAL);
    bad.data_json = NULL;
    assert_int_equal(enc(&b, true, &rid, &bad), -EINVAL);
    assert_string_equal(b.data, "keep");
    buf_free(&b);
}

/* The data alone (the streams adapter's entries): what decode_cluster_parts reads back. */
static void test_encode_request_data(void **state)
{
    (void)state;
    adapter_str_t rid = {"r1", 2};
    adapter_str_t room = {"r", 1}, target = {"t", 1};
    cluster_request_t join = {
        .op = ADAPTER_OP_JOIN, .rooms = &room, .nrooms = 1, .targets = &target, .ntargets = 1};
    cluster_request_t fetch = {.op = ADAPTER_OP_FETCH};
    cluster_request_t all = {.op = ADAPTER_OP_ALL_ROOMS};
    buf_t b, sc;
    buf_init(&b);
    buf_init(&sc);
    int type = 0;
    assert_int_equal(cluster_msg_encode_request_data(&b, NULL, &join, &type), 0);
    assert_int_equal(type, 4);
    assert_string_equal(b.data, "{\"opts\":{\"rooms\":[\"r\"],\"except\":[],\"flags\":{}},"
                                "\"rooms\":[\"t\"]}");
    adapter_str_t uid = {"u", 1}, nsp = {"/", 1};
    adapter_msg_t m;
    assert_int_equal(adapter_msg_decode_cluster_parts(&uid, &nsp, type, (const uint8_t *)b.data,
                                                      b.len, &sc, &m),
                     0);
    assert_int_equal(m.op, ADAPTER_OP_JOIN);
    assert_int_equal(m.ntargets, 1);
    buf_reset(&b);
    assert_int_equal(cluster_msg_encode_request_data(&b, &rid, &fetch, &type), 0);
    assert_int_equal(type, 7);
    assert_string_equal(b.data, "{\"opts\":{\"rooms\":[],\"except\":[],\"flags\":{}},"
                                "\"requestId\":\"r1\"}");
    buf_reset(&b);
    assert_int_equal(cluster_msg_encode_request_data(&b, &rid, &all, &type), -EINVAL);
    assert_int_equal(b.len, 0);
    buf_free(&b);
    buf_free(&sc);
}

static void test_decode_classic(void **state)
{
    (void)state;
    buf_t sc;
    buf_init(&sc);
    cluster_reply_t r;
    /* Node 8.x, as captured (no responder uid) */
    assert_int_equal(
        decode_str(
            "{\"requestId\":\"0OhJKx\",\"rooms\":[\"PUMR2XMuk6w70u-wAAAA\",\"chat.user.123\"]}",
            &sc, &r),
        0);
    assert_int_equal(r.kind, ADAPTER_RESP_ALL_ROOMS);
    str_is(r.request_id, "0OhJKx");
    assert_int_equal(r.uid.len, 0);
    body_is(&r, "[\"PUMR2XMuk6w70u-wAAAA\",\"chat.user.123\"]");
    /* streamio's, naming the worker; key order does not matter; escapes are decoded */
    assert_int_equal(
        decode_str("{\"uid\":\"w\\u0031\",\"sockets\":[{\"id\":\"x\"}],\"requestId\":\"r\"} ", &sc,
                   &r),
        0);
    assert_int_equal(r.kind, ADAPTER_RESP_FETCH);
    str_is(r.uid, "w1");
    str_is(r.request_id, "r");
    body_is(&r, "[{\"id\":\"x\"}]");
    assert_int_equal(
        decode_str("{\"type\":6,\"requestId\":\"r\",\"data\":\"ok-from-3102\"}", &sc, &r), 0);
    assert_int_equal(r.kind, ADAPTER_RESP_SSE);
    body_is(&r, "\"ok-from-3102\"");
    assert_int_equal(decode_str("{\"type\":6,\"requestId\":\"r\"}", &sc, &r), 0);
    body_is(&r, NULL);
    assert_int_equal(decode_str("{\"type\":8,\"requestId\":\"r\",\"clientCount\":3}", &sc, &r), 0);
    assert_int_equal(r.kind, ADAPTER_RESP_CLIENT_COUNT);
    assert_int_equal(r.count, 3);
    /* a request is no response */
    assert_int_equal(decode_str("{\"uid\":\"u\",\"requestId\":\"r\",\"type\":1}", &sc, &r),
                     -ENOMSG);
    free(copy);
    copy = NULL;
    buf_free(&sc);
}

static void test_decode_sharded(void **state)
{
    (void)state;
    buf_t sc;
    buf_init(&sc);
    cluster_reply_t r;
    assert_int_equal(
        decode_str("{\"type\":8,\"data\":{\"requestId\":\"ad513c0051567e23\",\"sockets\":"
                   "[]},\"uid\":\"a0d7\",\"nsp\":\"/\"}",
                   &sc, &r),
        0);
    assert_int_equal(r.kind, ADAPTER_RESP_FETCH);
    str_is(r.request_id, "ad513c0051567e23");
    str_is(r.uid, "a0d7");
    body_is(&r, "[]");
    assert_int_equal(decode_str("{\"type\":11,\"data\":{\"requestId\":\"c\",\"clientCount\":1},"
                                "\"uid\":\"u\",\"nsp\":\"/\"}",
                                &sc, &r),
                     0);
    assert_int_equal(r.kind, ADAPTER_RESP_CLIENT_COUNT);
    assert_int_equal(r.count, 1);
    assert_int_equal(
        decode_str("{\"type\":12,\"data\":{\"requestId\":\"c\",\"packet\":\"client-ack:q\"}"
                   ",\"uid\":\"u\",\"nsp\":\"/\"}",
                   &sc, &r),
        0);
    assert_int_equal(r.kind, ADAPTER_RESP_BROADCAST_ACK);
    body_is(&r, "\"client-ack:q\"");
    assert_int_equal(
        decode_str("{\"type\":10,\"data\":{\"requestId\":\"c\"},\"uid\":\"u\",\"nsp\":\"/\"}", &sc,
                   &r),
        0);
    assert_int_equal(r.kind, ADAPTER_RESP_SSE);
    /* requests and heartbeats on the same channels are no responses */
    assert_int_equal(
        decode_str("{\"type\":7,\"data\":{\"opts\":{},\"requestId\":\"c\"},\"uid\":\"u\","
                   "\"nsp\":\"/\"}",
                   &sc, &r),
        -ENOMSG);
    assert_int_equal(decode_str("{\"type\":2,\"uid\":\"u\",\"nsp\":\"/\"}", &sc, &r), -EPROTO);
    free(copy);
    copy = NULL;
    buf_free(&sc);
}

/* msgpack {type:9, requestId:"r", packet:<value>} as the classic adapter sends a client ack. */
static void ack9(buf_t *b, int value_kind)
{
    buf_reset(b);
    mpack_write_map(b, 3);
    mpack_write_str(b, "type", 4);
    mpack_write_uint(b, 9);
    mpack_write_str(b, "requestId", 9);
    mpack_write_str(b, "r", 1);
    mpack_write_str(b, "packet", 6);
    if (value_kind == 0)
        mpack_write_str(b, "ok", 2);
    else
        mpack_write_bin(b, "\x01\x02", 2);
}

static void test_decode_msgpack(void **state)
{
    (void)state;
    buf_t sc, b;
    buf_init(&sc);
    buf_init(&b);
    cluster_reply_t r;
    ack9(&b, 0);
    assert_int_equal(decode(b.data, b.len, &sc, &r), 0);
    assert_int_equal(r.kind, ADAPTER_RESP_BROADCAST_ACK);
    str_is(r.request_id, "r");
    body_is(&r, "\"ok\"");
    /* every truncation is an error, never a read past the end */
    for (size_t cut = 0; cut < b.len; cut++)
        assert_int_equal(decode(b.data, cut, &sc, &r), -EPROTO);
    /* trailing bytes */
    buf_putc(&b, 0xc0);
    assert_int_equal(decode(b.data, b.len, &sc, &r), -EPROTO);
    /* binary values are not read here */
    ack9(&b, 1);
    assert_int_equal(decode(b.data, b.len, &sc, &r), -ENOTSUP);
    /* wrong types: a requestId that is a number, a type that is a string, sockets as a map */
    buf_reset(&b);
    mpack_write_map(&b, 2);
    mpack_write_str(&b, "requestId", 9);
    mpack_write_uint(&b, 7);
    mpack_write_str(&b, "rooms", 5);
    mpack_write_array(&b, 0);
    assert_int_equal(decode(b.data, b.len, &sc, &r), -EPROTO);
    buf_reset(&b);
    mpack_write_map(&b, 2);
    mpack_write_str(&b, "type", 4);
    mpack_write_str(&b, "9", 1);
    mpack_write_str(&b, "requestId", 9);
    mpack_write_str(&b, "r", 1);
    assert_int_equal(decode(b.data, b.len, &sc, &r), -EPROTO);
    buf_reset(&b);
    mpack_write_map(&b, 2);
    mpack_write_str(&b, "requestId", 9);
    mpack_write_str(&b, "r", 1);
    mpack_write_str(&b, "sockets", 7);
    mpack_write_map(&b, 0);
    assert_int_equal(decode(b.data, b.len, &sc, &r), -EPROTO);
    /* not a map at all; a map claiming more members than it has */
    assert_int_equal(decode("\x93\x01\x02\x03", 4, &sc, &r), -EPROTO);
    assert_int_equal(decode("\xdf\xff\xff\xff\xff", 5, &sc, &r), -EPROTO);
    assert_int_equal(decode("\xdb\xff\xff\xff\xff", 5, &sc, &r), -EPROTO);
    free(copy);
    copy = NULL;
    buf_free(&b);
    buf_free(&sc);
}

static void test_decode_malformed(void **state)
{
    (void)state;
    buf_t sc;
    buf_init(&sc);
    cluster_reply_t r;
    static const char *bad[] = {
        "",
        "{",
        "[]",
        "\"x\"",
        "{\"rooms\":[]}",                          /* no requestId */
        "{\"requestId\":\"\",\"rooms\":[]}",       /* empty requestId */
        "{\"requestId\":1,\"rooms\":[]}",          /* wrong-typed requestId */
        "{\"requestId\":\"r\",\"rooms\":{}}",      /* rooms not an array */
        "{\"requestId\":\"r\",\"sockets\":\"x\"}", /* sockets not an array */
        "{\"type\":8,\"requestId\":\"r\"}",        /* count missing */
        "{\"type\":8,\"requestId\":\"r\",\"clientCount\":-1}",
        "{\"type\":8,\"requestId\":\"r\",\"clientCount\":1.5}",
        "{\"type\":\"8\",\"requestId\":\"r\",\"clientCount\":1}",
        "{\"type\":8,\"data\":[],\"uid\":\"u\",\"nsp\":\"/\"}", /* sharded data not an object */
        "{\"type\":8,\"uid\":\"u\",\"nsp\":\"/\"}",             /* sharded data missing */
        "{\"type\":8,\"data\":{\"requestId\":\"r\"},\"uid\":\"u\",\"nsp\":\"/\"}", /* no sockets */
        "{\"requestId\":\"r\",\"rooms\":[]}x", /* trailing bytes */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = decode_str(bad[i], &sc, &r);
        assert_true(rc == -EPROTO || rc == -ENOMSG);
        assert_int_not_equal(rc, 0);
    }
    /* every truncation of a valid response */
    const char *ok =
        "{\"type\":8,\"data\":{\"requestId\":\"ad51\",\"sockets\":[{\"id\":\"a\",\"rooms\":"
        "[\"a\"]}]},\"uid\":\"u\",\"nsp\":\"/\"}";
    assert_int_equal(decode_str(ok, &sc, &r), 0);
    for (size_t cut = 0; cut < strlen(ok); cut++)
        assert_int_equal(decode(ok, cut, &sc, &r), -EPROTO);
    /* oversized: a request id longer than any this server makes */
    char id[CLUSTER_MSG_MAX_ID + 2], big[256];
    memset(id, 'x', sizeof(id) - 1);
    id[sizeof(id) - 1] = '\0';
    int n = snprintf(big, sizeof(big), "{\"requestId\":\"%s\",\"rooms\":[]}", id);
    assert_int_equal(decode(big, (size_t)n, &sc, &r), -E2BIG);
    free(copy);
    copy = NULL;
    buf_free(&sc);
}

typedef struct seen {
    char names[8][32];
    size_t n;
} seen_t;

static void note(const char *room, size_t len, void *arg)
{
    seen_t *s = arg;
    assert_true(s->n < 8 && len < 32);
    memcpy(s->names[s->n], room, len);
    s->names[s->n++][len] = '\0';
}

static void test_sockets_rooms(void **state)
{
    (void)state;
    buf_t sc;
    buf_init(&sc);
    seen_t s = {0};
    size_t n = 9;
    const char *j =
        "[{\"id\":\"a\",\"handshake\":{\"rooms\":[\"no\"]},\"rooms\":[\"a\",\"r\\u00e9\"]},"
        "{\"rooms\":[\"b\",\"r\\u00e9\"],\"data\":{}}]";
    assert_int_equal(cluster_msg_sockets_rooms(j, strlen(j), &sc, &n, note, &s), 0);
    assert_int_equal(n, 2);
    assert_int_equal(s.n, 4);
    assert_string_equal(s.names[0], "a");
    assert_string_equal(s.names[1], "r\xc3\xa9");
    assert_string_equal(s.names[2], "b");
    assert_string_equal(s.names[3], "r\xc3\xa9");
    assert_int_equal(cluster_msg_sockets_rooms("[]", 2, &sc, &n, NULL, NULL), 0);
    assert_int_equal(n, 0);
    static const char *bad[] = {"{}", "[1]", "[{\"rooms\":{}}]", "[{\"rooms\":[1]}]", "[{}", ""};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(cluster_msg_sockets_rooms(bad[i], strlen(bad[i]), &sc, &n, note, &s),
                         -EPROTO);
    buf_free(&sc);
}

/* The requestId is decoded first, then a uid whose invalid UTF-8 decodes 3 times longer than it
 * is written: the requestId must still point at live bytes (it dangled after a realloc). */
static void test_decoded_strings_never_dangle(void **state)
{
    (void)state;
    buf_t j, sc;
    buf_init(&j);
    buf_init(&sc);
    buf_puts(&j, "{\"type\":8,\"requestId\":\"q\\n\",\"clientCount\":2,\"uid\":\"u\\t");
    for (int i = 0; i < 300; i++)
        buf_putc(&j, (char)0xff);
    buf_puts(&j, "\"}");
    cluster_reply_t r;
    assert_int_equal(decode(j.data, j.len, &sc, &r), 0);
    assert_int_equal(r.kind, ADAPTER_RESP_CLIENT_COUNT);
    assert_true(r.request_id.p >= sc.data && r.request_id.p + 2 <= sc.data + sc.len);
    assert_int_equal(r.request_id.len, 2);
    assert_memory_equal(r.request_id.p, "q\n", 2);
    assert_int_equal(r.uid.len, 2 + 300 * 3);
    buf_free(&j);
    buf_free(&sc);
}

/* Node's sharded BROADCAST of emit("bin", {n:1, b:<01 02 03>}, <ff>) to room r1, as msgpack. */
static void cluster_binary(buf_t *b, int variant)
{
    buf_reset(b);
    mpack_write_map(b, 4);
    mpack_write_str(b, "type", 4);
    mpack_write_uint(b, 3);
    mpack_write_str(b, "data", 4);
    mpack_write_map(b, 2);
    mpack_write_str(b, "packet", 6);
    mpack_write_map(b, 2);
    mpack_write_str(b, "type", 4);
    mpack_write_uint(b, variant == 1 ? 5 : 2);
    mpack_write_str(b, "data", 4);
    mpack_write_array(b, 3);
    mpack_write_str(b, "bin", 3);
    mpack_write_map(b, 2);
    mpack_write_str(b, "n", 1);
    mpack_write_uint(b, 1);
    mpack_write_str(b, "b", 1);
    mpack_write_bin(b, "\x01\x02\x03", 3);
    mpack_write_bin(b, "\xff", 1);
    mpack_write_str(b, "opts", 4);
    mpack_write_map(b, 3);
    mpack_write_str(b, "rooms", 5);
    mpack_write_array(b, 1);
    mpack_write_str(b, "r1", 2);
    mpack_write_str(b, "except", 6);
    mpack_write_array(b, 0);
    mpack_write_str(b, "flags", 5);
    mpack_write_map(b, 0);
    mpack_write_str(b, "uid", 3);
    mpack_write_str(b, "8ae8271815577a7e", 16);
    mpack_write_str(b, "nsp", 3);
    mpack_write_str(b, variant == 2 ? "/admin" : "/", variant == 2 ? 6 : 1);
}

static void test_binary_broadcast(void **state)
{
    (void)state;
    buf_t b, sc, text, atts;
    buf_init(&b);
    buf_init(&sc);
    buf_init(&text);
    buf_init(&atts);
    adapter_msg_t m;
    for (int variant = 0; variant < 3; variant++) {
        cluster_binary(&b, variant);
        free(copy);
        copy = malloc(b.len);
        memcpy(copy, b.data, b.len);
        assert_int_equal(adapter_msg_decode_cluster(copy, b.len, &sc, &m), 0);
        assert_int_equal(m.op, ADAPTER_OP_BROADCAST);
        str_is(m.uid, "8ae8271815577a7e");
        str_is(m.nsp, variant == 2 ? "/admin" : "/");
        assert_int_equal(m.nrooms, 1);
        str_is(m.rooms[0], "r1");
        assert_int_equal(adapter_msg_sio_text(&text, &m), -ENOTSUP);
        assert_int_equal(text.len, 0);
        unsigned n = 0;
        uint64_t ack = 7;
        assert_int_equal(adapter_msg_sio_binary(&text, &atts, &m, variant ? &ack : NULL, &n), 0);
        assert_int_equal(n, 2);
        assert_string_equal(
            text.data, variant == 0   ? "452-[\"bin\",{\"n\":1,\"b\":{\"_placeholder\":true,"
                                        "\"num\":0}},{\"_placeholder\":true,\"num\":1}]"
                       : variant == 1 ? "452-7[\"bin\",{\"n\":1,\"b\":{\"_placeholder\":true,"
                                        "\"num\":0}},{\"_placeholder\":true,\"num\":1}]"
                                      : "452-/admin,7[\"bin\",{\"n\":1,\"b\":{\"_placeholder\":"
                                        "true,\"num\":0}},{\"_placeholder\":true,\"num\":1}]");
        uint32_t l0, l1;
        assert_int_equal(atts.len, 4 + 3 + 4 + 1);
        memcpy(&l0, atts.data, 4);
        memcpy(&l1, atts.data + 7, 4);
        assert_int_equal(l0, 3);
        assert_int_equal(l1, 1);
        assert_memory_equal(atts.data + 4, "\x01\x02\x03", 3);
        assert_memory_equal(atts.data + 11, "\xff", 1);
        buf_reset(&text);
        buf_reset(&atts);
        /* every truncation is an error, never a read past the end */
        for (size_t cut = 0; cut < b.len; cut++) {
            free(copy);
            copy = malloc(cut ? cut : 1);
            memcpy(copy, b.data, cut);
            assert_int_equal(adapter_msg_decode_cluster(copy, cut, &sc, &m), -EPROTO);
        }
    }
    /* a text packet and a JSON message are not binary; an ext value is not an attachment */
    const char *j = "{\"type\":3,\"data\":{\"packet\":{\"type\":2,\"data\":[\"x\"]},\"opts\":{}},"
                    "\"uid\":\"u\",\"nsp\":\"/\"}";
    assert_int_equal(adapter_msg_decode_cluster((const uint8_t *)j, strlen(j), &sc, &m), 0);
    unsigned n = 9;
    assert_int_equal(adapter_msg_sio_binary(&text, &atts, &m, NULL, &n), -EPROTO);
    assert_int_equal(n, 9);
    static const uint8_t ext[] = {0x93, 0xa1, 'u', 0x82, 0xa4, 't',  'y', 'p',  'e',  0x02, 0xa4,
                                  'd',  'a',  't', 'a',  0x92, 0xa1, 'e', 0xd4, 0x05, 0x01, 0x80};
    assert_int_equal(adapter_msg_decode_broadcast(ext, sizeof(ext), &m), 0);
    assert_int_equal(adapter_msg_sio_binary(&text, &atts, &m, NULL, &n), -ENOTSUP);
    /* more attachments than a packet may carry */
    buf_reset(&b);
    mpack_write_array(&b, 3);
    mpack_write_str(&b, "u", 1);
    mpack_write_map(&b, 2);
    mpack_write_str(&b, "type", 4);
    mpack_write_uint(&b, 2);
    mpack_write_str(&b, "data", 4);
    mpack_write_array(&b, ADAPTER_MSG_MAX_ATTACHMENTS + 1);
    for (int i = 0; i < ADAPTER_MSG_MAX_ATTACHMENTS + 1; i++)
        mpack_write_bin(&b, "x", 1);
    mpack_write_map(&b, 0);
    assert_int_equal(adapter_msg_decode_broadcast((const uint8_t *)b.data, b.len, &m), 0);
    assert_int_equal(adapter_msg_sio_binary(&text, &atts, &m, NULL, &n), -E2BIG);
    assert_int_equal(text.len, 0);
    assert_int_equal(atts.len, 0);
    free(copy);
    copy = NULL;
    buf_free(&b);
    buf_free(&sc);
    buf_free(&text);
    buf_free(&atts);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encode_requests),
        cmocka_unit_test(test_encode_request_data),
        cmocka_unit_test(test_decode_classic),
        cmocka_unit_test(test_decode_sharded),
        cmocka_unit_test(test_decode_msgpack),
        cmocka_unit_test(test_decode_malformed),
        cmocka_unit_test(test_sockets_rooms),
        cmocka_unit_test(test_binary_broadcast),
        cmocka_unit_test(test_decoded_strings_never_dangle),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
