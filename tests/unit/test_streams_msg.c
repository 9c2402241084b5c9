/*
 * Unit tests for common/proto/streams_msg: the Redis streams adapter's entries, pub/sub messages
 * (decoded by adapter_msg), sessions and stream names, against bytes @socket.io/redis-streams-adapter
 * 0.3.1 and @msgpack/msgpack 2.8 produce (generated with them, see the comments).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/proto/streams_msg.h"

typedef struct fx {
    buf_t scratch, bin, out, atts;
} fx_t;

static int setup(void **state)
{
    fx_t *f = test_calloc(1, sizeof(*f));
    buf_init(&f->scratch);
    buf_init(&f->bin);
    buf_init(&f->out);
    buf_init(&f->atts);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx_t *f = *state;
    buf_free(&f->scratch);
    buf_free(&f->bin);
    buf_free(&f->out);
    buf_free(&f->atts);
    test_free(f);
    return 0;
}

#define FIELD(n, v) {n, sizeof(n) - 1, v, sizeof(v) - 1}

static size_t unhex(const char *hex, uint8_t *out)
{
    size_t n = 0;
    for (; hex[0] && hex[1]; hex += 2)
        sscanf(hex, "%2hhx", &out[n++]);
    return n;
}

/* hashCode(nsp) % n as the adapter computes it (node: require(".../dist/util").hashCode) */
static void test_stream_of_a_namespace(void **state)
{
    (void)state;
    assert_int_equal(streams_msg_stream_index("/", 1, 3), 47 % 3);
    assert_int_equal(streams_msg_stream_index("/admin", 6, 7), 4);
    assert_int_equal(streams_msg_stream_index("/chat", 5, 16), 7);
    assert_int_equal(streams_msg_stream_index("/\xc3\xbcn\xc3\xaf", 6, 16), 14); /* "/ünï" */
    assert_int_equal(streams_msg_stream_index("/\xf0\x9f\x98\x80", 5, 7), 5); /* a surrogate pair */
    static const char long_nsp[] = "/a-very-long-namespace-name-that-overflows-int32-arith";
    assert_int_equal(streams_msg_stream_index(long_nsp, sizeof(long_nsp) - 1, 3), -1);
    assert_int_equal(streams_msg_stream_index(long_nsp, sizeof(long_nsp) - 1, 16), -10);
    assert_int_equal(streams_msg_stream_index("/x", 2, 1), 0);
    buf_t b;
    buf_init(&b);
    streams_msg_stream_name(&b, "socket.io", 1, "/admin", 6);
    assert_string_equal(b.data, "socket.io");
    buf_reset(&b);
    streams_msg_stream_name(&b, "socket.io", 3, long_nsp, sizeof(long_nsp) - 1);
    assert_string_equal(b.data, "socket.io--1");
    buf_free(&b);
    /* invalid UTF-8 never reads past the end */
    (void)streams_msg_stream_index("\xf0\x9f", 2, 5);
    (void)streams_msg_stream_index("\xe2\x28\xa1\xc0\xaf\xed\xa0\x80", 8, 5);
}

/* XADD socket.io ... uid ee034c3ef1fff8cc nsp / type 3 data {...} (docs/protocol.md §3.1) */
static void test_json_broadcast_entry(void **state)
{
    fx_t *f = *state;
    payload_field_t e[] = {
        FIELD("uid", "ee034c3ef1fff8cc"),
        FIELD("nsp", "/"),
        FIELD("type", "3"),
        FIELD("data", "{\"packet\":{\"type\":2,\"data\":[\"room:message\",{\"n\":5}]},\"opts\":"
                      "{\"rooms\":[\"chat.user.123\"],\"except\":[\"x\\u0079\"],\"flags\":{}}}"),
    };
    adapter_msg_t m;
    assert_int_equal(streams_msg_decode_entry(e, 4, &f->scratch, &f->bin, &m), 0);
    assert_int_equal(m.op, ADAPTER_OP_BROADCAST);
    assert_int_equal(m.uid.len, 16);
    assert_int_equal(m.nrooms, 1);
    assert_memory_equal(m.rooms[0].p, "chat.user.123", 13);
    assert_int_equal(m.nexcept, 1);
    assert_memory_equal(m.except[0].p, "xy", 2);
    assert_int_equal(m.request_id.len, 0);
    assert_int_equal(adapter_msg_sio_text_offset(&f->out, &m, "1795401864761-0", 15), 0);
    assert_string_equal(f->out.data, "42[\"room:message\",{\"n\":5},\"1795401864761-0\"]");
    buf_reset(&f->out);
    assert_int_equal(adapter_msg_sio_text(&f->out, &m), 0);
    assert_string_equal(f->out.data, "42[\"room:message\",{\"n\":5}]");
}

/* data = base64(encode({packet:{type:2,data:["ev",Buffer[1,2,3],{n:1}]},opts:{rooms:["r1"],
 * except:["x"],flags:{}}})): what the adapter writes when hasBinary(data) */
static void test_binary_broadcast_entry(void **state)
{
    fx_t *f = *state;
    payload_field_t e[] = {
        FIELD("type", "3"),
        FIELD("data", "gqZwYWNrZXSCpHR5cGUCpGRhdGGTomV2xAMBAgOBoW4BpG9wdHODpXJvb21zkaJyMaZleGNl"
                      "cHSRoXilZmxhZ3OA"),
        FIELD("nsp", "/admin"),
        FIELD("uid", "u"),
    };
    adapter_msg_t m;
    assert_int_equal(streams_msg_decode_entry(e, 4, &f->scratch, &f->bin, &m), 0);
    assert_int_equal(m.op, ADAPTER_OP_BROADCAST);
    assert_memory_equal(m.nsp.p, "/admin", 6);
    assert_int_equal(adapter_msg_sio_text(&f->out, &m), -ENOTSUP);
    unsigned n = 0;
    assert_int_equal(adapter_msg_sio_binary_offset(&f->out, &f->atts, &m, "9-1", 3, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(f->out.data, "451-/admin,[\"ev\",{\"_placeholder\":true,\"num\":0},"
                                     "{\"n\":1},\"9-1\"]");
    uint32_t len;
    memcpy(&len, f->atts.data, 4);
    assert_int_equal(len, 3);
    assert_memory_equal(f->atts.data + 4, "\x01\x02\x03", 3);
}

static void test_other_entries(void **state)
{
    fx_t *f = *state;
    adapter_msg_t m;
    payload_field_t join[] = {
        FIELD("uid", "a"), FIELD("nsp", "/"), FIELD("type", "4"),
        FIELD("data", "{\"opts\":{\"rooms\":[\"r\"],\"except\":[],\"flags\":{}},\"rooms\":[\"t1\","
                      "\"t2\"]}"),
    };
    assert_int_equal(streams_msg_decode_entry(join, 4, &f->scratch, &f->bin, &m), 0);
    assert_int_equal(m.op, ADAPTER_OP_JOIN);
    assert_int_equal(m.ntargets, 2);
    payload_field_t disc[] = {
        FIELD("uid", "a"), FIELD("nsp", "/"), FIELD("type", "6"),
        FIELD("data", "{\"opts\":{\"rooms\":[],\"except\":[],\"flags\":{}},\"close\":true}"),
    };
    assert_int_equal(streams_msg_decode_entry(disc, 4, &f->scratch, &f->bin, &m), 0);
    assert_int_equal(m.op, ADAPTER_OP_DISCONNECT);
    assert_true(m.close);
    /* a heartbeat-like type without data, and a type nobody acts on */
    payload_field_t hb[] = {FIELD("uid", "a"), FIELD("nsp", "/"), FIELD("type", "2")};
    assert_int_equal(streams_msg_decode_entry(hb, 3, &f->scratch, &f->bin, &m), 0);
    assert_int_equal(m.op, ADAPTER_OP_NONE);
    /* the last value of a repeated field wins, as in the adapter's object */
    payload_field_t twice[] = {FIELD("type", "4"), FIELD("uid", "a"), FIELD("nsp", "/"),
                               FIELD("type", "2")};
    assert_int_equal(streams_msg_decode_entry(twice, 4, &f->scratch, &f->bin, &m), 0);
    assert_int_equal(m.op, ADAPTER_OP_NONE);
    /* a type is 1 to 3 digits; leading zeros count for nothing, and a number no one acts on is
     * read and left alone */
    static const char *const ok_types[] = {"004", "04", "999", "0"};
    static const int ops[] = {ADAPTER_OP_JOIN, ADAPTER_OP_JOIN, ADAPTER_OP_NONE, ADAPTER_OP_NONE};
    for (size_t i = 0; i < sizeof(ok_types) / sizeof(ok_types[0]); i++) {
        join[2] = (payload_field_t){"type", 4, ok_types[i], strlen(ok_types[i])};
        assert_int_equal(streams_msg_decode_entry(join, 4, &f->scratch, &f->bin, &m), 0);
        assert_int_equal(m.op, ops[i]);
    }
}

static void test_malformed_entries(void **state)
{
    fx_t *f = *state;
    adapter_msg_t m;
    payload_field_t no_nsp[] = {FIELD("uid", "a"), FIELD("type", "3")};
    assert_int_equal(streams_msg_decode_entry(no_nsp, 2, &f->scratch, &f->bin, &m), -ENOMSG);
    payload_field_t empty_nsp[] = {FIELD("uid", "a"), FIELD("nsp", ""), FIELD("type", "3")};
    assert_int_equal(streams_msg_decode_entry(empty_nsp, 3, &f->scratch, &f->bin, &m), -ENOMSG);
    payload_field_t no_uid[] = {FIELD("nsp", "/"), FIELD("type", "3")};
    assert_int_equal(streams_msg_decode_entry(no_uid, 2, &f->scratch, &f->bin, &m), -EPROTO);
    static const char *const bad_types[] = {"", "x", "-1", "3.0", "1000", " 3", "3 ", "+3", "0003"};
    for (size_t i = 0; i < sizeof(bad_types) / sizeof(bad_types[0]); i++) {
        payload_field_t e[] = {FIELD("uid", "a"), FIELD("nsp", "/"),
                               {"type", 4, bad_types[i], strlen(bad_types[i])}};
        assert_int_equal(streams_msg_decode_entry(e, 3, &f->scratch, &f->bin, &m), -EPROTO);
    }
    static const char *const bad_data[] = {
        "{",                                       /* truncated JSON */
        "{\"packet\":{\"type\":2},\"opts\":[]}",   /* opts not an object */
        "{\"opts\":{\"rooms\":[]}}",               /* a broadcast without packet */
        "%%%%",                                    /* not base64 */
        "ew==",                                    /* base64 of "{" */
        "kQ==",                                    /* base64 of a msgpack array */
        "gqZwYWNrZXSCpHR5cGUCpGRhdGGTomV2xAMBAgOBoW4BpG9wdHOD", /* truncated msgpack */
        "gA==wA==",                                /* padding in the middle */
    };
    for (size_t i = 0; i < sizeof(bad_data) / sizeof(bad_data[0]); i++) {
        payload_field_t e[] = {FIELD("uid", "a"), FIELD("nsp", "/"), FIELD("type", "3"),
                               {"data", 4, bad_data[i], strlen(bad_data[i])}};
        assert_int_equal(streams_msg_decode_entry(e, 4, &f->scratch, &f->bin, &m), -EPROTO);
        assert_int_equal(m.op, ADAPTER_OP_NONE);
    }
}

/* The pub/sub messages: encode(message) of a ClusterAdapter message (@msgpack/msgpack). */
static void test_pubsub_messages(void **state)
{
    fx_t *f = *state;
    uint8_t b[256];
    adapter_msg_t m;
    size_t n = unhex("84a47479706507a46461746182a46f70747383a5726f6f6d7391a172a665786365707490a5"
                     "666c61677380a9726571756573744964a3616263a3756964a27531a36e7370a12f",
                     b);
    assert_int_equal(adapter_msg_decode_cluster(b, n, &f->scratch, &m), 0);
    assert_int_equal(m.op, ADAPTER_OP_FETCH);
    assert_memory_equal(m.request_id.p, "abc", 3);
    assert_memory_equal(m.uid.p, "u1", 2);
    assert_int_equal(m.nrooms, 1);
    /* serverSideEmit with a Buffer argument and an ack */
    n = unhex("84a47479706509a46461746182a9726571756573744964a27231a67061636b657492a26576c40109a3"
              "756964a27532a36e7370a12f",
              b);
    assert_int_equal(adapter_msg_decode_cluster(b, n, &f->scratch, &m), 0);
    assert_int_equal(m.op, ADAPTER_OP_SERVER_SIDE_EMIT);
    assert_memory_equal(m.request_id.p, "r1", 2);
    assert_non_null(m.data);
    /* a broadcast with acks (timeout 1000) */
    n = unhex("84a47479706503a46461746183a67061636b657482a47479706502a46461746192a17101a972657175"
              "6573744964a27271a46f70747383a5726f6f6d7390a665786365707490a5666c61677381a774696d65"
              "6f7574cd03e8a3756964a27533a36e7370a12f",
              b);
    assert_int_equal(adapter_msg_decode_cluster(b, n, &f->scratch, &m), 0);
    assert_int_equal(m.op, ADAPTER_OP_BROADCAST);
    assert_int_equal(m.timeout_ms, 1000);
    assert_memory_equal(m.request_id.p, "rq", 2);
    assert_int_equal(adapter_msg_sio_text_ack(&f->out, &m, 7), 0);
    assert_string_equal(f->out.data, "427[\"q\",1]");
    /* a response (BROADCAST_CLIENT_COUNT) asks nothing of a member */
    n = unhex("84a4747970650ba46461746182a9726571756573744964a27271ab636c69656e74436f756e7402a375"
              "6964a27534a36e7370a12f",
              b);
    assert_int_equal(adapter_msg_decode_cluster(b, n, &f->scratch, &m), 0);
    assert_int_equal(m.op, ADAPTER_OP_NONE);
}

/* SET sio:session:a8jdlPSbPplXIBqXAAAB <this> (docs/protocol.md §3.1, encoded by @msgpack/msgpack) */
static const char node_session[] =
    "hKNzaWS0MEIzc05kRHZnS3ROVkF5R0FBQUGjcGlktGE4amRsUFNiUHBsWElCcVhBQUFCpXJvb21zkrQwQjNzTmREdmdL"
    "dE5WQXlHQUFBQa1jaGF0LnVzZXIuMTIzpGRhdGGBpHVzZXKkdTEyMw==";

static void collect_room(const char *room, size_t len, void *arg)
{
    buf_t *b = arg;
    buf_append(b, room, len);
    buf_putc(b, ';');
}

static void test_session_round_trip(void **state)
{
    fx_t *f = *state;
    adapter_str_t rooms[] = {{"0B3sNdDvgKtNVAyGAAAA", 20}, {"chat.user.123", 13}};
    static const uint8_t data[] = {0x81, 0xa4, 'u', 's', 'e', 'r', 0xa4, 'u', '1', '2', '3'};
    assert_int_equal(streams_msg_encode_session(&f->out, "0B3sNdDvgKtNVAyGAAAA", 20,
                                                "a8jdlPSbPplXIBqXAAAB", 20, rooms, 2, data,
                                                sizeof(data)),
                     0);
    assert_string_equal(f->out.data, node_session);
    streams_session_t s;
    assert_int_equal(streams_msg_decode_session(node_session, strlen(node_session), &f->bin, &s),
                     0);
    assert_memory_equal(s.sid.p, "0B3sNdDvgKtNVAyGAAAA", 20);
    assert_memory_equal(s.pid.p, "a8jdlPSbPplXIBqXAAAB", 20);
    assert_int_equal(s.nrooms, 2);
    assert_int_equal(s.data_len, sizeof(data));
    assert_memory_equal(s.data, data, sizeof(data));
    buf_reset(&f->out);
    streams_msg_session_rooms(&s, collect_room, &f->out);
    assert_string_equal(f->out.data, "0B3sNdDvgKtNVAyGAAAA;chat.user.123;");
    /* streamio's own sockets carry data {} */
    buf_reset(&f->out);
    assert_int_equal(streams_msg_encode_session(&f->out, "s", 1, "p", 1, rooms, 0, NULL, 0), 0);
    assert_int_equal(streams_msg_decode_session(f->out.data, f->out.len, &f->bin, &s), 0);
    assert_int_equal(s.nrooms, 0);
    assert_int_equal(s.data_len, 1);
    assert_int_equal(s.data[0], 0x80);
}

static void test_malformed_sessions(void **state)
{
    fx_t *f = *state;
    streams_session_t s;
    static const char *const bad[] = {
        "",         /* nothing */
        "%%",       /* not base64 */
        "kA==",     /* an array, not a map */
        "g6NzaWShYaNwaWShYqVyb29tc5EB", /* rooms holds a number */
        "gqNzaWShYaNwaWShYg==",         /* no rooms */
        "g6NzaWQBo3BpZKFipXJvb21zkA==", /* sid is a number */
        "g6NzaWShYaNwaWShYqVyb29tc5A=wA==", /* trailing bytes */
        "gZCh",                         /* an array as a key */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(streams_msg_decode_session(bad[i], strlen(bad[i]), &f->bin, &s), -EPROTO);
    static const char ok[] = "g6NzaWShYaNwaWShYqVyb29tc5A="; /* {sid:"a",pid:"b",rooms:[]} */
    assert_int_equal(streams_msg_decode_session(ok, strlen(ok), &f->bin, &s), 0);
    assert_null(s.data);
}

/* shouldIncludePacket(session.rooms, opts) of the adapter's restoreSession */
static void test_which_broadcasts_a_session_missed(void **state)
{
    fx_t *f = *state;
    streams_session_t s;
    assert_int_equal(streams_msg_decode_session(node_session, strlen(node_session), &f->bin, &s),
                     0);
    adapter_msg_t m;
    memset(&m, 0, sizeof(m));
    assert_true(streams_msg_session_missed(&s, &m)); /* to everybody */
    m.rooms[0] = (adapter_str_t){"chat.user.123", 13};
    m.nrooms = 1;
    assert_true(streams_msg_session_missed(&s, &m));
    m.rooms[0] = (adapter_str_t){"0B3sNdDvgKtNVAyGAAAA", 20}; /* a socket.emit to it */
    assert_true(streams_msg_session_missed(&s, &m));
    m.rooms[0] = (adapter_str_t){"other", 5};
    assert_false(streams_msg_session_missed(&s, &m));
    m.rooms[1] = (adapter_str_t){"chat.user.123", 13};
    m.nrooms = 2;
    assert_true(streams_msg_session_missed(&s, &m));
    m.except[0] = (adapter_str_t){"0B3sNdDvgKtNVAyGAAAA", 20}; /* socket.broadcast from it */
    m.nexcept = 1;
    assert_false(streams_msg_session_missed(&s, &m));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stream_of_a_namespace),
        cmocka_unit_test_setup_teardown(test_json_broadcast_entry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_binary_broadcast_entry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_entries, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed_entries, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pubsub_messages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_session_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed_sessions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_which_broadcasts_a_session_missed, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
