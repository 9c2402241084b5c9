/*
 * Fuzzes worker/cluster/adapter where a pub/sub message from Redis enters it (adapter_receive,
 * and adapter_receive_relayed for what a sibling relays): the channel it came on (prefix,
 * namespace, room, the echo and sibling filters) and the message (broadcasts, requests, relay
 * handover markers in both layouts), applied to a host that pretends two sockets match every
 * target and reads every packet it is handed. The first input byte picks the mode (classic,
 * sharded, private), whether a relay is set and whether the message comes relayed; the rest is
 * split on its first 0x00 into the channel and the message. Redis is unreachable on purpose
 * (port 1): responses cannot be sent and must not matter. Namespaces "/" and "/admin", prefix
 * "socket.io", one adapter per mode and relay kept across inputs (as a worker keeps its own).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "common/buf.h"
#include "common/config.h"
#include "common/redis/redis_topology.h"
#include "worker/cluster/adapter.h"
#include "worker/eio/eio_msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile unsigned sink;

static void touch(const char *p, size_t len)
{
    unsigned h = 0;
    for (size_t i = 0; i < len; i++)
        h = h * 31 + (unsigned char)p[i];
    sink += h;
}

static void touch_target(const adapter_target_t *t)
{
    for (size_t i = 0; i < t->nrooms; i++)
        touch(t->rooms[i].p, t->rooms[i].len);
    for (size_t i = 0; i < t->nexcept; i++)
        touch(t->except[i].p, t->except[i].len);
}

static size_t h_broadcast(void *ctx, const adapter_target_t *t, const fanout_packet_t *pk)
{
    (void)ctx;
    touch_target(t);
    size_t len;
    const char *text = eio_msg_text(pk->msg, &len);
    if (len < 1 || text[0] != '4')
        __builtin_trap();
    touch(text, len);
    refbuf_t *frames = eio_msg_frames(pk->msg);
    touch(refbuf_data(frames), refbuf_len(frames));
    return 2;
}

static void h_each(void *ctx, const adapter_target_t *t, void (*fn)(void *sock, void *arg),
                   void *arg)
{
    (void)ctx;
    touch_target(t);
    fn((void *)1, arg);
    fn((void *)2, arg);
}

static const char *h_id(void *ctx, void *sock)
{
    (void)ctx;
    return sock == (void *)1 ? "AAAAAAAAAAAAAAAAAAAA" : "AAAAAAAAAAAAAAAAAAAB";
}

static void h_describe(void *ctx, void *sock, buf_t *out)
{
    buf_printf(out, "{\"id\":\"%s\",\"rooms\":[\"here\"],\"data\":{}}", h_id(ctx, sock));
}

static void h_room(void *ctx, void *sock, const char *room, size_t len)
{
    (void)ctx;
    (void)sock;
    touch(room, len);
}

static void h_disconnect(void *ctx, void *sock, bool close)
{
    (void)ctx;
    (void)sock;
    (void)close;
}

static void h_rooms(void *ctx, void (*fn)(const char *room, size_t len, void *arg), void *arg)
{
    (void)ctx;
    fn("here", 4, arg);
}

static bool h_has_room(void *ctx, const char *room, size_t len)
{
    (void)ctx;
    touch(room, len);
    return len == 4 && memcmp(room, "here", 4) == 0;
}

static bool relay(unsigned nsp, const char *chan, size_t chan_len, const uint8_t *msg,
                  size_t msg_len, void *arg)
{
    (void)arg;
    if (nsp >= 2)
        __builtin_trap();
    touch(chan, chan_len);
    touch((const char *)msg, msg_len);
    return true; /* applied here too */
}

static void marked(unsigned nsp, const char *chan, size_t chan_len, const char *uid, size_t uid_len,
                   bool mine, void *arg)
{
    (void)mine;
    (void)arg;
    if (nsp >= 2)
        __builtin_trap();
    touch(chan, chan ? chan_len : 0);
    touch(uid, uid_len);
}

static bool is_sibling(const char *uid, size_t len, void *arg)
{
    (void)arg;
    touch(uid, len);
    return len == 16 && memcmp(uid, "siblingsibling00", 16) == 0;
}

static const char *env(const char *name, void *arg)
{
    (void)arg;
    return strcmp(name, "REDIS_PORT") == 0 ? "1" : NULL;
}

static const adapter_str_t nsps[] = {{"/", 1}, {"/admin", 6}};

/* The adapter of mode m (0..2), with a relay or not, made once. */
static adapter_t *adapter_for(uv_loop_t *loop, unsigned m, bool with_relay)
{
    static cfg_t cfg;
    static stats_worker_t stats;
    static redis_topology_t *topo;
    static adapter_t *made[3][2];
    static const adapter_mode_t modes[] = {ADAPTER_MODE_CLASSIC, ADAPTER_MODE_SHARDED,
                                           ADAPTER_MODE_PRIVATE};
    if (!topo) {
        buf_t err;
        buf_init(&err);
        redis_topology_opts_t o;
        if (config_load(&cfg, env, NULL, &err))
            __builtin_trap();
        redis_topology_opts_from_cfg(&o, &cfg);
        if (redis_topology_new(&topo, loop, &o, &err))
            __builtin_trap();
        buf_free(&err);
    }
    adapter_t **a = &made[m][with_relay];
    if (!*a) {
        adapter_host_t host = {NULL,   h_broadcast,  h_each,  h_id,       h_describe, h_room,
                               h_room, h_disconnect, h_rooms, h_has_room, nsps,       2};
        if (adapter_new(a, topo, &cfg, modes[m], "socket.io", &host, &stats))
            __builtin_trap();
        adapter_set_sibling_filter(*a, is_sibling, NULL);
        if (with_relay) {
            adapter_set_relay(*a, relay, marked, NULL, NULL);
            adapter_relay_subscribe(*a, true);
            if (modes[m] == ADAPTER_MODE_SHARDED)
                adapter_relay_room(*a, 0, "here", 4, true);
        }
    }
    return *a;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uv_loop_t loop;
    static bool ready;
    if (!ready) {
        if (uv_loop_init(&loop))
            __builtin_trap();
        ready = true;
    }
    if (size < 1)
        return 0;
    unsigned m = (data[0] & 3) % 3;
    bool with_relay = data[0] & 4, relayed = data[0] & 8;
    /* copies of exactly their length, so ASan sees any read past either end */
    const uint8_t *z = memchr(data + 1, 0, size - 1);
    size_t clen = z ? (size_t)(z - data - 1) : size - 1;
    size_t mlen = z ? size - clen - 2 : 0;
    char *chan = malloc(clen ? clen : 1);
    uint8_t *msg = malloc(mlen ? mlen : 1);
    memcpy(chan, data + 1, clen);
    if (mlen)
        memcpy(msg, z + 1, mlen);
    adapter_t *a = adapter_for(&loop, m, with_relay);
    if (relayed)
        adapter_receive_relayed(a, chan, clen, msg, mlen);
    else
        adapter_receive(a, chan, clen, msg, mlen);
    uv_run(&loop, UV_RUN_NOWAIT);
    free(chan);
    free(msg);
    return 0;
}
