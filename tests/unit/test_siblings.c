#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/log.h"
#include "shm/stats.h"
#include "worker/fanout/siblings.h"
#include "shm/local_sock.h"

/* ---- codec ---- */

typedef struct seen {
    int calls;
    bool relayed[8];
    uint32_t from[8]; /* the sender's slot each record names */
    char rooms[8][16];
    char ids[8][24];
    char frames[8][32]; /* the texts */
} seen_t;

static void on_rec(const siblings_entry_t *e, void *arg)
{
    seen_t *s = arg;
    if (s->calls < 8) {
        s->relayed[s->calls] = e->relayed;
        s->from[s->calls] = e->from;
        snprintf(s->rooms[s->calls], 16, "%.*s", (int)e->room_len, e->room);
        snprintf(s->ids[s->calls], 24, "%.*s", (int)e->id_len, e->id);
        snprintf(s->frames[s->calls], 32, "%.*s", (int)e->text_len, e->text);
    }
    s->calls++;
}

/* An entry of room with id 1-0 (empty id when id is NULL) and text[0..len). */
static siblings_entry_t entry(const char *room, const char *id, const char *text, size_t len)
{
    return (siblings_entry_t){room, strlen(room), id ? id : "", id ? strlen(id) : 0, text, len,
                              false};
}

static int add(siblings_t *s, const char *room, const char *text, size_t len)
{
    siblings_entry_t e = entry(room, "1-0", text, len);
    return siblings_add(s, &e);
}

static int encode(buf_t *b, const char *room, const char *id, const char *text, size_t len)
{
    siblings_entry_t e = entry(room, id, text, len);
    return siblings_encode_record(b, &e);
}

static void encode_two(buf_t *b)
{
    siblings_encode_header(b, 3);
    assert_int_equal(encode(b, "room-a", "17-2", "42abc", 5), 0);
    assert_int_equal(encode(b, "b", NULL, "4z", 2), 0);
}

static void test_codec_round_trip(void **state)
{
    (void)state;
    buf_t b;
    buf_init(&b);
    encode_two(&b);
    assert_int_equal(b.len, SIBLINGS_HEADER_LEN + 12 + 6 + 4 + 5 + 12 + 1 + 0 + 2);
    seen_t s = {0};
    uint32_t slot = 0;
    assert_int_equal(siblings_decode(b.data, b.len, &slot, on_rec, &s), 0);
    assert_int_equal(slot, 3);
    assert_int_equal(s.calls, 2);
    assert_int_equal(s.from[0], 3); /* each record says who sent it (room notices need it) */
    assert_int_equal(s.from[1], 3);
    assert_string_equal(s.rooms[0], "room-a");
    assert_string_equal(s.ids[0], "17-2");
    assert_string_equal(s.frames[0], "42abc");
    assert_string_equal(s.rooms[1], "b");
    assert_string_equal(s.ids[1], "");
    assert_string_equal(s.frames[1], "4z");
    assert_int_equal(encode(&b, "", NULL, "x", 1), -EINVAL);
    assert_int_equal(encode(&b, "r", NULL, "", 0), -EINVAL);
    buf_free(&b);
}

/* A relayed adapter message travels among entries with its mark, channel and bytes intact. */
static void test_codec_relayed_mark(void **state)
{
    (void)state;
    buf_t b;
    buf_init(&b);
    siblings_encode_header(&b, 1);
    assert_int_equal(encode(&b, "room-a", "1-0", "42x", 3), 0);
    siblings_entry_t r = {"k#/#r#", 6, "", 0, "\x93\x00", 2, true};
    assert_int_equal(siblings_encode_record(&b, &r), 0);
    assert_int_equal(encode(&b, "room-b", "2-0", "42y", 3), 0);
    seen_t s = {0};
    assert_int_equal(siblings_decode(b.data, b.len, NULL, on_rec, &s), 0);
    assert_int_equal(s.calls, 3);
    assert_false(s.relayed[0]);
    assert_true(s.relayed[1]);
    assert_false(s.relayed[2]);
    assert_string_equal(s.rooms[1], "k#/#r#");
    assert_string_equal(s.rooms[2], "room-b");
    assert_memory_equal(s.frames[1], "\x93", 2);
    /* a room length that would reach the mark is refused, not misread */
    r.room_len = 0x80000000u;
    assert_int_equal(siblings_encode_record(&b, &r), -EINVAL);
    buf_free(&b);
}

static void test_codec_rejects_garbage(void **state)
{
    (void)state;
    buf_t b;
    buf_init(&b);
    encode_two(&b);
    seen_t s = {0};
    /* every truncation of a valid datagram but the one record boundary is refused whole */
    size_t boundary = SIBLINGS_HEADER_LEN + 12 + 6 + 4 + 5;
    for (size_t n = 0; n < b.len; n++) {
        int rc = siblings_decode(b.data, n, NULL, on_rec, &s);
        if (n == boundary) {
            assert_int_equal(rc, 0);
            assert_int_equal(s.calls, 1);
            s.calls = 0;
        } else {
            assert_int_equal(rc, -EPROTO);
        }
    }
    assert_int_equal(s.calls, 0);
    /* trailing bytes, a bad magic, a zero-length room, a length pointing past the end, a
     * zero-length text */
    char *p = malloc(b.len + 3);
    memcpy(p, b.data, b.len);
    memcpy(p + b.len, "xyz", 3);
    assert_int_equal(siblings_decode(p, b.len + 3, NULL, on_rec, &s), -EPROTO);
    memcpy(p, b.data, b.len);
    p[0] = 'S';
    assert_int_equal(siblings_decode(p, b.len, NULL, on_rec, &s), -EPROTO);
    memcpy(p, b.data, b.len);
    memset(p + SIBLINGS_HEADER_LEN, 0, 4);
    assert_int_equal(siblings_decode(p, b.len, NULL, on_rec, &s), -EPROTO);
    memcpy(p, b.data, b.len);
    memset(p + SIBLINGS_HEADER_LEN + 4, 0xff, 4);
    assert_int_equal(siblings_decode(p, b.len, NULL, on_rec, &s), -EPROTO);
    memcpy(p, b.data, b.len);
    memset(p + SIBLINGS_HEADER_LEN + 8, 0, 4);
    assert_int_equal(siblings_decode(p, b.len, NULL, on_rec, &s), -EPROTO);
    /* random bytes behind a valid header never crash (ASan checks the reads) */
    srand(7);
    for (int round = 0; round < 2000; round++) {
        size_t n = SIBLINGS_HEADER_LEN + (size_t)(rand() % 40);
        char junk[64];
        memcpy(junk, b.data, SIBLINGS_HEADER_LEN);
        for (size_t i = SIBLINGS_HEADER_LEN; i < n; i++)
            junk[i] = (char)(rand() % 4 == 0 ? rand() % 256 : rand() % 3);
        (void)siblings_decode(junk, n, NULL, on_rec, &s);
    }
    free(p);
    buf_free(&b);
}

/* ---- sockets ---- */

typedef struct got {
    int calls;
    char rooms[64][16];
    char frames[64][32];
} got_t;

static void on_frame(const siblings_entry_t *e, void *ud)
{
    got_t *g = ud;
    if (g->calls < 64) {
        snprintf(g->rooms[g->calls], 16, "%.*s", (int)e->room_len, e->room);
        snprintf(g->frames[g->calls], 32, "%.*s", (int)e->text_len, e->text);
    }
    g->calls++;
}

typedef struct fixture {
    uv_loop_t loop;
    shm_region_t *region;
    local_sock_t *socks;
} fixture_t;

static void fixture_init(fixture_t *f, uint32_t nslots)
{
    assert_int_equal(uv_loop_init(&f->loop), 0);
    assert_int_equal(shm_region_new(&f->region, nslots, 4096, sizeof(stats_worker_t), 0), 0);
    assert_int_equal(local_sock_new(&f->socks, nslots), 0);
}

static void set_pid(fixture_t *f, uint32_t slot, pid_t pid)
{
    stats_worker_t *st = shm_region_slot_stats(f->region, slot);
    STATS_SET(st->pid, pid);
}

static void fixture_free(fixture_t *f)
{
    uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    local_sock_free(f->socks);
    shm_region_free(f->region);
}

static void spin(uv_loop_t *loop, const int *calls, int want)
{
    for (int i = 0; i < 2000 && *calls < want; i++)
        uv_run(loop, UV_RUN_NOWAIT);
}

static void test_frames_reach_live_siblings_in_order(void **state)
{
    (void)state;
    fixture_t f;
    fixture_init(&f, 3);
    got_t g0 = {0}, g1 = {0};
    siblings_t *s0, *s1;
    assert_int_equal(siblings_new(&s0, &f.loop, f.region, f.socks, 0, on_frame, &g0), 0);
    assert_int_equal(siblings_new(&s1, &f.loop, f.region, f.socks, 1, on_frame, &g1), 0);
    /* no live sibling yet: nothing is batched */
    assert_int_equal(add(s0, "r", "x", 1), 0);
    uv_run(&f.loop, UV_RUN_NOWAIT);
    set_pid(&f, 0, getpid());
    set_pid(&f, 1, getpid());
    set_pid(&f, 2, getpid()); /* slot 2 is "alive" but reads nothing: its queue only */
    for (int i = 0; i < 40; i++) {
        char frame[16];
        int n = snprintf(frame, sizeof(frame), "f%d", i);
        assert_int_equal(add(s0, i % 2 ? "odd" : "even", frame, (size_t)n), 1);
        if (i % 7 == 0)
            uv_run(&f.loop, UV_RUN_NOWAIT); /* several batches */
    }
    spin(&f.loop, &g1.calls, 40);
    assert_int_equal(g1.calls, 40);
    assert_int_equal(g0.calls, 0);
    for (int i = 0; i < 40; i++) {
        char frame[16];
        snprintf(frame, sizeof(frame), "f%d", i);
        assert_string_equal(g1.frames[i], frame);
        assert_string_equal(g1.rooms[i], i % 2 ? "odd" : "even");
    }
    assert_false(siblings_backlogged(s0));
    assert_int_equal(add(s0, "", "x", 1), -EINVAL);
    assert_int_equal(add(s0, "r", "x", SIBLINGS_MAX_FRAME + 1ul), -E2BIG);
    siblings_free(s0);
    siblings_free(s1);
    fixture_free(&f);
}

typedef struct sized {
    int calls;
    int relayed;
    size_t lens[4];
    unsigned sums[4];
} sized_t;

static void on_sized(const siblings_entry_t *e, void *ud)
{
    sized_t *z = ud;
    z->relayed += e->relayed;
    if (z->calls < 4) {
        unsigned sum = 0;
        const unsigned char *p = (const unsigned char *)e->text;
        for (size_t i = 0; i < e->text_len; i++)
            sum = sum * 31 + p[i];
        z->lens[z->calls] = e->text_len;
        z->sums[z->calls] = sum;
    }
    z->calls++;
}

/* A frame beyond one datagram goes through a memfd, in order with the small ones around it. */
static void test_big_frame_through_memfd(void **state)
{
    (void)state;
    fixture_t f;
    fixture_init(&f, 2);
    sized_t z0 = {0}, z1 = {0};
    siblings_t *s0, *s1;
    assert_int_equal(siblings_new(&s0, &f.loop, f.region, f.socks, 0, on_sized, &z0), 0);
    assert_int_equal(siblings_new(&s1, &f.loop, f.region, f.socks, 1, on_sized, &z1), 0);
    set_pid(&f, 0, getpid());
    set_pid(&f, 1, getpid());
    size_t big_len = SIBLINGS_MAX_DGRAM; /* over any host's datagram limit */
    char *big = malloc(big_len);
    unsigned want = 0;
    for (size_t i = 0; i < big_len; i++) {
        big[i] = (char)(i * 7 + i / 251);
        want = want * 31 + (unsigned char)big[i];
    }
    assert_int_equal(add(s0, "r", "ab", 2), 1);
    assert_int_equal(add(s0, "r", big, big_len), 1);
    assert_int_equal(add(s0, "r", "cde", 3), 1);
    spin(&f.loop, &z1.calls, 3);
    assert_int_equal(z1.calls, 3);
    assert_int_equal(z1.relayed, 0);
    assert_int_equal(z0.calls, 0);
    assert_int_equal(z1.lens[0], 2);
    assert_int_equal(z1.lens[1], big_len);
    assert_int_equal(z1.sums[1], want);
    assert_int_equal(z1.lens[2], 3);
    /* a relayed adapter message that big keeps its mark through the memfd */
    siblings_entry_t r = {"k#/#r#", 6, "", 0, big, big_len, true};
    assert_int_equal(siblings_add(s0, &r), 1);
    spin(&f.loop, &z1.calls, 4);
    assert_int_equal(z1.calls, 4);
    assert_int_equal(z1.relayed, 1);
    assert_int_equal(z1.lens[3], big_len);
    assert_int_equal(z1.sums[3], want);
    free(big);
    siblings_free(s0);
    siblings_free(s1);
    fixture_free(&f);
}

/* A receiver that does not read: datagrams queue in order and all arrive once it does. */
static void test_full_receiver_queues_in_order(void **state)
{
    (void)state;
    fixture_t f;
    fixture_init(&f, 2);
    got_t g0 = {0};
    siblings_t *s0;
    assert_int_equal(siblings_new(&s0, &f.loop, f.region, f.socks, 0, on_frame, &g0), 0);
    int rx = local_sock_rx(f.socks, 1, LOCAL_SOCK_SIBLINGS); /* a sibling that does not read */
    set_pid(&f, 0, getpid());
    set_pid(&f, 1, getpid());
    enum { N = 400 };
    char frame[2048];
    memset(frame, 'p', sizeof(frame));
    for (int i = 0; i < N; i++) {
        int n = snprintf(frame, sizeof(frame), "%d;", i);
        frame[n] = 'p';
        assert_int_equal(add(s0, "room", frame, sizeof(frame)), 1);
        uv_run(&f.loop, UV_RUN_NOWAIT); /* one datagram per entry */
    }
    char *dg = malloc(SIBLINGS_MAX_DGRAM);
    int next = 0;
    for (int spins = 0; spins < 20000 && next < N; spins++) {
        ssize_t n = recv(rx, dg, SIBLINGS_MAX_DGRAM, MSG_DONTWAIT);
        if (n < 0) {
            uv_run(&f.loop, UV_RUN_NOWAIT);
            usleep(200);
            continue;
        }
        seen_t s = {0};
        assert_int_equal(siblings_decode(dg, (size_t)n, NULL, on_rec, &s), 0);
        for (int k = 0; k < s.calls && k < 8; k++) {
            char want[16];
            snprintf(want, sizeof(want), "%d;", next++);
            assert_memory_equal(s.frames[k], want, strlen(want));
        }
        assert_true(s.calls <= 8);
    }
    assert_int_equal(next, N);
    for (int i = 0; i < 20; i++)
        uv_run(&f.loop, UV_RUN_NOWAIT);
    assert_int_equal(recv(rx, dg, SIBLINGS_MAX_DGRAM, MSG_DONTWAIT), -1);
    assert_false(siblings_backlogged(s0));
    free(dg);
    siblings_free(s0);
    fixture_free(&f);
}

/* The read gate's signal: backlogged past SIBLINGS_BACKLOG_BYTES, clear again once drained. */
static void test_backlog_signal(void **state)
{
    (void)state;
    fixture_t f;
    fixture_init(&f, 2);
    got_t g0 = {0};
    siblings_t *s0;
    assert_int_equal(siblings_new(&s0, &f.loop, f.region, f.socks, 0, on_frame, &g0), 0);
    int rx = local_sock_rx(f.socks, 1, LOCAL_SOCK_SIBLINGS); /* a sibling that does not read */
    set_pid(&f, 0, getpid());
    set_pid(&f, 1, getpid());
    /* the kernel holds up to the channel's send buffer first (a connected pair has no queue
     * length limit), then our queue grows */
    size_t len = SIBLINGS_BATCH_BYTES - 64, n = 4 * (SIBLINGS_BACKLOG_BYTES / len) + 20;
    char *frame = calloc(1, len);
    for (size_t i = 0; i < n && !siblings_backlogged(s0); i++) {
        assert_int_equal(add(s0, "room", frame, len), 1);
        uv_run(&f.loop, UV_RUN_NOWAIT);
    }
    assert_true(siblings_backlogged(s0));
    char *dg = malloc(SIBLINGS_MAX_DGRAM);
    for (int spins = 0; spins < 100000 && siblings_backlogged(s0); spins++) {
        while (recv(rx, dg, SIBLINGS_MAX_DGRAM, MSG_DONTWAIT) > 0)
            ;
        uv_run(&f.loop, UV_RUN_NOWAIT);
    }
    assert_false(siblings_backlogged(s0));
    free(dg);
    free(frame);
    siblings_free(s0);
    fixture_free(&f);
}

/* Garbage and strangers' datagrams are dropped, never delivered, and logged sampled (1st, 2nd,
 * 4th...): a flood stays a few lines. */
static void test_receiver_drops_bad_datagrams(void **state)
{
    (void)state;
    fixture_t f;
    fixture_init(&f, 2);
    got_t g1 = {0};
    siblings_t *s1;
    assert_int_equal(siblings_new(&s1, &f.loop, f.region, f.socks, 1, on_frame, &g1), 0);
    int tx = local_sock_tx(f.socks, 1, LOCAL_SOCK_SIBLINGS);
    buf_t b;
    buf_init(&b);
    encode_two(&b);

    FILE *cap = tmpfile();
    int saved = dup(STDERR_FILENO);
    dup2(fileno(cap), STDERR_FILENO);
    /* sender not a live sibling (slot pids unset), 100 times */
    for (int i = 0; i < 100; i++) {
        assert_int_equal(local_sock_send(tx, b.data, b.len, -1), 0);
        for (int k = 0; k < 5; k++)
            uv_run(&f.loop, UV_RUN_NOWAIT);
    }
    set_pid(&f, 0, getpid());
    set_pid(&f, 1, getpid());
    assert_int_equal(local_sock_send(tx, "garbage!", 8, -1), 0);
    assert_int_equal(local_sock_send(tx, b.data, b.len - 1, -1), 0);
    char fd_header[SIBLINGS_HEADER_LEN] = "sibF";
    assert_int_equal(local_sock_send(tx, fd_header, sizeof(fd_header), -1), 0);
    assert_int_equal(local_sock_send(tx, b.data, b.len, -1), 0);
    spin(&f.loop, &g1.calls, 2);
    dup2(saved, STDERR_FILENO);
    close(saved);

    assert_int_equal(g1.calls, 2); /* only the valid one */
    assert_string_equal(g1.rooms[0], "room-a");
    assert_string_equal(g1.rooms[1], "b");
    char text[4096] = {0};
    rewind(cap);
    size_t n = fread(text, 1, sizeof(text) - 1, cap);
    fclose(cap);
    int lines = 0, malformed = 0, stranger = 0;
    for (size_t i = 0; i < n; i++)
        lines += text[i] == '\n';
    for (const char *p = text; (p = strstr(p, "malformed datagram")); p++)
        malformed++;
    for (const char *p = text; (p = strstr(p, "no sibling worker")); p++)
        stranger++;
    assert_int_equal(malformed, 2); /* the 1st and 2nd of 3 */
    assert_int_equal(stranger, 7);  /* the 1st, 2nd, 4th ... 64th of 100 */
    assert_int_equal(lines, 9);
    buf_free(&b);
    siblings_free(s1);
    fixture_free(&f);
}

int main(void)
{
    log_setup(LOG_LVL_WARN, "test", -1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_codec_round_trip),
        cmocka_unit_test(test_codec_rejects_garbage),
        cmocka_unit_test(test_codec_relayed_mark),
        cmocka_unit_test(test_frames_reach_live_siblings_in_order),
        cmocka_unit_test(test_big_frame_through_memfd),
        cmocka_unit_test(test_full_receiver_queues_in_order),
        cmocka_unit_test(test_backlog_signal),
        cmocka_unit_test(test_receiver_drops_bad_datagrams),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
