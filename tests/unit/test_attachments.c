/*
 * Unit tests for worker/sio/attachments: a binary packet's attachments are kept only when asked
 * (an observer reads them); otherwise they are counted and their bytes dropped, so an unfinished
 * packet holds its text alone whatever the attachments weigh. Protocol errors either way.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "worker/sio/attachments.h"

#define BIG (1u << 20)

static const char TEXT[] = "510-[\"up\",{\"_placeholder\":true,\"num\":9}]";

static void start(attachments_t *a, bool keep)
{
    sio_packet_t pk;
    assert_int_equal(sio_packet_decode(TEXT, sizeof(TEXT) - 1, &pk), 0);
    assert_int_equal(pk.attachments, 10);
    assert_int_equal(attachments_start(a, TEXT, sizeof(TEXT) - 1, &pk, keep), 0);
}

/* Nine of ten 1 MiB attachments in: nothing of them is held; the tenth completes the packet. */
static void test_counted_not_kept(void **state)
{
    (void)state;
    uint8_t *big = calloc(1, BIG);
    attachments_t a;
    attachments_init(&a);
    start(&a, false);
    for (int i = 0; i < 9; i++)
        assert_int_equal(attachments_add(&a, big, BIG), 0);
    assert_true(attachments_pending(&a));
    assert_int_equal(a.have, 9);
    assert_int_equal(a.atts.len, 0);
    assert_true(a.atts.cap < BIG); /* nothing was ever buffered */
    assert_int_equal(attachments_add(&a, big, BIG), 1);
    assert_int_equal(a.have, 10);
    assert_memory_equal(a.packet.data, TEXT, sizeof(TEXT) - 1);
    attachments_reset(&a);
    assert_int_equal(attachments_add(&a, big, 1), -EPROTO); /* none expected */
    attachments_free(&a);
    free(big);
}

/* Kept: each attachment as its u32 length and bytes, in order. */
static void test_kept_when_read(void **state)
{
    (void)state;
    attachments_t a;
    attachments_init(&a);
    start(&a, true);
    for (uint8_t i = 0; i < 10; i++)
        assert_int_equal(attachments_add(&a, &i, 1), i < 9 ? 0 : 1);
    assert_int_equal(a.atts.len, 10 * (sizeof(uint32_t) + 1));
    for (uint8_t i = 0; i < 10; i++) {
        uint32_t n;
        memcpy(&n, a.atts.data + i * 5, sizeof(n));
        assert_int_equal(n, 1);
        assert_int_equal((uint8_t)a.atts.data[i * 5 + 4], i);
    }
    /* the next packet starts from nothing, kept or not */
    attachments_reset(&a);
    start(&a, false);
    uint8_t z = 0;
    assert_int_equal(attachments_add(&a, &z, 1), 0);
    assert_int_equal(a.atts.len, 0);
    attachments_free(&a);
}

/* A placeholder numbered beyond the count is refused before anything is collected. */
static void test_placeholder_beyond_count(void **state)
{
    (void)state;
    static const char bad[] = "51-[\"up\",{\"_placeholder\":true,\"num\":1}]";
    sio_packet_t pk;
    assert_int_equal(sio_packet_decode(bad, sizeof(bad) - 1, &pk), 0);
    attachments_t a;
    attachments_init(&a);
    assert_int_equal(attachments_start(&a, bad, sizeof(bad) - 1, &pk, false), -EPROTO);
    assert_false(attachments_pending(&a));
    attachments_free(&a);
}

/* attachments_start on a packet of `count` attachments whose data is `data`, laid out by hand:
 * the placeholder rule is pinned on its own, also for data JSON validation would refuse first. */
static int start_data(unsigned count, const char *data)
{
    sio_packet_t pk = {.type = SIO_BINARY_EVENT,
                       .nsp = "/",
                       .nsp_len = 1,
                       .attachments = count,
                       .data = data,
                       .data_len = strlen(data)};
    attachments_t a;
    attachments_init(&a);
    int rc = attachments_start(&a, data, strlen(data), &pk, false);
    attachments_free(&a);
    return rc;
}

/* Each "num" must be digits whose value is below the count (Node reconstructs buffers[num]): the
 * last one, several, leading zeros (the value counts), and never a sign, no digits or a number
 * too large for 64 bits. */
static void test_placeholder_numbers(void **state)
{
    (void)state;
    static const struct {
        unsigned count;
        const char *data;
    } ok[] =
        {
            {10, "[\"up\",{\"_placeholder\":true,\"num\":0}]"},
            {10, "[\"up\",{\"_placeholder\":true,\"num\":9}]"},
            {3, "[\"up\",{\"_placeholder\":true,\"num\":2},{\"_placeholder\":true,\"num\":0}]"},
            {10, "[\"up\",{\"_placeholder\":true,\"num\":0009}]"},
            {2, "[\"up\",{\"_placeholder\":true,\"num\":1.5}]"},
            {1, "[\"up\",\"no placeholder\"]"},
        },
      bad[] = {
          {10, "[\"up\",{\"_placeholder\":true,\"num\":10}]"},
          {10, "[\"up\",{\"_placeholder\":true,\"num\":00010}]"},
          {3, "[\"up\",{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,\"num\":3}]"},
          {1, "[\"up\",{\"_placeholder\":true,\"num\":-1}]"},
          {1, "[\"up\",{\"_placeholder\":true,\"num\":\"0\"}]"},
          {1, "[\"up\",{\"_placeholder\":true,\"num\": 0}]"},
          {1, "[\"up\",{\"_placeholder\":true,\"num\":"},
          {10, "[\"up\",{\"_placeholder\":true,\"num\":18446744073709551615}]"},
          {10, "[\"up\",{\"_placeholder\":true,\"num\":18446744073709551616}]"},
          {10, "[\"up\",{\"_placeholder\":true,\"num\":99999999999999999999999999}]"},
      };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        assert_int_equal(start_data(ok[i].count, ok[i].data), 0);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(start_data(bad[i].count, bad[i].data), -EPROTO);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counted_not_kept),
        cmocka_unit_test(test_kept_when_read),
        cmocka_unit_test(test_placeholder_beyond_count),
        cmocka_unit_test(test_placeholder_numbers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
