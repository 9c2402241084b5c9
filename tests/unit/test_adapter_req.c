/*
 * Unit tests for the request/response and sharded parts of worker/adapter_msg: protocol.md §4.4
 * and §5 captures, exact response bytes, and truncated, oversized and wrong-typed JSON/msgpack.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/buf.h"
#include "common/mpack.h"
#include "common/proto/adapter_msg.h"

static void str_is(adapter_str_t s, const char *want)
{
    assert_int_equal(s.len, strlen(want));
    assert_memory_equal(s.p, want, s.len);
}

/* Decodes from an exact-size heap copy so ASan sees any read past the end. */
static int dec(int (*fn)(const uint8_t *, size_t, buf_t *, adapter_msg_t *), const void *p,
               size_t n, buf_t *scratch, adapter_msg_t *m, uint8_t **copy)
{
    *copy = malloc(n ? n : 1);
    assert_non_null(*copy);
    if (n)
        memcpy(*copy, p, n);
    return fn(*copy, n, scratch, m);
}

static int req(const char *json, buf_t *scratch, adapter_msg_t *m, uint8_t **copy)
{
    return dec(adapter_msg_decode_request, json, strlen(json), scratch, m, copy);
}

static int cluster(const char *json, buf_t *scratch, adapter_msg_t *m, uint8_t **copy)
{
    return dec(adapter_msg_decode_cluster, json, strlen(json), scratch, m, copy);
}

static void test_classic_requests(void **state)
{
    (void)state;
    buf_t sc;
    buf_init(&sc);
    adapter_msg_t m;
    uint8_t *c;

    assert_int_equal(req("{\"uid\":\"fY_sjB\",\"requestId\":\"0OhJKx\",\"type\":1}", &sc, &m, &c),
                     0);
    assert_int_equal(m.op, ADAPTER_OP_ALL_ROOMS);
    str_is(m.uid, "fY_sjB");
    str_is(m.request_id, "0OhJKx");
    free(c);

    assert_int_equal(req("{\"uid\":\"fY_sjB\",\"type\":2,\"opts\":{\"rooms\":[\"chat.user.123\"],"
                         "\"except\":[]},\"rooms\":[\"joined-room\"]}",
                         &sc, &m, &c),
                     0);
    assert_int_equal(m.op, ADAPTER_OP_JOIN);
    assert_int_equal(m.nrooms, 1);
    str_is(m.rooms[0], "chat.user.123");
    assert_int_equal(m.ntargets, 1);
    str_is(m.targets[0], "joined-room");
    assert_false(m.legacy);
    free(c);

    /* the emitter's form has no uid */
    assert_int_equal(
        req("{\"type\":3,\"opts\":{\"rooms\":[],\"except\":[\"x\"]},\"rooms\":[\"e\"]}", &sc, &m,
            &c),
        0);
    assert_int_equal(m.op, ADAPTER_OP_LEAVE);
    assert_int_equal(m.uid.len, 0);
    assert_int_equal(m.nexcept, 1);
    str_is(m.except[0], "x");
    free(c);

    assert_int_equal(
        req("{\"uid\":\"u\",\"type\":4,\"opts\":{\"rooms\":[\"r\"]},\"close\":true}", &sc, &m, &c),
        0);
    assert_int_equal(m.op, ADAPTER_OP_DISCONNECT);
    assert_true(m.close);
    free(c);

    /* legacy single-socket form */
    assert_int_equal(req("{\"type\":2,\"sid\":\"abcdefghijklmnopqrst\",\"room\":\"r1\","
                         "\"requestId\":\"q\"}",
                         &sc, &m, &c),
                     0);
    assert_true(m.legacy);
    str_is(m.rooms[0], "abcdefghijklmnopqrst");
    str_is(m.targets[0], "r1");
    free(c);

    assert_int_equal(
        req("{\"uid\":\"fY_sjB\",\"requestId\":\"FWTbC_\",\"type\":5,\"opts\":{\"rooms\":"
            "[\"chat.user.123\"],\"except\":[]}}",
            &sc, &m, &c),
        0);
    assert_int_equal(m.op, ADAPTER_OP_FETCH);
    free(c);

    assert_int_equal(req("{\"uid\":\"fY_sjB\",\"type\":6,\"data\":[\"hello-servers\",1,\"two\"],"
                         "\"requestId\":\"h\"}",
                         &sc, &m, &c),
                     0);
    assert_int_equal(m.op, ADAPTER_OP_SERVER_SIDE_EMIT);
    assert_int_equal(m.data_json_len, strlen("[\"hello-servers\",1,\"two\"]"));
    assert_memory_equal(m.data_json, "[\"hello-servers\",1,\"two\"]", m.data_json_len);
    free(c);

    /* escaped strings are decoded; responses and unknown types are no-ops */
    assert_int_equal(
        req("{\"type\":0,\"requestId\":\"a\\\"b\",\"rooms\":[\"\\u00e9\"]}", &sc, &m, &c), 0);
    str_is(m.request_id, "a\"b");
    str_is(m.rooms[0], "\xc3\xa9");
    free(c);
    assert_int_equal(req("{\"type\":8,\"requestId\":\"x\",\"clientCount\":1}", &sc, &m, &c), 0);
    assert_int_equal(m.op, ADAPTER_OP_NONE);
    free(c);
    buf_free(&sc);
}

/* msgpack {uid, requestId, type:7, packet:{type:2,data,nsp}, opts:{rooms,except,flags:{timeout}}}
 */
static void encode_type7(buf_t *b)
{
    mpack_write_map(b, 5);
    mpack_write_str(b, "uid", 3);
    mpack_write_str(b, "fY_sjB", 6);
    mpack_write_str(b, "requestId", 9);
    mpack_write_str(b, "21HCF7", 6);
    mpack_write_str(b, "type", 4);
    mpack_write_uint(b, 7);
    mpack_write_str(b, "packet", 6);
    mpack_write_map(b, 3);
    mpack_write_str(b, "type", 4);
    mpack_write_uint(b, 2);
    mpack_write_str(b, "data", 4);
    mpack_from_json(b, "[\"ack-req\",\"q\"]", 15);
    mpack_write_str(b, "nsp", 3);
    mpack_write_str(b, "/", 1);
    mpack_write_str(b, "opts", 4);
    mpack_write_map(b, 3);
    mpack_write_str(b, "rooms", 5);
    mpack_write_array(b, 1);
    mpack_write_str(b, "r", 1);
    mpack_write_str(b, "except", 6);
    mpack_write_array(b, 0);
    mpack_write_str(b, "flags", 5);
    mpack_write_map(b, 1);
    mpack_write_str(b, "timeout", 7);
    mpack_write_uint(b, 1000);
}

static void test_broadcast_with_ack_msgpack(void **state)
{
    (void)state;
    buf_t b, sc, text;
    buf_init(&b);
    buf_init(&sc);
    buf_init(&text);
    encode_type7(&b);
    adapter_msg_t m;
    uint8_t *c;
    assert_int_equal(dec(adapter_msg_decode_request, b.data, b.len, &sc, &m, &c), 0);
    assert_int_equal(m.op, ADAPTER_OP_BROADCAST);
    str_is(m.request_id, "21HCF7");
    assert_int_equal(m.timeout_ms, 1000);
    assert_int_equal(adapter_msg_sio_text_ack(&text, &m, 1000000007), 0);
    assert_string_equal(text.data, "421000000007[\"ack-req\",\"q\"]");
    free(c);
    /* every strict prefix fails cleanly */
    for (size_t n = 0; n < b.len; n++) {
        int rc = dec(adapter_msg_decode_request, b.data, n, &sc, &m, &c);
        assert_int_not_equal(rc, 0);
        free(c);
    }
    buf_free(&b);
    buf_free(&sc);
    buf_free(&text);
}

static void test_cluster_messages(void **state)
{
    (void)state;
    buf_t sc, text;
    buf_init(&sc);
    buf_init(&text);
    adapter_msg_t m;
    uint8_t *c;

    assert_int_equal(
        cluster("{\"type\":3,\"data\":{\"packet\":{\"type\":2,\"data\":[\"room:message\","
                "{\"id\":1,\"text\":\"hi\"}]},\"opts\":{\"rooms\":[\"chat.user.123\"],"
                "\"except\":[],\"flags\":{}}},\"uid\":\"8ae8271815577a7e\",\"nsp\":\"/\"}",
                &sc, &m, &c),
        0);
    assert_int_equal(m.op, ADAPTER_OP_BROADCAST);
    str_is(m.uid, "8ae8271815577a7e");
    str_is(m.nsp, "/");
    assert_int_equal(m.request_id.len, 0);
    str_is(m.rooms[0], "chat.user.123");
    assert_int_equal(adapter_msg_sio_text(&text, &m), 0);
    assert_string_equal(text.data, "42[\"room:message\",{\"id\":1,\"text\":\"hi\"}]");
    free(c);

    assert_int_equal(
        cluster("{\"type\":3,\"data\":{\"packet\":{\"type\":2,\"data\":[\"ack-req\",\"q\"]},"
                "\"requestId\":\"c9e9db9d2bbb4083\",\"opts\":{\"rooms\":[],\"except\":[],"
                "\"flags\":{\"timeout\":1000,\"volatile\":true}}},\"uid\":\"a\",\"nsp\":\"/\"}",
                &sc, &m, &c),
        0);
    str_is(m.request_id, "c9e9db9d2bbb4083");
    assert_int_equal(m.timeout_ms, 1000);
    assert_true(m.flag_volatile);
    free(c);

    assert_int_equal(
        cluster("{\"type\":4,\"data\":{\"opts\":{\"rooms\":[\"chat.user.123\"],\"except\":[],"
                "\"flags\":{}},\"rooms\":[\"joined-room\"]},\"uid\":\"a\",\"nsp\":\"/\"}",
                &sc, &m, &c),
        0);
    assert_int_equal(m.op, ADAPTER_OP_JOIN);
    str_is(m.targets[0], "joined-room");
    free(c);

    assert_int_equal(
        cluster("{\"type\":7,\"data\":{\"opts\":{\"rooms\":[\"r\"],\"except\":[],\"flags\":{}},"
                "\"requestId\":\"ad51\"},\"uid\":\"a\",\"nsp\":\"/admin\"}",
                &sc, &m, &c),
        0);
    assert_int_equal(m.op, ADAPTER_OP_FETCH);
    str_is(m.nsp, "/admin");
    free(c);

    assert_int_equal(cluster("{\"type\":9,\"data\":{\"packet\":[\"hello\",1],\"requestId\":\"r\"},"
                             "\"uid\":\"a\",\"nsp\":\"/\"}",
                             &sc, &m, &c),
                     0);
    assert_int_equal(m.op, ADAPTER_OP_SERVER_SIDE_EMIT);
    free(c);

    /* responses are no-ops here; binary (msgpack) messages are not supported */
    assert_int_equal(
        cluster("{\"type\":11,\"data\":{\"requestId\":\"x\",\"clientCount\":1},\"uid\":\"a\","
                "\"nsp\":\"/\"}",
                &sc, &m, &c),
        0);
    assert_int_equal(m.op, ADAPTER_OP_NONE);
    free(c);
    /* msgpack (binary content) is decoded too: a truncated map is malformed */
    assert_int_equal(dec(adapter_msg_decode_cluster, "\x84\xa4type\x03", 7, &sc, &m, &c), -EPROTO);
    free(c);
    buf_free(&sc);
    buf_free(&text);
}

static void test_malformed_json(void **state)
{
    (void)state;
    static const char *bad_req[] = {
        "",
        "{",
        "{\"type\":1",
        "[1,2]",
        "{\"uid\":\"u\"}",  /* no type */
        "{\"type\":\"1\"}", /* type not a number */
        "{\"type\":1.5}",   /* not an integer */
        "{\"type\":-1}",
        "{\"type\":5}",                                     /* fetch without opts */
        "{\"type\":5,\"opts\":[]}",                         /* opts not an object */
        "{\"type\":5,\"opts\":{\"rooms\":\"r\"}}",          /* rooms not an array */
        "{\"type\":5,\"opts\":{\"rooms\":[1]}}",            /* room not a string */
        "{\"type\":2,\"opts\":{\"rooms\":[]}}",             /* join without rooms */
        "{\"type\":6,\"data\":\"x\"}",                      /* event not an array */
        "{\"type\":7,\"opts\":{},\"packet\":{\"type\":2}}", /* no requestId */
        "{\"type\":0,\"uid\":7}",                           /* uid not a string */
        "{\"type\":1}trailing",
    };
    static const char *bad_cluster[] = {
        "{\"type\":3,\"uid\":\"a\"}",                        /* no nsp */
        "{\"type\":3,\"nsp\":\"/\"}",                        /* no data */
        "{\"type\":3,\"data\":{\"opts\":{}},\"nsp\":\"/\"}", /* no packet */
        "{\"type\":3,\"data\":{\"packet\":1,\"opts\":{}},\"nsp\":\"/\"}",
        "{\"type\":3,\"data\":{\"packet\":{\"type\":9},\"opts\":{}},\"nsp\":\"/\"}",
        "{\"type\":4,\"data\":{\"opts\":{}},\"nsp\":\"/\"}",   /* join without rooms */
        "{\"type\":7,\"data\":{\"opts\":{}},\"nsp\":\"/\"}",   /* fetch without requestId */
        "{\"type\":9,\"data\":{\"packet\":{}},\"nsp\":\"/\"}", /* event not an array */
        "{\"type\":3,\"data\":[],\"nsp\":\"/\"}",
        "{\"type\":3,\"data\":{},\"nsp\":1}",
        "not json",
    };
    buf_t sc;
    buf_init(&sc);
    adapter_msg_t m;
    uint8_t *c;
    for (size_t i = 0; i < sizeof(bad_req) / sizeof(bad_req[0]); i++) {
        int rc = req(bad_req[i], &sc, &m, &c);
        if (rc == 0)
            fail_msg("request accepted: %s", bad_req[i]);
        assert_int_equal(m.op, ADAPTER_OP_NONE);
        free(c);
    }
    for (size_t i = 0; i < sizeof(bad_cluster) / sizeof(bad_cluster[0]); i++) {
        int rc = cluster(bad_cluster[i], &sc, &m, &c);
        if (rc == 0)
            fail_msg("cluster message accepted: %s", bad_cluster[i]);
        free(c);
    }
    /* every strict prefix of a valid message fails */
    const char *ok =
        "{\"type\":4,\"data\":{\"opts\":{\"rooms\":[\"a\"]},\"rooms\":[\"b\"]},\"uid\":\"a\","
        "\"nsp\":\"/\"}";
    for (size_t n = 0; n < strlen(ok); n++) {
        assert_int_not_equal(dec(adapter_msg_decode_cluster, ok, n, &sc, &m, &c), 0);
        free(c);
    }
    buf_free(&sc);
}

static void test_oversized(void **state)
{
    (void)state;
    buf_t j, sc;
    buf_init(&j);
    buf_init(&sc);
    buf_puts(&j, "{\"type\":5,\"requestId\":\"r\",\"opts\":{\"rooms\":[");
    for (int i = 0; i <= ADAPTER_MSG_MAX_ROOMS; i++)
        buf_printf(&j, "%s\"r%d\"", i ? "," : "", i);
    buf_puts(&j, "]}}");
    adapter_msg_t m;
    uint8_t *c;
    assert_int_equal(req(j.data, &sc, &m, &c), -E2BIG);
    free(c);
    /* nesting deeper than the JSON limit */
    buf_reset(&j);
    buf_puts(&j, "{\"type\":6,\"data\":");
    for (int i = 0; i < 200; i++)
        buf_putc(&j, '[');
    for (int i = 0; i < 200; i++)
        buf_putc(&j, ']');
    buf_putc(&j, '}');
    assert_int_equal(req(j.data, &sc, &m, &c), -EPROTO);
    free(c);
    buf_free(&j);
    buf_free(&sc);
}

static void test_wrong_typed_msgpack_requests(void **state)
{
    (void)state;
    buf_t b, sc;
    buf_init(&b);
    buf_init(&sc);
    adapter_msg_t m;
    uint8_t *c;
    /* type 7 with type as a string */
    mpack_write_map(&b, 1);
    mpack_write_str(&b, "type", 4);
    mpack_write_str(&b, "7", 1);
    assert_int_equal(dec(adapter_msg_decode_request, b.data, b.len, &sc, &m, &c), -EPROTO);
    free(c);
    /* an array, not a map */
    buf_reset(&b);
    mpack_write_array(&b, 1);
    mpack_write_uint(&b, 7);
    assert_int_equal(dec(adapter_msg_decode_request, b.data, b.len, &sc, &m, &c), -EPROTO);
    free(c);
    /* type 7 whose opts is an array */
    buf_reset(&b);
    mpack_write_map(&b, 4);
    mpack_write_str(&b, "type", 4);
    mpack_write_uint(&b, 7);
    mpack_write_str(&b, "requestId", 9);
    mpack_write_str(&b, "x", 1);
    mpack_write_str(&b, "packet", 6);
    mpack_write_map(&b, 1);
    mpack_write_str(&b, "type", 4);
    mpack_write_uint(&b, 2);
    mpack_write_str(&b, "opts", 4);
    mpack_write_array(&b, 0);
    assert_int_equal(dec(adapter_msg_decode_request, b.data, b.len, &sc, &m, &c), -EPROTO);
    free(c);
    /* trailing byte */
    buf_reset(&b);
    encode_type7(&b);
    buf_putc(&b, 0);
    assert_int_equal(dec(adapter_msg_decode_request, b.data, b.len, &sc, &m, &c), -EPROTO);
    free(c);
    buf_free(&b);
    buf_free(&sc);
}

static void resp_is(adapter_resp_t kind, const char *uid, const char *body, uint64_t count,
                    const char *want)
{
    buf_t b;
    buf_init(&b);
    adapter_str_t rid = {"0OhJKx", 6};
    assert_int_equal(adapter_msg_encode_response(&b, kind, uid != NULL, uid, uid ? strlen(uid) : 0,
                                                 "/", 1, &rid, body, body ? strlen(body) : 0,
                                                 count),
                     0);
    assert_string_equal(b.data, want);
    buf_free(&b);
}

static void test_responses(void **state)
{
    (void)state;
    resp_is(ADAPTER_RESP_ALL_ROOMS, NULL, "[\"a\",\"b\"]", 0,
            "{\"requestId\":\"0OhJKx\",\"rooms\":[\"a\",\"b\"]}");
    resp_is(ADAPTER_RESP_SOCKETS, NULL, NULL, 0, "{\"requestId\":\"0OhJKx\"}");
    resp_is(ADAPTER_RESP_FETCH, NULL, "[]", 0, "{\"requestId\":\"0OhJKx\",\"sockets\":[]}");
    resp_is(ADAPTER_RESP_SSE, NULL, NULL, 0, "{\"type\":6,\"requestId\":\"0OhJKx\"}");
    resp_is(ADAPTER_RESP_CLIENT_COUNT, NULL, NULL, 3,
            "{\"type\":8,\"requestId\":\"0OhJKx\",\"clientCount\":3}");
    resp_is(ADAPTER_RESP_CLIENT_COUNT, "8ae8271815577a7e", NULL, 1,
            "{\"type\":11,\"data\":{\"requestId\":\"0OhJKx\",\"clientCount\":1},"
            "\"uid\":\"8ae8271815577a7e\",\"nsp\":\"/\"}");
    resp_is(ADAPTER_RESP_BROADCAST_ACK, "u", "\"client-ack:q\"", 0,
            "{\"type\":12,\"data\":{\"requestId\":\"0OhJKx\",\"packet\":\"client-ack:q\"},"
            "\"uid\":\"u\",\"nsp\":\"/\"}");
    resp_is(ADAPTER_RESP_FETCH, "u", "[]", 0,
            "{\"type\":8,\"data\":{\"requestId\":\"0OhJKx\",\"sockets\":[]},\"uid\":\"u\",\"nsp\":"
            "\"/\"}");
    resp_is(ADAPTER_RESP_SSE, "u", NULL, 0,
            "{\"type\":10,\"data\":{\"requestId\":\"0OhJKx\"},\"uid\":\"u\",\"nsp\":\"/\"}");

    /* classic BROADCAST_ACK is msgpack {type:9, requestId, packet} */
    buf_t b;
    buf_init(&b);
    adapter_str_t rid = {"r", 1};
    assert_int_equal(adapter_msg_encode_response(&b, ADAPTER_RESP_BROADCAST_ACK, false, NULL, 0,
                                                 "/", 1, &rid, "\"ok\"", 4, 0),
                     0);
    static const uint8_t want[] = {0x83, 0xa4, 't', 'y', 'p', 'e', 0x09, 0xa9, 'r', 'e',
                                   'q',  'u',  'e', 's', 't', 'I', 'd',  0xa1, 'r', 0xa6,
                                   'p',  'a',  'c', 'k', 'e', 't', 0xa2, 'o',  'k'};
    assert_int_equal(b.len, sizeof(want));
    assert_memory_equal(b.data, want, sizeof(want));
    /* classic listings name their responder last, other classic responses never */
    buf_reset(&b);
    assert_int_equal(adapter_msg_encode_response(&b, ADAPTER_RESP_ALL_ROOMS, false, "w1", 2, "/", 1,
                                                 &rid, "[\"a\"]", 5, 0),
                     0);
    assert_string_equal(b.data, "{\"requestId\":\"r\",\"rooms\":[\"a\"],\"uid\":\"w1\"}");
    buf_reset(&b);
    assert_int_equal(adapter_msg_encode_response(&b, ADAPTER_RESP_CLIENT_COUNT, false, "w1", 2, "/",
                                                 1, &rid, NULL, 0, 2),
                     0);
    assert_string_equal(b.data, "{\"type\":8,\"requestId\":\"r\",\"clientCount\":2}");
    /* sharded has no allRooms nor a response without uid; an invalid body leaves out unchanged */
    buf_reset(&b);
    assert_int_equal(adapter_msg_encode_response(&b, ADAPTER_RESP_FETCH, true, NULL, 0, "/", 1,
                                                 &rid, "[]", 2, 0),
                     -EINVAL);
    buf_reset(&b);
    assert_int_equal(adapter_msg_encode_response(&b, ADAPTER_RESP_ALL_ROOMS, true, "u", 1, "/", 1,
                                                 &rid, "[]", 2, 0),
                     -EINVAL);
    assert_int_equal(b.len, 0);
    assert_int_equal(adapter_msg_encode_response(&b, ADAPTER_RESP_FETCH, false, NULL, 0, "/", 1,
                                                 &rid, "[1,", 3, 0),
                     -EINVAL);
    assert_int_equal(b.len, 0);
    buf_free(&b);
}

/* A classic request without requestId is still answered (as Node does, with requestId
 * undefined): its absent id is {NULL, 0} and is written as "" (clang's UBSan flagged the offset
 * json_write_string applied to NULL; found by fuzz_adapter_receive). */
static void test_response_without_request_id(void **state)
{
    (void)state;
    static const char req[] = "{\"uid\":\"u\",\"type\":1}";
    buf_t sc, b;
    buf_init(&sc);
    buf_init(&b);
    adapter_msg_t m;
    assert_int_equal(adapter_msg_decode_request((const uint8_t *)req, sizeof(req) - 1, &sc, &m), 0);
    assert_null(m.request_id.p);
    assert_int_equal(m.request_id.len, 0);
    assert_int_equal(adapter_msg_encode_response(&b, ADAPTER_RESP_SOCKETS, false, "w", 1, "/", 1,
                                                 &m.request_id, "[]", 2, 0),
                     0);
    assert_string_equal(b.data, "{\"requestId\":\"\",\"sockets\":[],\"uid\":\"w\"}");
    buf_free(&sc);
    buf_free(&b);
}

static void test_cluster_broadcast_encoding(void **state)
{
    (void)state;
    buf_t b;
    buf_init(&b);
    adapter_str_t room = {"chat.user.123", 13};
    const char *data = "[\"room:message\", {\"id\":1,\"text\":\"hi\"}]";
    assert_int_equal(adapter_msg_encode_cluster_broadcast(&b, "8ae8271815577a7e", 16, "/", 1, data,
                                                          strlen(data), &room, 1),
                     0);
    assert_string_equal(
        b.data, "{\"type\":3,\"data\":{\"packet\":{\"type\":2,\"data\":[\"room:message\",{\"id\":1,"
                "\"text\":\"hi\"}]},\"opts\":{\"rooms\":[\"chat.user.123\"],\"except\":[],"
                "\"flags\":{}}},\"uid\":\"8ae8271815577a7e\",\"nsp\":\"/\"}");
    /* what this server sends, it decodes to the same broadcast */
    buf_t sc;
    buf_init(&sc);
    adapter_msg_t m;
    assert_int_equal(adapter_msg_decode_cluster((const uint8_t *)b.data, b.len, &sc, &m), 0);
    assert_int_equal(m.op, ADAPTER_OP_BROADCAST);
    str_is(m.rooms[0], "chat.user.123");
    size_t len = b.len;
    assert_int_equal(adapter_msg_encode_cluster_broadcast(&b, "u", 1, "/", 1, "[1,", 3, &room, 1),
                     -EINVAL);
    assert_int_equal(b.len, len);
    /* this process's own compact JSON is copied as is: the same bytes, no second pass */
    const char *compact = "[\"room:message\",{\"id\":1,\"text\":\"hi\"}]";
    buf_t c;
    buf_init(&c);
    assert_int_equal(adapter_msg_encode_cluster_broadcast_compact(
                         &c, "8ae8271815577a7e", 16, "/", 1, compact, strlen(compact), &room, 1),
                     0);
    assert_int_equal(c.len, len);
    assert_memory_equal(c.data, b.data, len);
    buf_free(&c);
    buf_free(&b);
    buf_free(&sc);
}

/* s lies in the input copy or in what scratch holds now (not in storage a realloc freed); the
 * default namespace is a constant. */
static bool inside(adapter_str_t s, const uint8_t *copy, size_t n, const buf_t *sc)
{
    const char *in = (const char *)copy;
    if (!s.len || (s.len == 1 && s.p[0] == '/'))
        return true;
    return (s.p >= in && s.p + s.len <= in + n) ||
           (sc->data && s.p >= sc->data && s.p + s.len <= sc->data + sc->len);
}

/* Every string of a decoded message still points at live bytes. */
static void assert_strings_inside(const adapter_msg_t *m, const uint8_t *copy, size_t n,
                                  const buf_t *sc)
{
    assert_true(inside(m->uid, copy, n, sc));
    assert_true(inside(m->request_id, copy, n, sc));
    assert_true(inside(m->nsp, copy, n, sc));
    for (size_t i = 0; i < m->nrooms; i++)
        assert_true(inside(m->rooms[i], copy, n, sc));
    for (size_t i = 0; i < m->nexcept; i++)
        assert_true(inside(m->except[i], copy, n, sc));
    for (size_t i = 0; i < m->ntargets; i++)
        assert_true(inside(m->targets[i], copy, n, sc));
}

/* A request whose strings need decoding, the last one growing: invalid UTF-8 inside an escaped
 * string becomes U+FFFD (3 bytes per byte). What the audit sent on a request channel. */
static void growing(buf_t *j, const char *fmt_head, const char *fmt_tail)
{
    buf_reset(j);
    buf_puts(j, fmt_head);
    for (int i = 0; i < 300; i++)
        buf_putc(j, (char)0xff);
    buf_puts(j, fmt_tail);
}

static void test_decoded_strings_never_dangle(void **state)
{
    (void)state;
    buf_t j, sc;
    buf_init(&j);
    buf_init(&sc);
    adapter_msg_t m;
    uint8_t *c;
    /* classic: uid decoded first, then requestId grows past what the literals took */
    growing(&j, "{\"uid\":\"u\\n\",\"type\":1,\"requestId\":\"r\\t", "\"}");
    assert_int_equal(dec(adapter_msg_decode_request, j.data, j.len, &sc, &m, &c), 0);
    assert_strings_inside(&m, c, j.len, &sc);
    str_is(m.uid, "u\n");
    assert_int_equal(m.request_id.len, 2 + 300 * 3);
    assert_memory_equal(m.request_id.p, "r\t\xef\xbf\xbd", 5);
    free(c);
    /* sharded: uid, then nsp, then rooms growing */
    growing(&j,
            "{\"uid\":\"\\u0075\",\"nsp\":\"\\/\",\"type\":3,\"data\":{\"requestId\":\"q\\n\","
            "\"packet\":{\"type\":2,\"data\":[\"e\"]},\"opts\":{\"rooms\":[\"a\\n\",\"b\\n",
            "\"],\"except\":[]}}}");
    assert_int_equal(dec(adapter_msg_decode_cluster, j.data, j.len, &sc, &m, &c), 0);
    assert_strings_inside(&m, c, j.len, &sc);
    str_is(m.uid, "u");
    str_is(m.nsp, "/");
    str_is(m.request_id, "q\n");
    assert_int_equal(m.nrooms, 2);
    str_is(m.rooms[0], "a\n");
    assert_int_equal(m.rooms[1].len, 2 + 300 * 3);
    free(c);
    buf_free(&j);
    buf_free(&sc);
}

/* Random mutations (escapes, \u escapes and bytes >= 0x80 among them) and cuts of valid
 * messages: each call either fails or yields a message whose every string points at live
 * bytes; both outcomes occur. ASan checks every read. */
static void test_fuzz_decodes_stay_in_bounds(void **state)
{
    (void)state;
    const char *seed =
        "{\"type\":3,\"data\":{\"packet\":{\"type\":2,\"data\":[\"e\",{\"a\":[1,2]}]},"
        "\"opts\":{\"rooms\":[\"r\\n\",\"\\u00e9\"],\"except\":[\"x\\t\"],\"flags\":{\"volatile\":"
        "1}},"
        "\"requestId\":\"q\\\\\"},\"uid\":\"u\\\"\",\"nsp\":\"\\/\"}";
    const char *classic = "{\"uid\":\"u\\n\",\"requestId\":\"r\\u0041\",\"type\":0,"
                          "\"rooms\":[\"a\\n\",\"b\\ud83d\\ude00\"]}";
    static const uint8_t nasty[] = {0xff, 0x80, 0xc3, 0xe2, 0xf0, '\\', 'u', '"', 'n'};
    buf_t sc, t7;
    buf_init(&sc);
    buf_init(&t7);
    encode_type7(&t7);
    unsigned seedv = 12345, ok = 0, refused = 0;
    for (int i = 0; i < 30000; i++) {
        uint8_t tmp[512];
        const char *srcs[] = {seed, classic, t7.data};
        size_t lens[] = {strlen(seed), strlen(classic), t7.len};
        int which = i % 3;
        size_t len = lens[which];
        memcpy(tmp, srcs[which], len);
        for (int k = 0; k < 3; k++) {
            seedv = seedv * 1103515245u + 12345u;
            uint8_t b =
                (seedv >> 24) & 1 ? nasty[(seedv >> 16) % sizeof(nasty)] : (uint8_t)(seedv >> 16);
            tmp[(seedv >> 8) % len] = b;
        }
        seedv = seedv * 1103515245u + 12345u;
        if ((seedv >> 20) % 3 == 0) {
            /* a run of invalid UTF-8: decodes 3 times longer than written */
            size_t at = (seedv >> 8) % len, run = 16 + (seedv >> 24) % 96;
            memset(tmp + at, 0xff, at + run > len ? len - at : run);
        }
        seedv = seedv * 1103515245u + 12345u;
        size_t cut = (seedv >> 4) % 4 ? len : (seedv >> 6) % (len + 1);
        adapter_msg_t m;
        uint8_t *c;
        for (int f = 0; f < 2; f++) {
            int rc = dec(f ? adapter_msg_decode_request : adapter_msg_decode_cluster, tmp, cut, &sc,
                         &m, &c);
            if (rc == 0) {
                assert_strings_inside(&m, c, cut, &sc);
                ok++;
            } else {
                assert_true(rc == -EPROTO || rc == -E2BIG || rc == -ENOTSUP);
                refused++;
            }
            free(c);
        }
    }
    assert_true(ok > 500);
    assert_true(refused > 1000);
    buf_free(&sc);
    buf_free(&t7);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_classic_requests),
        cmocka_unit_test(test_broadcast_with_ack_msgpack),
        cmocka_unit_test(test_cluster_messages),
        cmocka_unit_test(test_malformed_json),
        cmocka_unit_test(test_oversized),
        cmocka_unit_test(test_wrong_typed_msgpack_requests),
        cmocka_unit_test(test_responses),
        cmocka_unit_test(test_response_without_request_id),
        cmocka_unit_test(test_cluster_broadcast_encoding),
        cmocka_unit_test(test_decoded_strings_never_dangle),
        cmocka_unit_test(test_fuzz_decodes_stay_in_bounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
