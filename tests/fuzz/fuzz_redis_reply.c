/*
 * Fuzzes the readers of what Redis (or something posing as Redis) sends the layer: the input is
 * fed to the layer's bounded hiredis reader, and every reply it yields goes through redis_reply
 * (errors and redirects, pub/sub pushes, ROLE, a sentinel's address) and redis_slotmap (CLUSTER
 * SLOTS); the raw bytes also go to the +switch-master parser. Results must be consistent, never a
 * crash.
 */
#include <assert.h>
#include <hiredis/hiredis.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "common/redis/redis_reply.h"
#include "common/redis/redis_slot.h"
#include "common/redis/redis_slotmap.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const redisReply *r)
{
    redis_redirect_t rd;
    redis_fault_t f = redis_reply_fault(r, &rd);
    if (f == REDIS_FAULT_MOVED || f == REDIS_FAULT_ASK)
        assert(rd.slot < REDIS_SLOTS && rd.addr.port >= 1 && rd.addr.port <= 65535);
    redis_push_t p;
    if (redis_reply_push(r, &p) == 0) {
        assert(p.type != REDIS_PUSH_NONE);
        if (p.type == REDIS_PUSH_MESSAGE)
            assert(p.channel && p.data);
    }
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    redis_addr_t a;
    redis_reply_switch_master((const char *)data, size, "mymaster", &a);
    redisReader *rd = redis_reply_reader_new();
    redisReaderFeed(rd, (const char *)data, size);
    for (int i = 0; i < 64; i++) {
        void *reply = NULL;
        if (redisReaderGetReply(rd, &reply) != REDIS_OK || !reply)
            break;
        check(reply);
        freeReplyObject(reply);
    }
    redis_reply_reader_free(rd);
    return 0;
}
