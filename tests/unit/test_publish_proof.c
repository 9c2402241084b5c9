/* Unit tests for worker/cluster/publish_proof: a re-read entry is proven published only by the
 * reply (not an error, not NULL) to its own publish, whichever process of the worker's block sent
 * it; contexts come from a fixed pool and go back on every reply or cancel. The reply seam is the
 * callback itself, called here with fake replies as the reader's connection would. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "worker/cluster/publish_proof.h"

static const char DATA[] = "[\"room:message\",{\"messageId\":\"1765000000000-0\"}]";
static const char TARGET[] = "1\nsocket.io\n\n1\n127.0.0.1\n6379\n0\n";

static publish_proof_t *proof_new(shm_ledger_t *l, uint32_t block, int32_t pid, stats_worker_t *st)
{
    return publish_proof_new(l, block, pid, TARGET, strlen(TARGET), st);
}

/* reader_where's digests of two primaries (any nonzero values) */
#define WHERE_A 0x51ed2701a3b4c5d6ULL
#define WHERE_B 0x0b7e151628aed2a6ULL

static shm_ledger_entry_t entry_at(const publish_proof_t *p, uint64_t where, const char *id,
                                   const char *data)
{
    shm_ledger_entry_t e;
    assert_true(
        publish_proof_entry(p, &e, where, "chat.p", 6, id, strlen(id), data, strlen(data)));
    return e;
}

static shm_ledger_entry_t entry_of(const publish_proof_t *p, const char *id, const char *data)
{
    return entry_at(p, WHERE_A, id, data);
}

static void reply(reader_reply_fn cb, void *arg, int type)
{
    redisReply r = {.type = type, .integer = 1};
    cb(type < 0 ? NULL : &r, arg);
}

/* e's publish, sent and replied to by Redis. */
static void publish_replied(publish_proof_t *p, const shm_ledger_entry_t *e)
{
    reader_reply_fn cb;
    void *arg;
    publish_proof_begin(p, e, &cb, &arg);
    assert_non_null(cb);
    reply(cb, arg, REDIS_REPLY_INTEGER);
}

static void test_only_a_reply_proves_a_publish(void **state)
{
    (void)state;
    shm_ledger_t *l;
    assert_int_equal(shm_ledger_new(&l, 2), 0);
    stats_worker_t st = {0};
    publish_proof_t *p = proof_new(l, 1, 100, &st);
    int types[] = {REDIS_REPLY_INTEGER, REDIS_REPLY_STRING, REDIS_REPLY_ERROR, -1};
    bool proves[] = {true, true, false, false};
    for (int i = 0; i < 4; i++) {
        char id[32];
        snprintf(id, sizeof(id), "1765000000000-%d", i);
        shm_ledger_entry_t e = entry_of(p, id, DATA);
        reader_reply_fn cb;
        void *arg;
        publish_proof_begin(p, &e, &cb, &arg);
        assert_non_null(cb);
        assert_false(publish_proof_done(p, &e)); /* in flight: not proven */
        reply(cb, arg, types[i]);
        assert_int_equal(publish_proof_done(p, &e), proves[i]);
    }
    assert_int_equal(STATS_GET(st.adapter_confirmed), 2);
    assert_int_equal(STATS_GET(st.reread_unpublished), 2);
    /* other bytes under the same id (a stream re-created) are another entry */
    shm_ledger_entry_t other = entry_of(p, "1765000000000-0", "[\"room:message\",{}]");
    assert_false(publish_proof_done(p, &other));
    shm_ledger_entry_t bad;
    assert_false(
        publish_proof_entry(p, &bad, WHERE_A, "chat.p", 6, "x-1", 3, DATA, strlen(DATA)));
    publish_proof_free(p);
    shm_ledger_free(l);
}

/* A respawned worker (another pid in the same block) finds its predecessor's replied publishes;
 * one whose reply never came is published again. */
static void test_a_successor_finds_what_redis_replied_to(void **state)
{
    (void)state;
    shm_ledger_t *l;
    assert_int_equal(shm_ledger_new(&l, 2), 0);
    stats_worker_t st = {0};
    publish_proof_t *dead = proof_new(l, 0, 100, &st);
    shm_ledger_entry_t replied = entry_of(dead, "1765000000000-1", DATA),
                       lost = entry_of(dead, "1765000000000-2", DATA);
    reader_reply_fn cb, cb_lost;
    void *arg, *arg_lost;
    publish_proof_begin(dead, &replied, &cb, &arg);
    publish_proof_begin(dead, &lost, &cb_lost, &arg_lost);
    reply(cb, arg, REDIS_REPLY_INTEGER);
    /* killed before the second reply: its memory is gone with it */
    publish_proof_t *next = proof_new(l, 0, 101, &st);
    assert_true(publish_proof_done(next, &replied));
    assert_false(publish_proof_done(next, &lost));
    publish_proof_free(next);
    reply(cb_lost, arg_lost, -1);
    publish_proof_free(dead);
    shm_ledger_free(l);
}

/* A reload that points the next process elsewhere (another adapter, key or Redis server): a
 * publish Redis executed for the old target proves nothing about the new one's subscribers, so
 * the entry read again is published there; the same target still finds it. */
static void test_a_proof_holds_only_for_its_target(void **state)
{
    (void)state;
    shm_ledger_t *l;
    assert_int_equal(shm_ledger_new(&l, 2), 0);
    stats_worker_t st = {0};
    publish_proof_t *old = proof_new(l, 0, 100, &st);
    shm_ledger_entry_t e = entry_of(old, "1765000000000-3", DATA);
    publish_replied(old, &e);
    static const char STREAMS[] = "3\nsocket.io\nsocket.io\n1\n127.0.0.1\n6379\n0\n";
    publish_proof_t *moved = publish_proof_new(l, 1, 101, STREAMS, strlen(STREAMS), &st);
    shm_ledger_entry_t again = entry_of(moved, "1765000000000-3", DATA);
    assert_false(publish_proof_done(moved, &again));
    publish_proof_t *same = proof_new(l, 1, 102, &st);
    shm_ledger_entry_t same_e = entry_of(same, "1765000000000-3", DATA);
    assert_true(publish_proof_done(same, &same_e));
    publish_proof_free(same);
    publish_proof_free(moved);
    publish_proof_free(old);
    shm_ledger_free(l);
}

/* A failover between the publish and the re-read: the demoted primary executed the publish (it
 * still accepts PUBLISH) or lost the XADD it acknowledged, so nobody subscribed or reading on the
 * new primary got it; read again there, the entry is published again. Back on the same nodes
 * (a successor process, no failover) the proof holds. */
static void test_a_proof_holds_only_through_the_nodes_that_executed_it(void **state)
{
    (void)state;
    shm_ledger_t *l;
    assert_int_equal(shm_ledger_new(&l, 2), 0);
    stats_worker_t st = {0};
    publish_proof_t *p = proof_new(l, 0, 100, &st);
    shm_ledger_entry_t on_a = entry_at(p, WHERE_A, "1765000000000-4", DATA);
    publish_replied(p, &on_a);
    shm_ledger_entry_t on_b = entry_at(p, WHERE_B, "1765000000000-4", DATA);
    assert_false(publish_proof_done(p, &on_b));
    /* where not known (0) is a place of its own, too */
    shm_ledger_entry_t unknown = entry_at(p, 0, "1765000000000-4", DATA);
    assert_false(publish_proof_done(p, &unknown));
    publish_proof_t *next = proof_new(l, 0, 101, &st);
    shm_ledger_entry_t again = entry_at(next, WHERE_A, "1765000000000-4", DATA);
    assert_true(publish_proof_done(next, &again));
    assert_int_equal(STATS_GET(st.reread_unpublished), 1);
    publish_proof_free(next);
    publish_proof_free(p);
    shm_ledger_free(l);
}

/* With every context in flight a publish goes unnoted (cb NULL); a reply or a cancel frees one. */
static void test_the_pool_is_bounded_and_reused(void **state)
{
    (void)state;
    shm_ledger_t *l;
    assert_int_equal(shm_ledger_new(&l, 1), 0);
    stats_worker_t st = {0};
    publish_proof_t *p = proof_new(l, 0, 100, &st);
    static reader_reply_fn cbs[PUBLISH_PROOF_INFLIGHT];
    static void *args[PUBLISH_PROOF_INFLIGHT];
    shm_ledger_entry_t e = entry_of(p, "1765000000000-7", DATA);
    for (unsigned i = 0; i < PUBLISH_PROOF_INFLIGHT; i++) {
        publish_proof_begin(p, &e, &cbs[i], &args[i]);
        assert_non_null(cbs[i]);
    }
    reader_reply_fn cb;
    void *arg;
    publish_proof_begin(p, &e, &cb, &arg);
    assert_null(cb);
    assert_null(arg);
    publish_proof_cancel(arg); /* nothing to give back */
    publish_proof_cancel(args[5]);
    publish_proof_begin(p, &e, &cb, &arg);
    assert_ptr_equal(arg, args[5]);
    reply(cb, arg, REDIS_REPLY_INTEGER);
    assert_true(publish_proof_done(p, &e));
    for (unsigned i = 0; i < PUBLISH_PROOF_INFLIGHT; i++) {
        if (i != 5)
            reply(cbs[i], args[i], -1);
    }
    for (unsigned i = 0; i < PUBLISH_PROOF_INFLIGHT; i++) {
        publish_proof_begin(p, &e, &cbs[i], &args[i]);
        assert_non_null(cbs[i]);
    }
    publish_proof_free(p);
    shm_ledger_free(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_only_a_reply_proves_a_publish),
        cmocka_unit_test(test_a_successor_finds_what_redis_replied_to),
        cmocka_unit_test(test_a_proof_holds_only_for_its_target),
        cmocka_unit_test(test_a_proof_holds_only_through_the_nodes_that_executed_it),
        cmocka_unit_test(test_the_pool_is_bounded_and_reused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
