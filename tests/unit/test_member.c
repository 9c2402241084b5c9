/*
 * Unit tests for worker/cluster/member against a fake host and a recording transport: what a
 * broadcast becomes (offset or not, binary frames, acks), what each request asks of the sockets
 * and which answer it gets, and the namespaces other than "/".
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "tests/unit/fake_host.h"
#include "worker/cluster/member.h"

typedef struct answer {
    int n;
    unsigned nsp;
    adapter_resp_t kind;
    uint64_t count;
    char body[256];
    char rid[32];
} answer_t;

static void on_respond(void *arg, unsigned nsp, const adapter_msg_t *m, adapter_resp_t kind,
                       const char *body, size_t body_len, uint64_t count)
{
    answer_t *a = arg;
    a->n++;
    a->nsp = nsp;
    a->kind = kind;
    a->count = count;
    snprintf(a->body, sizeof(a->body), "%.*s", body ? (int)body_len : 4, body ? body : "NULL");
    snprintf(a->rid, sizeof(a->rid), "%.*s", (int)m->request_id.len, m->request_id.p);
}

typedef struct env {
    uv_loop_t loop;
    stats_worker_t stats;
    host_fake_t fake;
    answer_t ans;
    member_t *mb;
    buf_t scratch;
} env_t;

static const adapter_str_t nsps[] = {{"/", 1}, {"/admin", 6}};

static int setup(void **state)
{
    env_t *e = calloc(1, sizeof(*e));
    assert_int_equal(uv_loop_init(&e->loop), 0);
    adapter_host_t host = fake_host(&e->fake, nsps, 2);
    e->fake.each_sockets = 2;
    e->mb = member_new(&e->loop, &host, &e->stats, on_respond, &e->ans);
    buf_init(&e->scratch);
    *state = e;
    return 0;
}

static void closed(void *arg)
{
    *(bool *)arg = true;
}

static int teardown(void **state)
{
    env_t *e = *state;
    bool done = false;
    member_close(e->mb, closed, &done);
    while (!done)
        uv_run(&e->loop, UV_RUN_ONCE);
    assert_int_equal(uv_loop_close(&e->loop), 0);
    buf_free(&e->fake.last_text);
    buf_free(&e->fake.last_frames);
    buf_free(&e->scratch);
    free(e);
    return 0;
}

/* Decodes a ClusterAdapter JSON message (kept alive in scratch) and applies it. */
static void apply(env_t *e, const char *json, const char *offset)
{
    static char copy[1024];
    snprintf(copy, sizeof(copy), "%s", json);
    adapter_msg_t m;
    assert_int_equal(
        adapter_msg_decode_cluster((const uint8_t *)copy, strlen(copy), &e->scratch, &m), 0);
    adapter_str_t o = {offset, offset ? strlen(offset) : 0};
    unsigned nsp = m.nsp.len == 1 ? 0 : 1;
    member_apply(e->mb, nsp, &m, offset ? &o : NULL, "test", 4);
}

#define BCAST(flags, extra)                                                                        \
    "{\"type\":3,\"data\":{\"packet\":{\"type\":2,\"data\":[\"ev\",{\"a\":1}]" extra "},"          \
    "\"opts\":{\"rooms\":[\"here\"],\"except\":[],\"flags\":{" flags "}}},\"uid\":\"p\","          \
    "\"nsp\":\"/\"}"

static void test_offsets_follow_node(void **state)
{
    env_t *e = *state;
    apply(e, BCAST("", ""), "1700000000000-3");
    assert_string_equal(e->fake.last_text.data, "42[\"ev\",{\"a\":1},\"1700000000000-3\"]");
    assert_string_equal(e->fake.room0, "here");
    apply(e, BCAST("\"volatile\":true", ""), "1-1"); /* volatile: no offset */
    assert_string_equal(e->fake.last_text.data, "42[\"ev\",{\"a\":1}]");
    assert_true(e->fake.skip_busy);
    apply(e, BCAST("", ",\"id\":4"), "1-1"); /* an ack id: no offset, and no id either */
    assert_string_equal(e->fake.last_text.data, "42[\"ev\",{\"a\":1}]");
    apply(e, BCAST("", ""), NULL);
    assert_string_equal(e->fake.last_text.data, "42[\"ev\",{\"a\":1}]");
    assert_int_equal(e->fake.broadcasts, 4);
    assert_int_equal(e->ans.n, 0);
    assert_int_equal(e->stats.adapter_in, 4);
}

static void test_binary_with_offset(void **state)
{
    env_t *e = *state;
    /* msgpack {type:3, data:{packet:{type:2,data:["b",<bin 01 02>]},opts:{rooms:[],except:[],
     * flags:{}}}, uid:"p", nsp:"/"} */
    static const uint8_t msg[] = {
        0x84, 0xa4, 't',  'y',  'p',  'e',  0x03, 0xa4, 'd', 'a',  't',  'a',  0x82, 0xa6, 'p', 'a',
        'c',  'k',  'e',  't',  0x82, 0xa4, 't',  'y',  'p', 'e',  0x02, 0xa4, 'd',  'a',  't', 'a',
        0x92, 0xa1, 'b',  0xc4, 0x02, 0x01, 0x02, 0xa4, 'o', 'p',  't',  's',  0x83, 0xa5, 'r', 'o',
        'o',  'm',  's',  0x90, 0xa6, 'e',  'x',  'c',  'e', 'p',  't',  0x90, 0xa5, 'f',  'l', 'a',
        'g',  's',  0x80, 0xa3, 'u',  'i',  'd',  0xa1, 'p', 0xa3, 'n',  's',  'p',  0xa1, '/'};
    adapter_msg_t m;
    assert_int_equal(adapter_msg_decode_cluster(msg, sizeof(msg), &e->scratch, &m), 0);
    adapter_str_t o = {"5-0", 3};
    member_apply(e->mb, 0, &m, &o, "test", 4);
    assert_int_equal(e->fake.broadcasts, 1);
    static const char text[] = "451-[\"b\",{\"_placeholder\":true,\"num\":0},\"5-0\"]";
    assert_string_equal(e->fake.last_text.data, text);
    /* over WebSocket: the text frame (2-byte header), then the binary frame (2 + 2 bytes) */
    assert_int_equal(e->fake.last_frames.len, 2 + sizeof(text) - 1 + 2 + 2);
    assert_memory_equal(e->fake.last_frames.data + 2, text, sizeof(text) - 1);
    assert_memory_equal(e->fake.last_frames.data + 2 + sizeof(text) - 1, "\x82\x02\x01\x02", 4);
}

static void test_acks_go_back_to_the_requester(void **state)
{
    env_t *e = *state;
    e->fake.each_sockets = 2; /* the recipients: fake_ids[0] and [1] */
    apply(e,
          "{\"type\":3,\"data\":{\"packet\":{\"type\":2,\"data\":[\"q\"]},\"requestId\":\"r1\","
          "\"opts\":{\"rooms\":[],\"except\":[],\"flags\":{\"timeout\":500}}},\"uid\":\"req\","
          "\"nsp\":\"/\"}",
          "9-9");
    assert_string_equal(e->fake.last_text.data, "421000000000[\"q\"]");
    assert_int_equal(e->ans.kind, ADAPTER_RESP_CLIENT_COUNT);
    assert_int_equal(e->ans.count, 2);
    assert_string_equal(e->ans.rid, "r1");
    assert_int_equal(member_client_ack(e->mb, fake_ids[0], ADAPTER_ACK_ID_BASE, "[\"yes\",2]", 9),
                     ADAPTER_ACK_FORWARDED);
    assert_int_equal(e->ans.kind, ADAPTER_RESP_BROADCAST_ACK);
    assert_string_equal(e->ans.body, "\"yes\"");
    /* a socket that was not sent it, or answers twice: dropped */
    assert_int_equal(member_client_ack(e->mb, fake_ids[2], ADAPTER_ACK_ID_BASE, "[]", 2),
                     ADAPTER_ACK_DROPPED);
    assert_int_equal(member_client_ack(e->mb, fake_ids[0], ADAPTER_ACK_ID_BASE, "[]", 2),
                     ADAPTER_ACK_DROPPED);
    assert_int_equal(e->ans.n, 2);
    assert_int_equal(member_client_ack(e->mb, fake_ids[1], ADAPTER_ACK_ID_BASE, "[]", 2),
                     ADAPTER_ACK_FORWARDED);
    assert_string_equal(e->ans.body, "NULL");
    assert_int_equal(e->ans.n, 3);
    assert_int_equal(member_client_ack(e->mb, NULL, 12, "[]", 2), ADAPTER_ACK_HOST);
}

/* A broadcast with acks but no uid (Redis content: anyone may publish it) is delivered and its
 * acks tracked without copying from the absent uid's NULL (UB; found by fuzz_adapter_receive). */
static void test_ack_broadcast_without_uid(void **state)
{
    env_t *e = *state;
    apply(e,
          "{\"type\":3,\"data\":{\"packet\":{\"type\":2,\"data\":[\"q\"]},\"requestId\":\"r2\","
          "\"opts\":{\"rooms\":[],\"except\":[],\"flags\":{}}},\"nsp\":\"/\"}",
          NULL);
    assert_string_equal(e->fake.last_text.data, "421000000000[\"q\"]");
    assert_int_equal(e->ans.count, 2);
    assert_int_equal(member_client_ack(e->mb, fake_ids[0], ADAPTER_ACK_ID_BASE, "[1]", 3),
                     ADAPTER_ACK_FORWARDED);
    assert_string_equal(e->ans.rid, "r2");
}

static void test_requests(void **state)
{
    env_t *e = *state;
    apply(e,
          "{\"type\":7,\"data\":{\"opts\":{\"rooms\":[\"here\"],\"except\":[],\"flags\":{}},"
          "\"requestId\":\"f1\"},\"uid\":\"req\",\"nsp\":\"/\"}",
          NULL);
    assert_int_equal(e->ans.kind, ADAPTER_RESP_FETCH);
    assert_string_equal(e->ans.body,
                        "[{\"id\":\"AAAAAAAAAAAAAAAAAAAA\"},{\"id\":\"AAAAAAAAAAAAAAAAAAAA\"}]");
    apply(e,
          "{\"type\":9,\"data\":{\"packet\":[\"hello\",1],\"requestId\":\"s1\"},\"uid\":\"req\","
          "\"nsp\":\"/\"}",
          NULL);
    assert_int_equal(e->ans.kind, ADAPTER_RESP_SSE);
    assert_string_equal(e->ans.body, "NULL");
    assert_string_equal(e->ans.rid, "s1");
    int before = e->ans.n;
    apply(e, "{\"type\":9,\"data\":{\"packet\":[\"hello\"]},\"uid\":\"req\",\"nsp\":\"/\"}", NULL);
    assert_int_equal(e->ans.n, before); /* no requestId: nobody waits */
    apply(e,
          "{\"type\":5,\"data\":{\"opts\":{\"rooms\":[],\"except\":[],\"flags\":{}},\"rooms\":"
          "[\"x\"]},\"uid\":\"req\",\"nsp\":\"/\"}",
          NULL);
    assert_int_equal(e->fake.leaves, 2);
    /* another namespace: answered empty, sockets untouched */
    apply(e,
          "{\"type\":7,\"data\":{\"opts\":{\"rooms\":[],\"except\":[],\"flags\":{}},"
          "\"requestId\":\"f2\"},\"uid\":\"req\",\"nsp\":\"/admin\"}",
          NULL);
    assert_int_equal(e->ans.nsp, 1);
    assert_string_equal(e->ans.body, "[]");
    apply(e,
          "{\"type\":4,\"data\":{\"opts\":{\"rooms\":[],\"except\":[],\"flags\":{}},\"rooms\":"
          "[\"x\"]},\"uid\":\"req\",\"nsp\":\"/admin\"}",
          NULL);
    assert_int_equal(e->fake.joins, 0);
}

static void test_undeliverable_broadcast_with_ack_counts_zero(void **state)
{
    env_t *e = *state;
    /* packet type 3 (an ACK) cannot be broadcast */
    apply(e,
          "{\"type\":3,\"data\":{\"packet\":{\"type\":6,\"data\":[1]},\"requestId\":\"r9\","
          "\"opts\":{\"rooms\":[],\"except\":[],\"flags\":{}}},\"uid\":\"req\",\"nsp\":\"/\"}",
          NULL);
    assert_int_equal(e->fake.broadcasts, 0);
    assert_int_equal(e->ans.kind, ADAPTER_RESP_CLIENT_COUNT);
    assert_int_equal(e->ans.count, 0);
    assert_string_equal(member_decode_error(-E2BIG), "too many rooms");
}

int main(void)
{
    log_setup(LOG_LVL_ERROR, "test", -1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_offsets_follow_node, setup, teardown),
        cmocka_unit_test_setup_teardown(test_binary_with_offset, setup, teardown),
        cmocka_unit_test_setup_teardown(test_acks_go_back_to_the_requester, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ack_broadcast_without_uid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_requests, setup, teardown),
        cmocka_unit_test_setup_teardown(test_undeliverable_broadcast_with_ack_counts_zero, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
