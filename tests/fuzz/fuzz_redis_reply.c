/*
 * Fuzzes the readers of what Redis (or something posing as Redis) sends the layer: the input is
 * fed to the layer's bounded hiredis reader, and every reply it yields goes through redis_reply
 * (errors and redirects, pub/sub pushes, ROLE, a sentinel's address), redis_slotmap (CLUSTER
 * SLOTS), the presence store's replies (common/bridge/presence_store: a count must be the sum of
 * its users', and the users' JSON must validate), the master's key events
 * (master/discovery/keyevents: a pub/sub push as an event, a CONFIG GET answer's flags); the raw
 * bytes also go to the +switch-master parser and to the raw scan of a subscribed connection,
 * whose every item must read the same through hiredis. Results must be consistent, never a crash.
 */
#include <assert.h>
#include <errno.h>
#include <hiredis/hiredis.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "common/bridge/presence_store.h"
#include "common/json.h"
#include "common/redis/redis_reply.h"
#include "common/redis/redis_slot.h"
#include "common/redis/redis_slotmap.h"
#include "master/discovery/keyevents.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void on_name(const char *p, size_t len, void *arg)
{
    (void)arg;
    assert(p || len == 0);
}

static void on_index(char kind, const char *p, size_t len, void *arg)
{
    (void)arg;
    assert((kind == 'r' || kind == 'u') && (p || len == 0));
}

/* The presence store's readers; the users' JSON must validate. */
static void check_presence(const redisReply *r)
{
    int64_t total, mine;
    uint64_t ts;
    (void)presence_reply_change(r, &total, &mine);
    (void)presence_reply_user(r, &total, &mine, &ts);
    (void)presence_reply_names(r, on_name, NULL);
    (void)presence_reply_index(r, on_index, NULL);
    buf_t json;
    buf_init(&json);
    if (presence_reply_users(r, "room\xff", 6, &json) == 0)
        assert(json_validate(json.data, json.len) == 0);
    buf_free(&json);
}

/* The master's key events: a push of the subscription, and CONFIG GET's answer. */
static void check_keyevents(const redisReply *r, const redis_push_t *p, bool is_push)
{
    keyevent_kind_t kind;
    const char *key;
    size_t len;
    if (keyevents_parse(0, is_push ? p : NULL, &kind, &key, &len) == 0)
        assert((kind == KEYEVENT_XADD || kind == KEYEVENT_DEL) && key == p->data && len == p->len);
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
        r->element[1]->type == REDIS_REPLY_STRING) {
        char out[64], again[64];
        int rc = keyevents_flags(r->element[1]->str, out, sizeof(out));
        assert(rc == 0 || rc == 1 || rc == -ENOSPC);
        if (rc >= 0) /* what it asks for is enough */
            assert(keyevents_flags(out, again, sizeof(again)) == 0);
    }
}

static void check(const redisReply *r)
{
    redis_redirect_t rd;
    redis_fault_t f = redis_reply_fault(r, &rd);
    if (f == REDIS_FAULT_MOVED || f == REDIS_FAULT_ASK)
        assert(rd.slot < REDIS_SLOTS && rd.addr.port >= 1 && rd.addr.port <= 65535);
    redis_push_t p;
    bool is_push = redis_reply_push(r, &p) == 0;
    if (is_push) {
        assert(p.type != REDIS_PUSH_NONE);
        if (p.type == REDIS_PUSH_MESSAGE)
            assert(p.channel && p.data);
    }
    check_keyevents(r, &p, is_push);
    check_presence(r);
    int role = redis_reply_role(r);
    assert(role < 0 || (role >= REDIS_ROLE_MASTER && role <= REDIS_ROLE_SENTINEL));
    redis_addr_t a;
    if (redis_reply_addr(r, &a) == 0)
        assert(a.host[0] && a.port >= 1);
    static const redis_addr_t asked = {.host = "127.0.0.1", .port = 7000};
    redis_slotmap_t *m = NULL;
    if (redis_slotmap_parse(r, &asked, &m) == 0) {
        bool complete = true;
        for (unsigned s = 0; s < REDIS_SLOTS; s++) {
            int o = redis_slotmap_owner(m, s);
            assert(o < (int)redis_slotmap_count(m));
            if (o < 0)
                complete = false;
            else
                assert(redis_slotmap_is_master(m, (size_t)o));
        }
        assert(complete == redis_slotmap_complete(m));
        assert(redis_slotmap_same(m, m));
        if (redis_reply_fault(r, &rd) == REDIS_FAULT_NONE && redis_slotmap_count(m))
            redis_slotmap_move(m, 42, redis_slotmap_addr(m, 0));
        redis_slotmap_free(m);
    }
}

/* Each item redis_reply_scan finds is one whole reply for hiredis, the same message if one. */
static void check_scan(const char *p, size_t n)
{
    size_t off = 0, used;
    redis_push_t m;
    while (off < n && redis_reply_scan(p + off, n - off, &used, &m) == 0) {
        assert(used > 0 && used <= n - off);
        redisReader *rd = redis_reply_reader_new();
        void *reply = NULL;
        redisReaderFeed(rd, p + off, used);
        assert(redisReaderGetReply(rd, &reply) == REDIS_OK && reply);
        assert(rd->ridx == -1 && rd->pos == rd->len);
        redis_push_t want;
        bool message = redis_reply_push(reply, &want) == 0 && want.type == REDIS_PUSH_MESSAGE;
        assert(message == (m.type == REDIS_PUSH_MESSAGE));
        if (message)
            assert(m.kind == want.kind && m.len == want.len && !memcmp(m.data, want.data, m.len) &&
                   m.channel_len == want.channel_len &&
                   !memcmp(m.channel, want.channel, m.channel_len));
        redis_reply_reader_free(rd); /* the reader owns its replies (an arena) */
        off += used;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_scan((const char *)data, size);
    redis_addr_t a;
    redis_reply_switch_master((const char *)data, size, "mymaster", &a);
    redisReader *rd = redis_reply_reader_new();
    redisReaderFeed(rd, (const char *)data, size);
    for (int i = 0; i < 64; i++) {
        void *reply = NULL;
        if (redisReaderGetReply(rd, &reply) != REDIS_OK || !reply)
            break;
        check(reply);
        redis_reply_release(rd);
    }
    redis_reply_reader_free(rd);
    return 0;
}
