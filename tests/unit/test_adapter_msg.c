/* Unit tests for worker/adapter_msg: protocol.md §4.2 captures, malformed input, client frames. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/buf.h"
#include "common/mpack.h"
#include "common/proto/adapter_msg.h"

/* io.to("chat.user.123").emit("room:message", {id:1, text:"hi"}) from a Node server, uid fY_sjB. */
static const uint8_t capture_server[90] = {
    0x93, 0xa6, 0x66, 0x59, 0x5f, 0x73, 0x6a, 0x42, 0x83, 0xa4, 0x74, 0x79, 0x70, 0x65, 0x02,
    0xa4, 0x64, 0x61, 0x74, 0x61, 0x92, 0xac, 0x72, 0x6f, 0x6f, 0x6d, 0x3a, 0x6d, 0x65, 0x73,
    0x73, 0x61, 0x67, 0x65, 0x82, 0xa2, 0x69, 0x64, 0x01, 0xa4, 0x74, 0x65, 0x78, 0x74, 0xa2,
    0x68, 0x69, 0xa3, 0x6e, 0x73, 0x70, 0xa1, 0x2f, 0x83, 0xa5, 0x72, 0x6f, 0x6f, 0x6d, 0x73,
    0x91, 0xad, 0x63, 0x68, 0x61, 0x74, 0x2e, 0x75, 0x73, 0x65, 0x72, 0x2e, 0x31, 0x32, 0x33,
    0xa6, 0x65, 0x78, 0x63, 0x65, 0x70, 0x74, 0x90, 0xa5, 0x66, 0x6c, 0x61, 0x67, 0x73, 0x80,
};

/* The same emit from @socket.io/redis-emitter: uid "emitter", opts keys rooms, flags, except. */
static const uint8_t capture_emitter[91] = {
    0x93, 0xa7, 0x65, 0x6d, 0x69, 0x74, 0x74, 0x65, 0x72, 0x83, 0xa4, 0x74, 0x79, 0x70, 0x65, 0x02,
    0xa4, 0x64, 0x61, 0x74, 0x61, 0x92, 0xac, 0x72, 0x6f, 0x6f, 0x6d, 0x3a, 0x6d, 0x65, 0x73, 0x73,
    0x61, 0x67, 0x65, 0x82, 0xa2, 0x69, 0x64, 0x01, 0xa4, 0x74, 0x65, 0x78, 0x74, 0xa2, 0x68, 0x69,
    0xa3, 0x6e, 0x73, 0x70, 0xa1, 0x2f, 0x83, 0xa5, 0x72, 0x6f, 0x6f, 0x6d, 0x73, 0x91, 0xad, 0x63,
    0x68, 0x61, 0x74, 0x2e, 0x75, 0x73, 0x65, 0x72, 0x2e, 0x31, 0x32, 0x33, 0xa5, 0x66, 0x6c, 0x61,
    0x67, 0x73, 0x80, 0xa6, 0x65, 0x78, 0x63, 0x65, 0x70, 0x74, 0x90,
};

static const char want_frame[] = "42[\"room:message\",{\"id\":1,\"text\":\"hi\"}]";

#define BYTES(...) ((const uint8_t[]){__VA_ARGS__}), sizeof((const uint8_t[]){__VA_ARGS__})

static void str_is(adapter_str_t s, const char *want)
{
    assert_int_equal(s.len, strlen(want));
    assert_memory_equal(s.p, want, s.len);
}

static void check_frame(const adapter_msg_t *m, const char *want)
{
    buf_t b;
    buf_init(&b);
    assert_int_equal(adapter_msg_sio_text(&b, m), 0);
    assert_string_equal(b.data, want);
    buf_free(&b);
}

/* Decodes from an exact-size heap copy so ASan sees any read past the end. */
static int decode(const uint8_t *p, size_t n, adapter_msg_t *m, uint8_t **copy)
{
    *copy = malloc(n ? n : 1);
    assert_non_null(*copy);
    if (n)
        memcpy(*copy, p, n);
    return adapter_msg_decode_broadcast(*copy, n, m);
}

static void test_encode_capture(void **state)
{
    (void)state;
    const char *data = "[\"room:message\",{\"id\":1,\"text\":\"hi\"}]";
    adapter_str_t room = {"chat.user.123", 13};
    buf_t b;
    buf_init(&b);
    assert_int_equal(
        adapter_msg_encode_broadcast(&b, "fY_sjB", 6, "/", 1, data, strlen(data), &room, 1), 0);
    assert_int_equal(b.len, sizeof capture_server);
    assert_memory_equal(b.data, capture_server, sizeof capture_server);
    /* Whitespace in the JSON does not change the bytes. */
    buf_reset(&b);
    const char *spaced = " [ \"room:message\" , { \"id\" : 1.0 , \"text\" : \"hi\" } ] ";
    assert_int_equal(
        adapter_msg_encode_broadcast(&b, "fY_sjB", 6, "/", 1, spaced, strlen(spaced), &room, 1), 0);
    assert_memory_equal(b.data, capture_server, sizeof capture_server);
    buf_free(&b);
}

static void test_encode_round_trip(void **state)
{
    (void)state;
    adapter_str_t rooms[3] = {{"r1", 2}, {"chat.user.123", 13}, {"", 0}};
    const char *data = "[\"news\",\"x\",[1,2.5,null],{\"é\":true}]";
    buf_t b, f;
    buf_init(&b);
    buf_init(&f);
    buf_puts(&b, "prefix");
    assert_int_equal(
        adapter_msg_encode_broadcast(&b, "abcdef", 6, "/admin", 6, data, strlen(data), rooms, 3),
        0);
    adapter_msg_t m;
    assert_int_equal(adapter_msg_decode_broadcast((const uint8_t *)b.data + 6, b.len - 6, &m), 0);
    str_is(m.uid, "abcdef");
    str_is(m.nsp, "/admin");
    assert_int_equal(m.packet_type, 2);
    assert_int_equal(m.nrooms, 3);
    str_is(m.rooms[0], "r1");
    str_is(m.rooms[1], "chat.user.123");
    str_is(m.rooms[2], "");
    assert_int_equal(m.nexcept, 0);
    assert_false(m.has_id);
    assert_false(m.flag_volatile);
    assert_false(m.flag_local);
    check_frame(&m, "42/admin,[\"news\",\"x\",[1,2.5,null],{\"é\":true}]");

    /* No rooms; invalid JSON leaves the buffer as it was. */
    buf_reset(&b);
    assert_int_equal(adapter_msg_encode_broadcast(&b, "u", 1, "/", 1, "[1]", 3, NULL, 0), 0);
    assert_int_equal(adapter_msg_decode_broadcast((const uint8_t *)b.data, b.len, &m), 0);
    assert_int_equal(m.nrooms, 0);
    size_t len = b.len;
    assert_int_equal(adapter_msg_encode_broadcast(&b, "u", 1, "/", 1, "[1,", 3, NULL, 0), -EINVAL);
    assert_int_equal(b.len, len);
    buf_free(&b);
    buf_free(&f);
}

static void check_capture(const uint8_t *cap, size_t n, const char *uid)
{
    adapter_msg_t m;
    uint8_t *copy;
    assert_int_equal(decode(cap, n, &m, &copy), 0);
    str_is(m.uid, uid);
    str_is(m.nsp, "/");
    assert_int_equal(m.packet_type, 2);
    assert_int_equal(m.nrooms, 1);
    str_is(m.rooms[0], "chat.user.123");
    assert_int_equal(m.nexcept, 0);
    assert_false(m.has_id);
    assert_false(m.flag_volatile);
    assert_false(m.flag_local);
    assert_ptr_equal(m.data, copy + (n == 90 ? 20 : 21));
    assert_int_equal(m.data_len, 27);
    check_frame(&m, want_frame);
    free(copy);
}

static void test_decode_captures(void **state)
{
    (void)state;
    check_capture(capture_server, sizeof capture_server, "fY_sjB");
    check_capture(capture_emitter, sizeof capture_emitter, "emitter");
}

static void test_every_prefix_fails(void **state)
{
    (void)state;
    const uint8_t *caps[] = {capture_server, capture_emitter};
    const size_t lens[] = {sizeof capture_server, sizeof capture_emitter};
    for (int c = 0; c < 2; c++) {
        for (size_t n = 0; n < lens[c]; n++) {
            adapter_msg_t m;
            uint8_t *copy;
            int rc = decode(caps[c], n, &m, &copy);
            free(copy);
            if (rc != -EPROTO)
                fail_msg("capture %d prefix %zu: rc %d", c, n, rc);
        }
        /* One trailing byte is rejected too (notepack throws "trailing bytes"). */
        uint8_t longer[92];
        memcpy(longer, caps[c], lens[c]);
        longer[lens[c]] = 0xc0;
        adapter_msg_t m;
        assert_int_equal(adapter_msg_decode_broadcast(longer, lens[c] + 1, &m), -EPROTO);
    }
}

static void check_decode_rc(const uint8_t *p, size_t n, int want)
{
    adapter_msg_t m;
    uint8_t *copy;
    int rc = decode(p, n, &m, &copy);
    free(copy);
    if (rc != want)
        fail_msg("rc %d, want %d", rc, want);
}

/* [uid "u", packet {type:2, data:[1]}, opts] with the given opts bytes appended. */
static int decode_with_opts(const uint8_t *opts, size_t n, adapter_msg_t *m, uint8_t *storage)
{
    static const uint8_t head[] = {0x93, 0xa1, 'u', 0x82, 0xa4, 't', 'y',  'p', 'e',
                                   0x02, 0xa4, 'd', 'a',  't',  'a', 0x91, 0x01};
    memcpy(storage, head, sizeof head);
    memcpy(storage + sizeof head, opts, n);
    return adapter_msg_decode_broadcast(storage, sizeof head + n, m);
}

static void test_wrong_types(void **state)
{
    (void)state;
    check_decode_rc(BYTES(0x80), -EPROTO);                              /* a map */
    check_decode_rc(BYTES(0x92, 0xa1, 'u', 0x80), -EPROTO);             /* 2 elements */
    check_decode_rc(BYTES(0x94, 0xa1, 'u', 0x80, 0x80, 0xc0), -EPROTO); /* 4 elements */
    check_decode_rc(BYTES(0x93, 0x01, 0x81, 0xa4, 't', 'y', 'p', 'e', 0x02, 0x80), -EPROTO);
    check_decode_rc(BYTES(0x93, 0xa1, 'u', 0x91, 0x02, 0x80), -EPROTO); /* packet an array */
    check_decode_rc(BYTES(0x93, 0xa1, 'u', 0x80, 0x80), -EPROTO);       /* no packet.type */
    check_decode_rc(BYTES(0x93, 0xa1, 'u', 0x81, 0xa4, 't', 'y', 'p', 'e', 0x07, 0x80), -EPROTO);
    check_decode_rc(BYTES(0x93, 0xa1, 'u', 0x81, 0xa4, 't', 'y', 'p', 'e', 0xff, 0x80), -EPROTO);
    check_decode_rc(BYTES(0x93, 0xa1, 'u', 0x81, 0xa4, 't', 'y', 'p', 'e', 0xa1, '2', 0x80),
                    -EPROTO);
    check_decode_rc(BYTES(0x93, 0xa1, 'u', 0x81, 0xa4, 't', 'y', 'p', 'e', 0x02, 0xc0), -EPROTO);
    check_decode_rc(BYTES(0x93, 0xa1, 'u', 0x82, 0xa4, 't', 'y', 'p', 'e', 0x02, 0xa3, 'n', 's',
                          'p', 0x01, 0x80),
                    -EPROTO);
    check_decode_rc(
        BYTES(0x93, 0xa1, 'u', 0x81, 0xa4, 't', 'y', 'p', 'e', 0x02, 0xdf, 0xff, 0xff, 0xff, 0xff),
        -EPROTO);
    check_decode_rc(BYTES(0xdd, 0xff, 0xff, 0xff, 0xff, 0xa1, 'u'), -EPROTO);
    check_decode_rc(NULL, 0, -EPROTO);

    uint8_t storage[512];
    adapter_msg_t m;
    /* Room names must be strings; rooms/except must be arrays; flags a map. */
    assert_int_equal(
        decode_with_opts(BYTES(0x81, 0xa5, 'r', 'o', 'o', 'm', 's', 0x91, 0x05), &m, storage),
        -EPROTO);
    assert_int_equal(
        decode_with_opts(BYTES(0x81, 0xa5, 'r', 'o', 'o', 'm', 's', 0xa1, 'x'), &m, storage),
        -EPROTO);
    assert_int_equal(
        decode_with_opts(BYTES(0x81, 0xa6, 'e', 'x', 'c', 'e', 'p', 't', 0x80), &m, storage),
        -EPROTO);
    assert_int_equal(
        decode_with_opts(BYTES(0x81, 0xa5, 'f', 'l', 'a', 'g', 's', 0x90), &m, storage), -EPROTO);
    assert_int_equal(decode_with_opts(BYTES(0xc0), &m, storage), -EPROTO);
}

static void test_too_many_rooms(void **state)
{
    (void)state;
    uint8_t opts[300], storage[512];
    size_t n = 0;
    opts[n++] = 0x81;
    memcpy(opts + n,
           "\xa6"
           "except",
           7);
    n += 7;
    opts[n++] = 0xdc;
    opts[n++] = 0x00;
    opts[n++] = ADAPTER_MSG_MAX_ROOMS + 1;
    for (int i = 0; i <= ADAPTER_MSG_MAX_ROOMS; i++) {
        opts[n++] = 0xa1;
        opts[n++] = 'a';
    }
    adapter_msg_t m;
    assert_int_equal(decode_with_opts(opts, n, &m, storage), -E2BIG);
    /* Exactly the maximum fits. */
    opts[10] = ADAPTER_MSG_MAX_ROOMS;
    assert_int_equal(decode_with_opts(opts, n - 2, &m, storage), 0);
    assert_int_equal(m.nexcept, ADAPTER_MSG_MAX_ROOMS);
}

static void test_opts_variants(void **state)
{
    (void)state;
    uint8_t storage[512];
    adapter_msg_t m;
    /* Missing keys are empty; unknown keys, non-string keys and other flags are skipped. */
    assert_int_equal(decode_with_opts(BYTES(0x80), &m, storage), 0);
    assert_int_equal(m.nrooms + m.nexcept, 0);
    assert_int_equal(
        decode_with_opts(BYTES(0x85, 0xa5, 'f', 'l', 'a', 'g', 's', 0x84, 0xa8, 'v', 'o', 'l', 'a',
                               't', 'i', 'l', 'e', 0xc3, 0xa8, 'c', 'o', 'm', 'p', 'r', 'e', 's',
                               's', 0xc2, 0xa5, 'l', 'o', 'c', 'a', 'l', 0x01, 0x91, 0x01, 0x80,
                               0xa6, 'e', 'x', 'c', 'e', 'p', 't', 0x92, 0xa2, 'r', '2', 0xa1, 'z',
                               0x07, 0x92, 0x01, 0x02, 0xa5, 'r', 'o', 'o', 'm', 's', 0xc0, 0xa1,
                               'x', 0x93, 0x80, 0x80, 0x80),
                         &m, storage),
        0);
    assert_true(m.flag_volatile);
    assert_true(m.flag_local);
    assert_int_equal(m.nexcept, 2);
    str_is(m.except[0], "r2");
    str_is(m.except[1], "z");
    assert_int_equal(m.nrooms, 0);
    /* Repeated keys: the last one wins. */
    assert_int_equal(
        decode_with_opts(BYTES(0x82, 0xa5, 'r', 'o', 'o', 'm', 's', 0x91, 0xa1, 'a', 0xa5, 'r', 'o',
                               'o', 'm', 's', 0x92, 0xa1, 'b', 0xa1, 'c'),
                         &m, storage),
        0);
    assert_int_equal(m.nrooms, 2);
    str_is(m.rooms[0], "b");
    /* Truthiness of flag values. */
    assert_int_equal(decode_with_opts(BYTES(0x81, 0xa5, 'f', 'l', 'a', 'g', 's', 0x82, 0xa8, 'v',
                                            'o', 'l', 'a', 't', 'i', 'l', 'e', 0xa0, 0xa5, 'l', 'o',
                                            'c', 'a', 'l', 0xd4, 0x00, 0x00),
                                      &m, storage),
                     0);
    assert_false(m.flag_volatile);
    assert_false(m.flag_local);
}

static void test_packet_variants(void **state)
{
    (void)state;
    adapter_msg_t m;
    buf_t b;
    buf_init(&b);
    /* Key order does not matter; no nsp means "/"; id is reported; unknown keys skipped. */
    const uint8_t a[] = {0x93, 0xa1, 'u', 0x84, 0xa2, 'i',  'd', 0x05, 0xa4, 'd', 'a',  't', 'a',
                         0x92, 0xa1, 'e', 0xcb, 0x3f, 0xf8, 0,   0,    0,    0,   0,    0,   0xa3,
                         'x',  'y',  'z', 0x91, 0xc0, 0xa4, 't', 'y',  'p',  'e', 0x02, 0x80};
    assert_int_equal(adapter_msg_decode_broadcast(a, sizeof a, &m), 0);
    str_is(m.nsp, "/");
    assert_true(m.has_id);
    check_frame(&m, "42[\"e\",1.5]");
    /* Binary content cannot be rendered as text. */
    const uint8_t bin[] = {0x93, 0xa1, 'u', 0x82, 0xa4, 't', 'y',  'p',  'e', 0x02, 0xa4, 'd',
                           'a',  't',  'a', 0x92, 0xa1, 'e', 0xc4, 0x03, 1,   2,    3,    0x80};
    assert_int_equal(adapter_msg_decode_broadcast(bin, sizeof bin, &m), 0);
    buf_puts(&b, "keep");
    assert_int_equal(adapter_msg_sio_text(&b, &m), -ENOTSUP);
    assert_string_equal(b.data, "keep");
    m.packet_type = 5;
    assert_int_equal(adapter_msg_sio_text(&b, &m), -ENOTSUP);
    /* Absent and nil data: no payload, like socket.io-parser. */
    const uint8_t nodata[] = {0x93, 0xa1, 'u', 0x82, 0xa4, 't',  'y', 'p', 'e',
                              0x01, 0xa3, 'n', 's',  'p',  0xa2, '/', 'a', 0x80};
    assert_int_equal(adapter_msg_decode_broadcast(nodata, sizeof nodata, &m), 0);
    assert_null(m.data);
    check_frame(&m, "41/a,");
    const uint8_t nildata[] = {0x93, 0xa1, 'u', 0x82, 0xa4, 't', 'y',  'p', 'e',
                               0x02, 0xa4, 'd', 'a',  't',  'a', 0xc0, 0x80};
    assert_int_equal(adapter_msg_decode_broadcast(nildata, sizeof nildata, &m), 0);
    check_frame(&m, "42");
    /* Malformed data that decoded as a framed value but does not convert. */
    const uint8_t badkey[] = {0x93, 0xa1, 'u', 0x82, 0xa4, 't',  'y',  'p',  'e', 0x02,
                              0xa4, 'd',  'a', 't',  'a',  0x81, 0xc0, 0x01, 0x80};
    assert_int_equal(adapter_msg_decode_broadcast(badkey, sizeof badkey, &m), 0);
    assert_int_equal(adapter_msg_sio_text(&b, &m), -EPROTO);
    assert_string_equal(b.data, "keep");
    buf_free(&b);
}

static void test_fuzz_no_crash(void **state)
{
    (void)state;
    uint8_t buf[sizeof capture_emitter];
    uint32_t x = 987654321;
    buf_t b;
    buf_init(&b);
    for (int iter = 0; iter < 50000; iter++) {
        const uint8_t *src = iter & 1 ? capture_emitter : capture_server;
        size_t n = iter & 1 ? sizeof capture_emitter : sizeof capture_server;
        memcpy(buf, src, n);
        for (int k = 0; k < 1 + iter % 4; k++) {
            x = x * 1664525 + 1013904223;
            buf[(x >> 8) % n] = (uint8_t)(x >> 24);
        }
        adapter_msg_t m;
        int rc = adapter_msg_decode_broadcast(buf, n, &m);
        assert_true(rc == 0 || rc == -EPROTO || rc == -E2BIG);
        if (rc == 0) {
            assert_true(m.nrooms <= ADAPTER_MSG_MAX_ROOMS && m.nexcept <= ADAPTER_MSG_MAX_ROOMS);
            buf_reset(&b);
            rc = adapter_msg_sio_text(&b, &m);
            assert_true(rc == 0 || rc == -EPROTO || rc == -ENOTSUP);
        }
    }
    buf_free(&b);
}

static void test_peek_broadcast_uid(void **state)
{
    (void)state;
    adapter_str_t uid;
    adapter_msg_t m;
    assert_int_equal(adapter_msg_peek_broadcast_uid(capture_server, sizeof(capture_server), &uid),
                     0);
    str_is(uid, "fY_sjB");
    assert_int_equal(adapter_msg_decode_broadcast(capture_server, sizeof(capture_server), &m), 0);
    assert_ptr_equal(uid.p, m.uid.p);
    assert_int_equal(uid.len, m.uid.len);
    assert_int_equal(
        adapter_msg_peek_broadcast_uid(capture_emitter, sizeof(capture_emitter), &uid), 0);
    str_is(uid, "emitter");

    /* what this module encodes: a 16-character uid */
    buf_t b;
    buf_init(&b);
    adapter_str_t room = {"r1", 2};
    assert_int_equal(adapter_msg_encode_broadcast(&b, "0123456789abcdef", 16, "/", 1, "[\"e\",1]",
                                                  7, &room, 1),
                     0);
    assert_int_equal(adapter_msg_peek_broadcast_uid((uint8_t *)b.data, b.len, &uid), 0);
    str_is(uid, "0123456789abcdef");
    buf_free(&b);

    /* str 8, and what is not [uid, ...]: decode it to know */
    assert_int_equal(adapter_msg_peek_broadcast_uid(BYTES(0x93, 0xd9, 0x02, 'a', 'b'), &uid), 0);
    str_is(uid, "ab");
    assert_int_equal(adapter_msg_peek_broadcast_uid(BYTES(0x93, 0xd9, 0x03, 'a', 'b'), &uid),
                     -EPROTO);
    assert_int_equal(adapter_msg_peek_broadcast_uid(BYTES(0x93, 0xa3, 'a'), &uid), -EPROTO);
    assert_int_equal(adapter_msg_peek_broadcast_uid(BYTES(0x92, 0xa1, 'a'), &uid), -EPROTO);
    assert_int_equal(adapter_msg_peek_broadcast_uid(BYTES(0x93, 0x01), &uid), -EPROTO);
    assert_int_equal(adapter_msg_peek_broadcast_uid(BYTES(0x93), &uid), -EPROTO);
    assert_int_equal(adapter_msg_peek_broadcast_uid(NULL, 0, &uid), -EPROTO);
    /* every prefix: a uid inside the bytes, or nothing */
    for (size_t n = 0; n < sizeof(capture_server); n++) {
        uint8_t *copy = malloc(n ? n : 1);
        memcpy(copy, capture_server, n);
        if (adapter_msg_peek_broadcast_uid(copy, n, &uid) == 0)
            assert_true((const uint8_t *)uid.p + uid.len <= copy + n);
        free(copy);
    }
}

static int peek_cluster(const char *s, int *type, adapter_str_t *uid)
{
    return adapter_msg_peek_cluster((const uint8_t *)s, strlen(s), type, uid);
}

static void test_peek_cluster(void **state)
{
    (void)state;
    int type = -1;
    adapter_str_t uid;
    /* protocol.md §5, a Node server's sharded broadcast */
    static const char node[] =
        "{\"type\":3,\"data\":{\"packet\":{\"type\":2,\"data\":[\"room:message\",{\"id\":1,"
        "\"text\":\"hi\"}]},\"opts\":{\"rooms\":[\"chat.user.123\"],\"except\":[],\"flags\":{}}},"
        "\"uid\":\"8ae8271815577a7e\",\"nsp\":\"/\"}";
    assert_int_equal(peek_cluster(node, &type, &uid), 0);
    assert_int_equal(type, ADAPTER_CLUSTER_BROADCAST);
    str_is(uid, "8ae8271815577a7e");
    buf_t scratch, b;
    buf_init(&scratch);
    buf_init(&b);
    adapter_msg_t m;
    assert_int_equal(
        adapter_msg_decode_cluster((const uint8_t *)node, strlen(node), &scratch, &m), 0);
    str_is(m.uid, "8ae8271815577a7e");

    /* this module's own, quotes and backslashes in the data included */
    adapter_str_t room = {"r\"1", 3};
    static const char data[] = "[\"e\",\"a\\\"uid\\\":\\\"x\\\"\"]";
    assert_int_equal(adapter_msg_encode_cluster_broadcast(&b, "0123456789abcdef", 16, "/", 1, data,
                                                          strlen(data), &room, 1),
                     0);
    buf_putc(&b, 0);
    assert_int_equal(peek_cluster(b.data, &type, &uid), 0);
    assert_int_equal(type, 3);
    str_is(uid, "0123456789abcdef");

    /* other types and namespaces, an empty namespace, the last uid of two (JSON.parse's) */
    assert_int_equal(peek_cluster("{\"type\":10,\"uid\":\"u1\",\"nsp\":\"/admin\"}", &type, &uid),
                     0);
    assert_int_equal(type, 10);
    str_is(uid, "u1");
    assert_int_equal(peek_cluster("{\"type\":3,\"uid\":\"\",\"nsp\":\"\"}", &type, &uid), 0);
    str_is(uid, "");
    assert_int_equal(
        peek_cluster("{\"type\":3,\"uid\":\"a\",\"data\":1,\"uid\":\"b\",\"nsp\":\"/\"}", &type, &uid),
        0);
    str_is(uid, "b");
    /* the type's value is below 10000, however many digits spell it */
    assert_int_equal(peek_cluster("{\"type\":9999,\"uid\":\"u\",\"nsp\":\"/\"}", &type, &uid), 0);
    assert_int_equal(type, 9999);
    assert_int_equal(peek_cluster("{\"type\":0,\"uid\":\"u\",\"nsp\":\"/\"}", &type, &uid), 0);
    assert_int_equal(type, 0);
    assert_int_equal(peek_cluster("{\"type\":000000000000000000000003,\"uid\":\"u\",\"nsp\":\"/\"}",
                                  &type, &uid),
                     0);
    assert_int_equal(type, 3);

    /* laid out otherwise: decode it to know */
    static const char *const other[] = {
        "",
        "{",
        "{\"type\":3}",
        "{\"type\":3,\"nsp\":\"/\",\"uid\":\"u\"}",
        "{\"uid\":\"u\",\"type\":3,\"nsp\":\"/\"}",
        "{\"type\":\"3\",\"uid\":\"u\",\"nsp\":\"/\"}",
        "{\"type\":3,\"uid\":\"u\\u0031\",\"nsp\":\"/\"}",
        "{\"type\":3,\"uid\":\"u\",\"nsp\":\"\\/\"}",
        "{\"type\":3,\"data\":{\"uid\":\"u\",\"nsp\":\"/\"}}",
        "{\"type\":3,\"uid\":1,\"nsp\":\"/\"}",
        "{\"type\":3,\"uid\":\"u\",\"nsp\":\"/\"} ",
        "{\"type\":12345,\"uid\":\"u\",\"nsp\":\"/\"}",
        "{\"type\":10000,\"uid\":\"u\",\"nsp\":\"/\"}",
        "{\"type\":0010000,\"uid\":\"u\",\"nsp\":\"/\"}",
        "{\"type\":18446744073709551616,\"uid\":\"u\",\"nsp\":\"/\"}",
        "{\"type\":-3,\"uid\":\"u\",\"nsp\":\"/\"}",
        "{\"type\": 3,\"uid\":\"u\",\"nsp\":\"/\"}",
        "{\"type\":3 ,\"uid\":\"u\",\"nsp\":\"/\"}",
        "{\"type\":3.0,\"uid\":\"u\",\"nsp\":\"/\"}",
        "{\"type\":,\"uid\":\"u\",\"nsp\":\"/\"}",
        "{\"type\":3\"uid\":\"u\",\"nsp\":\"/\"}",
        "{\"type\":3,\"uid\":\"nsp\":\"/\"}",
        "{\"type\":3,\"nsp\":\"/\"}",
    };
    for (size_t i = 0; i < sizeof(other) / sizeof(other[0]); i++)
        assert_int_equal(peek_cluster(other[i], &type, &uid), -EPROTO);
    /* every prefix of a real message: none ends like one */
    for (size_t n = 0; n + 1 < strlen(node); n++) {
        uint8_t *copy = malloc(n ? n : 1);
        memcpy(copy, node, n);
        assert_int_equal(adapter_msg_peek_cluster(copy, n, &type, &uid), -EPROTO);
        free(copy);
    }
    buf_free(&scratch);
    buf_free(&b);
}

/* packet.data given as msgpack gives the message the JSON would. */
static void test_encode_with_msgpack_data(void **state)
{
    (void)state;
    static const char data[] = "[\"room:message\",{\"id\":1,\"text\":\"hi\",\"n\":[1.5,null]}]";
    buf_t mp, a, b;
    buf_init(&mp);
    buf_init(&a);
    buf_init(&b);
    assert_int_equal(mpack_from_json(&mp, data, strlen(data)), 0);
    adapter_str_t rooms[2] = {{"r1", 2}, {"r2", 2}};
    assert_int_equal(
        adapter_msg_encode_broadcast(&a, "fY_sjB", 6, "/", 1, data, strlen(data), rooms, 2), 0);
    assert_int_equal(adapter_msg_encode_broadcast_mpack(&b, "fY_sjB", 6, "/", 1,
                                                        (const uint8_t *)mp.data, mp.len, rooms,
                                                        2),
                     0);
    assert_int_equal(a.len, b.len);
    assert_memory_equal(a.data, b.data, a.len);
    adapter_msg_t m;
    assert_int_equal(adapter_msg_decode_broadcast((const uint8_t *)b.data, b.len, &m), 0);
    check_frame(&m, "42[\"room:message\",{\"id\":1,\"text\":\"hi\",\"n\":[1.5,null]}]");
    buf_free(&mp);
    buf_free(&a);
    buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encode_capture),  cmocka_unit_test(test_encode_round_trip),
        cmocka_unit_test(test_decode_captures), cmocka_unit_test(test_every_prefix_fails),
        cmocka_unit_test(test_wrong_types),     cmocka_unit_test(test_too_many_rooms),
        cmocka_unit_test(test_opts_variants),   cmocka_unit_test(test_packet_variants),
        cmocka_unit_test(test_fuzz_no_crash),   cmocka_unit_test(test_peek_broadcast_uid),
        cmocka_unit_test(test_peek_cluster),    cmocka_unit_test(test_encode_with_msgpack_data),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
