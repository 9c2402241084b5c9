/* Unit tests for common/proto/sha1: the FIPS 180 examples, every length around the padding
 * boundaries against libcrypto, both for sha1 (the SHA extensions where the CPU has them) and for
 * the portable rounds, and the RFC 6455 accept key built on it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

#include "common/proto/sha1.h"
#include "common/proto/ws_frame.h"

static void hex(const uint8_t md[SHA1_DIGEST_LEN], char out[2 * SHA1_DIGEST_LEN + 1])
{
    for (int i = 0; i < SHA1_DIGEST_LEN; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

typedef void (*sha1_fn)(const void *p, size_t len, uint8_t out[SHA1_DIGEST_LEN]);
static const sha1_fn paths[] = {sha1, sha1_generic};

static void expect(const char *msg, size_t len, const char *want)
{
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        uint8_t md[SHA1_DIGEST_LEN];
        char got[2 * SHA1_DIGEST_LEN + 1];
        paths[i](msg, len, md);
        hex(md, got);
        assert_string_equal(got, want);
    }
}

static void test_known_answers(void **state)
{
    (void)state;
    expect("", 0, "da39a3ee5e6b4b0d3255bfef95601890afd80709");
    expect("abc", 3, "a9993e364706816aba3e25717850c26c9cd0d89d");
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    expect(two, strlen(two), "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
    static char million[1000000];
    memset(million, 'a', sizeof(million));
    expect(million, sizeof(million), "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
}

/* Lengths 0..200 cover a tail of 55, 56 and 63 bytes (the length in one or two blocks). */
static void test_matches_libcrypto(void **state)
{
    (void)state;
    uint8_t msg[200];
    for (size_t i = 0; i < sizeof(msg); i++)
        msg[i] = (uint8_t)(i * 131 + 7);
    for (size_t len = 0; len <= sizeof(msg); len++) {
        uint8_t ours[SHA1_DIGEST_LEN], portable[SHA1_DIGEST_LEN], theirs[EVP_MAX_MD_SIZE];
        unsigned int n = 0;
        sha1(msg, len, ours);
        sha1_generic(msg, len, portable);
        assert_int_equal(EVP_Digest(msg, len, theirs, &n, EVP_sha1(), NULL), 1);
        assert_int_equal(n, SHA1_DIGEST_LEN);
        assert_memory_equal(ours, theirs, SHA1_DIGEST_LEN);
        assert_memory_equal(portable, theirs, SHA1_DIGEST_LEN);
    }
}

static void test_accept_key(void **state)
{
    (void)state;
    char out[WS_ACCEPT_KEY_SIZE];
    const char *key = "dGhlIHNhbXBsZSBub25jZQ=="; /* RFC 6455 §1.3 */
    assert_int_equal(ws_accept_key(key, strlen(key), out), 0);
    assert_string_equal(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

int main(void)
{
    /* which path sha1 took here: both are checked either way */
    printf("sha1: %s\n", sha1_accelerated() ? "SHA extensions" : "portable rounds only");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_answers),
        cmocka_unit_test(test_matches_libcrypto),
        cmocka_unit_test(test_accept_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
