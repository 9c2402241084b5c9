/* Unit tests for ctl/sio_client: the watch client's Engine.IO / Socket.IO exchanges. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/buf.h"
#include "ctl/sio_client.h"

typedef struct fake {
    buf_t sent;    /* messages sent, one per line */
    buf_t printed; /* room:message payloads, one per line */
    buf_t notes;
    int send_rc;
} fake_t;

static int fake_send(void *arg, const char *msg, size_t len)
{
    fake_t *f = arg;
    buf_append(&f->sent, msg, len);
    buf_putc(&f->sent, '\n');
    return f->send_rc;
}

static void fake_message(void *arg, const char *json, size_t len)
{
    fake_t *f = arg;
    buf_append(&f->printed, json, len);
    buf_putc(&f->printed, '\n');
}

static void fake_note(void *arg, const char *text)
{
    fake_t *f = arg;
    buf_puts(&f->notes, text);
    buf_putc(&f->notes, '\n');
}

static fake_t f;
static sio_client_t *c;
static buf_t err;

static int setup_with(const char *token)
{
    memset(&f, 0, sizeof(f));
    buf_init(&err);
    const char *rooms[] = {"chat.user.123", "news \"x\""};
    sio_client_cb_t cb = {fake_send, fake_message, fake_note, &f};
    return sio_client_new(&c, rooms, 2, token, &cb);
}

static int setup(void **state)
{
    (void)state;
    return setup_with(NULL);
}

static int setup_token(void **state)
{
    (void)state;
    return setup_with("a.b\"c");
}

static int teardown(void **state)
{
    (void)state;
    sio_client_free(c);
    buf_free(&f.sent);
    buf_free(&f.printed);
    buf_free(&f.notes);
    buf_free(&err);
    return 0;
}

static int feed(const char *msg)
{
    buf_reset(&err);
    return sio_client_feed(c, msg, strlen(msg), &err);
}

#define OPEN "0{\"sid\":\"s\",\"upgrades\":[],\"pingInterval\":25000,\"pingTimeout\":20000}"

static void test_connects_joins_and_prints(void **state)
{
    (void)state;
    assert_int_equal(sio_client_silence_ms(c), 0);
    assert_int_equal(feed(OPEN), 0);
    assert_int_equal(sio_client_silence_ms(c), 45000);
    assert_string_equal(f.sent.data, "40\n");
    assert_int_equal(feed("40{\"sid\":\"abc\"}"), 0);
    assert_string_equal(f.sent.data, "40\n421[\"join-room\",\"chat.user.123\"]\n"
                                     "422[\"join-room\",\"news \\\"x\\\"\"]\n");
    assert_false(sio_client_joined(c));
    assert_int_equal(feed("431[{\"ok\":true,\"roomId\":\"chat.user.123\"}]"), 0);
    assert_int_equal(feed("432[{\"ok\":true,\"roomId\":\"news \\\"x\\\"\"}]"), 0);
    assert_true(sio_client_joined(c));
    assert_string_equal(f.notes.data, "joined chat.user.123\njoined news \"x\"\n");
    /* a room:message, pretty or not, comes out as one minified line; an offset is not printed */
    assert_int_equal(feed("42[\"room:message\", {\"from\" : \"service\",\n \"roomId\":\"r\"},"
                          "\"1-0\"]"),
                     0);
    /* other events and namespaces are not printed */
    assert_int_equal(feed("42[\"other\",{\"a\":1}]"), 0);
    assert_int_equal(feed("42/admin,[\"room:message\",{\"a\":1}]"), 0);
    assert_string_equal(f.printed.data, "{\"from\":\"service\",\"roomId\":\"r\"}\n");
    /* ping: pong with the same data */
    assert_int_equal(feed("2"), 0);
    assert_int_equal(feed("6"), 0);
    assert_non_null(strstr(f.sent.data, "]\n3\n"));
    /* the server's error event is a note */
    assert_int_equal(feed("42[\"error\",{\"message\":\"Rate limit exceeded\"}]"), 0);
    assert_non_null(strstr(f.notes.data, "the server sent error: Rate limit exceeded\n"));
    /* Engine.IO close: reconnect */
    assert_int_equal(feed("1"), -ECONNRESET);
}

static void test_restart_joins_again(void **state)
{
    (void)state;
    feed(OPEN);
    feed("40{\"sid\":\"a\"}");
    sio_client_restart(c);
    assert_false(sio_client_joined(c));
    buf_reset(&f.sent);
    assert_int_equal(feed("4"), -EPROTO); /* before the new open */
    assert_int_equal(feed(OPEN), 0);
    assert_int_equal(feed("40{\"sid\":\"b\"}"), 0);
    assert_non_null(strstr(f.sent.data, "421[\"join-room\",\"chat.user.123\"]\n"));
}

static void test_token_in_connect(void **state)
{
    (void)state;
    assert_int_equal(feed(OPEN), 0);
    assert_string_equal(f.sent.data, "40{\"token\":\"a.b\\\"c\"}\n");
}

static void test_refusals(void **state)
{
    (void)state;
    feed(OPEN);
    assert_int_equal(feed("44{\"message\":\"Authentication required\"}"), -EACCES);
    assert_string_equal(err.data, "the server refused the connection: Authentication required");
    sio_client_restart(c);
    feed(OPEN);
    feed("40{\"sid\":\"a\"}");
    assert_int_equal(feed("431[{\"ok\":true}]"), 0);
    assert_int_equal(feed("432[{\"ok\":false,\"error\":\"Room not allowed\"}]"), -EACCES);
    assert_string_equal(err.data, "join-room news \"x\" refused: Room not allowed");
    /* an ack that is not ours is ignored */
    assert_int_equal(feed("437[{\"ok\":false}]"), 0);
    assert_int_equal(feed("41"), -EACCES);
    assert_string_equal(err.data, "the server disconnected this client");
}

static void test_protocol_errors(void **state)
{
    (void)state;
    assert_int_equal(feed("2"), -EPROTO); /* no open packet yet */
    assert_int_equal(feed("0{bad"), -EPROTO);
    assert_int_equal(feed(OPEN), 0);
    assert_int_equal(feed("9"), -EPROTO);
    assert_int_equal(feed("42not json"), -EPROTO);
    assert_int_equal(sio_client_feed(c, "", 0, &err), -EPROTO);
    /* a failed send is returned as it is */
    f.send_rc = -EPIPE;
    assert_int_equal(feed("2"), -EPIPE);
}

/* A server's words (decoded JSON strings, raw packets) reach the terminal without control bytes. */
static void test_server_text_escaped(void **state)
{
    (void)state;
    assert_int_equal(feed("\x1b[2J"), -EPROTO);
    assert_string_equal(err.data, "expected the Engine.IO open packet, got \"\\x1b[2J\"");
    assert_int_equal(feed(OPEN), 0);
    assert_int_equal(feed("\x1b"), -EPROTO);
    assert_string_equal(err.data, "an unknown Engine.IO packet type '\\x1b'");
    assert_int_equal(feed("4\x07"), -EPROTO);
    assert_string_equal(err.data, "a malformed Socket.IO packet: \\x07");
    assert_int_equal(feed("40{\"sid\":\"a\"}"), 0);
    assert_int_equal(feed("42[\"error\",{\"message\":\"\\u001b]0;owned\\u0007\"}]"), 0);
    assert_non_null(strstr(f.notes.data, "the server sent error: \\x1b]0;owned\\x07\n"));
    assert_int_equal(feed("432[{\"ok\":false,\"error\":\"\\u001b[31mno\"}]"), -EACCES);
    assert_string_equal(err.data, "join-room news \"x\" refused: \\x1b[31mno");
    sio_client_restart(c);
    feed(OPEN);
    assert_int_equal(feed("44{\"message\":\"\\u001bc\"}"), -EACCES);
    assert_string_equal(err.data, "the server refused the connection: \\x1bc");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_connects_joins_and_prints, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restart_joins_again, setup, teardown),
        cmocka_unit_test_setup_teardown(test_token_in_connect, setup_token, teardown),
        cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_protocol_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_text_escaped, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
