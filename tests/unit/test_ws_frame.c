/* Unit tests for worker/ws_frame: header boundaries, wslay cross-check, accept key. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <wslay/wslay.h>

#include "common/buf.h"
#include "common/proto/ws_frame.h"

static void expect_header(uint64_t len, const uint8_t *want, size_t want_len)
{
    uint8_t hdr[WS_FRAME_HEADER_MAX];
    memset(hdr, 0xee, sizeof(hdr));
    assert_int_equal(ws_frame_header(hdr, WS_FRAME_TEXT, len), want_len);
    assert_memory_equal(hdr, want, want_len);
}

static void test_header_boundaries(void **state)
{
    (void)state;
    expect_header(0, (const uint8_t *)"\x81\x00", 2);
    expect_header(125, (const uint8_t *)"\x81\x7d", 2);
    expect_header(126, (const uint8_t *)"\x81\x7e\x00\x7e", 4);
    expect_header(65535, (const uint8_t *)"\x81\x7e\xff\xff", 4);
    expect_header(65536, (const uint8_t *)"\x81\x7f\x00\x00\x00\x00\x00\x01\x00\x00", 10);
    expect_header(0x0102030405060708ull,
                  (const uint8_t *)"\x81\x7f\x01\x02\x03\x04\x05\x06\x07\x08", 10);

    uint8_t hdr[WS_FRAME_HEADER_MAX];
    assert_int_equal(ws_frame_header(hdr, WS_FRAME_BINARY, 3), 2);
    assert_memory_equal(hdr, "\x82\x03", 2);
    assert_int_equal(ws_frame_header(hdr, WS_FRAME_CLOSE, 2), 2);
    assert_memory_equal(hdr, "\x88\x02", 2);
    /* only the low 4 bits are an opcode; RSV2 and RSV3 stay clear, RSV1 only when asked */
    assert_int_equal(ws_frame_header(hdr, 0xb1, 1), 2);
    assert_memory_equal(hdr, "\x81\x01", 2);
    assert_int_equal(ws_frame_header(hdr, WS_FRAME_TEXT | WS_FRAME_RSV1, 1), 2);
    assert_memory_equal(hdr, "\xc1\x01", 2);
    /* a compressed frame: RSV1, the opcode, and a frame it reads back */
    refbuf_t *z = ws_frame_new(WS_FRAME_BINARY | WS_FRAME_RSV1, "\x02\x00", 2);
    assert_non_null(z);
    assert_memory_equal(refbuf_data(z), "\xc2\x02\x02\x00", 4);
    refbuf_unref(z);
    assert_null(ws_frame_new(WS_FRAME_PING | WS_FRAME_RSV1, "", 0));
}

static void test_frame_new(void **state)
{
    (void)state;
    static const char msg[] = "42[\"room:message\",{\"id\":1,\"text\":\"hi\"}]";
    refbuf_t *rb = ws_frame_new(WS_FRAME_TEXT, msg, sizeof(msg) - 1);
    assert_non_null(rb);
    assert_int_equal(refbuf_len(rb), 2 + 39);
    assert_memory_equal(refbuf_data(rb), "\x81\x27", 2);
    assert_memory_equal(refbuf_data(rb) + 2, msg, 39);
    refbuf_unref(rb);

    rb = ws_frame_new(WS_FRAME_TEXT, NULL, 0);
    assert_non_null(rb);
    assert_int_equal(refbuf_len(rb), 2);
    assert_memory_equal(refbuf_data(rb), "\x81\x00", 2);
    refbuf_unref(rb);

    char big[126];
    memset(big, 'p', sizeof(big));
    rb = ws_frame_new(WS_FRAME_PING, big, 125);
    assert_non_null(rb);
    assert_memory_equal(refbuf_data(rb), "\x89\x7d", 2);
    refbuf_unref(rb);
    assert_null(ws_frame_new(WS_FRAME_PING, big, 126));
    assert_null(ws_frame_new(WS_FRAME_CLOSE, big, 126));
    assert_null(ws_frame_new(WS_FRAME_PONG, big, 126));
    assert_null(ws_frame_new(0x0, big, 1)); /* continuation */
    assert_null(ws_frame_new(0x3, big, 1)); /* reserved */
    assert_null(ws_frame_new(0xb, big, 1));
}

static ssize_t acc_send(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
                        void *user_data)
{
    (void)ctx;
    (void)flags;
    buf_t *b = user_data;
    buf_append(b, data, len);
    return (ssize_t)len;
}

/* ws_frame_new must produce exactly the bytes wslay's own server framing produces. */
static void test_matches_wslay(void **state)
{
    (void)state;
    static const size_t sizes[] = {0, 1, 125, 126, 127, 65535, 65536, 70000};
    static const uint8_t ops[] = {WS_FRAME_TEXT, WS_FRAME_BINARY};
    uint8_t *payload = malloc(70000);
    for (size_t i = 0; i < 70000; i++)
        payload[i] = (uint8_t)('a' + i % 26);
    buf_t acc;
    buf_init(&acc);
    struct wslay_event_callbacks cb = {.send_callback = acc_send};
    for (size_t o = 0; o < 2; o++) {
        for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
            wslay_event_context_ptr ctx;
            assert_int_equal(wslay_event_context_server_init(&ctx, &cb, &acc), 0);
            buf_reset(&acc);
            struct wslay_event_msg m = {.opcode = ops[o], .msg = payload, .msg_length = sizes[s]};
            assert_int_equal(wslay_event_queue_msg(ctx, &m), 0);
            assert_int_equal(wslay_event_send(ctx), 0);
            refbuf_t *rb = ws_frame_new(ops[o], payload, sizes[s]);
            assert_non_null(rb);
            assert_int_equal(refbuf_len(rb), acc.len);
            assert_memory_equal(refbuf_data(rb), acc.data, acc.len);
            refbuf_unref(rb);
            wslay_event_context_free(ctx);
        }
    }
    /* control frames too */
    wslay_event_context_ptr ctx;
    assert_int_equal(wslay_event_context_server_init(&ctx, &cb, &acc), 0);
    buf_reset(&acc);
    assert_int_equal(wslay_event_queue_close(ctx, 1009, NULL, 0), 0);
    assert_int_equal(wslay_event_send(ctx), 0);
    refbuf_t *rb = ws_frame_new(WS_FRAME_CLOSE, "\x03\xf1", 2);
    assert_int_equal(refbuf_len(rb), acc.len);
    assert_memory_equal(refbuf_data(rb), acc.data, acc.len);
    refbuf_unref(rb);
    wslay_event_context_free(ctx);
    buf_free(&acc);
    free(payload);
}

/* Every length form reads back whole, and a frame cut anywhere short of its end is refused. */
static void test_parse_reads_back(void **state)
{
    (void)state;
    static const size_t sizes[] = {0, 1, 125, 126, 65535, 65536, 70000};
    static char payload[70000];
    memset(payload, 'p', sizeof(payload));
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        refbuf_t *f = ws_frame_new(WS_FRAME_BINARY, payload, sizes[i]);
        assert_non_null(f);
        const uint8_t *d = (const uint8_t *)refbuf_data(f);
        size_t total = refbuf_len(f), plen = 0;
        const uint8_t *p = NULL;
        size_t hl = ws_frame_parse(d, total, &p, &plen);
        assert_int_equal(hl + sizes[i], total);
        assert_ptr_equal(p, d + hl);
        assert_int_equal(plen, sizes[i]);
        for (size_t cut = 0; cut < total; cut += cut < 16 ? 1 : 997)
            assert_int_equal(ws_frame_parse(d, cut, &p, &plen), 0);
        refbuf_unref(f);
    }
}

static void test_accept_key(void **state)
{
    (void)state;
    char out[WS_ACCEPT_KEY_SIZE];
    /* RFC 6455 §1.3 */
    assert_int_equal(ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==", 24, out), 0);
    assert_string_equal(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    assert_int_equal(ws_accept_key("x3JJHMbDL1EzLkh9GBhXDw==", 24, out), 0);
    assert_string_equal(out, "HSmrc0sMlYUkAGmm5OPpG2HaGWk=");
    /* the length is honoured: no NUL terminator needed, trailing bytes ignored */
    assert_int_equal(ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==GARBAGE", 24, out), 0);
    assert_string_equal(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    assert_int_equal(ws_accept_key("", 0, out), -EINVAL);
    char longkey[300];
    memset(longkey, 'A', sizeof(longkey));
    assert_int_equal(ws_accept_key(longkey, 256, out), 0);
    assert_int_equal(strlen(out), 28);
    assert_int_equal(ws_accept_key(longkey, 257, out), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header_boundaries), cmocka_unit_test(test_frame_new),
        cmocka_unit_test(test_matches_wslay),     cmocka_unit_test(test_parse_reads_back),
        cmocka_unit_test(test_accept_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
