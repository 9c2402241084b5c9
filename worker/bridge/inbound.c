/* inbound: see inbound.h. */
#include "worker/bridge/inbound.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/bridge/rcmd.h"
#include "common/glob.h"
#include "common/log.h"
#include "common/xalloc.h"

struct inbound {
    bridge_redis_t redis;
    const cfg_t *cfg;
    const char *server;
    stats_worker_t *stats;
    glob_list_t *events; /* SOCKETIO_INBOUND_EVENTS */
    rcmd_t cmd;
    buf_t data, room;
    size_t inflight;
    uint64_t refusals[STATS_INBOUND_REASONS]; /* log sampling, per reason */
};

typedef struct pending {
    inbound_t *in;
    inbound_done_fn done;
    void *arg;
    size_t name_len;
    char text[]; /* the event's name, then the socket's id (for the log) */
} pending_t;

inbound_t *inbound_new(const bridge_redis_t *redis, const cfg_t *cfg, const char *server,
                       stats_worker_t *stats)
{
    if (!cfg->inbound_stream[0])
        return NULL;
    inbound_t *in = xcalloc(1, sizeof(*in));
    in->redis = *redis;
    in->cfg = cfg;
    in->server = server;
    in->stats = stats;
    /* validated by config_load */
    if (glob_list_from_csv(cfg->inbound_events, CONFIG_MAX_GLOBS, CONFIG_MAX_GLOB, &in->events))
        in->events = NULL;
    rcmd_init(&in->cmd);
    buf_init(&in->data);
    buf_init(&in->room);
    return in;
}

void inbound_free(inbound_t *in)
{
    if (!in)
        return;
    glob_list_free(in->events);
    rcmd_free(&in->cmd);
    buf_free(&in->data);
    buf_free(&in->room);
    free(in);
}

size_t inbound_inflight(const inbound_t *in)
{
    return in ? in->inflight : 0;
}

/* A refusal or a failure: counted, one log line now and then, never silent. */
static void count(inbound_t *in, enum stats_inbound why, const char *name, size_t len,
                  const char *sid, const char *reason)
{
    static const char *const names[STATS_INBOUND_REASONS] = STATS_INBOUND_NAMES;
    STATS_ADD(in->stats->inbound_refused[why], 1);
    if (log_sampled(&in->refusals[why]))
        LOG_WARN("client event %.*s of socket %s not added to %s: %s (%s, %llu so far)", (int)len,
                 name, sid, in->cfg->inbound_stream, reason, names[why],
                 (unsigned long long)in->refusals[why]);
}

static int refuse(inbound_t *in, enum stats_inbound why, const inbound_event_t *ev,
                  const char *reason, const char **error)
{
    count(in, why, ev->name, ev->name_len, ev->sid, reason);
    *error = reason;
    return why == STATS_INBOUND_BUSY ? -EBUSY : why == STATS_INBOUND_BINARY ? -EINVAL : -EACCES;
}

/* The room an event names: its first argument when a string, or that argument's roomId. */
static bool named_room(inbound_t *in, const json_span_t *first)
{
    buf_reset(&in->room);
    if (!first)
        return false;
    if (first->type == JSON_STRING)
        return json_string_decode(first->p, first->len, &in->room) == 0;
    json_span_t v;
    buf_t tmp;
    buf_init(&tmp);
    bool ok = first->type == JSON_OBJECT &&
              json_member_get(first->p, first->len, "roomId", &v, &tmp) == 0 &&
              v.type == JSON_STRING && json_string_decode(v.p, v.len, &in->room) == 0;
    buf_free(&tmp);
    return ok;
}

static bool allowed(inbound_t *in, const inbound_event_t *ev)
{
    if (!ev->grant || !auth_grant_gates_publish(ev->grant))
        return true;
    if (auth_grant_may_publish(ev->grant, ev->name, ev->name_len))
        return true;
    return named_room(in, ev->first) &&
           auth_grant_may_publish(ev->grant, in->room.data, in->room.len);
}

static void on_added(const redisReply *r, void *arg)
{
    pending_t *p = arg;
    inbound_t *in = p->in;
    in->inflight--;
    if (r && r->type == REDIS_REPLY_STRING) {
        STATS_ADD(in->stats->inbound_added, 1);
        p->done(p->arg, r->str, r->len, NULL);
    } else {
        count(in, STATS_INBOUND_REDIS, p->text, p->name_len, p->text + p->name_len,
              r && r->type == REDIS_REPLY_ERROR ? r->str : "the Redis connection was lost");
        p->done(p->arg, NULL, 0, INBOUND_ERR_REDIS);
    }
    free(p);
}

int inbound_add(inbound_t *in, const inbound_event_t *ev, inbound_done_fn done, void *arg,
                const char **error)
{
    if (!glob_list_match(in->events, ev->name, ev->name_len))
        return refuse(in, STATS_INBOUND_NOT_ACCEPTED, ev, INBOUND_ERR_NOT_ACCEPTED, error);
    if (ev->natt)
        return refuse(in, STATS_INBOUND_BINARY, ev, INBOUND_ERR_BINARY, error);
    if (!allowed(in, ev))
        return refuse(in, STATS_INBOUND_NOT_ALLOWED, ev, INBOUND_ERR_NOT_ALLOWED, error);
    if (in->inflight >= INBOUND_MAX_INFLIGHT)
        return refuse(in, STATS_INBOUND_BUSY, ev, INBOUND_ERR_BUSY, error);
    /* data: the arguments as one JSON array, the packet's own text minified */
    size_t a = json_skip_ws(ev->args, ev->args_len, 0), b = ev->args_len;
    if (a < b && ev->args[a] == ',')
        a++;
    while (b > a && ev->args[b - 1] != ']')
        b--;
    buf_reset(&in->room);
    buf_putc(&in->room, '[');
    buf_append(&in->room, ev->args + a, b > a ? b - a - 1 : 0);
    buf_putc(&in->room, ']');
    buf_reset(&in->data);
    if (json_minify(&in->data, in->room.data, in->room.len) != 0)
        buf_append(&in->data, in->room.data, in->room.len); /* the parser validated it */
    rcmd_t *c = &in->cmd;
    rcmd_reset(c);
    rcmd_str(c, "XADD");
    rcmd_str(c, in->cfg->inbound_stream);
    rcmd_mark_key(c);
    if (in->cfg->inbound_maxlen > 0) {
        rcmd_str(c, "MAXLEN");
        rcmd_str(c, "~");
        rcmd_i64(c, in->cfg->inbound_maxlen);
    }
    rcmd_str(c, "*");
    rcmd_str(c, "event");
    rcmd_arg(c, ev->name, ev->name_len);
    rcmd_str(c, "data");
    rcmd_arg(c, in->data.data, in->data.len);
    rcmd_str(c, "sid");
    rcmd_str(c, ev->sid);
    if (ev->user) {
        rcmd_str(c, "user");
        rcmd_str(c, ev->user);
    }
    rcmd_str(c, "server");
    rcmd_str(c, in->server);
    rcmd_str(c, "ts");
    rcmd_u64(c, ev->ts_ms);
    if (ev->nsp && strcmp(ev->nsp, "/") != 0) {
        rcmd_str(c, "nsp");
        rcmd_str(c, ev->nsp);
    }
    size_t sid_len = strlen(ev->sid);
    pending_t *p = xmalloc(sizeof(*p) + ev->name_len + sid_len + 1);
    *p = (pending_t){in, done, arg, ev->name_len};
    memcpy(p->text, ev->name, ev->name_len);
    memcpy(p->text + ev->name_len, ev->sid, sid_len + 1);
    size_t klen;
    const char **argv = rcmd_argv(c);
    const char *key = rcmd_key(c, &klen);
    int rc =
        in->redis.command(in->redis.ctx, key, klen, on_added, p, rcmd_argc(c), argv, rcmd_lens(c));
    if (rc) {
        free(p);
        return refuse(in, rc == -ENOBUFS ? STATS_INBOUND_BUSY : STATS_INBOUND_REDIS, ev,
                      rc == -ENOBUFS ? INBOUND_ERR_BUSY : INBOUND_ERR_REDIS, error);
    }
    in->inflight++;
    return 0;
}
