/* Unit tests for shm/ledger: a record proves exactly one entry (stream, id, digest) delivered by
 * one process, in its block; replaced or too long records prove nothing; a process killed with
 * SIGKILL leaves its records behind for the others to read. A publish record proves only once
 * its reply was marked, for any process, and never stands for a delivery (or the reverse). */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "shm/ledger.h"
#include "shm/region.h"

static shm_ledger_entry_t entry(const char *stream, uint64_t ms, uint64_t seq, const char *bytes)
{
    return (shm_ledger_entry_t){stream, strlen(stream), ms, seq,
                                shm_ledger_digest(bytes, strlen(bytes))};
}

static void test_new_rejects_bad_sizes(void **state)
{
    (void)state;
    shm_ledger_t *l = NULL;
    assert_int_equal(shm_ledger_new(&l, 0), -EINVAL);
    assert_int_equal(shm_ledger_new(&l, SHM_REGION_MAX_SLOTS + 1), -EINVAL);
    assert_null(l);
    shm_ledger_free(NULL);
}

static void test_digest_tells_bytes_apart(void **state)
{
    (void)state;
    const char *a = "42[\"room:message\",{\"data\":1}]";
    assert_int_equal(shm_ledger_digest(a, strlen(a)), shm_ledger_digest(a, strlen(a)));
    char b[64];
    strcpy(b, a);
    for (size_t i = 0; i < strlen(a); i++) {
        b[i] ^= 1;
        assert_int_not_equal(shm_ledger_digest(b, strlen(b)), shm_ledger_digest(a, strlen(a)));
        b[i] ^= 1;
    }
    /* a length change alone, zeros included */
    assert_int_not_equal(shm_ledger_digest("\0\0", 2), shm_ledger_digest("\0\0\0", 3));
    assert_int_not_equal(shm_ledger_digest("", 0), shm_ledger_digest("\0", 1));
}

static void test_only_an_exact_record_of_that_process_proves(void **state)
{
    (void)state;
    shm_ledger_t *l;
    assert_int_equal(shm_ledger_new(&l, 4), 0);
    shm_ledger_entry_t e = entry("chat.a", 5, 1, "tick");
    assert_false(shm_ledger_holds(l, 1, 4242, &e));
    assert_true(shm_ledger_note(l, 1, 4242, &e));
    assert_true(shm_ledger_holds(l, 1, 4242, &e));
    /* another process, another block, a bad block or pid */
    assert_false(shm_ledger_holds(l, 1, 4243, &e));
    assert_false(shm_ledger_holds(l, 0, 4242, &e));
    assert_false(shm_ledger_holds(l, 4, 4242, &e));
    assert_false(shm_ledger_holds(l, 1, 0, &e));
    /* every other entry */
    shm_ledger_entry_t other[] = {entry("chat.b", 5, 1, "tick"), entry("chat.a", 5, 2, "tick"),
                                  entry("chat.a", 6, 1, "tick"), entry("chat.a", 5, 1, "tock"),
                                  entry("chat.", 5, 1, "tick"),  entry("chat.aa", 5, 1, "tick")};
    for (size_t i = 0; i < sizeof(other) / sizeof(other[0]); i++)
        assert_false(shm_ledger_holds(l, 1, 4242, &other[i]));
    /* a bad block or a name over the limit is not recorded */
    assert_false(shm_ledger_note(l, 4, 7, &e));
    char name[SHM_LEDGER_NAME_MAX + 2];
    memset(name, 'n', sizeof(name) - 1);
    name[sizeof(name) - 1] = '\0';
    shm_ledger_entry_t longer = entry(name, 1, 0, "x");
    assert_false(shm_ledger_note(l, 0, 7, &longer));
    assert_false(shm_ledger_holds(l, 0, 7, &longer));
    name[SHM_LEDGER_NAME_MAX] = '\0'; /* exactly the limit fits */
    shm_ledger_entry_t longest = entry(name, 1, 0, "x");
    assert_true(shm_ledger_note(l, 0, 7, &longest));
    assert_true(shm_ledger_holds(l, 0, 7, &longest));
    shm_ledger_free(l);
}

/* Records share buckets: a new one replaces the oldest, which then proves nothing. */
static void test_a_replaced_record_proves_nothing(void **state)
{
    (void)state;
    shm_ledger_t *l;
    assert_int_equal(shm_ledger_new(&l, 1), 0);
    shm_ledger_entry_t a = entry("chat.a", 1, 0, "tick"), b;
    assert_true(shm_ledger_note(l, 0, 10, &a));
    uint64_t seq = 1;
    for (; seq < 64 * SHM_LEDGER_RECORDS; seq++) {
        b = entry("chat.a", 1, seq, "tick");
        assert_true(shm_ledger_note(l, 0, 11, &b));
        if (!shm_ledger_holds(l, 0, 10, &a))
            break;
    }
    assert_true(seq < 64 * SHM_LEDGER_RECORDS);
    assert_true(shm_ledger_holds(l, 0, 11, &b));
    shm_ledger_free(l);
}

/* A burst of entries (a batch in flight when a reader dies) all stay proven: a record goes only
 * when 8 later ones hashed to its bucket, and each of these is still there. */
static void test_a_burst_stays_proven(void **state)
{
    (void)state;
    shm_ledger_t *l;
    assert_int_equal(shm_ledger_new(&l, 1), 0);
    for (uint64_t seq = 0; seq < 200; seq++) {
        shm_ledger_entry_t e = entry("chat.burst", 1765000000000, seq, "tick");
        assert_true(shm_ledger_note(l, 0, 5, &e));
    }
    for (uint64_t seq = 0; seq < 200; seq++) {
        shm_ledger_entry_t e = entry("chat.burst", 1765000000000, seq, "tick");
        assert_true(shm_ledger_holds(l, 0, 5, &e));
    }
    shm_ledger_free(l);
}

/* Runs write(l, a, b) in a child process, then kills it with SIGKILL (after the writes); its pid.
 */
static pid_t killed_after(shm_ledger_t *l,
                          void (*write_fn)(shm_ledger_t *l, const shm_ledger_entry_t *a,
                                           const shm_ledger_entry_t *b),
                          const shm_ledger_entry_t *a, const shm_ledger_entry_t *b)
{
    int ready[2];
    assert_int_equal(pipe(ready), 0);
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        write_fn(l, a, b);
        char c = 'x';
        if (write(ready[1], &c, 1) != 1)
            _exit(1);
        pause();
        _exit(0);
    }
    char c;
    assert_int_equal(read(ready[0], &c, 1), 1);
    kill(child, SIGKILL);
    int status;
    assert_int_equal(waitpid(child, &status, 0), child);
    assert_true(WIFSIGNALED(status));
    close(ready[0]);
    close(ready[1]);
    return child;
}

static void note_first(shm_ledger_t *l, const shm_ledger_entry_t *a, const shm_ledger_entry_t *b)
{
    (void)b;
    shm_ledger_note(l, 1, getpid(), a);
}

/* A process killed with SIGKILL: what it noted stays readable (its successor and its siblings
 * find it under its pid); the next process in its block goes on beside it. */
static void test_a_killed_writer_leaves_its_records(void **state)
{
    (void)state;
    shm_ledger_t *l;
    assert_int_equal(shm_ledger_new(&l, 2), 0);
    shm_ledger_entry_t done = entry("chat.k", 9, 1, "tick"), next = entry("chat.k", 9, 2, "tick");
    pid_t child = killed_after(l, note_first, &done, &next);
    assert_true(shm_ledger_holds(l, 1, child, &done));
    assert_false(shm_ledger_holds(l, 1, child, &next));
    assert_true(shm_ledger_note(l, 1, 99, &next));
    assert_true(shm_ledger_holds(l, 1, 99, &next));
    assert_true(shm_ledger_holds(l, 1, child, &done));
    shm_ledger_free(l);
}

/* A publish is proven once its reply came (shm_ledger_sent), by any process in any block, and
 * only as a publish: the kinds never prove one another. */
static void test_a_publish_proves_only_once_replied(void **state)
{
    (void)state;
    shm_ledger_t *l;
    assert_int_equal(shm_ledger_new(&l, 4), 0);
    shm_ledger_entry_t e = entry("chat.p", 5, 1, "[\"room:message\",{}]");
    uint64_t ticket = shm_ledger_sending(l, 2, 4242, &e);
    assert_int_not_equal(ticket, 0);
    assert_false(shm_ledger_published(l, &e)); /* sent, no reply yet */
    assert_false(shm_ledger_holds(l, 2, 4242, &e));
    assert_false(shm_ledger_sent(l, 1, ticket)); /* another block's ticket */
    assert_false(shm_ledger_sent(l, 4, ticket));
    assert_false(shm_ledger_sent(l, 2, 0));
    assert_true(shm_ledger_sent(l, 2, ticket));
    assert_true(shm_ledger_published(l, &e));
    assert_false(shm_ledger_sent(l, 2, ticket));    /* marked once */
    assert_false(shm_ledger_holds(l, 2, 4242, &e)); /* published is not queued to sockets */
    /* queued is not published either */
    shm_ledger_entry_t q = entry("chat.p", 5, 2, "[\"room:message\",{}]");
    assert_true(shm_ledger_note(l, 2, 4242, &q));
    assert_false(shm_ledger_published(l, &q));
    /* every other entry */
    shm_ledger_entry_t other[] = {entry("chat.q", 5, 1, "[\"room:message\",{}]"),
                                  entry("chat.p", 5, 3, "[\"room:message\",{}]"),
                                  entry("chat.p", 5, 1, "[\"room:message\",{\"a\":1}]")};
    for (size_t i = 0; i < sizeof(other) / sizeof(other[0]); i++)
        assert_false(shm_ledger_published(l, &other[i]));
    shm_ledger_free(l);
}

/* A reply that comes after its record was replaced marks nothing: not the old entry, and not the
 * entry whose unreplied publish took its place. */
static void test_a_late_reply_marks_no_replacement(void **state)
{
    (void)state;
    shm_ledger_t *l;
    assert_int_equal(shm_ledger_new(&l, 1), 0);
    shm_ledger_entry_t a = entry("chat.a", 1, 0, "tick");
    uint64_t ticket = shm_ledger_sending(l, 0, 10, &a);
    uint64_t t = 0;
    shm_ledger_entry_t b;
    for (uint64_t seq = 1; seq < 64 * SHM_LEDGER_RECORDS; seq++) {
        b = entry("chat.a", 1, seq, "tick");
        t = shm_ledger_sending(l, 0, 10, &b);
        if ((t & (SHM_LEDGER_RECORDS - 1)) == (ticket & (SHM_LEDGER_RECORDS - 1)))
            break; /* b's record took a's place */
    }
    assert_int_equal(t & (SHM_LEDGER_RECORDS - 1), ticket & (SHM_LEDGER_RECORDS - 1));
    assert_false(shm_ledger_sent(l, 0, ticket));
    assert_false(shm_ledger_published(l, &a));
    assert_false(shm_ledger_published(l, &b));
    assert_true(shm_ledger_sent(l, 0, t));
    assert_true(shm_ledger_published(l, &b));
    shm_ledger_free(l);
}

/* A publisher killed with SIGKILL: what Redis had replied to stays proven for its successor (any
 * pid); what it had only sent does not. */
/* The first replied, the second only sent. */
static void publish_first(shm_ledger_t *l, const shm_ledger_entry_t *a, const shm_ledger_entry_t *b)
{
    shm_ledger_sent(l, 1, shm_ledger_sending(l, 1, getpid(), a));
    shm_ledger_sending(l, 1, getpid(), b);
}

static void test_a_killed_publisher_leaves_its_replied_publishes(void **state)
{
    (void)state;
    shm_ledger_t *l;
    assert_int_equal(shm_ledger_new(&l, 2), 0);
    shm_ledger_entry_t replied = entry("chat.k", 9, 1, "tick"),
                       sent = entry("chat.k", 9, 2, "tick");
    killed_after(l, publish_first, &replied, &sent);
    assert_true(shm_ledger_published(l, &replied));
    assert_false(shm_ledger_published(l, &sent));
    /* the successor in the same block goes on beside it */
    assert_true(shm_ledger_sent(l, 1, shm_ledger_sending(l, 1, 99, &sent)));
    assert_true(shm_ledger_published(l, &sent));
    assert_true(shm_ledger_published(l, &replied));
    shm_ledger_free(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_rejects_bad_sizes),
        cmocka_unit_test(test_digest_tells_bytes_apart),
        cmocka_unit_test(test_only_an_exact_record_of_that_process_proves),
        cmocka_unit_test(test_a_replaced_record_proves_nothing),
        cmocka_unit_test(test_a_burst_stays_proven),
        cmocka_unit_test(test_a_killed_writer_leaves_its_records),
        cmocka_unit_test(test_a_publish_proves_only_once_replied),
        cmocka_unit_test(test_a_late_reply_marks_no_replacement),
        cmocka_unit_test(test_a_killed_publisher_leaves_its_replied_publishes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
