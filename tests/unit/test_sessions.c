/* Unit tests for shm/sessions: allocation and release, orphans of a reaped block claimed once by
 * key, expiry, full pools, and a forked worker killed with SIGKILL whose
 * cell the parent then claims intact. */
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

#include "shm/sessions.h"

#define KEY "pid00000000000000001"
#define KEY2 "pid00000000000000002"

static void test_new_rejects_bad_sizes(void **state)
{
    (void)state;
    shm_sessions_t *t = NULL;
    assert_int_equal(shm_sessions_new(&t, 0), -EINVAL);
    assert_int_equal(shm_sessions_new(&t, SHM_SESSIONS_MAX_CELLS + 1), -EINVAL);
    assert_null(t);
    shm_sessions_free(NULL);
}

static void test_alloc_and_release_reuses(void **state)
{
    (void)state;
    shm_sessions_t *t;
    assert_int_equal(shm_sessions_new(&t, 4), 0);
    uint32_t a, b;
    unsigned char *p = shm_sessions_alloc(t, 0, KEY, 20, 100, &a);
    assert_non_null(p);
    assert_int_equal((uintptr_t)p % 64, 0);
    for (size_t i = 0; i < SHM_SESSIONS_CELL_BYTES; i++)
        assert_int_equal(p[i], 0);
    memset(p, 0xAB, SHM_SESSIONS_CELL_BYTES);
    assert_non_null(shm_sessions_alloc(t, 0, KEY2, 20, 100, &b));
    assert_int_not_equal(a, b);
    shm_sessions_release(t, a);
    uint32_t c;
    unsigned char *q = shm_sessions_alloc(t, 0, KEY, 20, 100, &c);
    assert_int_equal(c, a); /* this process's released cell first */
    assert_ptr_equal(q, p);
    assert_int_equal(q[0], 0xAB); /* as its last user left it: the caller initialises */
    shm_sessions_free(t);
}

static void test_bad_keys_and_a_full_pool(void **state)
{
    (void)state;
    shm_sessions_t *t;
    assert_int_equal(shm_sessions_new(&t, 2), 0);
    uint32_t i;
    char big[SHM_SESSIONS_KEY_MAX + 1];
    memset(big, 'k', sizeof(big));
    assert_null(shm_sessions_alloc(t, 0, big, sizeof(big), 1, &i));
    assert_null(shm_sessions_alloc(t, 0, KEY, 0, 1, &i));
    assert_non_null(shm_sessions_alloc(t, 0, KEY, 20, 1, &i));
    assert_non_null(shm_sessions_alloc(t, 0, KEY2, 20, 1, &i));
    assert_null(shm_sessions_alloc(t, 0, KEY, 20, 1, &i));
    assert_null(shm_sessions_claim(t, big, sizeof(big), 1, &i));
    shm_sessions_free(t);
}

static void test_orphans_of_a_block_are_claimed_once(void **state)
{
    (void)state;
    shm_sessions_t *t;
    assert_int_equal(shm_sessions_new(&t, 8), 0);
    uint32_t a, b, other, got;
    char *pa = shm_sessions_alloc(t, 3, KEY, 20, 1000, &a);
    memcpy(pa, "session one", 12);
    assert_non_null(shm_sessions_alloc(t, 3, KEY2, 20, 1000, &b));
    assert_non_null(shm_sessions_alloc(t, 4, "other-block-key-0000", 20, 1000, &other));
    /* nothing is claimable while its owner lives */
    assert_null(shm_sessions_claim(t, KEY, 20, 1000, &got));
    assert_int_equal(shm_sessions_orphan(t, 3, 5000), 2);
    assert_int_equal(shm_sessions_orphan(t, 3, 5000), 0);
    assert_null(shm_sessions_claim(t, "other-block-key-0000", 20, 1000, &got));
    assert_null(shm_sessions_claim(t, "no-such-key-00000000", 20, 1000, &got));
    char *p = shm_sessions_claim(t, KEY, 20, 1000, &got);
    assert_non_null(p);
    assert_int_equal(got, a);
    assert_string_equal(p, "session one");
    assert_null(shm_sessions_claim(t, KEY, 20, 1000, &got)); /* taken */
    /* an orphan is not handed out as a free cell before its expiry */
    uint32_t n;
    for (int k = 0; k < 5; k++)
        assert_non_null(shm_sessions_alloc(t, 5, "filler-key-000000000", 20, 1000, &n));
    assert_null(shm_sessions_alloc(t, 5, "filler-key-000000000", 20, 1000, &n));
    shm_sessions_release(t, got);
    assert_non_null(shm_sessions_alloc(t, 5, "filler-key-000000000", 20, 1000, &n));
    assert_int_equal(n, a);
    shm_sessions_free(t);
}

static void test_expiry(void **state)
{
    (void)state;
    shm_sessions_t *t;
    assert_int_equal(shm_sessions_new(&t, 2), 0);
    uint32_t a, b, got;
    assert_non_null(shm_sessions_alloc(t, 0, KEY, 20, 10, &a));
    assert_non_null(shm_sessions_alloc(t, 0, KEY2, 20, 10, &b));
    assert_int_equal(shm_sessions_orphan(t, 0, 100), 2);
    assert_null(shm_sessions_alloc(t, 1, KEY, 20, 99, &got)); /* both orphans still wait */
    assert_null(shm_sessions_claim(t, KEY, 20, 100, &got));   /* expired */
    assert_non_null(shm_sessions_claim(t, KEY2, 20, 99, &got));
    assert_int_equal(got, b);
    shm_sessions_release(t, got);
    assert_non_null(shm_sessions_alloc(t, 1, KEY2, 20, 99, &got)); /* released: free */
    assert_int_equal(got, b);
    assert_non_null(shm_sessions_alloc(t, 1, KEY, 20, 100, &got)); /* expired: free again */
    assert_int_equal(got, a);
    shm_sessions_free(t);
}

/* The point of the module: what a process wrote is there after it was killed mid-run. */
static void test_a_killed_process_leaves_its_cells(void **state)
{
    (void)state;
    shm_sessions_t *t;
    assert_int_equal(shm_sessions_new(&t, 16), 0);
    int ready[2];
    assert_int_equal(pipe(ready), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        uint32_t i;
        char *p = shm_sessions_alloc(t, 7, KEY, 20, 1, &i);
        if (p)
            memcpy(p, "written by the child", 21);
        if (write(ready[1], "x", 1) != 1)
            _exit(1);
        for (;;)
            pause();
    }
    char c;
    assert_int_equal(read(ready[0], &c, 1), 1);
    kill(pid, SIGKILL);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(shm_sessions_orphan(t, 7, 1000), 1);
    uint32_t got;
    char *p = shm_sessions_claim(t, KEY, 20, 2, &got);
    assert_non_null(p);
    assert_string_equal(p, "written by the child");
    shm_sessions_release(t, got);
    close(ready[0]);
    close(ready[1]);
    shm_sessions_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_rejects_bad_sizes),
        cmocka_unit_test(test_alloc_and_release_reuses),
        cmocka_unit_test(test_bad_keys_and_a_full_pool),
        cmocka_unit_test(test_orphans_of_a_block_are_claimed_once),
        cmocka_unit_test(test_expiry),
        cmocka_unit_test(test_a_killed_process_leaves_its_cells),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
