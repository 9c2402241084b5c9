/*
 * limits: token buckets in integer milli-tokens (no floating point, no drift), an open-addressing
 * map of address -> connection count with linear probing and backward-shift deletion (no
 * tombstones, so churn never degrades it), keyed with SipHash-2-4 so clients cannot choose
 * addresses that collide.
 */
#include "worker/sio/limits.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "common/xalloc.h"

#define MAP_MIN 64

typedef struct slot {
    uint8_t key[16];
    uint32_t count; /* 0 = empty */
} slot_t;

struct limits {
    limits_config_t conf;
    size_t total;
    slot_t *map;
    size_t cap, used; /* cap is a power of two; used = non-empty slots */
    uint64_t rss_ms;  /* when rss_high was last computed */
    bool rss_read, rss_high;
    limits_stats_t stats;
};

void limits_config_from_cfg(limits_config_t *out, const cfg_t *cfg, int workers)
{
    memset(out, 0, sizeof(*out));
    if (workers < 1)
        workers = 1;
    uint32_t total = (uint32_t)cfg->max_connections;
    out->max_connections = total ? (total + (uint32_t)workers - 1) / (uint32_t)workers : 0;
    out->max_per_ip = (uint32_t)cfg->max_connections_per_ip;
    out->memory_high_bytes = (uint64_t)cfg->memory_high_water_mb << 20;
    out->events.per_sec = (uint32_t)cfg->rate_events_per_sec;
    out->events.burst = (uint32_t)cfg->rate_events_burst;
    out->joins.per_sec = (uint32_t)cfg->rate_joins_per_sec;
    out->joins.burst = (uint32_t)cfg->rate_joins_burst;
    out->max_violations = (uint32_t)cfg->rate_max_violations;
}

static uint64_t mono_ms(void *arg)
{
    (void)arg;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int limits_rss_self(uint64_t *bytes, void *arg)
{
    (void)arg;
    int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    char text[128];
    ssize_t n = read(fd, text, sizeof(text) - 1);
    close(fd);
    if (n <= 0)
        return -EIO;
    text[n] = '\0';
    unsigned long long size, resident;
    if (sscanf(text, "%llu %llu", &size, &resident) != 2)
        return -EIO;
    *bytes = (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
    return 0;
}

limits_t *limits_new(const limits_config_t *conf)
{
    limits_t *l = xcalloc(1, sizeof(*l));
    l->conf = *conf;
    if (!l->conf.clock)
        l->conf.clock = mono_ms;
    if (!l->conf.rss)
        l->conf.rss = limits_rss_self;
    if (l->conf.hash_seed[0] == 0 && l->conf.hash_seed[1] == 0 &&
        getrandom(l->conf.hash_seed, sizeof(l->conf.hash_seed), 0) != sizeof(l->conf.hash_seed))
        l->conf.hash_seed[0] = mono_ms(NULL) ^ (uint64_t)getpid() << 32;
    l->cap = MAP_MIN;
    l->map = xcalloc(l->cap, sizeof(slot_t));
    return l;
}

void limits_free(limits_t *l)
{
    if (!l)
        return;
    free(l->map);
    free(l);
}

/* ---- address map ---- */

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))

static void sip_round(uint64_t v[4])
{
    v[0] += v[1];
    v[1] = ROTL(v[1], 13);
    v[1] ^= v[0];
    v[0] = ROTL(v[0], 32);
    v[2] += v[3];
    v[3] = ROTL(v[3], 16);
    v[3] ^= v[2];
    v[0] += v[3];
    v[3] = ROTL(v[3], 21);
    v[3] ^= v[0];
    v[2] += v[1];
    v[1] = ROTL(v[1], 17);
    v[1] ^= v[2];
    v[2] = ROTL(v[2], 32);
}

/* SipHash-2-4 of a 16-byte message. */
static uint64_t siphash16(const uint64_t k[2], const uint8_t key[16])
{
    uint64_t v[4] = {k[0] ^ 0x736f6d6570736575ULL, k[1] ^ 0x646f72616e646f6dULL,
                     k[0] ^ 0x6c7967656e657261ULL, k[1] ^ 0x7465646279746573ULL};
    for (int w = 0; w < 3; w++) {
        uint64_t m = 0;
        if (w < 2) {
            for (int i = 7; i >= 0; i--)
                m = m << 8 | key[w * 8 + i];
        } else {
            m = (uint64_t)16 << 56; /* final block: length only */
        }
        v[3] ^= m;
        sip_round(v);
        sip_round(v);
        v[0] ^= m;
    }
    v[2] ^= 0xff;
    for (int i = 0; i < 4; i++)
        sip_round(v);
    return v[0] ^ v[1] ^ v[2] ^ v[3];
}

/* The counting key of an address: IPv4 (and IPv4-mapped IPv6) whole, IPv6 by /64. */
static bool addr_key(const struct sockaddr *sa, uint8_t key[16])
{
    memset(key, 0, 16);
    if (!sa)
        return false;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        key[10] = key[11] = 0xff;
        memcpy(key + 12, &in->sin_addr, 4);
        return true;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr))
            memcpy(key, &in6->sin6_addr, 16);
        else
            memcpy(key, &in6->sin6_addr, LIMITS_IPV6_PREFIX_BYTES);
        return true;
    }
    return false;
}

static size_t find(const limits_t *l, const uint8_t key[16], bool *found)
{
    size_t mask = l->cap - 1;
    size_t i = (size_t)siphash16(l->conf.hash_seed, key) & mask;
    while (l->map[i].count && memcmp(l->map[i].key, key, 16) != 0)
        i = (i + 1) & mask;
    *found = l->map[i].count != 0;
    return i;
}

static void grow(limits_t *l)
{
    slot_t *old = l->map;
    size_t old_cap = l->cap;
    l->map = xcalloc(old_cap * 2, sizeof(slot_t));
    l->cap = old_cap * 2;
    for (size_t i = 0; i < old_cap; i++) {
        if (old[i].count) {
            bool found;
            l->map[find(l, old[i].key, &found)] = old[i];
        }
    }
    free(old);
}

/* Removes slot i, moving later members of its probe run back so lookups never stop early. */
static void erase(limits_t *l, size_t i)
{
    size_t mask = l->cap - 1;
    size_t j = i;
    for (;;) {
        l->map[i].count = 0;
        for (;;) {
            j = (j + 1) & mask;
            if (l->map[j].count == 0)
                return;
            size_t home = (size_t)siphash16(l->conf.hash_seed, l->map[j].key) & mask;
            /* j may move to i only if its home is not cyclically inside (i, j] */
            bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
            if (!stays)
                break;
        }
        l->map[i] = l->map[j];
        i = j;
    }
}

size_t limits_conn_count(const limits_t *l)
{
    return l->total;
}

size_t limits_conn_count_ip(const limits_t *l, const struct sockaddr *peer)
{
    uint8_t key[16];
    bool found;
    if (!addr_key(peer, key))
        return 0;
    size_t i = find(l, key, &found);
    return found ? l->map[i].count : 0;
}

bool limits_memory_high(limits_t *l)
{
    if (l->conf.memory_high_bytes == 0)
        return false;
    uint64_t now = l->conf.clock(l->conf.arg);
    if (!l->rss_read || now - l->rss_ms >= LIMITS_RSS_CACHE_MS || now < l->rss_ms) {
        uint64_t rss;
        l->rss_high = l->conf.rss(&rss, l->conf.arg) == 0 && rss >= l->conf.memory_high_bytes;
        l->rss_ms = now;
        l->rss_read = true;
    }
    return l->rss_high;
}

int limits_conn_admit(limits_t *l, const struct sockaddr *peer)
{
    if (limits_memory_high(l)) {
        l->stats.refused_memory++;
        return -EBUSY;
    }
    if (l->conf.max_connections && l->total >= l->conf.max_connections) {
        l->stats.refused_total++;
        return -ENFILE;
    }
    uint8_t key[16];
    if (!addr_key(peer, key)) {
        l->total++;
        return 0;
    }
    bool found;
    size_t i = find(l, key, &found);
    if (found) {
        if (l->conf.max_per_ip && l->map[i].count >= l->conf.max_per_ip) {
            l->stats.refused_ip++;
            return -EMFILE;
        }
        l->map[i].count++;
        l->total++;
        return 0;
    }
    if ((l->used + 1) * 2 > l->cap) {
        grow(l);
        i = find(l, key, &found);
    }
    memcpy(l->map[i].key, key, 16);
    l->map[i].count = 1;
    l->used++;
    l->total++;
    return 0;
}

void limits_conn_release(limits_t *l, const struct sockaddr *peer)
{
    uint8_t key[16];
    if (!addr_key(peer, key)) {
        if (l->total)
            l->total--;
        return;
    }
    bool found;
    size_t i = find(l, key, &found);
    if (!found)
        return;
    if (l->total)
        l->total--;
    if (--l->map[i].count == 0) {
        erase(l, i);
        l->used--;
    }
}

const char *limits_strerror(int rc)
{
    switch (rc) {
    case 0:
        return "ok";
    case -EBUSY:
        return "Server is shedding load (memory high-water mark)";
    case -ENFILE:
        return "Server connection limit reached";
    case -EMFILE:
        return "Too many connections from this address";
    default:
        return "Connection refused";
    }
}

/* ---- token buckets ---- */

static void refill(uint64_t *milli, uint64_t *last, const limits_rate_t *r, uint64_t now)
{
    uint64_t cap = (uint64_t)r->burst * 1000;
    uint64_t elapsed = now > *last ? now - *last : 0;
    *last = now > *last ? now : *last;
    /* past this many ms the bucket is full whatever it held: also keeps the product small */
    uint64_t fill_ms = cap / r->per_sec + 1;
    if (elapsed >= fill_ms)
        *milli = cap;
    else
        *milli = *milli + elapsed * r->per_sec > cap ? cap : *milli + elapsed * r->per_sec;
}

static bool take(uint64_t *milli, uint64_t *last, const limits_rate_t *r, uint64_t now)
{
    if (r->per_sec == 0)
        return true;
    refill(milli, last, r, now);
    if (*milli < 1000)
        return false;
    *milli -= 1000;
    return true;
}

void limits_socket_init(limits_t *l, limits_socket_t *s)
{
    uint64_t now = l->conf.clock(l->conf.arg);
    memset(s, 0, sizeof(*s));
    s->events_milli = (uint64_t)l->conf.events.burst * 1000;
    s->joins_milli = (uint64_t)l->conf.joins.burst * 1000;
    s->events_ms = s->joins_ms = s->window_ms = now;
}

static limits_verdict_t refuse(limits_t *l, limits_socket_t *s, uint64_t now)
{
    if (now < s->window_ms || now - s->window_ms >= LIMITS_WINDOW_MS) {
        s->window_ms = now;
        s->violations = 0;
    }
    if (s->violations < UINT32_MAX)
        s->violations++;
    if (l->conf.max_violations && s->violations > l->conf.max_violations) {
        l->stats.kicked++;
        return LIMITS_KICK;
    }
    return s->violations == 1 ? LIMITS_NOTIFY : LIMITS_DROP;
}

limits_verdict_t limits_event(limits_t *l, limits_socket_t *s)
{
    uint64_t now = l->conf.clock(l->conf.arg);
    if (take(&s->events_milli, &s->events_ms, &l->conf.events, now))
        return LIMITS_PASS;
    l->stats.events_refused++;
    return refuse(l, s, now);
}

limits_verdict_t limits_join(limits_t *l, limits_socket_t *s)
{
    uint64_t now = l->conf.clock(l->conf.arg);
    if (take(&s->joins_milli, &s->joins_ms, &l->conf.joins, now))
        return LIMITS_PASS;
    l->stats.joins_refused++;
    return refuse(l, s, now);
}

void limits_get_stats(const limits_t *l, limits_stats_t *out)
{
    *out = l->stats;
}
