/*
 * Unit tests for worker/eio/eio_msg: the WebSocket forms of one outgoing message, plain and for
 * permessage-deflate recipients, each built once and shared.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "common/buf.h"
#include "common/proto/ws_deflate.h"
#include "common/proto/ws_frame.h"
#include "worker/eio/eio_msg.h"

/* Reads the frame at *p and moves past it; returns its first byte. */
static uint8_t next_frame(const uint8_t **p, const uint8_t *end, const uint8_t **payload,
                          size_t *plen)
{
    size_t hl = ws_frame_parse(*p, (size_t)(end - *p), payload, plen);
    assert_true(hl > 0);
    uint8_t b0 = (*p)[0];
    *p += hl + *plen;
    return b0;
}

static void test_short_message_shares_the_plain_form(void **state)
{
    (void)state;
    ws_deflate_t *d = ws_deflate_new();
    static const char text[] = "42[\"room:message\",{\"a\":1}]";
    eio_msg_t *m = eio_msg_new(text, sizeof(text) - 1, NULL, 0, 0);
    refbuf_t *z = eio_msg_frames_deflated(m, d);
    assert_ptr_equal(z, eio_msg_frames(m));
    assert_ptr_equal(eio_msg_frames_deflated(m, d), z); /* built once */
    eio_msg_unref(m);
    ws_deflate_free(d);
}

static void test_long_text_and_attachment_are_compressed_once(void **state)
{
    (void)state;
    ws_deflate_t *d = ws_deflate_new();
    buf_t text;
    buf_init(&text);
    buf_puts(&text, "451-[\"room:message\",{\"_placeholder\":true,\"num\":0},\"");
    while (text.len < 4096)
        buf_puts(&text, "lorem ipsum dolor sit amet ");
    buf_puts(&text, "\"]");
    /* two attachments: one short (stays plain), one long (compressed) */
    buf_t atts;
    buf_init(&atts);
    uint32_t n1 = 3, n2 = 2000;
    buf_append(&atts, &n1, sizeof(n1));
    buf_append(&atts, "\x01\x02\x03", 3);
    buf_append(&atts, &n2, sizeof(n2));
    for (uint32_t i = 0; i < n2; i++)
        buf_putc(&atts, (char)(i % 5));
    eio_msg_t *m = eio_msg_new(text.data, text.len, atts.data, atts.len, 2);
    refbuf_t *z = eio_msg_frames_deflated(m, d);
    assert_ptr_not_equal(z, eio_msg_frames(m));
    assert_ptr_equal(eio_msg_frames_deflated(m, d), z);
    assert_true(refbuf_len(z) < refbuf_len(eio_msg_frames(m)) / 4);

    const uint8_t *p = (const uint8_t *)refbuf_data(z), *end = p + refbuf_len(z), *pl;
    size_t plen;
    buf_t back;
    buf_init(&back);
    assert_int_equal(next_frame(&p, end, &pl, &plen), 0xc1); /* TEXT, RSV1 */
    assert_int_equal(ws_deflate_inflate(d, pl, plen, 1 << 20, &back), 0);
    assert_int_equal(back.len, text.len);
    assert_memory_equal(back.data, text.data, text.len);
    assert_int_equal(next_frame(&p, end, &pl, &plen), 0x82); /* short BINARY, plain */
    assert_int_equal(plen, 3);
    assert_memory_equal(pl, "\x01\x02\x03", 3);
    assert_int_equal(next_frame(&p, end, &pl, &plen), 0xc2); /* long BINARY, RSV1 */
    buf_reset(&back);
    assert_int_equal(ws_deflate_inflate(d, pl, plen, 1 << 20, &back), 0);
    assert_int_equal(back.len, n2);
    assert_memory_equal(back.data, atts.data + 4 + 3 + 4, n2);
    assert_ptr_equal(p, end);

    buf_free(&back);
    buf_free(&text);
    buf_free(&atts);
    eio_msg_unref(m);
    ws_deflate_free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_short_message_shares_the_plain_form),
        cmocka_unit_test(test_long_text_and_attachment_are_compressed_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
