/* Unit tests for common/log: level parsing, filtering, and the line format. */
#include <errno.h>
#include <regex.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/log.h"

static void test_level_parse(void **state)
{
    (void)state;
    log_level_t l;
    assert_int_equal(log_level_parse("warn", &l), 0);
    assert_int_equal(l, LOG_LVL_WARN);
    assert_int_equal(log_level_parse("DEBUG", &l), 0);
    assert_int_equal(l, LOG_LVL_DEBUG);
    assert_int_equal(log_level_parse("verbose", &l), -EINVAL);
}

/* Captures what the macros write to stderr. */
static size_t capture(log_level_t level, char *out, size_t cap)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    int saved = dup(STDERR_FILENO);
    dup2(fds[1], STDERR_FILENO);
    log_setup(level, "worker", 3);
    LOG_DEBUG("debug %d", 1);
    LOG_INFO("info %s", "two");
    LOG_ERROR("error");
    dup2(saved, STDERR_FILENO);
    close(saved);
    close(fds[1]);
    ssize_t n = read(fds[0], out, cap - 1);
    close(fds[0]);
    out[n > 0 ? n : 0] = '\0';
    return n > 0 ? (size_t)n : 0;
}

static void test_filtering_and_format(void **state)
{
    (void)state;
    char out[1024];
    capture(LOG_LVL_INFO, out, sizeof(out));
    assert_null(strstr(out, "debug 1"));
    regex_t re;
    assert_int_equal(regcomp(&re,
                             "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z "
                             "\\[INFO\\] \\[worker 3:[0-9]+\\] info two\n"
                             "[^\n]+\\[ERROR\\] \\[worker 3:[0-9]+\\] error\n$",
                             REG_EXTENDED),
                     0);
    assert_int_equal(regexec(&re, out, 0, NULL, 0), 0);
    regfree(&re);
    capture(LOG_LVL_ERROR, out, sizeof(out));
    assert_null(strstr(out, "info two"));
    assert_non_null(strstr(out, "[ERROR]"));
}

static void test_sampled_logs_powers_of_two(void **state)
{
    (void)state;
    uint64_t count = 0;
    int logged = 0, last = 0;
    for (int i = 1; i <= 1000; i++) {
        if (log_sampled(&count)) {
            logged++;
            last = i;
        }
    }
    assert_int_equal(count, 1000);
    assert_int_equal(logged, 10); /* 1, 2, 4, ... 512 */
    assert_int_equal(last, 512);
}

/* Names from clients and Redis reach messages raw: a newline must not forge a second line, an
 * escape sequence must not reach a terminal; both formats. */
static void test_control_characters_are_escaped(void **state)
{
    (void)state;
    const char *room = "chat\n2026-01-01T00:00:00.000Z [ERROR] [master:1] forged\x1b[2J\r\t\x7f";
    for (int json = 0; json < 2; json++) {
        int fds[2];
        assert_int_equal(pipe(fds), 0);
        int saved = dup(STDERR_FILENO);
        dup2(fds[1], STDERR_FILENO);
        log_setup(LOG_LVL_INFO, "worker", 0);
        log_set_json(json);
        LOG_WARN("joined room %s", room);
        log_set_json(false);
        dup2(saved, STDERR_FILENO);
        close(saved);
        close(fds[1]);
        char out[1024];
        ssize_t n = read(fds[0], out, sizeof(out) - 1);
        close(fds[0]);
        assert_true(n > 0);
        out[n] = '\0';
        assert_non_null(strchr(out, '\n'));
        assert_int_equal(strchr(out, '\n') - out, n - 1); /* one line */
        assert_null(strchr(out, '\x1b'));
        assert_null(strchr(out, '\r'));
        assert_null(strchr(out, '\x7f'));
        assert_non_null(strstr(out, json ? "chat\\u000a2026" : "chat\\n2026"));
        assert_non_null(
            strstr(out, json ? "forged\\u001b[2J\\u000d\\u0009" : "forged\\x1b[2J\\r\\t\\x7f"));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_level_parse),
        cmocka_unit_test(test_filtering_and_format),
        cmocka_unit_test(test_sampled_logs_powers_of_two),
        cmocka_unit_test(test_control_characters_are_escaped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
