/*
 * Unit tests for worker/limits with a fake clock and a fake RSS: token buckets (refill, burst,
 * unlimited), the violation window and the kick, connection admission (total, per address, IPv6
 * /64 grouping, IPv4-mapped), the address map under churn, the memory high-water check and the
 * stats.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "worker/sio/limits.h"

typedef struct fake {
    uint64_t now_ms;
    uint64_t rss;
    int rss_rc;
    unsigned rss_reads;
} fake_t;

static uint64_t fake_clock(void *arg)
{
    return ((fake_t *)arg)->now_ms;
}

static int fake_rss(uint64_t *bytes, void *arg)
{
    fake_t *f = arg;
    f->rss_reads++;
    *bytes = f->rss;
    return f->rss_rc;
}

static limits_t *make(fake_t *f, limits_config_t c)
{
    c.clock = fake_clock;
    c.rss = fake_rss;
    c.arg = f;
    c.hash_seed[0] = 1;
    c.hash_seed[1] = 2;
    limits_t *l;
    l = limits_new(&c);
    return l;
}

static struct sockaddr_storage v4(const char *ip)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    struct sockaddr_in *in = (struct sockaddr_in *)&ss;
    in->sin_family = AF_INET;
    in->sin_port = htons(40000);
    assert_int_equal(inet_pton(AF_INET, ip, &in->sin_addr), 1);
    return ss;
}

static struct sockaddr_storage v6(const char *ip)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
    in6->sin6_family = AF_INET6;
    assert_int_equal(inet_pton(AF_INET6, ip, &in6->sin6_addr), 1);
    return ss;
}

#define SA(ss) ((const struct sockaddr *)&(ss))

static void test_event_bucket_burst_then_rate(void **state)
{
    (void)state;
    fake_t f = {.now_ms = 5000};
    limits_t *l = make(&f, (limits_config_t){.events = {10, 20}, .joins = {1, 1}});
    limits_socket_t s;
    limits_socket_init(l, &s);
    for (int i = 0; i < 20; i++)
        assert_int_equal(limits_event(l, &s), LIMITS_PASS);
    assert_int_equal(limits_event(l, &s), LIMITS_NOTIFY);
    assert_int_equal(limits_event(l, &s), LIMITS_DROP);
    /* 10/s: one token every 100 ms, not before */
    f.now_ms += 99;
    assert_int_equal(limits_event(l, &s), LIMITS_DROP);
    f.now_ms += 1;
    assert_int_equal(limits_event(l, &s), LIMITS_PASS);
    assert_int_equal(limits_event(l, &s), LIMITS_DROP);
    /* partial tokens accumulate across calls */
    f.now_ms += 50;
    assert_int_equal(limits_event(l, &s), LIMITS_DROP);
    f.now_ms += 50;
    assert_int_equal(limits_event(l, &s), LIMITS_PASS);
    /* a long pause refills to the burst, never beyond */
    f.now_ms += 3600 * 1000;
    for (int i = 0; i < 20; i++)
        assert_int_equal(limits_event(l, &s), LIMITS_PASS);
    assert_int_not_equal(limits_event(l, &s), LIMITS_PASS);
    limits_stats_t st;
    limits_get_stats(l, &st);
    assert_int_equal(st.events_refused, 6);
    assert_int_equal(st.joins_refused, 0);
    limits_free(l);
}

static void test_clock_going_back_adds_nothing(void **state)
{
    (void)state;
    fake_t f = {.now_ms = 100000};
    limits_t *l = make(&f, (limits_config_t){.events = {1, 1}, .joins = {1, 1}});
    limits_socket_t s;
    limits_socket_init(l, &s);
    assert_int_equal(limits_event(l, &s), LIMITS_PASS);
    f.now_ms = 1;
    assert_int_equal(limits_event(l, &s), LIMITS_NOTIFY);
    f.now_ms = 100999;
    assert_int_not_equal(limits_event(l, &s), LIMITS_PASS);
    f.now_ms = 101000;
    assert_int_equal(limits_event(l, &s), LIMITS_PASS);
    limits_free(l);
}

static void test_unlimited_and_extreme_rates(void **state)
{
    (void)state;
    fake_t f = {.now_ms = 0};
    limits_t *l = make(&f, (limits_config_t){.events = {0, 1}, .joins = {1000000, 1000000}});
    limits_socket_t s;
    limits_socket_init(l, &s);
    for (int i = 0; i < 100000; i++)
        assert_int_equal(limits_event(l, &s), LIMITS_PASS);
    for (int i = 0; i < 1000000; i++)
        assert_int_equal(limits_join(l, &s), LIMITS_PASS);
    assert_int_equal(limits_join(l, &s), LIMITS_NOTIFY);
    f.now_ms = UINT64_MAX / 2; /* huge elapsed time must not overflow the refill */
    assert_int_equal(limits_join(l, &s), LIMITS_PASS);
    limits_free(l);
}

static void test_persistent_flood_is_kicked(void **state)
{
    (void)state;
    fake_t f = {.now_ms = 0};
    limits_t *l =
        make(&f, (limits_config_t){.events = {1, 1}, .joins = {1, 1}, .max_violations = 3});
    limits_socket_t s;
    limits_socket_init(l, &s);
    assert_int_equal(limits_event(l, &s), LIMITS_PASS);
    assert_int_equal(limits_event(l, &s), LIMITS_NOTIFY);
    assert_int_equal(limits_event(l, &s), LIMITS_DROP);
    assert_int_equal(limits_event(l, &s), LIMITS_DROP);
    assert_int_equal(limits_event(l, &s), LIMITS_KICK);
    limits_stats_t st;
    limits_get_stats(l, &st);
    assert_int_equal(st.kicked, 1);
    /* violations spread over windows never add up to a kick */
    limits_socket_init(l, &s);
    for (int w = 0; w < 5; w++) {
        f.now_ms += LIMITS_WINDOW_MS;
        assert_int_equal(limits_event(l, &s), LIMITS_PASS);
        assert_int_equal(limits_event(l, &s), LIMITS_NOTIFY);
        assert_int_equal(limits_event(l, &s), LIMITS_DROP);
        assert_int_equal(limits_event(l, &s), LIMITS_DROP);
    }
    limits_free(l);
    /* max_violations 0: refusals only, never a kick */
    l = make(&f, (limits_config_t){.events = {1, 1}, .joins = {1, 1}});
    limits_socket_init(l, &s);
    assert_int_equal(limits_event(l, &s), LIMITS_PASS);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(limits_event(l, &s), i == 0 ? LIMITS_NOTIFY : LIMITS_DROP);
    limits_free(l);
}

static void test_joins_have_their_own_bucket(void **state)
{
    (void)state;
    fake_t f = {.now_ms = 0};
    limits_t *l =
        make(&f, (limits_config_t){.events = {100, 100}, .joins = {2, 3}, .max_violations = 10});
    limits_socket_t s;
    limits_socket_init(l, &s);
    for (int i = 0; i < 3; i++)
        assert_int_equal(limits_join(l, &s), LIMITS_PASS);
    assert_int_equal(limits_join(l, &s), LIMITS_NOTIFY);
    assert_int_equal(limits_event(l, &s), LIMITS_PASS);
    f.now_ms += 500;
    assert_int_equal(limits_join(l, &s), LIMITS_PASS);
    limits_stats_t st;
    limits_get_stats(l, &st);
    assert_int_equal(st.joins_refused, 1);
    assert_int_equal(st.events_refused, 0);
    limits_free(l);
}

static void test_connections_total_and_per_ip(void **state)
{
    (void)state;
    fake_t f = {0};
    limits_t *l = make(&f, (limits_config_t){.max_connections = 5, .max_per_ip = 2});
    struct sockaddr_storage a = v4("10.0.0.1"), b = v4("10.0.0.2"), c = v4("10.0.0.3");
    assert_int_equal(limits_conn_admit(l, SA(a)), 0);
    assert_int_equal(limits_conn_admit(l, SA(a)), 0);
    assert_int_equal(limits_conn_admit(l, SA(a)), -EMFILE);
    assert_int_equal(limits_conn_count_ip(l, SA(a)), 2);
    assert_int_equal(limits_conn_admit(l, SA(b)), 0);
    assert_int_equal(limits_conn_admit(l, SA(b)), 0);
    assert_int_equal(limits_conn_admit(l, SA(c)), 0);
    assert_int_equal(limits_conn_count(l), 5);
    assert_int_equal(limits_conn_admit(l, SA(c)), -ENFILE);
    limits_conn_release(l, SA(a));
    assert_int_equal(limits_conn_count(l), 4);
    assert_int_equal(limits_conn_count_ip(l, SA(a)), 1);
    assert_int_equal(limits_conn_admit(l, SA(c)), 0);
    /* releasing an address never admitted changes nothing */
    struct sockaddr_storage z = v4("192.0.2.9");
    limits_conn_release(l, SA(z));
    assert_int_equal(limits_conn_count(l), 5);
    limits_stats_t st;
    limits_get_stats(l, &st);
    assert_int_equal(st.refused_ip, 1);
    assert_int_equal(st.refused_total, 1);
    assert_string_equal(limits_strerror(-EMFILE), "Too many connections from this address");
    assert_string_equal(limits_strerror(-ENFILE), "Server connection limit reached");
    limits_free(l);
    limits_free(NULL);
}

static void test_ipv6_is_counted_per_64(void **state)
{
    (void)state;
    fake_t f = {0};
    limits_t *l = make(&f, (limits_config_t){.max_per_ip = 2});
    struct sockaddr_storage a = v6("2001:db8:1:2::1"), b = v6("2001:db8:1:2:ffff::9"),
                            c = v6("2001:db8:1:3::1"), m = v6("::ffff:10.0.0.1"),
                            m2 = v6("::ffff:10.0.0.2"), p = v4("10.0.0.1");
    assert_int_equal(limits_conn_admit(l, SA(a)), 0);
    assert_int_equal(limits_conn_admit(l, SA(b)), 0);
    assert_int_equal(limits_conn_admit(l, SA(a)), -EMFILE);
    assert_int_equal(limits_conn_admit(l, SA(c)), 0);
    /* an IPv4-mapped address is the IPv4 address, whole */
    assert_int_equal(limits_conn_admit(l, SA(m)), 0);
    assert_int_equal(limits_conn_admit(l, SA(p)), 0);
    assert_int_equal(limits_conn_admit(l, SA(p)), -EMFILE);
    assert_int_equal(limits_conn_admit(l, SA(m2)), 0);
    assert_int_equal(limits_conn_count_ip(l, SA(m)), 2);
    /* other families count towards the total only */
    struct sockaddr un = {.sa_family = AF_UNIX};
    assert_int_equal(limits_conn_admit(l, &un), 0);
    assert_int_equal(limits_conn_count(l), 7);
    limits_conn_release(l, &un);
    assert_int_equal(limits_conn_count(l), 6);
    limits_free(l);
}

static void test_address_map_survives_churn(void **state)
{
    (void)state;
    fake_t f = {0};
    limits_t *l = make(&f, (limits_config_t){.max_per_ip = 3});
    enum { N = 5000 };
    char ip[32];
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < N; i++) {
            snprintf(ip, sizeof(ip), "10.%d.%d.%d", round, i / 256, i % 256);
            struct sockaddr_storage a = v4(ip);
            assert_int_equal(limits_conn_admit(l, SA(a)), 0);
            if (i % 3 == 0)
                assert_int_equal(limits_conn_admit(l, SA(a)), 0);
        }
        /* remove every other address: the rest must still be found (backward shift) */
        for (int i = 0; i < N; i += 2) {
            snprintf(ip, sizeof(ip), "10.%d.%d.%d", round, i / 256, i % 256);
            struct sockaddr_storage a = v4(ip);
            limits_conn_release(l, SA(a));
            if (i % 3 == 0)
                limits_conn_release(l, SA(a));
            assert_int_equal(limits_conn_count_ip(l, SA(a)), 0);
        }
        for (int i = 1; i < N; i += 2) {
            snprintf(ip, sizeof(ip), "10.%d.%d.%d", round, i / 256, i % 256);
            struct sockaddr_storage a = v4(ip);
            assert_int_equal(limits_conn_count_ip(l, SA(a)), i % 3 == 0 ? 2 : 1);
        }
    }
    /* then everything goes */
    for (int round = 0; round < 3; round++) {
        for (int i = 1; i < N; i += 2) {
            snprintf(ip, sizeof(ip), "10.%d.%d.%d", round, i / 256, i % 256);
            struct sockaddr_storage a = v4(ip);
            limits_conn_release(l, SA(a));
            if (i % 3 == 0)
                limits_conn_release(l, SA(a));
        }
    }
    assert_int_equal(limits_conn_count(l), 0);
    limits_free(l);
}

static void test_memory_high_water_sheds_and_caches(void **state)
{
    (void)state;
    fake_t f = {.now_ms = 10000, .rss = 100 << 20};
    limits_t *l = make(&f, (limits_config_t){.memory_high_bytes = 200 << 20});
    struct sockaddr_storage a = v4("10.0.0.1");
    assert_false(limits_memory_high(l));
    assert_int_equal(limits_conn_admit(l, SA(a)), 0);
    assert_int_equal(f.rss_reads, 1);
    f.rss = 200 << 20;
    /* cached for LIMITS_RSS_CACHE_MS */
    f.now_ms += LIMITS_RSS_CACHE_MS - 1;
    assert_int_equal(limits_conn_admit(l, SA(a)), 0);
    assert_int_equal(f.rss_reads, 1);
    f.now_ms += 1;
    assert_int_equal(limits_conn_admit(l, SA(a)), -EBUSY);
    assert_int_equal(f.rss_reads, 2);
    assert_int_equal(limits_conn_count(l), 2);
    limits_stats_t st;
    limits_get_stats(l, &st);
    assert_int_equal(st.refused_memory, 1);
    /* unreadable RSS never sheds */
    f.rss_rc = -EIO;
    f.now_ms += LIMITS_RSS_CACHE_MS;
    assert_false(limits_memory_high(l));
    limits_free(l);
    /* off: RSS is never read */
    f.rss_reads = 0;
    l = make(&f, (limits_config_t){0});
    assert_false(limits_memory_high(l));
    assert_int_equal(limits_conn_admit(l, SA(a)), 0);
    assert_int_equal(f.rss_reads, 0);
    limits_free(l);
}

static void test_real_seams(void **state)
{
    (void)state;
    /* the default clock and /proc/self/statm: this process is above 1 MiB and below 1 TiB */
    limits_config_t c = {.memory_high_bytes = 1 << 20, .events = {1, 1}, .joins = {1, 1}};
    limits_t *l;
    l = limits_new(&c);
    assert_true(limits_memory_high(l));
    limits_free(l);
    c.memory_high_bytes = (uint64_t)1 << 40;
    l = limits_new(&c);
    assert_false(limits_memory_high(l));
    limits_socket_t s;
    limits_socket_init(l, &s);
    assert_int_equal(limits_event(l, &s), LIMITS_PASS);
    assert_int_equal(limits_event(l, &s), LIMITS_NOTIFY);
    limits_free(l);
}

static void test_config_from_cfg(void **state)
{
    (void)state;
    cfg_t cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.max_connections = 10;
    cfg.max_connections_per_ip = 7;
    cfg.memory_high_water_mb = 512;
    cfg.rate_events_per_sec = 100;
    cfg.rate_events_burst = 200;
    cfg.rate_joins_per_sec = 20;
    cfg.rate_joins_burst = 100;
    cfg.rate_max_violations = 50;
    limits_config_t c;
    limits_config_from_cfg(&c, &cfg, 4);
    assert_int_equal(c.max_connections, 3); /* 10 over 4 workers, rounded up */
    assert_int_equal(c.max_per_ip, 7);
    assert_int_equal(c.memory_high_bytes, (uint64_t)512 << 20);
    assert_int_equal(c.events.per_sec, 100);
    assert_int_equal(c.events.burst, 200);
    assert_int_equal(c.joins.per_sec, 20);
    assert_int_equal(c.joins.burst, 100);
    assert_int_equal(c.max_violations, 50);
    assert_null(c.clock);
    assert_null(c.rss);
    cfg.max_connections = 0;
    limits_config_from_cfg(&c, &cfg, 0);
    assert_int_equal(c.max_connections, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_event_bucket_burst_then_rate),
        cmocka_unit_test(test_clock_going_back_adds_nothing),
        cmocka_unit_test(test_unlimited_and_extreme_rates),
        cmocka_unit_test(test_persistent_flood_is_kicked),
        cmocka_unit_test(test_joins_have_their_own_bucket),
        cmocka_unit_test(test_connections_total_and_per_ip),
        cmocka_unit_test(test_ipv6_is_counted_per_64),
        cmocka_unit_test(test_address_map_survives_churn),
        cmocka_unit_test(test_memory_high_water_sheds_and_caches),
        cmocka_unit_test(test_real_seams),
        cmocka_unit_test(test_config_from_cfg),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
