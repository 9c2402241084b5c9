/* Unit tests for common/proto/ws_deflate: the offers browsers and ws send, RFC 7692's examples,
 * round trips, and the inflate limit a zip bomb meets. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/proto/ws_deflate.h"

static bool accept_str(const char *s)
{
    return ws_deflate_accept(s, strlen(s));
}

static void test_offers(void **state)
{
    (void)state;
    /* what Chromium, Firefox and Node's ws offer */
    assert_true(accept_str("permessage-deflate; client_max_window_bits"));
    assert_true(accept_str("permessage-deflate"));
    assert_true(accept_str("Permessage-Deflate ; Client_No_Context_Takeover"));
    assert_true(accept_str("permessage-deflate; server_no_context_takeover; "
                           "client_no_context_takeover; server_max_window_bits=15; "
                           "client_max_window_bits=10"));
    assert_true(accept_str("permessage-deflate; server_max_window_bits=\"15\""));
    /* a second offer is taken when the first cannot be */
    assert_true(accept_str("permessage-deflate; server_max_window_bits=10, permessage-deflate"));
    assert_true(accept_str("x-webkit-deflate-frame, permessage-deflate"));
    assert_true(accept_str("foo; a=\"x,y\", permessage-deflate"));
    /* declined: a smaller server window, bad values, repeats, unknown parameters, other names */
    static const char *const no[] = {
        "",
        ",",
        "x-webkit-deflate-frame",
        "permessage-deflate; server_max_window_bits=10",
        "permessage-deflate; server_max_window_bits",
        "permessage-deflate; server_max_window_bits=016",
        "permessage-deflate; client_max_window_bits=7",
        "permessage-deflate; client_max_window_bits=16",
        "permessage-deflate; client_max_window_bits=",
        "permessage-deflate; server_no_context_takeover=1",
        "permessage-deflate; client_no_context_takeover; client_no_context_takeover",
        "permessage-deflate; mystery",
        "permessage-deflate;",
        "permessage-deflate; server_max_window_bits=\"1\\5\"",
        "permessage-deflate; server_max_window_bits=\"15",
        "permessage-deflatex",
        "permessage-deflate x",
        "foo, permessage-deflate; =15",
    };
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
        if (accept_str(no[i]))
            fail_msg("accepted: %s", no[i]);
}

static void check_inflate(ws_deflate_t *d, const void *in, size_t len, const char *want)
{
    buf_t out;
    buf_init(&out);
    assert_int_equal(ws_deflate_inflate(d, in, len, 1 << 20, &out), 0);
    assert_int_equal(out.len, strlen(want));
    if (out.len)
        assert_memory_equal(out.data, want, out.len);
    buf_free(&out);
}

static void test_rfc_examples(void **state)
{
    (void)state;
    ws_deflate_t *d = ws_deflate_new();
    /* RFC 7692 §7.2.3.1, §7.2.3.2 (a stored block), §7.2.3.6 (an empty message) */
    static const uint8_t hello[] = {0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00};
    static const uint8_t stored[] = {0x00, 0x05, 0x00, 0xfa, 0xff, 0x48,
                                     0x65, 0x6c, 0x6c, 0x6f, 0x00};
    static const uint8_t empty[] = {0x00};
    check_inflate(d, hello, sizeof(hello), "Hello");
    check_inflate(d, hello, sizeof(hello), "Hello"); /* no context kept from the last one */
    check_inflate(d, stored, sizeof(stored), "Hello");
    check_inflate(d, empty, sizeof(empty), "");
    /* with BFINAL set (§7.2.3.4's "Hello" as a final fixed block), trailing bytes are ignored */
    static const uint8_t final[] = {0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00};
    check_inflate(d, final, sizeof(final), "Hello");

    buf_t out;
    buf_init(&out);
    ws_deflate_compress(d, "Hello", 5, &out);
    assert_int_equal(out.len, sizeof(hello));
    assert_memory_equal(out.data, hello, sizeof(hello));
    buf_free(&out);
    ws_deflate_free(d);
    ws_deflate_free(NULL);
}

static void test_round_trips(void **state)
{
    (void)state;
    ws_deflate_t *d = ws_deflate_new();
    size_t sizes[] = {0, 1, 1023, 4096, 70000, 300000};
    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        size_t n = sizes[k];
        char *msg = malloc(n + 1);
        uint32_t x = 12345u + (uint32_t)k;
        for (size_t i = 0; i < n; i++) {
            x = x * 1103515245u + 12345u;
            /* JSON-like text: compressible, with some noise */
            msg[i] = (i % 7 == 0) ? (char)('a' + (x >> 16) % 26) : "{\"k\":\"v\"},"[i % 10];
        }
        buf_t z, back;
        buf_init(&z);
        buf_init(&back);
        buf_putc(&z, 'P'); /* appends after what is there */
        ws_deflate_compress(d, msg, n, &z);
        assert_true(z.len >= 2);
        assert_false(z.len >= 5 && memcmp(z.data + z.len - 4, "\x00\x00\xff\xff", 4) == 0);
        if (n >= 4096)
            assert_true(z.len < n / 2);
        buf_putc(&back, 'Q');
        assert_int_equal(ws_deflate_inflate(d, z.data + 1, z.len - 1, n, &back), 0);
        assert_int_equal(back.len, n + 1);
        assert_int_equal(back.data[0], 'Q');
        if (n)
            assert_memory_equal(back.data + 1, msg, n);
        /* one byte less allowed: too big */
        if (n) {
            buf_reset(&back);
            assert_int_equal(ws_deflate_inflate(d, z.data + 1, z.len - 1, n - 1, &back),
                             -EMSGSIZE);
            assert_true(back.len <= n);
        }
        /* the same message compressed twice gives the same bytes: nothing carried over */
        buf_t again;
        buf_init(&again);
        ws_deflate_compress(d, msg, n, &again);
        assert_int_equal(again.len, z.len - 1);
        assert_memory_equal(again.data, z.data + 1, again.len);
        buf_free(&again);
        buf_free(&z);
        buf_free(&back);
        free(msg);
    }
    ws_deflate_free(d);
}

/* A megabyte of zeros compresses to about a kilobyte: the limit stops it, not the memory. */
static void test_zip_bomb_and_garbage(void **state)
{
    (void)state;
    ws_deflate_t *d = ws_deflate_new();
    size_t n = 8u << 20;
    char *zeros = calloc(1, n);
    buf_t z, out;
    buf_init(&z);
    buf_init(&out);
    ws_deflate_compress(d, zeros, n, &z);
    assert_true(z.len < n / 500);
    assert_int_equal(ws_deflate_inflate(d, z.data, z.len, 65536, &out), -EMSGSIZE);
    assert_true(out.len <= 65537);
    assert_true(out.cap <= 4 * 65536); /* grown by doubling towards the limit, not the 8 MiB */
    /* not deflate data (reserved block type 3), then a valid message on the same stream */
    static const uint8_t bad[] = {0xff, 0xff, 0xff, 0xff};
    buf_reset(&out);
    assert_int_equal(ws_deflate_inflate(d, bad, sizeof(bad), 65536, &out), -EINVAL);
    static const uint8_t hello[] = {0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00};
    check_inflate(d, hello, sizeof(hello), "Hello");
    /* truncated: what inflated so far, or corrupt where the added tail lands mid-block */
    buf_reset(&out);
    int rc = ws_deflate_inflate(d, z.data, z.len / 2, n, &out);
    assert_true(rc == 0 || rc == -EINVAL);
    assert_true(out.len < n);
    check_inflate(d, hello, sizeof(hello), "Hello");
    buf_free(&z);
    buf_free(&out);
    free(zeros);
    ws_deflate_free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_offers),
        cmocka_unit_test(test_rfc_examples),
        cmocka_unit_test(test_round_trips),
        cmocka_unit_test(test_zip_bomb_and_garbage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
