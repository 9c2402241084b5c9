/*
 * Unit tests for common/proto/relay_hello: the hello and answer bytes, what a server recognises
 * as a hello for itself, and what it refuses (another server's tag, bad nonces, a cut line).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <string.h>

#include "common/proto/relay_hello.h"

#define NONCE "Ab_-0123456789zZ"

static void test_bytes(void **state)
{
    (void)state;
    char hello[RELAY_HELLO_LEN], answer[RELAY_ANSWER_LEN];
    relay_hello_build(hello, "AAbb", NONCE);
    relay_answer_build(answer, "AAbb", NONCE);
    assert_memory_equal(hello, "STREAMIO-RELAY AAbb " NONCE "\r\n", RELAY_HELLO_LEN);
    assert_memory_equal(answer, "STREAMIO-RELAY-OK AAbb " NONCE "\r\n", RELAY_ANSWER_LEN);
}

static void test_a_hello_for_this_server_is_answered(void **state)
{
    (void)state;
    char in[RELAY_HELLO_LEN + 5], answer[RELAY_ANSWER_LEN], want[RELAY_ANSWER_LEN];
    relay_hello_build(in, "AAbb", NONCE);
    memcpy(in + RELAY_HELLO_LEN, "GET /", 5); /* what follows is not consumed */
    assert_int_equal(relay_hello_parse(in, sizeof(in), "AAbb", answer), RELAY_HELLO_LEN);
    relay_answer_build(want, "AAbb", NONCE);
    assert_memory_equal(answer, want, sizeof(want));
}

static void test_http_is_not_a_hello(void **state)
{
    (void)state;
    char answer[RELAY_ANSWER_LEN];
    static const char *const http[] = {"GET / HTTP/1.1\r\n\r\n", "SE", "SEARCH / HTTP/1.1\r\n",
                                       "STREAMIO-RELAX x", "POST"};
    for (size_t i = 0; i < sizeof(http) / sizeof(http[0]); i++)
        assert_int_equal(relay_hello_parse(http[i], strlen(http[i]), "AAbb", answer), 0);
}

/* The network may cut a hello anywhere: every prefix of one asks for more, and the whole decides
 * (another server's is refused only once its tag has arrived whole). */
static void test_a_hello_cut_short_waits_for_the_rest(void **state)
{
    (void)state;
    char answer[RELAY_ANSWER_LEN], in[RELAY_HELLO_LEN];
    relay_hello_build(in, "AAbb", NONCE);
    for (size_t n = 1; n < RELAY_HELLO_LEN; n++)
        assert_int_equal(relay_hello_parse(in, n, "AAbb", answer), -EAGAIN);
    assert_int_equal(relay_hello_parse(in, RELAY_HELLO_LEN, "AAbb", answer), RELAY_HELLO_LEN);
    relay_hello_build(in, "CCdd", NONCE);
    for (size_t n = 1; n < RELAY_HELLO_LEN; n++)
        assert_int_equal(relay_hello_parse(in, n, "AAbb", answer), -EAGAIN);
    assert_int_equal(relay_hello_parse(in, RELAY_HELLO_LEN, "AAbb", answer), -EINVAL);
}

static void test_refusals(void **state)
{
    (void)state;
    char answer[RELAY_ANSWER_LEN], in[RELAY_HELLO_LEN];
    relay_hello_build(in, "CCdd", NONCE); /* another server's */
    assert_int_equal(relay_hello_parse(in, sizeof(in), "AAbb", answer), -EINVAL);
    static const char *const bad[] = {
        "STREAMIO-RELAY AAbb Ab_-0123456789z \r\n",  /* a space in the nonce */
        "STREAMIO-RELAY AAbb Ab_-0123456789z\xff\r\n", /* not the nonce alphabet */
        "STREAMIO-RELAY AAbb Ab_-0123456789zZ\n\n",  /* not CRLF */
        "STREAMIO-RELAY AAbbXAb_-0123456789zZ\r\n",  /* no space after the tag */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(relay_hello_parse(bad[i], RELAY_HELLO_LEN, "AAbb", answer), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bytes),
        cmocka_unit_test(test_a_hello_for_this_server_is_answered),
        cmocka_unit_test(test_http_is_not_a_hello),
        cmocka_unit_test(test_a_hello_cut_short_waits_for_the_rest),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
