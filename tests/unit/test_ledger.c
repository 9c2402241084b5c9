/* Unit tests for shm/ledger: a record proves exactly one entry (stream, id, digest) of one worker
 * number, and only once committed; replaced, too long, uncommitted or stale-ticket records prove
 * nothing; any block's records are found; a process killed with SIGKILL leaves its committed
 * records behind and its half-done one unproven. */
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

static void test_only_a_committed_exact_record_proves(void **state)
{
    (void)state;
    shm_ledger_t *l;
    assert_int_equal(shm_ledger_new(&l, 4), 0);
    shm_ledger_entry_t e = entry("chat.a", 5, 1, "tick");
    assert_int_equal(shm_ledger_find(l, 0, &e), 0);
    uint64_t t = shm_ledger_note(l, 1, 0, 4242, &e);
    assert_int_not_equal(t, 0);
    assert_int_equal(shm_ledger_find(l, 0, &e), 0); /* noted: not proven yet */
    shm_ledger_commit(l, 1, t);
    assert_int_equal(shm_ledger_find(l, 0, &e), 4242);
    shm_ledger_commit(l, 1, t); /* twice: no change */
    assert_int_equal(shm_ledger_find(l, 0, &e), 4242);
    /* every other entry, and another worker number, finds nothing */
    shm_ledger_entry_t other[] = {entry("chat.b", 5, 1, "tick"), entry("chat.a", 5, 2, "tick"),
                                  entry("chat.a", 6, 1, "tick"), entry("chat.a", 5, 1, "tock"),
                                  entry("chat.", 5, 1, "tick"),  entry("chat.aa", 5, 1, "tick")};
    for (size_t i = 0; i < sizeof(other) / sizeof(other[0]); i++)
        assert_int_equal(shm_ledger_find(l, 0, &other[i]), 0);
    assert_int_equal(shm_ledger_find(l, 1, &e), 0);
    /* a commit for another block, or a ticket 0, does nothing */
    shm_ledger_entry_t g = entry("chat.g", 1, 0, "x");
    uint64_t tg = shm_ledger_note(l, 2, 0, 7, &g);
    shm_ledger_commit(l, 3, tg);
    shm_ledger_commit(l, 2, 0);
    assert_int_equal(shm_ledger_find(l, 0, &g), 0);
    /* a bad block or a name over the limit is not recorded */
    assert_int_equal(shm_ledger_note(l, 4, 0, 7, &g), 0);
    char name[SHM_LEDGER_NAME_MAX + 2];
    memset(name, 'n', sizeof(name) - 1);
    name[sizeof(name) - 1] = '\0';
    shm_ledger_entry_t longer = entry(name, 1, 0, "x");
    assert_int_equal(shm_ledger_note(l, 0, 0, 7, &longer), 0);
    assert_int_equal(shm_ledger_find(l, 0, &longer), 0);
    name[SHM_LEDGER_NAME_MAX] = '\0'; /* exactly the limit fits */
    shm_ledger_entry_t longest = entry(name, 1, 0, "x");
    shm_ledger_commit(l, 0, shm_ledger_note(l, 0, 0, 7, &longest));
    assert_int_equal(shm_ledger_find(l, 0, &longest), 7);
    shm_ledger_free(l);
}

/* Records share places: a new one replaces the old, which then proves nothing, and the old one's
 * ticket no longer commits anything. */
static void test_a_replaced_record_proves_nothing(void **state)
{
    (void)state;
    shm_ledger_t *l;
    assert_int_equal(shm_ledger_new(&l, 1), 0);
    shm_ledger_entry_t a = entry("chat.a", 1, 0, "tick");
    uint64_t ta = shm_ledger_note(l, 0, 0, 10, &a);
    /* find an entry that takes a's place: its note makes a unfindable once committed */
    uint64_t seq = 1, tb = 0;
    shm_ledger_entry_t b;
    for (; seq < 64 * SHM_LEDGER_RECORDS; seq++) {
        b = entry("chat.a", 1, seq, "tick");
        shm_ledger_commit(l, 0, ta);
        assert_int_equal(shm_ledger_find(l, 0, &a), 10);
        tb = shm_ledger_note(l, 0, 0, 11, &b);
        if (tb % SHM_LEDGER_RECORDS == ta % SHM_LEDGER_RECORDS)
            break;
    }
    assert_true(seq < 64 * SHM_LEDGER_RECORDS);
    assert_int_equal(shm_ledger_find(l, 0, &a), 0);
    assert_int_equal(shm_ledger_find(l, 0, &b), 0);
    shm_ledger_commit(l, 0, ta); /* a's stale ticket */
    assert_int_equal(shm_ledger_find(l, 0, &a), 0);
    assert_int_equal(shm_ledger_find(l, 0, &b), 0);
    shm_ledger_commit(l, 0, tb);
    assert_int_equal(shm_ledger_find(l, 0, &b), 11);
    shm_ledger_free(l);
}

/* A process killed with SIGKILL: what it committed stays proven (its successor finds it), what it
 * had only noted proves nothing; the next process in its block goes on from there. */
static void test_a_killed_writer_leaves_its_records(void **state)
{
    (void)state;
    shm_ledger_t *l;
    assert_int_equal(shm_ledger_new(&l, 2), 0);
    shm_ledger_entry_t done = entry("chat.k", 9, 1, "tick"), half = entry("chat.k", 9, 2, "tick");
    int ready[2];
    assert_int_equal(pipe(ready), 0);
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        shm_ledger_commit(l, 1, shm_ledger_note(l, 1, 3, getpid(), &done));
        shm_ledger_note(l, 1, 3, getpid(), &half);
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
    assert_int_equal(shm_ledger_find(l, 3, &done), child);
    assert_int_equal(shm_ledger_find(l, 3, &half), 0);
    /* its successor in the same block: its records get stamps of their own */
    shm_ledger_commit(l, 1, shm_ledger_note(l, 1, 3, 99, &half));
    assert_int_equal(shm_ledger_find(l, 3, &half), 99);
    assert_int_equal(shm_ledger_find(l, 3, &done), child);
    close(ready[0]);
    close(ready[1]);
    shm_ledger_free(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_rejects_bad_sizes),
        cmocka_unit_test(test_digest_tells_bytes_apart),
        cmocka_unit_test(test_only_a_committed_exact_record_proves),
        cmocka_unit_test(test_a_replaced_record_proves_nothing),
        cmocka_unit_test(test_a_killed_writer_leaves_its_records),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
