/* bridge_admin: see bridge_admin.h. */
#include "master/admin/bridge_admin.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/bridge/presence_query.h"
#include "common/bridge/presence_store.h"
#include "common/decimal.h"
#include "common/json.h"
#include "common/proto/dead_letter.h"
#include "common/xalloc.h"

#define LIST_DEFAULT 10
#define VALUE_SHOWN 4096 /* bytes of each field value `list` prints */

typedef struct op {
    bridge_redis_t redis;
    const cfg_t *cfg;
    bridge_admin_fn done;
    void *arg;
    buf_t out;
    char *id;     /* replay: the dead letter */
    char *stream; /* replay: its stream */
    size_t stream_len;
} op_t;

static op_t *op_new(const bridge_redis_t *redis, const cfg_t *cfg, bridge_admin_fn done, void *arg)
{
    op_t *o = xcalloc(1, sizeof(*o));
    o->redis = *redis;
    o->cfg = cfg;
    o->done = done;
    o->arg = arg;
    buf_init(&o->out);
    return o;
}

static void finish(op_t *o, int rc)
{
    o->done(o->arg, rc, &o->out);
    buf_free(&o->out);
    free(o->id);
    free(o->stream);
    free(o);
}

static void fail(op_t *o, int rc, const char *what, const redisReply *r)
{
    buf_reset(&o->out);
    buf_printf(&o->out, "%s: %s", what,
               !r                             ? "the Redis connection was lost"
               : r->type == REDIS_REPLY_ERROR ? r->str
                                              : "unexpected reply");
    finish(o, rc);
}

static int send_op(op_t *o, const char *key, size_t key_len, redis_reply_fn cb, int argc,
                   const char **argv, const size_t *lens)
{
    int rc = o->redis.command(o->redis.ctx, key, key_len, cb, o, argc, argv, lens);
    if (rc) {
        buf_reset(&o->out);
        buf_puts(&o->out, "Redis cannot be reached now");
        finish(o, -EIO);
    }
    return rc;
}

static void usage(bridge_admin_fn done, void *arg, const char *text)
{
    buf_t b;
    buf_init(&b);
    buf_printf(&b, "usage: streamioctl %s", text);
    done(arg, -EINVAL, &b);
    buf_free(&b);
}

static void off(bridge_admin_fn done, void *arg, const char *setting)
{
    buf_t b;
    buf_init(&b);
    buf_printf(&b, "%s is off on this server (set %s)", setting, setting);
    done(arg, -ENOTSUP, &b);
    buf_free(&b);
}

/* ---- presence ---- */

static void on_presence(void *arg, int rc, const buf_t *json)
{
    op_t *o = arg;
    buf_reset(&o->out);
    buf_append(&o->out, json->data ? json->data : "", json->len);
    finish(o, rc);
}

/* ---- dead letters ---- */

/* Reads one [id, [field, value...]] entry into d (fields[] sized by the caller). */
static int read_entry(const redisReply *e, dead_letter_t *d, payload_field_t *pairs,
                      payload_field_t *fields)
{
    if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
        e->element[0]->type != REDIS_REPLY_STRING || e->element[1]->type != REDIS_REPLY_ARRAY)
        return -EINVAL;
    const redisReply *fv = e->element[1];
    size_t n = 0;
    for (size_t j = 0; j + 1 < fv->elements; j += 2) {
        if (fv->element[j]->type != REDIS_REPLY_STRING ||
            fv->element[j + 1]->type != REDIS_REPLY_STRING)
            return -EINVAL;
        pairs[n++] = (payload_field_t){fv->element[j]->str, fv->element[j]->len,
                                       fv->element[j + 1]->str, fv->element[j + 1]->len};
    }
    return dead_letter_decode(pairs, n, d, fields);
}

static void on_list(const redisReply *r, void *arg)
{
    op_t *o = arg;
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        fail(o, -EIO, "dead-letter list failed", r);
        return;
    }
    buf_reset(&o->out);
    buf_puts(&o->out, "{\"stream\":");
    json_write_string(&o->out, o->cfg->dead_letter_stream, strlen(o->cfg->dead_letter_stream));
    buf_puts(&o->out, ",\"entries\":[");
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *e = r->element[i];
        size_t cap = e->type == REDIS_REPLY_ARRAY && e->elements == 2 &&
                             e->element[1]->type == REDIS_REPLY_ARRAY
                         ? e->element[1]->elements / 2 + 1
                         : 1;
        payload_field_t *pairs = xmalloc(cap * sizeof(*pairs));
        payload_field_t *fields = xmalloc(cap * sizeof(*fields));
        dead_letter_t d;
        if (i)
            buf_putc(&o->out, ',');
        if (read_entry(e, &d, pairs, fields) == 0) {
            dead_letter_json(&o->out, e->element[0]->str, e->element[0]->len, &d, VALUE_SHOWN);
        } else {
            /* someone else's entry in the dead-letter stream: named, not shown */
            buf_puts(&o->out, "{\"id\":");
            if (e->type == REDIS_REPLY_ARRAY && e->elements &&
                e->element[0]->type == REDIS_REPLY_STRING)
                json_write_string(&o->out, e->element[0]->str, e->element[0]->len);
            else
                buf_puts(&o->out, "null");
            buf_puts(&o->out, ",\"invalid\":true}");
        }
        free(pairs);
        free(fields);
    }
    buf_puts(&o->out, "]}");
    finish(o, 0);
}

static void on_deleted(const redisReply *r, void *arg)
{
    op_t *o = arg;
    if (!r || r->type != REDIS_REPLY_INTEGER) {
        fail(o, -EIO,
             "replayed, but the dead letter could not be deleted (replaying it again "
             "would add the entry twice)",
             r);
        return;
    }
    finish(o, 0); /* out already holds the answer */
}

static void on_replayed(const redisReply *r, void *arg)
{
    op_t *o = arg;
    if (!r || r->type != REDIS_REPLY_STRING) {
        fail(o, -EIO, "dead-letter replay failed", r);
        return;
    }
    /* the answer, kept while the dead letter is deleted */
    buf_reset(&o->out);
    buf_puts(&o->out, "{\"replayed\":");
    json_write_string(&o->out, o->id, strlen(o->id));
    buf_puts(&o->out, ",\"stream\":");
    json_write_string(&o->out, o->stream, o->stream_len);
    buf_puts(&o->out, ",\"id\":");
    json_write_string(&o->out, r->str, r->len);
    buf_putc(&o->out, '}');
    const char *dl = o->cfg->dead_letter_stream;
    const char *argv[] = {"XDEL", dl, o->id};
    size_t lens[] = {4, strlen(dl), strlen(o->id)};
    send_op(o, dl, strlen(dl), on_deleted, 3, argv, lens);
}

static void on_found(const redisReply *r, void *arg)
{
    op_t *o = arg;
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        fail(o, -EIO, "dead-letter replay failed", r);
        return;
    }
    if (r->elements == 0) {
        buf_reset(&o->out);
        buf_printf(&o->out, "no dead letter %s in %s", o->id, o->cfg->dead_letter_stream);
        finish(o, -ENOENT);
        return;
    }
    const redisReply *e = r->element[0];
    size_t cap =
        e->type == REDIS_REPLY_ARRAY && e->elements == 2 && e->element[1]->type == REDIS_REPLY_ARRAY
            ? e->element[1]->elements / 2 + 1
            : 1;
    payload_field_t *pairs = xmalloc(cap * sizeof(*pairs));
    payload_field_t *fields = xmalloc(cap * sizeof(*fields));
    dead_letter_t d;
    if (read_entry(e, &d, pairs, fields) != 0 || d.nfields == 0) {
        free(pairs);
        free(fields);
        buf_reset(&o->out);
        buf_printf(&o->out, "%s in %s is not a dead letter streamio wrote", o->id,
                   o->cfg->dead_letter_stream);
        finish(o, -EINVAL);
        return;
    }
    size_t argc = dead_letter_replay_argc(d.nfields);
    const char **argv = xmalloc(argc * sizeof(*argv));
    size_t *lens = xmalloc(argc * sizeof(*lens));
    dead_letter_replay(&d, argv, lens);
    o->stream = xmemdup(d.stream, d.stream_len);
    o->stream_len = d.stream_len;
    /* on_replayed may run from this call (a blocking seam): o is not used after it */
    send_op(o, argv[1], lens[1], on_replayed, (int)argc, argv, lens);
    free(argv);
    free(lens);
    free(pairs);
    free(fields);
}

static void dead_letter(const bridge_redis_t *redis, const cfg_t *cfg, int argc, char **argv,
                        const size_t *lens, bridge_admin_fn done, void *arg)
{
    static const char *const use = "dead-letter list [count] | dead-letter replay <id>";
    const char *dl = cfg->dead_letter_stream;
    if (argc < 2 || argc > 3) {
        usage(done, arg, use);
        return;
    }
    if (!dl[0]) {
        off(done, arg, "STREAM_DEAD_LETTER");
        return;
    }
    if (strcmp(argv[1], "list") == 0) {
        uint64_t n = LIST_DEFAULT;
        if (argc == 3) {
            if (lens[2] == 0 || decimal_read(argv[2], lens[2], 7, &n) != lens[2])
                n = 0;
            if (n < 1 || n > BRIDGE_ADMIN_LIST_MAX) {
                usage(done, arg, "dead-letter list [count: 1 to 1000]");
                return;
            }
        }
        char count[16];
        snprintf(count, sizeof(count), "%u", (unsigned)n);
        const char *av[] = {"XREVRANGE", dl, "+", "-", "COUNT", count};
        size_t al[] = {9, strlen(dl), 1, 1, 5, strlen(count)};
        op_t *o = op_new(redis, cfg, done, arg);
        send_op(o, dl, strlen(dl), on_list, 6, av, al);
        return;
    }
    if (strcmp(argv[1], "replay") == 0 && argc == 3 && lens[2] > 0 && lens[2] < 48 &&
        !memchr(argv[2], '\0', lens[2])) {
        op_t *o = op_new(redis, cfg, done, arg);
        o->id = xmemdup(argv[2], lens[2]);
        const char *av[] = {"XRANGE", dl, o->id, o->id};
        size_t al[] = {6, strlen(dl), lens[2], lens[2]};
        send_op(o, dl, strlen(dl), on_found, 4, av, al);
        return;
    }
    usage(done, arg, use);
}

bool bridge_admin_handles(const char *cmd)
{
    return strcmp(cmd, "presence") == 0 || strcmp(cmd, "dead-letter") == 0;
}

void bridge_admin_run(const bridge_redis_t *redis, const cfg_t *cfg, uint64_t wall_ms, int argc,
                      char **argv, const size_t *lens, bridge_admin_fn done, void *arg)
{
    if (strcmp(argv[0], "dead-letter") == 0) {
        dead_letter(redis, cfg, argc, argv, lens, done, arg);
        return;
    }
    if (argc != 2 || lens[1] == 0) {
        usage(done, arg, "presence <room>");
        return;
    }
    if (!cfg->presence) {
        off(done, arg, "PRESENCE");
        return;
    }
    op_t *o = op_new(redis, cfg, done, arg);
    buf_t prefix;
    buf_init(&prefix);
    presence_prefix(&prefix, cfg->redis_key);
    int rc = presence_query(redis, prefix.data, argv[1], lens[1], wall_ms,
                            (uint64_t)cfg->presence_ttl_ms, on_presence, o);
    buf_free(&prefix);
    if (rc) {
        buf_puts(&o->out, "Redis cannot be reached now");
        finish(o, -EIO);
    }
}
