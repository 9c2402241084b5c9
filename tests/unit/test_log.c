/* Unit tests for common/log: level parsing, filtering, and the line format. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <regex.h>
#include <string.h>
#include <unistd.h>

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_level_parse),
        cmocka_unit_test(test_filtering_and_format),
        cmocka_unit_test(test_sampled_logs_powers_of_two),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
