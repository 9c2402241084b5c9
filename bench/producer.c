/*
 * producer: XADDs bench entries for `make bench` (hiredis, synchronous, one connection).
 *
 * Entry k goes to stream <prefix><k % rooms> with fields event=bench, b="<k / rooms>:<ns>"
 * (CLOCK_MONOTONIC just before the command is queued) and a small JSON data field (or, with
 * --data-bytes N, a JSON object of about N bytes: a list of catalogue items whose values differ
 * from entry to entry). --rate 0
 * sends as fast as Redis takes them (pipelines of --batch); --rate N paces on the monotonic
 * clock without drift. --warm instead adds one entry b="w" to every stream and waits until
 * the server under test has consumed (deleted) all of them, so the measured run never pays for
 * stream discovery. Bounded by --count and --timeout; 127.0.0.1 only.
 */
#include <errno.h>
#include <getopt.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static const char DATA[] = "{\"user_id\":123,\"message\":\"Hello from the bench producer\"}";
static size_t data_bytes; /* --data-bytes: a catalogue of about that many bytes per entry */
static char *big;         /* its buffer */

static const char *const WORDS[] = {"red",   "green", "blue",  "steel", "oak",   "linen",
                                    "small", "large", "round", "flat",  "north", "south"};

/*
 * Entry k's data: {"items":[{"id":..,"name":"..","price":..,"tags":[..]},...]} of at least
 * data_bytes bytes, its values drawn from k (as real entries differ while their keys repeat),
 * or the small fixed DATA.
 */
static const char *entry_data(uint64_t k)
{
    if (!data_bytes)
        return DATA;
    size_t cap = data_bytes + 256, len = (size_t)snprintf(big, cap, "{\"items\":[");
    uint64_t x = k * 0x9e3779b97f4a7c15ull + 1;
    for (unsigned i = 0; len + 2 < data_bytes; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17; /* xorshift64 */
        len += (size_t)snprintf(
            big + len, cap - len,
            "%s{\"id\":%" PRIu64
            ",\"name\":\"%s %s %u\",\"price\":%u.%02u,\"tags\":[\"%s\",\"%s\"]}",
            i ? "," : "", (x >> 20) % 1000000, WORDS[x % 12], WORDS[(x >> 4) % 12],
            (unsigned)((x >> 8) % 1000), (unsigned)((x >> 12) % 500), (unsigned)((x >> 24) % 100),
            WORDS[(x >> 32) % 12], WORDS[(x >> 40) % 12]);
    }
    snprintf(big + len, cap - len, "]}");
    return big;
}

static int append_entry(redisContext *c, const char *prefix, uint32_t rooms, uint64_t k)
{
    char key[256], b[64];
    snprintf(key, sizeof(key), "%s%" PRIu64, prefix, k % rooms);
    snprintf(b, sizeof(b), "%" PRIu64 ":%" PRIu64, k / rooms, now_ns());
    return redisAppendCommand(c, "XADD %s * event bench b %s data %s", key, b, entry_data(k));
}

static int drain(redisContext *c, uint64_t n)
{
    for (uint64_t i = 0; i < n; i++) {
        redisReply *r;
        if (redisGetReply(c, (void **)&r) != REDIS_OK) {
            fprintf(stderr, "producer: %s\n", c->errstr);
            return -EIO;
        }
        bool bad = r->type == REDIS_REPLY_ERROR;
        if (bad)
            fprintf(stderr, "producer: %s\n", r->str);
        freeReplyObject(r);
        if (bad)
            return -EPROTO;
    }
    return 0;
}

static int warm(redisContext *c, const char *prefix, uint32_t rooms, unsigned timeout_s)
{
    for (uint32_t i = 0; i < rooms; i++)
        redisAppendCommand(c, "XADD %s%u * event bench b w data %s", prefix, i, DATA);
    if (drain(c, rooms) < 0)
        return 1;
    uint64_t deadline = now_ns() + (uint64_t)timeout_s * 1000000000ull;
    for (;;) {
        for (uint32_t i = 0; i < rooms; i++)
            redisAppendCommand(c, "XLEN %s%u", prefix, i);
        long long left = 0;
        for (uint32_t i = 0; i < rooms; i++) {
            redisReply *r;
            if (redisGetReply(c, (void **)&r) != REDIS_OK)
                return 1;
            if (r->type == REDIS_REPLY_INTEGER)
                left += r->integer;
            freeReplyObject(r);
        }
        if (left == 0)
            return 0;
        if (now_ns() > deadline) {
            fprintf(stderr, "producer: %lld warm-up entries still unread after %u s\n", left,
                    timeout_s);
            return 1;
        }
        struct timespec ts = {0, 50 * 1000000};
        nanosleep(&ts, NULL);
    }
}

int main(int argc, char **argv)
{
    int port = 6379, db = 0;
    uint32_t rooms = 100, batch = 64;
    uint64_t count = 20000, rate = 0;
    unsigned timeout_s = 120;
    const char *prefix = "bench.r";
    bool do_warm = false;
    static const struct option opts[] = {
        {"port", 1, 0, 'p'},       {"db", 1, 0, 'd'},   {"rooms", 1, 0, 'r'},
        {"count", 1, 0, 'n'},      {"rate", 1, 0, 'R'}, {"batch", 1, 0, 'b'},
        {"prefix", 1, 0, 'x'},     {"warm", 0, 0, 'w'}, {"timeout", 1, 0, 't'},
        {"data-bytes", 1, 0, 'D'}, {0, 0, 0, 0}};
    int o;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 'p':
            port = atoi(optarg);
            break;
        case 'd':
            db = atoi(optarg);
            break;
        case 'r':
            rooms = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case 'n':
            count = strtoull(optarg, NULL, 10);
            break;
        case 'R':
            rate = strtoull(optarg, NULL, 10);
            break;
        case 'b':
            batch = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case 'x':
            prefix = optarg;
            break;
        case 'w':
            do_warm = true;
            break;
        case 't':
            timeout_s = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case 'D':
            data_bytes = strtoul(optarg, NULL, 10);
            if (data_bytes > (1u << 20) || !(big = malloc(data_bytes + 256)))
                return 2;
            break;
        default:
            fprintf(stderr, "usage: producer --port P [--db N] [--rooms R] [--count N] "
                            "[--rate N|0] [--batch N] [--prefix S] [--warm] [--timeout S] "
                            "[--data-bytes N]\n");
            return 2;
        }
    }
    if (!rooms || !batch || port <= 0 || port > 65535 || !timeout_s)
        return 2;
    struct timeval tv = {5, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
    if (!c || c->err) {
        fprintf(stderr, "producer: cannot connect to 127.0.0.1:%d\n", port);
        return 1;
    }
    redisReply *r = redisCommand(c, "SELECT %d", db);
    if (!r) {
        fprintf(stderr, "producer: SELECT failed\n");
        return 1;
    }
    freeReplyObject(r);
    int rc = 0;
    if (do_warm) {
        rc = warm(c, prefix, rooms, timeout_s);
        redisFree(c);
        return rc;
    }
    uint64_t start = now_ns(), deadline = start + (uint64_t)timeout_s * 1000000000ull;
    uint64_t k = 0;
    while (k < count && rc == 0) {
        if (now_ns() > deadline) {
            fprintf(stderr, "producer: timeout after %" PRIu64 " entries\n", k);
            rc = 1;
            break;
        }
        uint64_t n = 0;
        if (rate == 0) {
            while (n < batch && k < count) {
                append_entry(c, prefix, rooms, k++);
                n++;
            }
        } else {
            uint64_t due = start + k * 1000000000ull / rate;
            uint64_t now = now_ns();
            if (due > now) {
                struct timespec ts = {(time_t)(due / 1000000000ull), (long)(due % 1000000000ull)};
                clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
            }
            append_entry(c, prefix, rooms, k++);
            n = 1;
        }
        if (drain(c, n) < 0)
            rc = 1;
    }
    double secs = (double)(now_ns() - start) / 1e9;
    fprintf(stderr, "producer: %" PRIu64 " entries in %.3f s (%.0f/s)\n", k, secs,
            secs > 0 ? (double)k / secs : 0);
    redisFree(c);
    return rc;
}
