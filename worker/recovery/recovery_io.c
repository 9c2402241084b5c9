/* recovery_io: see recovery_io.h. */
#include "worker/recovery/recovery_io.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/redis/redis_client.h"
#include "common/xalloc.h"

struct recovery_io {
    const cfg_t *cfg;
    redis_client_t *conn;
    buf_t key;
    payload_field_t *fields; /* scratch for one entry, reused */
    size_t fields_cap;
    void (*closed)(void *arg);
    void *closed_arg;
};

/* What one command's reply goes to. */
typedef struct request {
    recovery_io_t *io;
    recovery_io_take_fn take;
    recovery_io_entry_fn entry;
    recovery_io_done_fn done;
    void *arg;
} request_t;

recovery_io_t *recovery_io_new(redis_topology_t *topo, const cfg_t *cfg)
{
    recovery_io_t *io = xcalloc(1, sizeof(*io));
    io->cfg = cfg;
    buf_init(&io->key);
    io->conn = redis_client_new(topo, "recovery", NULL, NULL);
    return io;
}

static void make_key(recovery_io_t *io, const char *pid, size_t pid_len)
{
    buf_reset(&io->key);
    recovery_key(&io->key, io->cfg->redis_key, pid, pid_len);
}

int recovery_io_save(recovery_io_t *io, const char *pid, size_t pid_len, const char *rec,
                     size_t len)
{
    make_key(io, pid, pid_len);
    char px[24];
    snprintf(px, sizeof(px), "%d", io->cfg->recovery_window_ms);
    const char *argv[] = {"SET", io->key.data, rec, "PX", px};
    size_t lens[] = {3, io->key.len, len, 2, strlen(px)};
    return redis_client_command(io->conn, io->key.data, io->key.len, NULL, NULL, 5, argv, lens);
}

static void on_take(const redisReply *r, void *privdata)
{
    request_t *q = privdata;
    if (r && r->type == REDIS_REPLY_STRING)
        q->take(q->arg, r->str, r->len);
    else
        q->take(q->arg, NULL, 0);
    if (r && r->type == REDIS_REPLY_ERROR)
        LOG_WARN("recovery: GETDEL failed: %s", r->str);
    free(q);
}

static request_t *request_new(recovery_io_t *io, void *arg)
{
    request_t *q = xcalloc(1, sizeof(*q));
    q->io = io;
    q->arg = arg;
    return q;
}

/* The one way this module sends a command with a reply; routed by argv[1] (the key). */
static int send_request(recovery_io_t *io, redis_reply_fn cb, request_t *q, int argc,
                        const char **argv, const size_t *lens)
{
    int rc = redis_client_command(io->conn, argv[1], lens[1], cb, q, argc, argv, lens);
    if (rc)
        free(q);
    return rc;
}

int recovery_io_take(recovery_io_t *io, const char *pid, size_t pid_len, recovery_io_take_fn fn,
                     void *arg)
{
    request_t *q = request_new(io, arg);
    make_key(io, pid, pid_len);
    q->take = fn;
    const char *argv[] = {"GETDEL", io->key.data};
    size_t lens[] = {6, io->key.len};
    return send_request(io, on_take, q, 2, argv, lens);
}

static void fields_reserve(recovery_io_t *io, size_t n)
{
    if (n <= io->fields_cap)
        return;
    io->fields = xrealloc(io->fields, n * sizeof(*io->fields));
    io->fields_cap = n;
}

/* [[id, [field, value, ...]], ...], as XREADGROUP hands them to the reader */
static void on_range(const redisReply *r, void *privdata)
{
    request_t *q = privdata;
    recovery_io_t *io = q->io;
    int n = 0;
    if (!r) {
        n = -ENOTCONN;
    } else if (r->type != REDIS_REPLY_ARRAY) {
        n = -EPROTO; /* not a stream (or an error): nothing to replay from it */
    }
    for (size_t i = 0; n >= 0 && i < r->elements; i++) {
        const redisReply *e = r->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
            e->element[0]->type != REDIS_REPLY_STRING || e->element[1]->type != REDIS_REPLY_ARRAY)
            continue;
        const redisReply *fv = e->element[1];
        fields_reserve(io, fv->elements / 2 + 1);
        size_t k = 0;
        for (size_t j = 0; j + 1 < fv->elements; j += 2) {
            const redisReply *f = fv->element[j], *v = fv->element[j + 1];
            if (f->type == REDIS_REPLY_STRING && v->type == REDIS_REPLY_STRING)
                io->fields[k++] = (payload_field_t){f->str, f->len, v->str, v->len};
        }
        q->entry(q->arg, e->element[0]->str, e->element[0]->len, io->fields, k);
        n++;
    }
    q->done(q->arg, n);
    free(q);
}

int recovery_io_range(recovery_io_t *io, const char *room, size_t len, stream_id_t after,
                      recovery_io_entry_fn entry, recovery_io_done_fn done, void *arg)
{
    request_t *q = request_new(io, arg);
    q->entry = entry;
    q->done = done;
    char count[16], excl[STREAM_ID_MAX + 2];
    snprintf(count, sizeof(count), "%d", RECOVERY_IO_PAGE);
    const char *argv[6];
    size_t lens[6];
    recovery_replay_argv(room, len, after, count, excl, argv, lens);
    return send_request(io, on_range, q, 6, argv, lens);
}

/* The connection is gone: io can go too (replies still needed io until now). */
static void on_closed(void *arg)
{
    recovery_io_t *io = arg;
    void (*done)(void *) = io->closed;
    void *done_arg = io->closed_arg;
    buf_free(&io->key);
    free(io->fields);
    free(io);
    done(done_arg);
}

void recovery_io_close(recovery_io_t *io, void (*done)(void *arg), void *arg)
{
    io->closed = done;
    io->closed_arg = arg;
    redis_client_close(io->conn, on_closed, io);
}
