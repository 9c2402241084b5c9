/*
 * Unit tests for worker/bridge/inbound over a fake Redis seam: the exact XADD (fields, MAXLEN,
 * user, nsp, data as one minified JSON array), results after Redis answered (entry id, error
 * reply, lost connection), every refusal with its counter (events outside
 * SOCKETIO_INBOUND_EVENTS, binary attachments, the publish claim by event name or by room, too
 * many in flight, a refused send), and the order of a socket's events.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <jwt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/auth.h"
#include "tests/unit/bridge_fake.h"
#include "worker/bridge/inbound.h"

#define SECRET "0123456789abcdef0123456789abcdef"

typedef struct fix {
    bridge_fake_t *fake;
    cfg_t cfg;
    stats_worker_t stats;
    inbound_t *in;
    char got[8192][32]; /* results: "id" or "!error" */
    size_t ngot;
} fix_t;

static fix_t *fix_new(const char *const *env)
{
    fix_t *x = calloc(1, sizeof(*x));
    bridge_fake_config(&x->cfg, env);
    x->fake = bridge_fake_new();
    bridge_redis_t ops = bridge_fake_ops(x->fake);
    x->in = inbound_new(&ops, &x->cfg, "h:3000:0:7", &x->stats);
    return x;
}

static void fix_free(fix_t *x)
{
    bridge_fake_free(x->fake); /* unanswered results run (NULL) first */
    inbound_free(x->in);
    free(x);
}

static void done(void *arg, const char *id, size_t id_len, const char *error)
{
    fix_t *x = arg;
    assert_true(x->ngot < 8192);
    if (id)
        snprintf(x->got[x->ngot++], 32, "%.*s", (int)id_len, id);
    else
        snprintf(x->got[x->ngot++], 32, "!%s", error);
}

/* An event from socket "S1" whose packet was 42["<name>"<args>. */
static int add(fix_t *x, const char *name, const char *args, const auth_grant_t *g,
               const char **error)
{
    static json_span_t first;
    json_span_t *fp = NULL;
    if (args[0] == ',') {
        /* the first argument of ",<first>,..." (tests keep it simple: up to a top-level comma) */
        size_t len = strlen(args) - 1, a = json_skip_ws(args + 1, len, 0);
        first.p = args + 1 + a;
        first.len = json_value_end(args + 1, len, a) - a;
        assert_int_equal(json_type_of(first.p, first.len, &first.type), 0);
        fp = &first;
    }
    inbound_event_t ev = {name, strlen(name), args,       strlen(args), fp, 0, "S1",
                          g ? auth_grant_subject(g) : NULL, "/", g, 1700000000000ull};
    return inbound_add(x->in, &ev, done, x, error);
}

static void test_off_without_a_stream(void **state)
{
    (void)state;
    fix_t *x = fix_new(NULL);
    assert_null(x->in);
    fix_free(x);
}

static void test_xadd_and_results(void **state)
{
    (void)state;
    static const char *const env[] = {"SOCKETIO_INBOUND_STREAM", "streamio:inbound", NULL};
    fix_t *x = fix_new(env);
    const char *err = NULL;
    assert_int_equal(add(x, "send-message", ", {\"roomId\" : \"chat.1\", \"text\":\"hi\"} , 2]",
                         NULL, &err),
                     0);
    assert_string_equal(bridge_fake_next(x->fake),
                        "streamio:inbound | XADD streamio:inbound MAXLEN ~ 100000 * event "
                        "send-message data [{\"roomId\":\"chat.1\",\"text\":\"hi\"},2] sid S1 "
                        "server h:3000:0:7 ts 1700000000000");
    assert_int_equal(add(x, "typing", "]", NULL, &err), 0);
    assert_string_equal(bridge_fake_next(x->fake),
                        "streamio:inbound | XADD streamio:inbound MAXLEN ~ 100000 * event typing "
                        "data [] sid S1 server h:3000:0:7 ts 1700000000000");
    assert_int_equal(add(x, "x", ",\"a\"]", NULL, &err), 0);
    assert_int_equal(inbound_inflight(x->in), 3);
    assert_int_equal(x->ngot, 0); /* nothing before Redis answered */
    /* answered in order: an id, an error reply, a lost connection */
    bridge_fake_answer(x->fake, bf_str("1700000000000-0"));
    bridge_fake_answer(x->fake, bf_err("OOM command not allowed"));
    bridge_fake_answer(x->fake, NULL);
    assert_int_equal(x->ngot, 3);
    assert_string_equal(x->got[0], "1700000000000-0");
    assert_string_equal(x->got[1], "!" INBOUND_ERR_REDIS);
    assert_string_equal(x->got[2], "!" INBOUND_ERR_REDIS);
    assert_int_equal(STATS_GET(x->stats.inbound_added), 1);
    assert_int_equal(STATS_GET(x->stats.inbound_refused[STATS_INBOUND_REDIS]), 2);
    assert_int_equal(inbound_inflight(x->in), 0);
    fix_free(x);
}

static void test_settings_and_namespace(void **state)
{
    (void)state;
    static const char *const env[] = {"SOCKETIO_INBOUND_STREAM", "in", "SOCKETIO_INBOUND_MAXLEN",
                                      "0", "SOCKETIO_INBOUND_EVENTS", "chat.*,typing", NULL};
    fix_t *x = fix_new(env);
    const char *err = NULL;
    inbound_event_t ev = {"chat.send", 9, ",1]", 3, NULL, 0, "S2", "u-1", "/admin", NULL, 5};
    assert_int_equal(inbound_add(x->in, &ev, done, x, &err), 0);
    assert_string_equal(bridge_fake_next(x->fake), "in | XADD in * event chat.send data [1] sid S2 "
                                                   "user u-1 server h:3000:0:7 ts 5 nsp /admin");
    /* outside SOCKETIO_INBOUND_EVENTS: not for the back end, counted */
    assert_int_equal(add(x, "chat", "]", NULL, &err), -EACCES);
    assert_string_equal(err, INBOUND_ERR_NOT_ACCEPTED);
    assert_int_equal(STATS_GET(x->stats.inbound_refused[STATS_INBOUND_NOT_ACCEPTED]), 1);
    /* binary attachments are refused, never base64'd */
    ev.natt = 1;
    assert_int_equal(inbound_add(x->in, &ev, done, x, &err), -EINVAL);
    assert_string_equal(err, INBOUND_ERR_BINARY);
    assert_int_equal(STATS_GET(x->stats.inbound_refused[STATS_INBOUND_BINARY]), 1);
    assert_string_equal(bridge_fake_next(x->fake), "(none)");
    fix_free(x);
}

static char *sign(const char *claims)
{
    jwt_t *jwt = NULL;
    assert_int_equal(jwt_new(&jwt), 0);
    assert_int_equal(jwt_add_grants_json(jwt, claims), 0);
    assert_int_equal(
        jwt_set_alg(jwt, JWT_ALG_HS256, (const unsigned char *)SECRET, strlen(SECRET)), 0);
    char *t = jwt_encode_str(jwt);
    jwt_free(jwt);
    return t;
}

static auth_grant_t *grant(const char *claims)
{
    cfg_t cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.auth_enabled = true;
    strcpy(cfg.auth_jwt_secret, SECRET);
    buf_t err;
    buf_init(&err);
    auth_t *a;
    assert_int_equal(auth_new(&a, &cfg, &err), 0);
    char *t = sign(claims);
    auth_grant_t *g = NULL;
    const char *why;
    assert_int_equal(auth_verify(a, t, strlen(t), 1700000000, &g, &why), 0);
    free(t);
    auth_free(a);
    buf_free(&err);
    return g;
}

static void test_publish_claim(void **state)
{
    (void)state;
    static const char *const env[] = {"SOCKETIO_INBOUND_STREAM", "in", NULL};
    fix_t *x = fix_new(env);
    const char *err = NULL;
    auth_grant_t *g =
        grant("{\"exp\":1800000000,\"sub\":\"alice\",\"publish\":[\"typing\",\"chat.team.*\"]}");
    /* by event name */
    assert_int_equal(add(x, "typing", ",\"x\"]", g, &err), 0);
    assert_string_equal(bridge_fake_next(x->fake), "in | XADD in MAXLEN ~ 100000 * event typing "
                                                   "data [\"x\"] sid S1 user alice server "
                                                   "h:3000:0:7 ts 1700000000000");
    /* by the room it names: a string first argument, or its roomId */
    assert_int_equal(add(x, "send-message", ",\"chat.team.1\",\"hi\"]", g, &err), 0);
    assert_int_equal(add(x, "send-message", ",{\"roomId\":\"chat.team.2\"}]", g, &err), 0);
    assert_int_equal(add(x, "send-message", ",{\"roomId\":\"chat.other\"}]", g, &err), -EACCES);
    assert_string_equal(err, INBOUND_ERR_NOT_ALLOWED);
    assert_int_equal(add(x, "send-message", ",{\"roomId\":7}]", g, &err), -EACCES);
    assert_int_equal(add(x, "send-message", "]", g, &err), -EACCES);
    assert_int_equal(STATS_GET(x->stats.inbound_refused[STATS_INBOUND_NOT_ALLOWED]), 3);
    auth_grant_free(g);
    /* a token without a publish claim is not gated */
    g = grant("{\"exp\":1800000000}");
    assert_int_equal(add(x, "anything", "]", g, &err), 0);
    auth_grant_free(g);
    fix_free(x);
}

static void test_bounded_in_flight(void **state)
{
    (void)state;
    static const char *const env[] = {"SOCKETIO_INBOUND_STREAM", "in", NULL};
    fix_t *x = fix_new(env);
    const char *err = NULL;
    for (int i = 0; i < INBOUND_MAX_INFLIGHT; i++)
        assert_int_equal(add(x, "e", "]", NULL, &err), 0);
    assert_int_equal(add(x, "e", "]", NULL, &err), -EBUSY);
    assert_string_equal(err, INBOUND_ERR_BUSY);
    assert_int_equal(STATS_GET(x->stats.inbound_refused[STATS_INBOUND_BUSY]), 1);
    bridge_fake_answer(x->fake, bf_str("1-0"));
    assert_int_equal(add(x, "e", "]", NULL, &err), 0);
    while (bridge_fake_waiting(x->fake))
        bridge_fake_answer(x->fake, bf_str("2-0"));
    assert_int_equal(x->ngot, INBOUND_MAX_INFLIGHT + 1);
    /* a send the layer refuses (connection down) is a failure now, not later */
    bridge_fake_refuse(x->fake, ENOTCONN);
    assert_int_equal(add(x, "e", "]", NULL, &err), -EACCES);
    assert_string_equal(err, INBOUND_ERR_REDIS);
    bridge_fake_refuse(x->fake, ENOBUFS);
    assert_int_equal(add(x, "e", "]", NULL, &err), -EBUSY);
    fix_free(x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_off_without_a_stream),
        cmocka_unit_test(test_xadd_and_results),
        cmocka_unit_test(test_settings_and_namespace),
        cmocka_unit_test(test_publish_claim),
        cmocka_unit_test(test_bounded_in_flight),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
