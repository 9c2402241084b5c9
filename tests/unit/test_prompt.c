/* Unit tests for ctl/prompt: the seed's SERVER> commands as the one-shot commands they send. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "ctl/prompt.h"

static prompt_rc_t parse(const char *text, char *joined, size_t cap)
{
    static char line[512];
    snprintf(line, sizeof(line), "%s", text);
    buf_t json;
    buf_init(&json);
    const char *argv[PROMPT_MAX_ARGS];
    const char *why = NULL;
    int argc = -1;
    prompt_rc_t rc = prompt_parse(line, &json, argv, &argc, &why);
    joined[0] = '\0';
    if (rc == PROMPT_RUN) {
        for (int i = 0; i < argc; i++)
            snprintf(joined + strlen(joined), cap - strlen(joined), "%s%s", i ? "|" : "", argv[i]);
    } else if (rc == PROMPT_BAD) {
        snprintf(joined, cap, "%s", why);
    } else {
        assert_int_equal(argc, 0);
    }
    buf_free(&json);
    return rc;
}

static void test_the_seed_commands(void **state)
{
    (void)state;
    char out[512];
    assert_int_equal(parse("status", out, sizeof(out)), PROMPT_RUN);
    assert_string_equal(out, "status");
    assert_int_equal(parse("  rooms  \r", out, sizeof(out)), PROMPT_RUN);
    assert_string_equal(out, "rooms");
    assert_int_equal(parse("clients", out, sizeof(out)), PROMPT_RUN);
    assert_string_equal(out, "clients");
    assert_int_equal(parse("broadcast hello  world", out, sizeof(out)), PROMPT_RUN);
    assert_string_equal(out, "broadcast|message|\"hello  world\"");
    assert_int_equal(parse("broadcast {\"n\":1}", out, sizeof(out)), PROMPT_RUN);
    assert_string_equal(out, "broadcast|message|{\"n\":1}");
    assert_int_equal(parse("sendroom\tchat.1   say \"hi\"\\", out, sizeof(out)), PROMPT_RUN);
    assert_string_equal(out, "sendroom|chat.1|message|\"say \\\"hi\\\"\\\\\"");
    assert_int_equal(parse("sendroom chat.1 42", out, sizeof(out)), PROMPT_RUN);
    assert_string_equal(out, "sendroom|chat.1|message|42");
    assert_int_equal(parse("exit", out, sizeof(out)), PROMPT_EXIT);
    assert_int_equal(parse("quit", out, sizeof(out)), PROMPT_EXIT);
    assert_int_equal(parse("help", out, sizeof(out)), PROMPT_HELP);
    assert_int_equal(parse("", out, sizeof(out)), PROMPT_EMPTY);
    assert_int_equal(parse(" \t ", out, sizeof(out)), PROMPT_EMPTY);
}

static void test_bad_lines_say_why(void **state)
{
    (void)state;
    char out[512];
    assert_int_equal(parse("broadcast", out, sizeof(out)), PROMPT_BAD);
    assert_string_equal(out, "usage: broadcast <message>");
    assert_int_equal(parse("sendroom chat.1", out, sizeof(out)), PROMPT_BAD);
    assert_string_equal(out, "usage: sendroom <room> <message>");
    assert_int_equal(parse("status now", out, sizeof(out)), PROMPT_BAD);
    assert_int_equal(parse("exit 3", out, sizeof(out)), PROMPT_BAD);
    assert_int_equal(parse("start", out, sizeof(out)), PROMPT_BAD);
    assert_string_equal(out, "unknown command (help lists them)");
    /* invalid UTF-8 in a message still becomes a JSON string (repaired) */
    assert_int_equal(parse("broadcast \xff\xfe", out, sizeof(out)), PROMPT_RUN);
    assert_string_equal(out, "broadcast|message|\"\xef\xbf\xbd\xef\xbf\xbd\"");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_the_seed_commands),
        cmocka_unit_test(test_bad_lines_say_why),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
