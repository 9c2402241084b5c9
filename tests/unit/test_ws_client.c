/* Unit tests for ctl/ws_client: URLs, masked client frames, the server's upgrade answer. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/buf.h"
#include "ctl/ws_client.h"
#include "common/proto/ws_frame.h"

static void expect_url(const char *url, const char *host, const char *port, const char *path)
{
    ws_url_t u;
    buf_t err;
    buf_init(&err);
    assert_int_equal(ws_url_parse(url, &u, &err), 0);
    assert_string_equal(u.host, host);
    assert_string_equal(u.port, port);
    assert_string_equal(u.path, path);
    buf_free(&err);
}

static void expect_bad_url(const char *url, const char *why)
{
    ws_url_t u;
    buf_t err;
    buf_init(&err);
    assert_int_equal(ws_url_parse(url, &u, &err), -EINVAL);
    assert_non_null(strstr(err.data, why));
    buf_free(&err);
}

static void test_urls(void **state)
{
    (void)state;
    expect_url("http://127.0.0.1:3000", "127.0.0.1", "3000", "");
    expect_url("http://localhost", "localhost", "80", "");
    expect_url("ws://example.test:81/", "example.test", "81", "");
    expect_url("http://[::1]:3000/rt/", "::1", "3000", "/rt");
    expect_url("127.0.0.1:4000", "127.0.0.1", "4000", "");
    expect_url("http://h:1/a/b?x=1", "h", "1", "/a/b");
    expect_bad_url("https://h", "TLS is not supported");
    expect_bad_url("wss://h", "TLS is not supported");
    expect_bad_url("ftp://h", "expected an http:// URL");
    expect_bad_url("http://:3000", "no host");
    expect_bad_url("http://h:0", "bad port");
    expect_bad_url("http://h:65536", "bad port");
    expect_bad_url("http://h:12x", "bad port");
    expect_bad_url("http://[::1", "no host");
}

/* A masked frame unmasks to the payload; the header is ws_frame's with the mask bit. */
static void test_masked_frames(void **state)
{
    (void)state;
    const uint8_t mask[4] = {0x37, 0xfa, 0x21, 0x3d};
    buf_t out;
    buf_init(&out);
    ws_client_frame(&out, WS_FRAME_TEXT, "Hello", 5, mask);
    /* RFC 6455 §5.7: a masked "Hello" */
    static const uint8_t want[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d,
                                   0x7f, 0x9f, 0x4d, 0x51, 0x58};
    assert_int_equal(out.len, sizeof(want));
    assert_memory_equal(out.data, want, sizeof(want));
    /* 200 and 70000 bytes: 16- and 64-bit lengths */
    static char big[70000];
    memset(big, 'x', sizeof(big));
    for (size_t n = 200; n <= 70000; n += 69800) {
        buf_reset(&out);
        ws_client_frame(&out, WS_FRAME_TEXT, big, n, mask);
        size_t hl = n < 65536 ? 4 : 10;
        assert_int_equal(out.len, hl + 4 + n);
        assert_int_equal((uint8_t)out.data[1], n < 65536 ? 0xfe : 0xff);
        for (size_t i = 0; i < n; i++)
            assert_int_equal((uint8_t)out.data[hl + 4 + i], (uint8_t)('x' ^ mask[i & 3]));
    }
    buf_free(&out);
}

static void test_upgrade_answers(void **state)
{
    (void)state;
    buf_t err;
    buf_init(&err);
    /* RFC 6455 §1.3's example key and accept value */
    const char *ok =
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nsec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
    assert_int_equal(ws_client_check_upgrade(ok, strlen(ok), "dGhlIHNhbXBsZSBub25jZQ==", &err), 0);
    assert_int_equal(ws_client_check_upgrade(ok, strlen(ok), "AAAAAAAAAAAAAAAAAAAAAA==", &err),
                     -EPROTO);
    assert_non_null(strstr(err.data, "Sec-WebSocket-Accept"));
    buf_reset(&err);
    const char *refused = "HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\n"
                          "Content-Length: 32\r\n\r\n{\"message\":\"Origin not allowed\"}";
    assert_int_equal(ws_client_check_upgrade(refused, strlen(refused), "k", &err), -EPROTO);
    assert_string_equal(err.data, "the server refused the WebSocket: HTTP/1.1 403 Forbidden "
                                  "{\"message\":\"Origin not allowed\"}");
    buf_reset(&err);
    assert_int_equal(ws_client_check_upgrade("SSH-2.0\r\n\r\n", 11, "k", &err), -EPROTO);
    assert_non_null(strstr(err.data, "not an HTTP answer"));
    buf_free(&err);
}

/* What a server says reaches the operator's terminal without its control bytes. */
static void test_server_text_escaped(void **state)
{
    (void)state;
    buf_t err;
    buf_init(&err);
    const char *refused = "HTTP/1.1 403 \x1b[2J\r\n\r\n{\"m\":\"\x1b]0;owned\x07\x7f\"}";
    assert_int_equal(ws_client_check_upgrade(refused, strlen(refused), "k", &err), -EPROTO);
    assert_string_equal(err.data, "the server refused the WebSocket: HTTP/1.1 403 \\x1b[2J "
                                  "{\"m\":\"\\x1b]0;owned\\x07\\x7f\"}");
    buf_reset(&err);
    assert_int_equal(ws_client_check_upgrade("\x1b[31mSSH\r\n", 9, "k", &err), -EPROTO);
    assert_string_equal(err.data, "not an HTTP answer: \"\\x1b[31mSSH\"");
    buf_free(&err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_urls),
        cmocka_unit_test(test_masked_frames),
        cmocka_unit_test(test_upgrade_answers),
        cmocka_unit_test(test_server_text_escaped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
