/*
 * Unit tests for master/settings: one load for start and reload; a reload is refused for a bad
 * JWT key file (as a start is) and above the workers the region can hold, and keeps what a running
 * master cannot change.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "master/settings.h"

typedef struct fixture {
    char env[64];  /* the STREAMIO_ENV_FILE */
    char junk[64]; /* a file that is no PEM key */
} fixture_t;

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    snprintf(f->env, sizeof(f->env), "/tmp/test_settings_%d.env", (int)getpid());
    snprintf(f->junk, sizeof(f->junk), "/tmp/test_settings_%d.pem", (int)getpid());
    write_file(f->junk, "not a key\n");
    write_file(f->env, "CLUSTER_WORKERS=2\n");
    setenv("STREAMIO_ENV_FILE", f->env, 1);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    unlink(f->env);
    unlink(f->junk);
    unsetenv("STREAMIO_ENV_FILE");
    free(f);
    return 0;
}

static void test_start_checks_the_key_file(void **state)
{
    fixture_t *f = *state;
    cfg_t cfg;
    buf_t err;
    buf_init(&err);
    assert_int_equal(settings_load(&cfg, &err), 0);
    assert_int_equal(cfg.cluster_workers, 2);
    char text[160];
    snprintf(text, sizeof(text), "AUTH_JWT_PUBLIC_KEY_FILE=%s\n", f->junk);
    write_file(f->env, text);
    assert_int_equal(settings_load(&cfg, &err), -EINVAL);
    assert_non_null(strstr(err.data, "AUTH_JWT_PUBLIC_KEY_FILE"));
    buf_free(&err);
}

static void test_reload_refuses_a_bad_key_file(void **state)
{
    fixture_t *f = *state;
    cfg_t cur, next;
    buf_t err, notes;
    buf_init(&err);
    buf_init(&notes);
    write_file(f->env, "CLUSTER_WORKERS=2\nAUTH_JWT_SECRET=0123456789abcdef0123456789abcdef\n");
    assert_int_equal(settings_load(&cur, &err), 0);
    assert_true(cur.auth_enabled);
    write_file(f->env, "CLUSTER_WORKERS=3\nAUTH_JWT_PUBLIC_KEY_FILE=/nonexistent/key.pem\n");
    assert_int_equal(settings_reload(&cur, &next, 32, &notes, &err), -EINVAL);
    assert_non_null(strstr(err.data, "AUTH_JWT_PUBLIC_KEY_FILE=\"/nonexistent/key.pem\""));
    buf_reset(&err);
    char text[200];
    snprintf(text, sizeof(text), "CLUSTER_WORKERS=3\nAUTH_JWT_PUBLIC_KEY_FILE=%s\n", f->junk);
    write_file(f->env, text);
    assert_int_equal(settings_reload(&cur, &next, 32, &notes, &err), -EINVAL);
    assert_non_null(strstr(err.data, "AUTH_JWT_PUBLIC_KEY_FILE"));
    /* the running configuration is untouched */
    assert_int_equal(cur.cluster_workers, 2);
    assert_true(cur.auth_jwt_secret[0] != '\0');
    assert_int_equal(notes.len, 0);
    buf_free(&err);
    buf_free(&notes);
}

static void test_reload_refuses_more_workers_than_the_region_holds(void **state)
{
    fixture_t *f = *state;
    cfg_t cur, next;
    buf_t err, notes;
    buf_init(&err);
    buf_init(&notes);
    assert_int_equal(settings_load(&cur, &err), 0);
    write_file(f->env, "CLUSTER_WORKERS=40\n");
    assert_int_equal(settings_reload(&cur, &next, 32, &notes, &err), -EINVAL);
    assert_string_equal(err.data, "CLUSTER_WORKERS=40 is above 32, the most a reload can reach: "
                                  "restart");
    buf_reset(&err);
    write_file(f->env, "CLUSTER_WORKERS=lots\n");
    assert_int_equal(settings_reload(&cur, &next, 32, &notes, &err), -EINVAL);
    assert_non_null(strstr(err.data, "CLUSTER_WORKERS=\"lots\""));
    buf_free(&err);
    buf_free(&notes);
}

static void test_reload_keeps_the_process_settings(void **state)
{
    fixture_t *f = *state;
    cfg_t cur, next;
    buf_t err, notes;
    buf_init(&err);
    buf_init(&notes);
    write_file(f->env, "PORT=3100\nSTREAMIO_CONTROL_SOCKET=/tmp/a.sock\n");
    assert_int_equal(settings_load(&cur, &err), 0);
    write_file(f->env, "PORT=3100\nSTREAMIO_CONTROL_SOCKET=/tmp/a.sock\nPOOL_SIZE=7\n");
    assert_int_equal(settings_reload(&cur, &next, 32, &notes, &err), 0);
    assert_int_equal(next.pool_size, 7);
    assert_int_equal(notes.len, 0);
    write_file(f->env, "PORT=3200\nSTREAMIO_CONTROL_SOCKET=/tmp/b.sock\nLOG_FORMAT=json\n");
    assert_int_equal(settings_reload(&cur, &next, 32, &notes, &err), 0);
    assert_int_equal(next.port, 3100);
    assert_string_equal(next.control_socket, "/tmp/a.sock");
    assert_true(next.log_json);
    assert_non_null(strstr(notes.data, "HOST/PORT changes need a restart; still listening on "
                                       "0.0.0.0:3100"));
    assert_non_null(strstr(notes.data, "STREAMIO_CONTROL_SOCKET"));
    buf_free(&err);
    buf_free(&notes);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_start_checks_the_key_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reload_refuses_a_bad_key_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reload_refuses_more_workers_than_the_region_holds,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_reload_keeps_the_process_settings, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
