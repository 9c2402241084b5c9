/* Unit tests for shm/ring: single-process record format, wrap-around, full/oversized records,
 * corruption checks, reset and the sleep/wake protocol. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "shm/ring.h"

#define CAP 4096u

struct fixture {
    unsigned char *mem;
    size_t bytes;
    ring_t *r;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    if (!f)
        return -1;
    f->bytes = ring_bytes(CAP);
    f->mem = aligned_alloc(64, f->bytes);
    if (!f->mem || ring_format(f->mem, CAP) != 0) {
        free(f->mem);
        free(f);
        return -1;
    }
    f->r = ring_attach(f->mem);
    *state = f;
    return f->r ? 0 : -1;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    free(f->mem);
    free(f);
    return 0;
}

/* Payload bytes for record `seq`: every byte depends on seq and position. */
static void fill(unsigned char *p, uint32_t seq, uint32_t len)
{
    for (uint32_t i = 0; i < len; i++)
        p[i] = (unsigned char)(seq * 131u + i * 7u + 1u);
}

static void push_seq(ring_t *r, uint32_t seq, uint32_t len)
{
    unsigned char buf[CAP];
    fill(buf, seq, len);
    assert_int_equal(ring_push(r, (uint16_t)seq, buf, len), 0);
}

static void pop_seq(ring_t *r, uint32_t seq, uint32_t len)
{
    unsigned char want[CAP], got[CAP];
    uint16_t type = 0;
    uint32_t n = 0;
    fill(want, seq, len);
    assert_int_equal(ring_pop(r, &type, got, sizeof(got), &n), 0);
    assert_int_equal(type, (uint16_t)seq);
    assert_int_equal(n, len);
    assert_memory_equal(got, want, len);
}

static void test_capacity_validation(void **state)
{
    (void)state;
    const uint32_t bad[] = {0, 1, 2048, 4095, 4097, 6144, 8191, 0xffffffffu, 0xc0000000u};
    unsigned char *mem = aligned_alloc(64, ring_bytes(8192));
    assert_non_null(mem);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(ring_bytes(bad[i]), 0);
        assert_int_equal(ring_format(mem, bad[i]), -EINVAL);
    }
    assert_true(ring_bytes(4096) >= 4096 + 64);
    assert_int_equal(ring_bytes(4096) % 64, 0);
    assert_int_equal(ring_bytes(8192) - ring_bytes(4096), 4096);
    assert_int_equal(ring_bytes(RING_MAX_CAPACITY) - ring_bytes(4096), RING_MAX_CAPACITY - 4096);
    assert_int_equal(ring_format(NULL, 4096), -EINVAL);
    assert_int_equal(ring_format(mem + 8, 4096), -EINVAL);
    assert_int_equal(ring_format(mem, 8192), 0);
    ring_t *r = ring_attach(mem);
    assert_non_null(r);
    assert_int_equal(ring_capacity(r), 8192);
    assert_int_equal(ring_max_payload(r), 8192 / 2 - 8);
    assert_true(ring_empty(r));
    free(mem);
}

static void test_attach_rejects_bad_header(void **state)
{
    struct fixture *f = *state;
    assert_ptr_equal(ring_attach(f->mem), f->r);
    assert_null(ring_attach(NULL));
    assert_null(ring_attach(f->mem + 8));

    /* The format contract: u32 magic at offset 0, u32 version at 4, u32 capacity at 8. */
    unsigned char saved[16];
    memcpy(saved, f->mem, sizeof(saved));
    f->mem[0] ^= 0x01;
    assert_null(ring_attach(f->mem));
    memcpy(f->mem, saved, sizeof(saved));
    f->mem[4] ^= 0x02;
    assert_null(ring_attach(f->mem));
    memcpy(f->mem, saved, sizeof(saved));
    uint32_t cap = 5000;
    memcpy(f->mem + 8, &cap, sizeof(cap));
    assert_null(ring_attach(f->mem));
    memcpy(f->mem, saved, sizeof(saved));
    assert_ptr_equal(ring_attach(f->mem), f->r);

    memset(f->mem, 0, f->bytes);
    assert_null(ring_attach(f->mem));
}

static void test_push_pop_exact(void **state)
{
    ring_t *r = ((struct fixture *)*state)->r;
    unsigned char buf[32];
    uint16_t type = 0;
    uint32_t len = 0;

    assert_true(ring_empty(r));
    assert_int_equal(ring_pop(r, &type, buf, sizeof(buf), &len), -EAGAIN);
    assert_int_equal(ring_push(r, 7, "hello", 5), 0);
    assert_false(ring_empty(r));
    assert_int_equal(ring_push(r, 0, NULL, 0), 0);
    assert_int_equal(ring_push(r, 0xffff, "12345678", 8), 0);

    memset(buf, 0xaa, sizeof(buf));
    assert_int_equal(ring_pop(r, &type, buf, sizeof(buf), &len), 0);
    assert_int_equal(type, 7);
    assert_int_equal(len, 5);
    assert_memory_equal(buf, "hello", 5);
    assert_int_equal(buf[5], 0xaa); /* nothing beyond the payload is written */

    type = 99;
    len = 99;
    assert_int_equal(ring_pop(r, &type, NULL, 0, &len), 0);
    assert_int_equal(type, 0);
    assert_int_equal(len, 0);

    assert_int_equal(ring_pop(r, &type, buf, 8, &len), 0);
    assert_int_equal(type, 0xffff);
    assert_int_equal(len, 8);
    assert_memory_equal(buf, "12345678", 8);

    assert_true(ring_empty(r));
    assert_int_equal(ring_pop(r, &type, buf, sizeof(buf), &len), -EAGAIN);
}

/* Drives head/tail to chosen offsets to hit each wrap case exactly. */
static void test_wrap_exact_positions(void **state)
{
    ring_t *r = ((struct fixture *)*state)->r;

    /* Record 0 ends at 2008; record 1 (2048 bytes) ends at 4056; record 2's header sits at
     * 4056..4064 and its payload wraps 32 bytes before the end. Both fill the ring exactly. */
    push_seq(r, 0, 2000);
    pop_seq(r, 0, 2000);
    push_seq(r, 1, 2040);
    push_seq(r, 2, 2040);
    assert_int_equal(ring_push(r, 3, NULL, 0), -EAGAIN);
    pop_seq(r, 1, 2040);
    pop_seq(r, 2, 2040);
    assert_true(ring_empty(r));

    /* Now at 6104 (offset 2008). 2040 + 8 + 32 bytes later the header lands in the last 8
     * bytes and the payload starts at offset 0. */
    push_seq(r, 4, 2040);
    pop_seq(r, 4, 2040);
    push_seq(r, 5, 32);
    pop_seq(r, 5, 32);
    push_seq(r, 6, 100);
    pop_seq(r, 6, 100);
    /* Odd length across the boundary: padding must keep later headers aligned. */
    push_seq(r, 7, 2000);
    push_seq(r, 8, 1);
    push_seq(r, 9, 1999);
    pop_seq(r, 7, 2000);
    pop_seq(r, 8, 1);
    pop_seq(r, 9, 1999);
    assert_true(ring_empty(r));
}

/* Mostly small odd lengths, every third one up to the maximum payload. */
static uint32_t stream_len(uint32_t seq)
{
    uint32_t h = seq * 2654435761u;
    return (h >> 4) % 3 == 0 ? (h >> 8) % (CAP / 2 - 7) : ((h >> 8) % 200) | 1u;
}

static void test_wrap_odd_sizes_stream(void **state)
{
    ring_t *r = ((struct fixture *)*state)->r;
    uint32_t pushed = 0, popped = 0;
    uint64_t bytes = 0;
    unsigned char buf[CAP];

    while (pushed < 20000) {
        uint32_t len = stream_len(pushed);
        fill(buf, pushed, len);
        int rc;
        while ((rc = ring_push(r, (uint16_t)pushed, buf, len)) == -EAGAIN) {
            assert_true(popped < pushed);
            pop_seq(r, popped, stream_len(popped));
            popped++;
        }
        assert_int_equal(rc, 0);
        pushed++;
        bytes += len;
        /* Pop at irregular moments so head and tail meet at every offset. */
        for (uint32_t i = 0; i < pushed * 7919u % 3 && popped < pushed; i++, popped++)
            pop_seq(r, popped, stream_len(popped));
    }
    while (popped < pushed) {
        pop_seq(r, popped, stream_len(popped));
        popped++;
    }
    assert_true(ring_empty(r));
    assert_true(bytes > 1000u * CAP); /* wrapped many times */
}

static void test_full_then_room(void **state)
{
    ring_t *r = ((struct fixture *)*state)->r;
    /* 100-byte payload -> 112-byte record: 36 fit (4032 bytes), the 37th does not. */
    uint32_t n = 0;
    unsigned char buf[100];
    for (;;) {
        fill(buf, n, sizeof(buf));
        int rc = ring_push(r, (uint16_t)n, buf, sizeof(buf));
        if (rc == -EAGAIN)
            break;
        assert_int_equal(rc, 0);
        n++;
    }
    assert_int_equal(n, 36);
    assert_int_equal(ring_push(r, 0, NULL, 0), 0); /* 64 bytes were still free */
    assert_int_equal(ring_push(r, 0, buf, 41), 0); /* padded to 48: the ring is now exactly full */
    assert_int_equal(ring_push(r, 0, NULL, 0), -EAGAIN);

    pop_seq(r, 0, 100);
    push_seq(r, 36, 100);
    assert_int_equal(ring_push(r, 37, buf, 100), -EAGAIN);
    for (uint32_t i = 1; i < 36; i++)
        pop_seq(r, i, 100);
    uint16_t type;
    uint32_t len;
    assert_int_equal(ring_pop(r, &type, buf, sizeof(buf), &len), 0);
    assert_int_equal(len, 0);
    assert_int_equal(ring_pop(r, &type, buf, sizeof(buf), &len), 0);
    assert_int_equal(len, 41);
    pop_seq(r, 36, 100);
    assert_true(ring_empty(r));
}

static void test_too_big(void **state)
{
    ring_t *r = ((struct fixture *)*state)->r;
    static unsigned char buf[CAP];
    assert_int_equal(ring_max_payload(r), CAP / 2 - 8);
    assert_int_equal(ring_push(r, 1, buf, CAP / 2 - 7), -E2BIG);
    assert_int_equal(ring_push(r, 1, buf, CAP), -E2BIG);
    assert_int_equal(ring_push(r, 1, buf, UINT32_MAX), -E2BIG);
    assert_int_equal(ring_push(r, 1, buf, UINT32_MAX - 3), -E2BIG);
    assert_true(ring_empty(r));
    /* The largest record fits even behind a small one; a third cannot fit right now. */
    push_seq(r, 1, 8);
    push_seq(r, 2, CAP / 2 - 8);
    assert_int_equal(ring_push(r, 3, buf, CAP / 2 - 8), -EAGAIN);
    pop_seq(r, 1, 8);
    pop_seq(r, 2, CAP / 2 - 8);
}

static void test_buffer_too_small(void **state)
{
    ring_t *r = ((struct fixture *)*state)->r;
    unsigned char buf[100];
    uint16_t type = 0;
    uint32_t len = 0;
    push_seq(r, 5, 100);
    memset(buf, 0x55, sizeof(buf));
    assert_int_equal(ring_pop(r, &type, buf, 99, &len), -EMSGSIZE);
    assert_int_equal(len, 100);
    assert_int_equal(type, 0);
    assert_int_equal(buf[0], 0x55);
    len = 0;
    assert_int_equal(ring_pop(r, &type, NULL, 0, &len), -EMSGSIZE);
    assert_int_equal(len, 100);
    assert_false(ring_empty(r));
    pop_seq(r, 5, 100);
    assert_true(ring_empty(r));
}

static void test_corrupt_record_header(void **state)
{
    struct fixture *f = *state;
    static const char marker[] = "corruption-marker-0123456789";
    assert_int_equal(ring_push(f->r, 3, marker, sizeof(marker)), 0);
    unsigned char *p = memmem(f->mem, f->bytes, marker, sizeof(marker));
    assert_non_null(p);
    uint32_t good, bad;
    memcpy(&good, p - 8, 4);
    assert_int_equal(good, sizeof(marker));

    unsigned char buf[CAP];
    uint16_t type;
    uint32_t len;
    const uint32_t bad_lens[] = {sizeof(marker) + 8, 2041, CAP, UINT32_MAX};
    for (size_t i = 0; i < sizeof(bad_lens) / sizeof(bad_lens[0]); i++) {
        bad = bad_lens[i];
        memcpy(p - 8, &bad, 4);
        assert_int_equal(ring_pop(f->r, &type, buf, sizeof(buf), &len), -EPROTO);
    }
    memcpy(p - 8, &good, 4);
    assert_int_equal(ring_pop(f->r, &type, buf, sizeof(buf), &len), 0);
    assert_int_equal(type, 3);
    assert_memory_equal(buf, marker, sizeof(marker));
}

static void test_reset(void **state)
{
    ring_t *r = ((struct fixture *)*state)->r;
    push_seq(r, 1, 10);
    push_seq(r, 2, 2000);
    pop_seq(r, 1, 10);
    push_seq(r, 3, 2000);
    assert_int_equal(ring_push(r, 4, NULL, 0), 0); /* 4024 bytes used, 72 free */
    unsigned char buf[65] = {0};
    assert_int_equal(ring_push(r, 4, buf, sizeof(buf)), -EAGAIN);

    ring_reset(r);
    assert_true(ring_empty(r));
    uint16_t type;
    uint32_t len;
    assert_int_equal(ring_pop(r, &type, NULL, 0, &len), -EAGAIN);
    /* All space is free again and order restarts cleanly. */
    push_seq(r, 10, 2040);
    push_seq(r, 11, 2040);
    pop_seq(r, 10, 2040);
    pop_seq(r, 11, 2040);

    /* A consumer that died asleep must not leave the flag set for its successor. */
    assert_true(ring_prepare_sleep(r));
    ring_reset(r);
    push_seq(r, 12, 1);
    pop_seq(r, 12, 1);
}

static void test_sleep_wake_protocol(void **state)
{
    ring_t *r = ((struct fixture *)*state)->r;
    unsigned char buf[16];
    uint16_t type;
    uint32_t len;

    /* Nobody asleep: pushes never ask for a wake-up. */
    assert_int_equal(ring_push(r, 1, "a", 1), 0);
    assert_int_equal(ring_pop(r, &type, buf, sizeof(buf), &len), 0);

    /* Asleep on an empty ring: exactly the first push reports the wake-up. */
    assert_true(ring_prepare_sleep(r));
    assert_int_equal(ring_push(r, 2, "b", 1), 1);
    assert_int_equal(ring_push(r, 3, "c", 1), 0);
    ring_wake_done(r);
    assert_int_equal(ring_pop(r, &type, buf, sizeof(buf), &len), 0);
    assert_int_equal(type, 2);
    assert_int_equal(ring_pop(r, &type, buf, sizeof(buf), &len), 0);
    assert_int_equal(type, 3);
    assert_int_equal(ring_push(r, 4, "d", 1), 0);

    /* Records pending: the consumer must not sleep, and no wake-up is requested. */
    assert_false(ring_prepare_sleep(r));
    assert_int_equal(ring_push(r, 5, "e", 1), 0);
    ring_wake_done(r);
    ring_wake_done(r);
    assert_int_equal(ring_pop(r, &type, buf, sizeof(buf), &len), 0);
    assert_int_equal(ring_pop(r, &type, buf, sizeof(buf), &len), 0);
    assert_int_equal(type, 5);

    /* A consumer woken by something else clears the flag: no stale wake-up afterwards. */
    assert_true(ring_prepare_sleep(r));
    ring_wake_done(r);
    assert_int_equal(ring_push(r, 6, "f", 1), 0);

    /* A rejected push does not use up the wake-up; the next accepted one reports it. */
    static unsigned char big[CAP];
    assert_int_equal(ring_pop(r, &type, buf, sizeof(buf), &len), 0);
    assert_true(ring_prepare_sleep(r));
    assert_int_equal(ring_push(r, 7, big, CAP), -E2BIG);
    assert_int_equal(ring_push(r, 8, big, CAP / 2 - 8), 1);
    assert_int_equal(ring_push(r, 9, NULL, 0), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_capacity_validation),
        cmocka_unit_test_setup_teardown(test_attach_rejects_bad_header, setup, teardown),
        cmocka_unit_test_setup_teardown(test_push_pop_exact, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrap_exact_positions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrap_odd_sizes_stream, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_then_room, setup, teardown),
        cmocka_unit_test_setup_teardown(test_too_big, setup, teardown),
        cmocka_unit_test_setup_teardown(test_buffer_too_small, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_record_header, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reset, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sleep_wake_protocol, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
