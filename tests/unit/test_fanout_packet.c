/*
 * Unit tests for worker/fanout/fanout_packet (and the eio_msg it carries): an entry's packet is
 * built once with its room, entry id and Socket.IO data beside the bytes; its WebSocket frames
 * and polling records are the exact bytes each transport sends, built at most once; a cluster
 * packet keeps its attachments and reads a peer's entry offset once, where it comes in.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/buf.h"
#include "common/mpack.h"
#include "common/proto/ws_frame.h"
#include "worker/fanout/fanout_packet.h"

static const payload_field_t fields[] = {
    {"event", 5, "user.message", 12},
    {"data", 4, "{\"text\":\"hi\"}", 13},
};

#define ENTRY_TEXT                                                                                 \
    "42[\"room:message\",{\"from\":\"service\",\"message\":{\"event\":\"user.message\","           \
    "\"data\":{\"text\":\"hi\"}},\"roomId\":\"chat.1\",\"event\":\"user.message\","                \
    "\"messageId\":\"1700000000000-3\"}"

static void assert_bytes(refbuf_t *rb, const void *want, size_t len)
{
    assert_non_null(rb);
    assert_int_equal(refbuf_len(rb), len);
    assert_memory_equal(refbuf_data(rb), want, len);
}

static void test_entry_packet(void **state)
{
    (void)state;
    buf_t scratch;
    buf_init(&scratch);
    fanout_packet_t pk;
    buf_t mpack, want_mpack;
    buf_init(&mpack);
    buf_init(&want_mpack);
    buf_putc(&mpack, 'x'); /* appended to */
    fanout_packet_entry(&pk, &scratch, &mpack, "chat.1", 6, "1700000000000-3", 15, fields, 2, true);
    assert_int_equal(pk.kind, FANOUT_ENTRY);
    assert_memory_equal(pk.room, "chat.1", 6);
    assert_int_equal(pk.room_len, 6);
    assert_memory_equal(pk.id, "1700000000000-3", 15);
    assert_true(pk.has_id);
    assert_true(pk.entry_id.ms == 1700000000000ull && pk.entry_id.seq == 3);
    /* the text, with the offset as its last argument */
    size_t len;
    const char *text = eio_msg_text(pk.msg, &len);
    static const char want[] = ENTRY_TEXT ",\"1700000000000-3\"]";
    assert_int_equal(len, sizeof(want) - 1);
    assert_memory_equal(text, want, len);
    /* what the adapter publishes: the Socket.IO data, no `42` to strip */
    size_t dlen;
    const char *data = fanout_packet_data(&pk, &dlen);
    assert_ptr_equal(data, text + 2);
    assert_int_equal(dlen, len - 2);
    assert_memory_equal(data, "[\"room:message\",", 16);
    /* asked for, the classic adapter's msgpack of that data came with it */
    assert_int_equal(mpack_from_json(&want_mpack, data, dlen), 0);
    assert_int_equal(mpack.len, want_mpack.len + 1);
    assert_memory_equal(mpack.data + 1, want_mpack.data, want_mpack.len);
    buf_free(&mpack);
    buf_free(&want_mpack);
    /* the WebSocket form is one text frame, built once and shared */
    refbuf_t *ws = ws_frame_new(WS_FRAME_TEXT, want, len);
    refbuf_t *frames = eio_msg_frames(pk.msg);
    assert_bytes(frames, refbuf_data(ws), refbuf_len(ws));
    assert_ptr_equal(eio_msg_frames(pk.msg), frames);
    /* the polling form is the record itself */
    refbuf_t *rec = eio_msg_records(pk.msg);
    assert_bytes(rec, want, len);
    assert_ptr_equal(eio_msg_records(pk.msg), rec);
    /* a recipient's reference outlives the packet */
    eio_msg_t *kept = eio_msg_ref(pk.msg);
    fanout_packet_release(&pk);
    assert_null(pk.msg);
    assert_bytes(eio_msg_frames(kept), refbuf_data(ws), refbuf_len(ws));
    eio_msg_unref(kept);
    refbuf_unref(ws);
    buf_free(&scratch);
}

static void test_entry_from_a_sibling(void **state)
{
    (void)state;
    buf_t scratch;
    buf_init(&scratch);
    fanout_packet_t a, b;
    fanout_packet_entry(&a, &scratch, NULL, "chat.1", 6, "1700000000000-3", 15, fields, 2, false);
    size_t len;
    const char *text = eio_msg_text(a.msg, &len);
    assert_int_equal(len, sizeof(ENTRY_TEXT "]") - 1);
    /* what a sibling rebuilds from (room, id, text) is the same packet */
    fanout_packet_entry_text(&b, "chat.1", 6, "1700000000000-3", 15, text, len);
    assert_int_equal(b.kind, FANOUT_ENTRY);
    assert_true(b.has_id);
    assert_true(b.entry_id.ms == a.entry_id.ms && b.entry_id.seq == a.entry_id.seq);
    refbuf_t *fa = eio_msg_frames(a.msg), *fb = eio_msg_frames(b.msg);
    assert_bytes(fb, refbuf_data(fa), refbuf_len(fa));
    size_t la, lb;
    const char *da = fanout_packet_data(&a, &la), *db = fanout_packet_data(&b, &lb);
    assert_int_equal(la, lb);
    assert_memory_equal(da, db, la);
    fanout_packet_release(&a);
    fanout_packet_release(&b);
    buf_free(&scratch);
}

static void test_cluster_offsets(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        bool has_id;
        uint64_t ms, seq;
    } cases[] = {
        {"42[\"room:message\",{\"n\":1},\"1795401864761-0\"]", true, 1795401864761ull, 0},
        {"42[\"room:message\",{\"n\":1}]", false, 0, 0},
        {"42[\"room:message\",{\"n\":1},\"Q86IY7V\"]", false, 0, 0}, /* not an entry id */
        {"42[\"other\",{\"n\":1},\"1-2\"]", false, 0, 0},            /* not a room:message */
        {"42[\"room:message\",\"1-2\"]", false, 0, 0},               /* no payload before it */
        {"42/admin,[\"room:message\",{},\"1-2\"]", false, 0, 0},
        {"4", false, 0, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        fanout_packet_t pk;
        fanout_packet_cluster(&pk, cases[i].text, strlen(cases[i].text), NULL, 0, 0);
        assert_int_equal(pk.kind, FANOUT_CLUSTER);
        assert_null(pk.room);
        assert_int_equal(pk.has_id, cases[i].has_id);
        if (cases[i].has_id)
            assert_true(pk.entry_id.ms == cases[i].ms && pk.entry_id.seq == cases[i].seq);
        fanout_packet_release(&pk);
    }
}

static void test_cluster_attachments(void **state)
{
    (void)state;
    static const char text[] = "451-[\"b\",{\"_placeholder\":true,\"num\":0}]";
    buf_t atts;
    buf_init(&atts);
    uint32_t n = 3;
    buf_append(&atts, &n, sizeof(n));
    buf_append(&atts, "\x01\x02\x03", 3);
    fanout_packet_t pk;
    fanout_packet_cluster(&pk, text, sizeof(text) - 1, atts.data, atts.len, 1);
    assert_false(pk.has_id);
    /* WebSocket: the text frame, then one binary frame per attachment, in one shared buffer */
    buf_t want;
    buf_init(&want);
    uint8_t hdr[WS_FRAME_HEADER_MAX];
    buf_append(&want, hdr, ws_frame_header(hdr, WS_FRAME_TEXT, sizeof(text) - 1));
    buf_append(&want, text, sizeof(text) - 1);
    buf_append(&want, hdr, ws_frame_header(hdr, WS_FRAME_BINARY, 3));
    buf_append(&want, "\x01\x02\x03", 3);
    assert_bytes(eio_msg_frames(pk.msg), want.data, want.len);
    /* polling: the text, then `b` + base64 per attachment, separated by 0x1e */
    static const char rec[] = "451-[\"b\",{\"_placeholder\":true,\"num\":0}]\x1e"
                              "bAQID";
    assert_bytes(eio_msg_records(pk.msg), rec, sizeof(rec) - 1);
    fanout_packet_release(&pk);
    buf_free(&want);
    buf_free(&atts);
}

static void test_message_forms_edges(void **state)
{
    (void)state;
    /* a text with 0x1e cannot ride a polling payload; WebSocket is fine */
    eio_msg_t *m = eio_msg_new("4a\x1e"
                               "b",
                               4, NULL, 0, 0);
    assert_null(eio_msg_records(m));
    assert_null(eio_msg_records(m));
    assert_int_equal(refbuf_len(eio_msg_frames(m)), 2 + 4);
    eio_msg_unref(m);
    /* binary messages alone (the echo endpoint): no text frame */
    uint32_t n = 1;
    char att[5];
    memcpy(att, &n, 4);
    att[4] = 7;
    m = eio_msg_new(NULL, 0, att, sizeof(att), 1);
    size_t len;
    assert_null(eio_msg_text(m, &len));
    assert_bytes(eio_msg_frames(m), "\x82\x01\x07", 3);
    assert_bytes(eio_msg_records(m), "bBw==", 5);
    eio_msg_unref(m);
    eio_msg_unref(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_entry_packet),        cmocka_unit_test(test_entry_from_a_sibling),
        cmocka_unit_test(test_cluster_offsets),     cmocka_unit_test(test_cluster_attachments),
        cmocka_unit_test(test_message_forms_edges),
    };
    return cmocka_run_group_tests_name("fanout_packet", tests, NULL, NULL);
}
