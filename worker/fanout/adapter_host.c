/* adapter_host: see adapter_host.h; ctx is the fanout, sockets are sio_socket_t. */
#include "worker/fanout/adapter_host.h"

static void target_of(const adapter_target_t *t, sio_target_t *out)
{
    *out = (sio_target_t){t->rooms, t->nrooms, t->except, t->nexcept, t->nsp};
}

static size_t host_broadcast(void *ctx, const adapter_target_t *t, const fanout_packet_t *pk)
{
    sio_target_t st;
    target_of(t, &st);
    return fanout_deliver(ctx, &st, t->skip_busy, pk);
}

typedef struct each {
    void (*fn)(void *sock, void *arg);
    void *arg;
} each_t;

static void each_one(sio_socket_t *s, void *arg)
{
    each_t *e = arg;
    e->fn(s, e->arg);
}

static void host_each(void *ctx, const adapter_target_t *t, void (*fn)(void *sock, void *arg),
                      void *arg)
{
    sio_target_t st;
    target_of(t, &st);
    each_t e = {fn, arg};
    sio_each_fixed(fanout_sockets(ctx), &st, each_one, &e);
}

static const char *host_id(void *ctx, void *sock)
{
    (void)ctx;
    return sio_socket_id(sock);
}

static void host_describe(void *ctx, void *sock, buf_t *out)
{
    (void)ctx;
    sio_socket_describe(sock, out);
}

static void host_join(void *ctx, void *sock, const char *room, size_t len)
{
    (void)ctx;
    sio_socket_join(sock, room, len);
}

static void host_leave(void *ctx, void *sock, const char *room, size_t len)
{
    (void)ctx;
    sio_socket_leave(sock, room, len);
}

static void host_disconnect(void *ctx, void *sock, bool close)
{
    (void)ctx;
    sio_socket_disconnect(sock, close);
}

static void host_rooms(void *ctx, void (*fn)(const char *room, size_t len, void *arg), void *arg)
{
    sio_each_room(fanout_sockets(ctx), fn, arg);
}

static bool host_has_room(void *ctx, const char *room, size_t len)
{
    return sio_has_room(fanout_sockets(ctx), room, len);
}

void adapter_host_init(adapter_host_t *out, fanout_t *f)
{
    size_t n;
    const adapter_str_t *nsps = sio_namespaces(fanout_sockets(f), &n);
    *out = (adapter_host_t){
        .ctx = f,
        .broadcast = host_broadcast,
        .each = host_each,
        .id = host_id,
        .describe = host_describe,
        .join = host_join,
        .leave = host_leave,
        .disconnect = host_disconnect,
        .rooms = host_rooms,
        .has_room = host_has_room,
        .nsps = nsps,
        .nnsp = n,
    };
}
