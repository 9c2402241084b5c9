/* Unit tests for worker/http_req: split feeds, consumed counts, limits, query decoding. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/proto/http_req.h"

static const char ws_req[] = "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n"
                             "Host: 127.0.0.1:3010\r\n"
                             "Upgrade: websocket\r\n"
                             "Connection: Upgrade\r\n"
                             "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                             "Sec-WebSocket-Version: 13\r\n"
                             "\r\n";

static void check_ws_req(const http_req_t *r)
{
    assert_true(http_req_head_complete(r));
    assert_string_equal(http_req_method(r), "GET");
    assert_string_equal(http_req_path(r), "/socket.io/");
    assert_string_equal(http_req_query_string(r), "EIO=4&transport=websocket");
    assert_string_equal(http_req_header(r, HTTP_REQ_HOST), "127.0.0.1:3010");
    assert_string_equal(http_req_header(r, HTTP_REQ_UPGRADE), "websocket");
    assert_string_equal(http_req_header(r, HTTP_REQ_CONNECTION), "Upgrade");
    assert_string_equal(http_req_header(r, HTTP_REQ_WS_KEY), "dGhlIHNhbXBsZSBub25jZQ==");
    assert_string_equal(http_req_header(r, HTTP_REQ_WS_VERSION), "13");
    assert_null(http_req_header(r, HTTP_REQ_ORIGIN));
    assert_null(http_req_header(r, HTTP_REQ_CONTENT_LENGTH));
    assert_true(http_req_is_upgrade(r));
    assert_true(http_req_is_websocket(r));
    assert_true(http_req_keep_alive(r));
}

/* The head followed by WebSocket bytes: feeding stops exactly at the end of the head. */
static void test_upgrade_stops_at_head(void **state)
{
    (void)state;
    char in[sizeof(ws_req) + 6];
    size_t head = sizeof(ws_req) - 1;
    memcpy(in, ws_req, head);
    memcpy(in + head, "\x81\x85\x01\x02\x03\x04", 6);
    http_req_t *r;
    r = http_req_new(0);
    size_t used = 0;
    assert_int_equal(http_req_feed(r, in, head + 6, &used), HTTP_REQ_HEAD | HTTP_REQ_DONE);
    assert_int_equal(used, head);
    check_ws_req(r);
    http_req_free(r);
}

/* Every two-way split and byte-at-a-time feeding give the same result and count. */
static void test_split_feeds(void **state)
{
    (void)state;
    size_t head = sizeof(ws_req) - 1;
    for (size_t cut = 0; cut <= head; cut++) {
        http_req_t *r;
        r = http_req_new(0);
        size_t used = 0, total = 0;
        int rc = http_req_feed(r, ws_req, cut, &used);
        total += used;
        if (cut < head) {
            assert_int_equal(rc, 0);
            assert_int_equal(used, cut);
            assert_false(http_req_head_complete(r));
            rc = http_req_feed(r, ws_req + cut, head - cut, &used);
            total += used;
        }
        assert_int_equal(rc, HTTP_REQ_HEAD | HTTP_REQ_DONE);
        assert_int_equal(total, head);
        check_ws_req(r);
        http_req_free(r);
    }
    http_req_t *r;
    r = http_req_new(0);
    for (size_t i = 0; i < head; i++) {
        size_t used = 0;
        int rc = http_req_feed(r, ws_req + i, 1, &used);
        assert_int_equal(used, 1);
        assert_int_equal(rc, i + 1 == head ? HTTP_REQ_HEAD | HTTP_REQ_DONE : 0);
    }
    check_ws_req(r);
    http_req_free(r);
}

static void test_query_decoding(void **state)
{
    (void)state;
    static const char req[] =
        "GET /p%20x/?EIO=4&sid=a%2Bb%3D&x=a+b&flag&bad=%zz&trail=%4&k%65y=v&EIO=5&nul=a%00b "
        "HTTP/1.1\r\n\r\n";
    http_req_t *r;
    r = http_req_new(0);
    size_t used;
    assert_int_equal(http_req_feed(r, req, sizeof(req) - 1, &used), HTTP_REQ_HEAD | HTTP_REQ_DONE);
    assert_string_equal(http_req_path(r), "/p%20x/");
    buf_t v;
    buf_init(&v);
    assert_int_equal(http_req_query(r, "EIO", &v), 0);
    assert_string_equal(v.data, "4");
    assert_int_equal(http_req_query(r, "sid", &v), 0);
    assert_string_equal(v.data, "a+b=");
    assert_int_equal(http_req_query(r, "x", &v), 0);
    assert_string_equal(v.data, "a b");
    assert_int_equal(http_req_query(r, "flag", &v), 0);
    assert_int_equal(v.len, 0);
    assert_string_equal(v.data, "");
    assert_int_equal(http_req_query(r, "bad", &v), 0);
    assert_string_equal(v.data, "%zz");
    assert_int_equal(http_req_query(r, "trail", &v), 0);
    assert_string_equal(v.data, "%4");
    assert_int_equal(http_req_query(r, "key", &v), 0);
    assert_string_equal(v.data, "v");
    assert_int_equal(http_req_query(r, "nul", &v), 0);
    assert_int_equal(v.len, 3);
    assert_memory_equal(v.data, "a\0b", 3);
    assert_int_equal(http_req_query(r, "transport", &v), -ENOENT);
    assert_int_equal(http_req_query(r, "fla", &v), -ENOENT);
    assert_int_equal(http_req_query(r, "k", &v), -ENOENT);
    buf_free(&v);
    http_req_free(r);

    static const char noq[] = "GET /x HTTP/1.1\r\n\r\n";
    r = http_req_new(0);
    assert_int_equal(http_req_feed(r, noq, sizeof(noq) - 1, &used), HTTP_REQ_HEAD | HTTP_REQ_DONE);
    assert_string_equal(http_req_query_string(r), "");
    buf_init(&v);
    assert_int_equal(http_req_query(r, "EIO", &v), -ENOENT);
    buf_free(&v);
    http_req_free(r);
}

/* Builds "GET / HTTP/1.1\r\nX-Pad: aaa...\r\n\r\n" of exactly `total` bytes. */
static char *head_of_size(size_t total)
{
    static const char pre[] = "GET / HTTP/1.1\r\nX-Pad: ";
    size_t fixed = sizeof(pre) - 1 + 4;
    char *s = malloc(total + 1);
    memcpy(s, pre, sizeof(pre) - 1);
    memset(s + sizeof(pre) - 1, 'a', total - fixed);
    memcpy(s + total - 4, "\r\n\r\n", 5);
    return s;
}

static void test_head_limit_431(void **state)
{
    (void)state;
    size_t used;
    http_req_t *r;
    char *ok = head_of_size(16384);
    r = http_req_new(0);
    assert_int_equal(http_req_feed(r, ok, 16384, &used), HTTP_REQ_HEAD | HTTP_REQ_DONE);
    assert_int_equal(used, 16384);
    http_req_free(r);
    free(ok);

    char *big = head_of_size(16385);
    r = http_req_new(0);
    assert_int_equal(http_req_feed(r, big, 16385, &used), -E2BIG);
    /* sticky */
    assert_int_equal(http_req_feed(r, "x", 1, &used), -E2BIG);
    http_req_free(r);

    /* Same limit reached through many small feeds. */
    r = http_req_new(0);
    int rc = 0;
    size_t off = 0;
    while (off < 16385 && rc == 0) {
        rc = http_req_feed(r, big + off, 100 < 16385 - off ? 100 : 16385 - off, &used);
        off += used;
    }
    assert_int_equal(rc, -E2BIG);
    http_req_free(r);
    free(big);

    /* A small configured limit. */
    static const char req[] = "GET /a-rather-long-path HTTP/1.1\r\nHost: example\r\n\r\n";
    r = http_req_new(32);
    assert_int_equal(http_req_feed(r, req, 20, &used), 0);
    assert_int_equal(http_req_feed(r, req + 20, sizeof(req) - 21, &used), -E2BIG);
    http_req_free(r);
}

static void expect_400(const char *req)
{
    http_req_t *r;
    size_t used;
    r = http_req_new(0);
    assert_int_equal(http_req_feed(r, req, strlen(req), &used), -EPROTO);
    http_req_free(r);
}

static void test_malformed_400(void **state)
{
    (void)state;
    expect_400("NOPE / HTTP/1.1\r\n\r\n");
    expect_400("GET / HTTP/9.x\r\n\r\n");
    expect_400("GET / HTTP/1.1\r\nNo-Colon-Here\r\n\r\n");
    expect_400("GET / HTTP/1.1\r\nBad\x01Name: v\r\n\r\n");
    expect_400("GET /\x7f HTTP/1.1\r\n\r\n");
    expect_400("GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n");
    expect_400("GET / HTTP/1.1\r\nContent-Length: abc\r\n\r\n");
    expect_400("GET / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n");
}

static void expect_keep_alive(const char *req, bool keep)
{
    http_req_t *r;
    size_t used;
    r = http_req_new(0);
    assert_int_equal(http_req_feed(r, req, strlen(req), &used), HTTP_REQ_HEAD | HTTP_REQ_DONE);
    assert_int_equal(http_req_keep_alive(r), keep);
    assert_false(http_req_is_upgrade(r));
    assert_false(http_req_is_websocket(r));
    http_req_free(r);
}

static void test_keep_alive(void **state)
{
    (void)state;
    expect_keep_alive("GET / HTTP/1.1\r\n\r\n", true);
    expect_keep_alive("GET / HTTP/1.1\r\nConnection: close\r\n\r\n", false);
    expect_keep_alive("GET / HTTP/1.1\r\nConnection: Close\r\n\r\n", false);
    expect_keep_alive("GET / HTTP/1.0\r\n\r\n", false);
    expect_keep_alive("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", true);
}

/* A parser reused for another connection forgets the last one: its error, its half-read head,
 * its headers; its body limit stays. */
static void test_reuse(void **state)
{
    (void)state;
    http_req_t *r = http_req_new(0);
    http_req_set_max_body(r, 4);
    size_t used;
    const char *bad = "NOPE / HTTP/1.1\r\n\r\n";
    assert_int_equal(http_req_feed(r, bad, strlen(bad), &used), -EPROTO);
    http_req_reuse(r);
    const char *half = "GET /a?x=1 HTTP/1.1\r\nOrigin: o\r\n";
    assert_int_equal(http_req_feed(r, half, strlen(half), &used), 0);
    http_req_reuse(r);
    const char *ws =
        "GET /b HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    assert_true(http_req_feed(r, ws, strlen(ws), &used) & HTTP_REQ_HEAD);
    assert_string_equal(http_req_path(r), "/b");
    assert_string_equal(http_req_query_string(r), "");
    assert_null(http_req_header(r, HTTP_REQ_ORIGIN));
    assert_true(http_req_is_websocket(r));
    http_req_reuse(r);
    const char *post = "POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello";
    assert_int_equal(http_req_feed(r, post, strlen(post), &used), -EMSGSIZE);
    http_req_free(r);
}

/* Two pipelined requests, the first with a Content-Length body that is skipped. */
static void test_pipelined_with_body(void **state)
{
    (void)state;
    static const char in[] = "POST /a?x=1 HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"
                             "GET /b HTTP/1.1\r\nHost: h\r\n\r\n"
                             "POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                             "3\r\nabc\r\n0\r\n\r\n";
    size_t len = sizeof(in) - 1, off = 0, used;
    http_req_t *r;
    r = http_req_new(0);

    assert_int_equal(http_req_feed(r, in, len, &used), HTTP_REQ_HEAD);
    assert_int_equal(used, strlen("POST /a?x=1 HTTP/1.1\r\nContent-Length: 5\r\n\r\n"));
    assert_string_equal(http_req_method(r), "POST");
    assert_string_equal(http_req_path(r), "/a");
    assert_string_equal(http_req_header(r, HTTP_REQ_CONTENT_LENGTH), "5");
    assert_false(http_req_done(r));
    off += used;
    /* the body arrives in two pieces */
    assert_int_equal(http_req_feed(r, in + off, 2, &used), 0);
    assert_int_equal(used, 2);
    off += used;
    assert_int_equal(http_req_feed(r, in + off, len - off, &used), HTTP_REQ_DONE);
    assert_int_equal(used, 3);
    off += used;

    assert_int_equal(http_req_feed(r, in + off, len - off, &used), HTTP_REQ_HEAD | HTTP_REQ_DONE);
    assert_int_equal(used, strlen("GET /b HTTP/1.1\r\nHost: h\r\n\r\n"));
    assert_string_equal(http_req_path(r), "/b");
    assert_string_equal(http_req_header(r, HTTP_REQ_HOST), "h");
    assert_null(http_req_header(r, HTTP_REQ_CONTENT_LENGTH));
    off += used;

    assert_int_equal(http_req_feed(r, in + off, len - off, &used), HTTP_REQ_HEAD);
    assert_string_equal(http_req_path(r), "/c");
    assert_null(http_req_header(r, HTTP_REQ_HOST));
    off += used;
    assert_int_equal(http_req_feed(r, in + off, len - off, &used), HTTP_REQ_DONE);
    off += used;
    assert_int_equal(off, len);
    http_req_free(r);
}

static void test_body_kept_and_limited(void **state)
{
    (void)state;
    http_req_t *r;
    size_t used;
    size_t blen;
    r = http_req_new(0);
    assert_string_equal(http_req_body(r, &blen), "");
    assert_int_equal(blen, 0);
    http_req_set_max_body(r, 8);
    static const char a[] = "POST /a HTTP/1.1\r\nContent-Length: 5\r\n\r\nhel";
    assert_int_equal(http_req_feed(r, a, sizeof(a) - 1, &used), HTTP_REQ_HEAD);
    assert_int_equal(http_req_feed(r, a + used, sizeof(a) - 1 - used, &used), 0);
    assert_int_equal(http_req_feed(r, "lo", 2, &used), HTTP_REQ_DONE);
    const char *b = http_req_body(r, &blen);
    assert_int_equal(blen, 5);
    assert_memory_equal(b, "hello", 5);
    /* chunked: kept without the framing; the next request starts with an empty body */
    static const char c[] = "POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                            "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
    size_t off = 0;
    assert_int_equal(http_req_feed(r, c, sizeof(c) - 1, &used), HTTP_REQ_HEAD);
    off = used;
    assert_int_equal(http_req_body(r, &blen)[0], '\0');
    assert_int_equal(http_req_feed(r, c + off, sizeof(c) - 1 - off, &used), HTTP_REQ_DONE);
    b = http_req_body(r, &blen);
    assert_int_equal(blen, 5);
    assert_memory_equal(b, "abcde", 5);
    http_req_free(r);

    /* a declared length over the limit fails at the head */
    r = http_req_new(0);
    http_req_set_max_body(r, 8);
    static const char big[] = "POST /a HTTP/1.1\r\nContent-Length: 9\r\n\r\n";
    assert_int_equal(http_req_feed(r, big, sizeof(big) - 1, &used), -EMSGSIZE);
    assert_int_equal(http_req_feed(r, "x", 1, &used), -EMSGSIZE); /* sticky */
    http_req_free(r);

    /* chunks adding up past the limit fail in the body */
    r = http_req_new(0);
    http_req_set_max_body(r, 8);
    static const char ch[] = "POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                             "5\r\nabcde\r\n5\r\nfghij\r\n0\r\n\r\n";
    assert_int_equal(http_req_feed(r, ch, sizeof(ch) - 1, &used), HTTP_REQ_HEAD);
    assert_int_equal(http_req_feed(r, ch + used, sizeof(ch) - 1 - used, &used), -EMSGSIZE);
    http_req_free(r);
}

static void test_header_details(void **state)
{
    (void)state;
    static const char in[] = "GET /ws HTTP/1.1\r\n"
                             "X-A-Header-Name-Longer-Than-Thirty-Two-Bytes: ignored\r\n"
                             "connection: keep-alive  \r\n"
                             "Origin:http://example.com\t\r\n"
                             "UPGRADE: foo, WebSocket\r\n"
                             "Connection: Upgrade\r\n"
                             "Accept-Encoding: gzip, deflate\r\n"
                             "Sec-WebSocket-Version: 13\r\n"
                             "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                             "authorization:  Bearer abc.def \r\n"
                             "\r\n";
    http_req_t *r;
    size_t used, off = 0, len = sizeof(in) - 1;
    r = http_req_new(0);
    int rc = 0;
    /* 7-byte pieces split names and values mid-token */
    while (off < len && rc == 0) {
        rc = http_req_feed(r, in + off, len - off < 7 ? len - off : 7, &used);
        off += used;
    }
    assert_int_equal(rc, HTTP_REQ_HEAD | HTTP_REQ_DONE);
    assert_int_equal(off, len);
    assert_string_equal(http_req_header(r, HTTP_REQ_CONNECTION), "keep-alive, Upgrade");
    assert_string_equal(http_req_header(r, HTTP_REQ_ORIGIN), "http://example.com");
    assert_string_equal(http_req_header(r, HTTP_REQ_UPGRADE), "foo, WebSocket");
    assert_string_equal(http_req_header(r, HTTP_REQ_ACCEPT_ENCODING), "gzip, deflate");
    assert_string_equal(http_req_header(r, HTTP_REQ_AUTHORIZATION), "Bearer abc.def");
    assert_true(http_req_is_upgrade(r));
    assert_true(http_req_is_websocket(r));
    assert_null(http_req_header(r, HTTP_REQ_HDR_COUNT));
    http_req_free(r);
}

static void expect_not_websocket(const char *req)
{
    http_req_t *r;
    size_t used;
    r = http_req_new(0);
    assert_true(http_req_feed(r, req, strlen(req), &used) & HTTP_REQ_HEAD);
    assert_false(http_req_is_websocket(r));
    http_req_free(r);
}

static void test_not_websocket(void **state)
{
    (void)state;
    expect_not_websocket("GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                         "Sec-WebSocket-Version: 13\r\n\r\n");
    expect_not_websocket("GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                         "Sec-WebSocket-Version: 8\r\n"
                         "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n");
    expect_not_websocket("GET / HTTP/1.1\r\nUpgrade: websocket\r\n"
                         "Sec-WebSocket-Version: 13\r\n"
                         "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n");
    expect_not_websocket("GET / HTTP/1.1\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n"
                         "Sec-WebSocket-Version: 13\r\n"
                         "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n");
    expect_not_websocket("GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                         "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: short\r\n\r\n");
    /* a body would be taken for WebSocket frames */
    expect_not_websocket("GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                         "Sec-WebSocket-Version: 13\r\nContent-Length: 3\r\n"
                         "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\nabc");
    expect_not_websocket("POST / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                         "Sec-WebSocket-Version: 13\r\n"
                         "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n");
}

/* Repeating one header cannot grow the copy arena without bound. */
static void test_repeated_header_bounded(void **state)
{
    (void)state;
    http_req_t *r;
    size_t used;
    r = http_req_new(0);
    int rc = http_req_feed(r, "GET / HTTP/1.1\r\n", 16, &used);
    assert_int_equal(rc, 0);
    static const char a[] =
        "Origin: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\nHost: b\r\n";
    for (int i = 0; i < 200 && rc == 0; i++)
        rc = http_req_feed(r, a, sizeof(a) - 1, &used);
    assert_int_equal(rc, -E2BIG);
    http_req_free(r);
}

static void test_path_decode(void **state)
{
    (void)state;
    buf_t b;
    buf_init(&b);
    http_req_path_decode("chat.user%2F1+2%zz%4", 20, &b);
    assert_int_equal(b.len, 18);
    assert_memory_equal(b.data, "chat.user/1+2%zz%4", 18);
    http_req_path_decode("%00a", 4, &b);
    assert_int_equal(b.len, 2);
    assert_memory_equal(b.data, "\0a", 2);
    http_req_path_decode("", 0, &b);
    assert_int_equal(b.len, 0);
    buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_path_decode),
        cmocka_unit_test(test_reuse),
        cmocka_unit_test(test_upgrade_stops_at_head),
        cmocka_unit_test(test_split_feeds),
        cmocka_unit_test(test_query_decoding),
        cmocka_unit_test(test_head_limit_431),
        cmocka_unit_test(test_malformed_400),
        cmocka_unit_test(test_keep_alive),
        cmocka_unit_test(test_pipelined_with_body),
        cmocka_unit_test(test_body_kept_and_limited),
        cmocka_unit_test(test_header_details),
        cmocka_unit_test(test_not_websocket),
        cmocka_unit_test(test_repeated_header_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
