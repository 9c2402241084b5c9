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

static shm_ledger_entry_t entry(const char *id, const char *data)
{
    shm_ledger_entry_t e;
    assert_true(publish_proof_entry(&e, "chat.p", 6, id, strlen(id), data, strlen(data)));
    return e;
}

static void reply(reader_reply_fn cb, void *arg, int type)
{
    redisReply r = {.type = type, .integer = 1};
    cb(type < 0 ? NULL : &r, arg);
}

static void test_only_a_reply_proves_a_publish(void **state)
{
    (void)state;
    shm_ledger_t *l;
    assert_int_equal(shm_ledger_new(&l, 2), 0);
    stats_worker_t st = {0};
    publish_proof_t *p = publish_proof_new(l, 1, 100, &st);
    int types[] = {REDIS_REPLY_INTEGER, REDIS_REPLY_STRING, REDIS_REPLY_ERROR, -1};
    bool proves[] = {true, true, false, false};
    for (int i = 0; i < 4; i++) {
        char id[32];
        snprintf(id, sizeof(id), "1765000000000-%d", i);
        shm_ledger_entry_t e = entry(id, DATA);
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
    shm_ledger_entry_t other = entry("1765000000000-0", "[\"room:message\",{}]");
    assert_false(publish_proof_done(p, &other));
    shm_ledger_entry_t bad;
    assert_false(publish_proof_entry(&bad, "chat.p", 6, "x-1", 3, DATA, strlen(DATA)));
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
    publish_proof_t *dead = publish_proof_new(l, 0, 100, &st);
    shm_ledger_entry_t replied = entry("1765000000000-1", DATA),
                       lost = entry("1765000000000-2", DATA);
    reader_reply_fn cb, cb_lost;
    void *arg, *arg_lost;
    publish_proof_begin(dead, &replied, &cb, &arg);
    publish_proof_begin(dead, &lost, &cb_lost, &arg_lost);
    reply(cb, arg, REDIS_REPLY_INTEGER);
    /* killed before the second reply: its memory is gone with it */
    publish_proof_t *next = publish_proof_new(l, 0, 101, &st);
    assert_true(publish_proof_done(next, &replied));
    assert_false(publish_proof_done(next, &lost));
    publish_proof_free(next);
    reply(cb_lost, arg_lost, -1);
    publish_proof_free(dead);
    shm_ledger_free(l);
}

/* With every context in flight a publish goes unnoted (cb NULL); a reply or a cancel frees one. */
static void test_the_pool_is_bounded_and_reused(void **state)
{
    (void)state;
    shm_ledger_t *l;
    assert_int_equal(shm_ledger_new(&l, 1), 0);
    stats_worker_t st = {0};
    publish_proof_t *p = publish_proof_new(l, 0, 100, &st);
    static reader_reply_fn cbs[PUBLISH_PROOF_INFLIGHT];
    static void *args[PUBLISH_PROOF_INFLIGHT];
    shm_ledger_entry_t e = entry("1765000000000-7", DATA);
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
        cmocka_unit_test(test_the_pool_is_bounded_and_reused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
