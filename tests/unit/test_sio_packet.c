/* Unit tests for worker/sio_packet: protocol.md §2.2 wire table, §2.4 rejections, fuzzing. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/buf.h"
#include "common/proto/sio_packet.h"

/* Decodes a copy of `s` in a buffer of exactly its size, so ASan catches any over-read. */
static int decode(const char *s, sio_packet_t *p, char **copy)
{
    size_t n = strlen(s);
    *copy = malloc(n ? n : 1);
    assert_non_null(*copy);
    memcpy(*copy, s, n);
    return sio_packet_decode(*copy, n, p);
}

static void expect_packet(const char *wire, int type, const char *nsp, bool has_id, uint64_t id,
                          unsigned attachments, const char *data)
{
    sio_packet_t p;
    char *copy;
    int rc = decode(wire, &p, &copy);
    assert_int_equal(rc, 0);
    assert_int_equal(p.type, type);
    assert_int_equal(p.nsp_len, strlen(nsp));
    assert_memory_equal(p.nsp, nsp, p.nsp_len);
    assert_int_equal(p.has_id, has_id);
    assert_true(p.id == id);
    assert_int_equal(p.attachments, attachments);
    if (data) {
        assert_int_equal(p.data_len, strlen(data));
        assert_memory_equal(p.data, data, p.data_len);
        assert_ptr_equal(p.data, copy + strlen(wire) - strlen(data));
    } else {
        assert_int_equal(p.data_len, 0);
        assert_null(p.data);
    }
    free(copy);
}

static void expect_reject(const char *wire)
{
    sio_packet_t p;
    char *copy;
    int rc = decode(wire, &p, &copy);
    free(copy);
    if (rc != -EPROTO)
        fail_msg("accepted or wrong code %d: %s", rc, wire);
}

/* Every row of the §2.2 wire table (the text after the Engine.IO '4'). */
static void test_decode_wire_table(void **state)
{
    (void)state;
    expect_packet("0", SIO_CONNECT, "/", false, 0, 0, NULL);
    expect_packet("0{\"token\":\"123\"}", SIO_CONNECT, "/", false, 0, 0, "{\"token\":\"123\"}");
    expect_packet("0/admin,", SIO_CONNECT, "/admin", false, 0, 0, NULL);
    expect_packet("0/admin", SIO_CONNECT, "/admin", false, 0, 0, NULL);
    expect_packet("0/admin,{\"token\":\"abc\"}", SIO_CONNECT, "/admin", false, 0, 0,
                  "{\"token\":\"abc\"}");
    expect_packet("0{\"sid\":\"k30nu8aUBOsF98UyAAAA\"}", SIO_CONNECT, "/", false, 0, 0,
                  "{\"sid\":\"k30nu8aUBOsF98UyAAAA\"}");
    expect_packet("0/custom,{\"sid\":\"k30nu8aUBOsF98UyAAAA\"}", SIO_CONNECT, "/custom", false, 0,
                  0, "{\"sid\":\"k30nu8aUBOsF98UyAAAA\"}");
    expect_packet("4/random,{\"message\":\"Invalid namespace\"}", SIO_CONNECT_ERROR, "/random",
                  false, 0, 0, "{\"message\":\"Invalid namespace\"}");
    expect_packet("4/secure,{\"message\":\"not authorized\",\"data\":{\"reason\":\"token\"}}",
                  SIO_CONNECT_ERROR, "/secure", false, 0, 0,
                  "{\"message\":\"not authorized\",\"data\":{\"reason\":\"token\"}}");
    expect_packet("1", SIO_DISCONNECT, "/", false, 0, 0, NULL);
    expect_packet("1/admin,", SIO_DISCONNECT, "/admin", false, 0, 0, NULL);
    expect_packet("2[\"foo\"]", SIO_EVENT, "/", false, 0, 0, "[\"foo\"]");
    expect_packet("2/admin,[\"bar\"]", SIO_EVENT, "/admin", false, 0, 0, "[\"bar\"]");
    expect_packet("212[\"foo\"]", SIO_EVENT, "/", true, 12, 0, "[\"foo\"]");
    expect_packet("3/admin,13[\"bar\"]", SIO_ACK, "/admin", true, 13, 0, "[\"bar\"]");
    expect_packet("51-[\"baz\",{\"_placeholder\":true,\"num\":0}]", SIO_BINARY_EVENT, "/", false, 0,
                  1, "[\"baz\",{\"_placeholder\":true,\"num\":0}]");
    expect_packet("61-/admin,1[{\"_placeholder\":true,\"num\":0}]", SIO_BINARY_ACK, "/admin", true,
                  1, 1, "[{\"_placeholder\":true,\"num\":0}]");
}

/* §2.4: the rows the decoder decides; the others are connection state, checked here to decode. */
static void test_decode_rejection_table(void **state)
{
    (void)state;
    expect_reject("abc");
    expect_reject("2{}");
    expect_reject("2abc[\"message-with-ack\",1,\"2\",{\"3\":[false]}]");
    expect_reject("2[]");
    expect_reject("2[\"disconnect\"]");
    expect_reject("0\"abc\"");
    /* Valid packets whose refusal depends on session state (caller's job). */
    expect_packet("2[\"message\",1]", SIO_EVENT, "/", false, 0, 0, "[\"message\",1]");
    expect_packet("0/random", SIO_CONNECT, "/random", false, 0, 0, NULL);
}

/* The §7.3 conformance-suite packets, client to server. */
static void test_decode_suite_packets(void **state)
{
    (void)state;
    expect_packet("2[\"message\",1,\"2\",{\"3\":[true]}]", SIO_EVENT, "/", false, 0, 0,
                  "[\"message\",1,\"2\",{\"3\":[true]}]");
    expect_packet("2456[\"message-with-ack\",1,\"2\",{\"3\":[false]}]", SIO_EVENT, "/", true, 456,
                  0, "[\"message-with-ack\",1,\"2\",{\"3\":[false]}]");
    expect_packet("52-[\"message\",{\"_placeholder\":true,\"num\":0},"
                  "{\"_placeholder\":true,\"num\":1}]",
                  SIO_BINARY_EVENT, "/", false, 0, 2,
                  "[\"message\",{\"_placeholder\":true,\"num\":0},"
                  "{\"_placeholder\":true,\"num\":1}]");
    expect_packet("52-789[\"message-with-ack\",{\"_placeholder\":true,\"num\":0}]",
                  SIO_BINARY_EVENT, "/", true, 789, 2,
                  "[\"message-with-ack\",{\"_placeholder\":true,\"num\":0}]");
    expect_packet("0/custom,", SIO_CONNECT, "/custom", false, 0, 0, NULL);
    expect_packet("1/custom", SIO_DISCONNECT, "/custom", false, 0, 0, NULL);
}

static void test_decode_type(void **state)
{
    (void)state;
    sio_packet_t p;
    assert_int_equal(sio_packet_decode("", 0, &p), -EPROTO);
    expect_reject("7");
    expect_reject("9[\"a\"]");
    expect_reject("/");
    expect_reject("-1");
    expect_reject(" 0");
    assert_int_equal(sio_packet_decode("0\0", 2, &p), -EPROTO);
}

static void test_decode_connect_rules(void **state)
{
    (void)state;
    expect_packet("0{}", SIO_CONNECT, "/", false, 0, 0, "{}");
    expect_reject("0[]");
    expect_reject("0null");
    expect_reject("0-1");
    expect_packet("01", SIO_CONNECT, "/", true, 1, 0, NULL); /* a digit run is an id, as in Node */
    expect_reject("0true");
    expect_reject("0{");
    expect_reject("0{}}");
    expect_reject("0/admin,\"x\"");
    /* The namespace runs to the first ',': with none, everything is namespace (as in Node). */
    expect_packet("0/admin{\"a\":1}", SIO_CONNECT, "/admin{\"a\":1}", false, 0, 0, NULL);
    expect_packet("0/,", SIO_CONNECT, "/", false, 0, 0, NULL);
    expect_packet("0/a/b,{\"x\":[1,2]}", SIO_CONNECT, "/a/b", false, 0, 0, "{\"x\":[1,2]}");
}

static void test_decode_disconnect_rules(void **state)
{
    (void)state;
    expect_reject("1{}");
    expect_reject("1[]");
    expect_reject("1/admin,[\"x\"]");
    expect_reject("1\"x\"");
    /* A digit run is an ack id even where no payload may follow. */
    expect_packet("17", SIO_DISCONNECT, "/", true, 7, 0, NULL);
}

static void test_decode_event_rules(void **state)
{
    (void)state;
    static const char *const reserved[] = {"connect",       "connect_error", "disconnect",
                                           "disconnecting", "newListener",   "removeListener"};
    char wire[64];
    for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++) {
        snprintf(wire, sizeof(wire), "2[\"%s\",1]", reserved[i]);
        expect_reject(wire);
        snprintf(wire, sizeof(wire), "5/x,3-1[\"%s\"]", reserved[i]);
        expect_reject(wire);
    }
    /* Names are compared after unescaping, and must match exactly. */
    expect_reject("2[\"\\u0063onnect\"]");
    expect_reject("2[\"disconnect\\u0069ng\"]");
    expect_reject("2[\"new\\u004cistener\"]");
    expect_packet("2[\"Connect\"]", SIO_EVENT, "/", false, 0, 0, "[\"Connect\"]");
    expect_packet("2[\"connect \"]", SIO_EVENT, "/", false, 0, 0, "[\"connect \"]");
    expect_packet("2[\"connec\"]", SIO_EVENT, "/", false, 0, 0, "[\"connec\"]");
    expect_packet("2[\"connect\\n\"]", SIO_EVENT, "/", false, 0, 0, "[\"connect\\n\"]");
    expect_packet("2[\"connect\\u0000\"]", SIO_EVENT, "/", false, 0, 0, "[\"connect\\u0000\"]");
    expect_packet("2[\"removeListenerX\"]", SIO_EVENT, "/", false, 0, 0, "[\"removeListenerX\"]");
    expect_packet("2[\"\"]", SIO_EVENT, "/", false, 0, 0, "[\"\"]");
    expect_packet("2[\"\\u00e9\"]", SIO_EVENT, "/", false, 0, 0, "[\"\\u00e9\"]");
    expect_packet("2[\"connected\"]", SIO_EVENT, "/", false, 0, 0, "[\"connected\"]");
    /* First element: a number is fine, other types are not. */
    expect_packet("2[1]", SIO_EVENT, "/", false, 0, 0, "[1]");
    expect_packet("2[-1.5e3,\"x\"]", SIO_EVENT, "/", false, 0, 0, "[-1.5e3,\"x\"]");
    expect_reject("2[null]");
    expect_reject("2[true]");
    expect_reject("2[false]");
    expect_reject("2[{}]");
    expect_reject("2[[\"a\"]]");
    /* Payload must be one complete array. */
    expect_reject("2");
    expect_reject("2/admin,");
    expect_reject("212");
    expect_reject("2\"foo\"");
    expect_reject("2[\"foo\"");
    expect_reject("2[\"foo\"]]");
    expect_reject("2[\"foo\"]x");
    expect_reject("2[\"foo\",]");
    expect_reject("2['foo']");
    expect_reject("2/admin[\"x\"]");
}

static void test_decode_ack_rules(void **state)
{
    (void)state;
    expect_packet("30[]", SIO_ACK, "/", true, 0, 0, "[]");
    expect_packet("3456[1,\"2\",{\"3\":[false]}]", SIO_ACK, "/", true, 456, 0,
                  "[1,\"2\",{\"3\":[false]}]");
    expect_packet("37[null]", SIO_ACK, "/", true, 7, 0, "[null]");
    expect_packet("3[]", SIO_ACK, "/", false, 0, 0, "[]");
    expect_reject("3");
    expect_reject("37");
    expect_reject("37{}");
    expect_reject("37\"x\"");
    expect_reject("37null");
    expect_packet("61-0[{\"_placeholder\":true,\"num\":0}]", SIO_BINARY_ACK, "/", true, 0, 1,
                  "[{\"_placeholder\":true,\"num\":0}]");
    expect_reject("61-0{}");
}

static void test_decode_connect_error_rules(void **state)
{
    (void)state;
    expect_packet("4\"legacy\"", SIO_CONNECT_ERROR, "/", false, 0, 0, "\"legacy\"");
    expect_packet("4{}", SIO_CONNECT_ERROR, "/", false, 0, 0, "{}");
    expect_reject("4");
    expect_reject("4/x,");
    expect_reject("4[]");
    expect_reject("41");
    expect_reject("4null");
    expect_reject("4true");
}

static void test_decode_attachments(void **state)
{
    (void)state;
    expect_packet("510-[\"a\"]", SIO_BINARY_EVENT, "/", false, 0, 10, "[\"a\"]");
    expect_packet("501-[\"a\"]", SIO_BINARY_EVENT, "/", false, 0, 1, "[\"a\"]");
    expect_packet("53-/admin,99[\"a\"]", SIO_BINARY_EVENT, "/admin", true, 99, 3, "[\"a\"]");
    expect_packet("610-[]", SIO_BINARY_ACK, "/", false, 0, 10, "[]");
    expect_reject("5-[\"a\"]");
    expect_reject("50-[\"a\"]");
    expect_reject("511-[\"a\"]");
    expect_reject("5100000000000000000000-[\"a\"]");
    expect_reject("5a-[\"a\"]");
    expect_reject("5+1-[\"a\"]");
    expect_reject("51[\"a\"]");
    expect_reject("51");
    expect_reject("51-");
    expect_reject("5");
    expect_reject("6");
    expect_reject("61-");
    expect_reject("5/admin,1-[\"a\"]");
    expect_reject("51-{}");
    expect_reject("51-[]");
    expect_reject("51-[\"connect\"]");
    /* leading zeros count for nothing (socket.io-parser reads the count with Number()); the bound
     * is on the value, however many digits spell it */
    expect_packet("5001-[\"a\"]", SIO_BINARY_EVENT, "/", false, 0, 1, "[\"a\"]");
    expect_packet("5000000000000000000000000010-[\"a\"]", SIO_BINARY_EVENT, "/", false, 0, 10,
                  "[\"a\"]");
    expect_reject("500-[\"a\"]");
    expect_reject("50011-[\"a\"]");
    expect_reject("518446744073709551616-[\"a\"]");
    expect_reject("5-1-[\"a\"]");
}

static void test_decode_ack_id_range(void **state)
{
    (void)state;
    expect_packet("29007199254740991[\"a\"]", SIO_EVENT, "/", true, 9007199254740991ULL, 0,
                  "[\"a\"]");
    expect_packet("218446744073709551615[\"a\"]", SIO_EVENT, "/", true, UINT64_MAX, 0, "[\"a\"]");
    expect_packet("2000000000000000000000000042[\"a\"]", SIO_EVENT, "/", true, 42, 0, "[\"a\"]");
    expect_reject("218446744073709551616[\"a\"]");
    expect_reject("299999999999999999999[\"a\"]");
    expect_reject("2/admin,123456789012345678901234567890[\"a\"]");
    /* JSON starts at the first non-digit, so a sign or fraction belongs to the payload. */
    expect_reject("2-1[\"a\"]");
    expect_reject("21.5[\"a\"]");
    /* and after attachments and a namespace alike */
    expect_packet("51-/a,018446744073709551615[\"a\"]", SIO_BINARY_EVENT, "/a", true, UINT64_MAX, 1,
                  "[\"a\"]");
    expect_reject("51-/a,18446744073709551616[\"a\"]");
    expect_packet("20[\"a\"]", SIO_EVENT, "/", true, 0, 0, "[\"a\"]");
}

static uint64_t xorshift(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void check_fields(const char *in, size_t len, const sio_packet_t *p)
{
    assert_true(p->type >= SIO_CONNECT && p->type <= SIO_BINARY_ACK);
    assert_true(p->nsp_len >= 1 && p->nsp[0] == '/');
    if (p->nsp_len > 1)
        assert_true(p->nsp > in && p->nsp + p->nsp_len <= in + len);
    assert_null(memchr(p->nsp, ',', p->nsp_len));
    if (p->type == SIO_BINARY_EVENT || p->type == SIO_BINARY_ACK)
        assert_true(p->attachments >= 1 && p->attachments <= SIO_MAX_ATTACHMENTS);
    else
        assert_int_equal(p->attachments, 0);
    if (p->data)
        assert_true(p->data > in && p->data + p->data_len == in + len && p->data_len > 0);
}

static const char *const valid_packets[] = {
    "0",
    "0{\"token\":\"123\"}",
    "0/admin,{\"token\":\"abc\"}",
    "4/secure,{\"message\":\"not authorized\",\"data\":{\"reason\":\"token\"}}",
    "1/admin,",
    "2/admin,[\"bar\"]",
    "212[\"foo\",{\"a\":[1,2,{\"b\":null}],\"c\":\"\\u00e9\\\"\"},-0.5e-3,true]",
    "3/admin,13[\"bar\"]",
    "51-[\"baz\",{\"_placeholder\":true,\"num\":0}]",
    "61-/admin,1[{\"_placeholder\":true,\"num\":0}]",
    "610-/a,18446744073709551615[\"x\"]",
};

/* Every proper prefix must be rejected or decode into fields inside the input; never crash. */
static void test_decode_prefixes(void **state)
{
    (void)state;
    for (size_t k = 0; k < sizeof(valid_packets) / sizeof(valid_packets[0]); k++) {
        const char *s = valid_packets[k];
        size_t n = strlen(s);
        for (size_t len = 0; len <= n; len++) {
            char *copy = malloc(len ? len : 1);
            assert_non_null(copy);
            memcpy(copy, s, len);
            sio_packet_t p;
            int rc = sio_packet_decode(copy, len, &p);
            if (len == n)
                assert_int_equal(rc, 0);
            if (rc == 0)
                check_fields(copy, len, &p);
            else
                assert_int_equal(rc, -EPROTO);
            free(copy);
        }
    }
}

/* Random bytes, mostly drawn from the characters that steer the decoder. */
static void test_decode_fuzz(void **state)
{
    (void)state;
    static const char steer[] = "0123456-/,[]{}\":tfnul\\e.+ 9";
    uint64_t seed = 0x9e3779b97f4a7c15ULL;
    size_t accepted = 0;
    for (int iter = 0; iter < 200000; iter++) {
        size_t len = xorshift(&seed) % 40;
        char *in = malloc(len ? len : 1);
        assert_non_null(in);
        for (size_t i = 0; i < len; i++) {
            uint64_t r = xorshift(&seed);
            in[i] = (r & 3) ? steer[(r >> 8) % (sizeof(steer) - 1)] : (char)(r >> 16);
        }
        sio_packet_t p;
        int rc = sio_packet_decode(in, len, &p);
        if (rc == 0) {
            check_fields(in, len, &p);
            accepted++;
        } else {
            assert_int_equal(rc, -EPROTO);
        }
        free(in);
    }
    assert_true(accepted > 0);
}

/* Mutations of valid packets: one byte replaced, inserted or deleted. */
static void test_decode_mutations(void **state)
{
    (void)state;
    uint64_t seed = 12345;
    for (size_t k = 0; k < sizeof(valid_packets) / sizeof(valid_packets[0]); k++) {
        const char *s = valid_packets[k];
        size_t n = strlen(s);
        for (int iter = 0; iter < 5000; iter++) {
            char *in = malloc(n + 1);
            assert_non_null(in);
            memcpy(in, s, n);
            size_t len = n;
            size_t at = xorshift(&seed) % n;
            char c = (char)xorshift(&seed);
            switch (iter % 3) {
            case 0:
                in[at] = c;
                break;
            case 1:
                memmove(in + at + 1, in + at, n - at);
                in[at] = c;
                len++;
                break;
            default:
                memmove(in + at, in + at + 1, n - at - 1);
                len--;
                break;
            }
            sio_packet_t p;
            if (sio_packet_decode(in, len, &p) == 0)
                check_fields(in, len, &p);
            free(in);
        }
    }
}

static void expect_buf(const buf_t *b, const char *want)
{
    assert_int_equal(b->len, strlen(want));
    assert_memory_equal(b->data, want, b->len);
    assert_int_equal(b->data[b->len], '\0');
}

static void test_encode_wire_table(void **state)
{
    (void)state;
    buf_t b;
    buf_init(&b);
    const char *sid = "{\"sid\":\"k30nu8aUBOsF98UyAAAA\"}";
    uint64_t id;

    assert_int_equal(sio_packet_encode(&b, SIO_CONNECT, "/", 1, NULL, sid, strlen(sid)), 0);
    expect_buf(&b, "40{\"sid\":\"k30nu8aUBOsF98UyAAAA\"}");
    buf_reset(&b);
    assert_int_equal(sio_packet_encode(&b, SIO_CONNECT, "/custom", 7, NULL, sid, strlen(sid)), 0);
    expect_buf(&b, "40/custom,{\"sid\":\"k30nu8aUBOsF98UyAAAA\"}");
    buf_reset(&b);
    const char *inv = "{\"message\":\"Invalid namespace\"}";
    assert_int_equal(sio_packet_encode(&b, SIO_CONNECT_ERROR, "/random", 7, NULL, inv, strlen(inv)),
                     0);
    expect_buf(&b, "44/random,{\"message\":\"Invalid namespace\"}");
    buf_reset(&b);
    assert_int_equal(sio_packet_encode(&b, SIO_DISCONNECT, NULL, 0, NULL, NULL, 0), 0);
    expect_buf(&b, "41");
    buf_reset(&b);
    assert_int_equal(sio_packet_encode(&b, SIO_DISCONNECT, "/admin", 6, NULL, NULL, 0), 0);
    expect_buf(&b, "41/admin,");
    buf_reset(&b);
    assert_int_equal(sio_packet_encode(&b, SIO_EVENT, "/", 1, NULL, "[\"foo\"]", 7), 0);
    expect_buf(&b, "42[\"foo\"]");
    buf_reset(&b);
    id = 12;
    assert_int_equal(sio_packet_encode(&b, SIO_EVENT, "/", 1, &id, "[\"foo\"]", 7), 0);
    expect_buf(&b, "4212[\"foo\"]");
    buf_reset(&b);
    id = 13;
    assert_int_equal(sio_packet_encode(&b, SIO_ACK, "/admin", 6, &id, "[\"bar\"]", 7), 0);
    expect_buf(&b, "43/admin,13[\"bar\"]");
    buf_reset(&b);
    id = 456;
    assert_int_equal(sio_packet_encode(&b, SIO_ACK, "/", 1, &id, "[1]", 3), 0);
    expect_buf(&b, "43456[1]");
    buf_reset(&b);
    id = 0;
    assert_int_equal(sio_packet_encode(&b, SIO_ACK, "/", 1, &id, "[]", 2), 0);
    expect_buf(&b, "430[]");
    buf_reset(&b);
    id = UINT64_MAX;
    assert_int_equal(sio_packet_encode(&b, SIO_ACK, "/", 1, &id, "[]", 2), 0);
    expect_buf(&b, "4318446744073709551615[]");
    buf_reset(&b);
    const char *ph = "[\"baz\",{\"_placeholder\":true,\"num\":0}]";
    assert_int_equal(
        sio_packet_encode_binary(&b, SIO_BINARY_EVENT, 1, "/", 1, NULL, ph, strlen(ph)), 0);
    expect_buf(&b, "451-[\"baz\",{\"_placeholder\":true,\"num\":0}]");
    buf_reset(&b);
    id = 1;
    ph = "[{\"_placeholder\":true,\"num\":0}]";
    assert_int_equal(
        sio_packet_encode_binary(&b, SIO_BINARY_ACK, 1, "/admin", 6, &id, ph, strlen(ph)), 0);
    expect_buf(&b, "461-/admin,1[{\"_placeholder\":true,\"num\":0}]");
    buf_reset(&b);
    id = 789;
    assert_int_equal(sio_packet_encode_binary(&b, SIO_BINARY_ACK, 10, "/", 1, &id, "[]", 2), 0);
    expect_buf(&b, "4610-789[]");
    buf_free(&b);
}

static void test_encode_appends_and_errors(void **state)
{
    (void)state;
    buf_t b;
    buf_init(&b);
    buf_puts(&b, "keep");
    assert_int_equal(sio_packet_encode(&b, SIO_CONNECT, "/", 1, NULL, NULL, 0), 0);
    expect_buf(&b, "keep40");

    assert_int_equal(sio_packet_encode(&b, SIO_BINARY_EVENT, "/", 1, NULL, "[]", 2), -EINVAL);
    assert_int_equal(sio_packet_encode(&b, SIO_BINARY_ACK, "/", 1, NULL, "[]", 2), -EINVAL);
    assert_int_equal(sio_packet_encode(&b, 7, "/", 1, NULL, "[]", 2), -EINVAL);
    assert_int_equal(sio_packet_encode(&b, -1, "/", 1, NULL, "[]", 2), -EINVAL);
    assert_int_equal(sio_packet_encode(&b, SIO_EVENT, "admin", 5, NULL, "[]", 2), -EINVAL);
    assert_int_equal(sio_packet_encode(&b, SIO_EVENT, "/a,b", 4, NULL, "[]", 2), -EINVAL);
    assert_int_equal(sio_packet_encode_binary(&b, SIO_EVENT, 1, "/", 1, NULL, "[]", 2), -EINVAL);
    assert_int_equal(sio_packet_encode_binary(&b, SIO_BINARY_EVENT, 0, "/", 1, NULL, "[]", 2),
                     -EINVAL);
    assert_int_equal(sio_packet_encode_binary(&b, SIO_BINARY_EVENT, 11, "/", 1, NULL, "[]", 2),
                     -EINVAL);
    assert_int_equal(sio_packet_encode_binary(&b, SIO_BINARY_EVENT, 1, "x", 1, NULL, "[]", 2),
                     -EINVAL);
    assert_int_equal(sio_packet_encode_event(&b, "nope", 4, "e", NULL, 0), -EINVAL);
    assert_int_equal(sio_packet_encode_event(&b, "/", 1, NULL, NULL, 0), -EINVAL);
    expect_buf(&b, "keep40");
    buf_free(&b);
}

static void test_encode_event(void **state)
{
    (void)state;
    buf_t b;
    buf_init(&b);
    const char *args = "{\"id\":1,\"text\":\"hi\"}";
    assert_int_equal(sio_packet_encode_event(&b, "/", 1, "room:message", args, strlen(args)), 0);
    expect_buf(&b, "42[\"room:message\",{\"id\":1,\"text\":\"hi\"}]");
    assert_int_equal(b.len, 39); /* the §1.3 broadcast sample is 39 bytes */
    buf_reset(&b);
    assert_int_equal(sio_packet_encode_event(&b, NULL, 0, "auth", "{}", 2), 0);
    expect_buf(&b, "42[\"auth\",{}]");
    buf_reset(&b);
    assert_int_equal(sio_packet_encode_event(&b, "/custom", 7, "auth", "{}", 2), 0);
    expect_buf(&b, "42/custom,[\"auth\",{}]");
    buf_reset(&b);
    assert_int_equal(sio_packet_encode_event(&b, "/", 1, "ping", NULL, 0), 0);
    expect_buf(&b, "42[\"ping\"]");
    buf_reset(&b);
    assert_int_equal(sio_packet_encode_event(&b, "/", 1, "message-back", "1,\"2\",{\"3\":[true]}",
                                             strlen("1,\"2\",{\"3\":[true]}")),
                     0);
    expect_buf(&b, "42[\"message-back\",1,\"2\",{\"3\":[true]}]");
    buf_reset(&b);
    assert_int_equal(sio_packet_encode_event(&b, "/", 1, "", NULL, 0), 0);
    expect_buf(&b, "42[\"\"]");
    buf_free(&b);
}

/*
 * Escapes as JSON.stringify: short forms, \u00xx in lower case, UTF-8 and '/' left raw; an invalid
 * UTF-8 byte becomes U+FFFD.
 */
static void test_encode_event_escaping(void **state)
{
    (void)state;
    buf_t b;
    buf_init(&b);
    assert_int_equal(sio_packet_encode_event(
                         &b, "/", 1, "a\"b\\c\b\f\n\r\t\x01\x1f\x7f/\xc3\xa9\xe2\x80\xa8z", "1", 1),
                     0);
    expect_buf(&b, "42[\"a\\\"b\\\\c\\b\\f\\n\\r\\t\\u0001\\u001f\x7f/\xc3\xa9\xe2\x80\xa8z\",1]");
    buf_reset(&b);
    assert_int_equal(sio_packet_encode_event(&b, "/", 1, "x\xffy", NULL, 0), 0);
    expect_buf(&b, "42[\"x\xef\xbf\xbdy\"]");
    buf_reset(&b);
    assert_int_equal(sio_packet_encode_event(&b, "/", 1, "a\"b\\c\b\f\n\r\t\x01\x1f", NULL, 0), 0);

    /* The escaped name decodes back as a valid event. */
    sio_packet_t p;
    assert_int_equal(sio_packet_decode(b.data + 1, b.len - 1, &p), 0);
    assert_int_equal(p.type, SIO_EVENT);
    buf_free(&b);
}

static void test_encode_decode_roundtrip(void **state)
{
    (void)state;
    buf_t b;
    buf_init(&b);
    static const struct {
        int type;
        const char *nsp;
        bool has_id;
        uint64_t id;
        unsigned att;
        const char *json;
    } cases[] = {
        {SIO_CONNECT, "/", false, 0, 0, ""},
        {SIO_CONNECT, "/chat", false, 0, 0, "{\"token\":\"t\"}"},
        {SIO_DISCONNECT, "/chat", false, 0, 0, ""},
        {SIO_EVENT, "/", true, 9007199254740991ULL, 0, "[\"e\",1]"},
        {SIO_EVENT, "/n", false, 0, 0, "[42]"},
        {SIO_ACK, "/n", true, 0, 0, "[]"},
        {SIO_CONNECT_ERROR, "/x", false, 0, 0, "{\"message\":\"m\"}"},
        {SIO_BINARY_EVENT, "/", true, 3, 2, "[\"b\",{\"_placeholder\":true,\"num\":1}]"},
        {SIO_BINARY_ACK, "/deep/ns", true, UINT64_MAX, 10, "[{}]"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        buf_reset(&b);
        size_t jl = strlen(cases[i].json);
        const uint64_t *id = cases[i].has_id ? &cases[i].id : NULL;
        int rc = cases[i].att
                     ? sio_packet_encode_binary(&b, cases[i].type, cases[i].att, cases[i].nsp,
                                                strlen(cases[i].nsp), id, cases[i].json, jl)
                     : sio_packet_encode(&b, cases[i].type, cases[i].nsp, strlen(cases[i].nsp), id,
                                         cases[i].json, jl);
        assert_int_equal(rc, 0);
        assert_int_equal(b.data[0], '4');
        sio_packet_t p;
        assert_int_equal(sio_packet_decode(b.data + 1, b.len - 1, &p), 0);
        assert_int_equal(p.type, cases[i].type);
        assert_int_equal(p.nsp_len, strlen(cases[i].nsp));
        assert_memory_equal(p.nsp, cases[i].nsp, p.nsp_len);
        assert_int_equal(p.has_id, cases[i].has_id);
        assert_true(p.id == cases[i].id);
        assert_int_equal(p.attachments, cases[i].att);
        assert_int_equal(p.data_len, jl);
        if (jl)
            assert_memory_equal(p.data, cases[i].json, jl);
    }
    buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode_wire_table),
        cmocka_unit_test(test_decode_rejection_table),
        cmocka_unit_test(test_decode_suite_packets),
        cmocka_unit_test(test_decode_type),
        cmocka_unit_test(test_decode_connect_rules),
        cmocka_unit_test(test_decode_disconnect_rules),
        cmocka_unit_test(test_decode_event_rules),
        cmocka_unit_test(test_decode_ack_rules),
        cmocka_unit_test(test_decode_connect_error_rules),
        cmocka_unit_test(test_decode_attachments),
        cmocka_unit_test(test_decode_ack_id_range),
        cmocka_unit_test(test_decode_prefixes),
        cmocka_unit_test(test_decode_fuzz),
        cmocka_unit_test(test_decode_mutations),
        cmocka_unit_test(test_encode_wire_table),
        cmocka_unit_test(test_encode_appends_and_errors),
        cmocka_unit_test(test_encode_event),
        cmocka_unit_test(test_encode_event_escaping),
        cmocka_unit_test(test_encode_decode_roundtrip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
