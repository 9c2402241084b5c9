/* Unit tests for common/redis/redis_url: REDIS_URL and host:port lists, the nasty cases
 * included, and redaction (a password never survives into a message). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/redis_url.h"

static redis_url_t ok(const char *s)
{
    redis_url_t u;
    const char *why = NULL;
    int rc = redis_url_parse(s, &u, &why);
    if (rc)
        fail_msg("%s: %s", s, why);
    return u;
}

static void bad(const char *s)
{
    redis_url_t u;
    const char *why = NULL;
    if (redis_url_parse(s, &u, &why) != -EINVAL)
        fail_msg("accepted: %s", s);
    assert_non_null(why);
}

static void test_plain_and_tls_urls(void **state)
{
    (void)state;
    redis_url_t u = ok("redis://localhost");
    assert_false(u.tls);
    assert_string_equal(u.addr.host, "localhost");
    assert_int_equal(u.addr.port, 6379);
    assert_int_equal(u.db, -1);
    assert_string_equal(u.username, "");
    assert_string_equal(u.password, "");
    u = ok("rediss://app:secret@redis.example.net:6380/0");
    assert_true(u.tls);
    assert_string_equal(u.username, "app");
    assert_string_equal(u.password, "secret");
    assert_string_equal(u.addr.host, "redis.example.net");
    assert_int_equal(u.addr.port, 6380);
    assert_int_equal(u.db, 0);
    u = ok("REDISS://h/15");
    assert_true(u.tls);
    assert_int_equal(u.db, 15);
    u = ok("redis://h:1/");
    assert_int_equal(u.db, -1);
    u = ok("redis://h:0000006379/0000000015"); /* up to 10 digits, leading zeros included */
    assert_int_equal(u.addr.port, 6379);
    assert_int_equal(u.db, 15);
}

static void test_credentials(void **state)
{
    (void)state;
    redis_url_t u = ok("redis://:only-pass@h");
    assert_string_equal(u.username, "");
    assert_string_equal(u.password, "only-pass");
    u = ok("redis://user@h");
    assert_string_equal(u.username, "user");
    assert_string_equal(u.password, "");
    /* escapes, a ':' inside the password, and '@' before the last '@' */
    u = ok("redis://a%40b:p%3Aw:d@x@h:7");
    assert_string_equal(u.username, "a@b");
    assert_string_equal(u.password, "p:w:d@x");
    assert_int_equal(u.addr.port, 7);
    u = ok("redis://u:%2F%3F%23%25@h");
    assert_string_equal(u.password, "/?#%");
}

static void test_ipv6(void **state)
{
    (void)state;
    redis_url_t u = ok("redis://[::1]:6390/2");
    assert_string_equal(u.addr.host, "::1");
    assert_int_equal(u.addr.port, 6390);
    u = ok("redis://[2001:db8::7]");
    assert_string_equal(u.addr.host, "2001:db8::7");
    assert_int_equal(u.addr.port, 6379);
    bad("redis://::1:6379");
    bad("redis://[::1");
    bad("redis://[]:6379");
    bad("redis://[zz::1]:6379");
}

static void test_nasty_urls(void **state)
{
    (void)state;
    static const char *const nasty[] = {
        "",
        "redis:/h",
        "http://h",
        "redis://",
        "redis://:6379",
        "redis://h:",
        "redis://h:0",
        "redis://h:65536",
        "redis://h:-1",
        "redis://h:+80",
        "redis://h:99999999999999999999",
        "redis://h:00000006379", /* more than 10 digits */
        "redis://h/abc",
        "redis://h/-1",
        "redis://h/65536",
        "redis://h/0/1",
        "redis://h?db=1",
        "redis://h/0?ssl=true",
        "redis://h#frag",
        "redis://h i",
        "redis://h\t",
        "redis://h\x01",
        "redis://u:%zz@h",
        "redis://u:%4@h",
        "redis://u:%@h",
        "redis://u:%00@h",
        "redis://h%41",
        "redis://ho$t",
        "redis://u:pa/ss@h",
    };
    for (size_t i = 0; i < sizeof(nasty) / sizeof(nasty[0]); i++)
        bad(nasty[i]);
    char long_host[400];
    memset(long_host, 'a', sizeof(long_host));
    memcpy(long_host, "redis://", 8);
    long_host[sizeof(long_host) - 1] = '\0';
    bad(long_host);
    char long_pass[600] = "redis://u:";
    memset(long_pass + 10, 'p', 300);
    strcpy(long_pass + 310, "@h");
    bad(long_pass);
}

static void test_address_lists(void **state)
{
    (void)state;
    redis_addr_t a[REDIS_URL_MAX_ADDRS];
    size_t n;
    const char *why;
    assert_int_equal(redis_addr_parse_list("10.0.0.1:7000, node-b ,[::1]:7002", 6379, a,
                                           REDIS_URL_MAX_ADDRS, &n, &why),
                     0);
    assert_int_equal(n, 3);
    assert_string_equal(a[0].host, "10.0.0.1");
    assert_int_equal(a[0].port, 7000);
    assert_string_equal(a[1].host, "node-b");
    assert_int_equal(a[1].port, 6379);
    assert_string_equal(a[2].host, "::1");
    assert_int_equal(a[2].port, 7002);
    static const char *const nasty[] = {"",  ",",       "a:1,", ",a:1",  "a:1,,b:2",
                                        " ", "a:1 b:2", "a:x",  "a:1:2", "a:0"};
    for (size_t i = 0; i < sizeof(nasty) / sizeof(nasty[0]); i++) {
        if (redis_addr_parse_list(nasty[i], 6379, a, REDIS_URL_MAX_ADDRS, &n, &why) != -EINVAL)
            fail_msg("accepted: '%s'", nasty[i]);
    }
    char many[400] = "";
    for (int i = 0; i < 17; i++)
        strcat(many, i ? ",h:1" : "h:1");
    assert_int_equal(redis_addr_parse_list(many, 6379, a, REDIS_URL_MAX_ADDRS, &n, &why), -EINVAL);
}

static void test_format(void **state)
{
    (void)state;
    char out[300];
    redis_addr_t a = {.host = "::1", .port = 7000};
    redis_addr_format(&a, out, sizeof(out));
    assert_string_equal(out, "[::1]:7000");
    redis_addr_t b = {.host = "10.1.2.3", .port = 6379};
    redis_addr_format(&b, out, sizeof(out));
    assert_string_equal(out, "10.1.2.3:6379");
}

static void redacts(const char *in, const char *want)
{
    char out[256];
    redis_url_redact(in, out, sizeof(out));
    assert_string_equal(out, want);
}

static void test_redaction(void **state)
{
    (void)state;
    redacts("rediss://app:secret@h:6380/0", "rediss://app:***@h:6380/0");
    redacts("redis://:secret@h", "redis://:***@h");
    redacts("redis://user@h", "redis://user@h");
    redacts("redis://h:6379", "redis://h:6379");
    /* malformed: still hidden, even past a '/' in the password */
    redacts("redis://u:pa/ss@h", "redis://u:***@h");
    redacts("redis://u:p@ss@h:bad", "redis://u:***@h:bad");
    redacts("u:secret@h", "u:***@h");
    char tiny[4];
    redis_url_redact("redis://u:secret@h", tiny, sizeof(tiny));
    assert_string_equal(tiny, "red");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_and_tls_urls),
        cmocka_unit_test(test_credentials),
        cmocka_unit_test(test_ipv6),
        cmocka_unit_test(test_nasty_urls),
        cmocka_unit_test(test_address_lists),
        cmocka_unit_test(test_format),
        cmocka_unit_test(test_redaction),
    };
    return cmocka_run_group_tests_name("redis_url", tests, NULL, NULL);
}
