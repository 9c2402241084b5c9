/*
 * redis_probe: a small program that drives the Redis layer (common/redis) as streamio will, for
 * the integration tests (tests/integration/redis-layer.test.js). It loads the configuration
 * from the environment exactly like streamio (a bad value prints the one-line error and exits
 * 2), builds the topology and two clients ("probe" for commands, "probe-sub" for pub/sub), then
 * reads one request per line on stdin and writes one JSON object per line on stdout:
 *
 *   cmd ID KEY|- ARG...     -> {"id":ID,"reply":R} | {"id":ID,"error":"ENOTCONN"}
 *   node ID ADDR ARG...     -> the same, sent to that primary
 *   sub|unsub|subm ID shard|channel|pattern NAME   -> {"id":ID,"ok":true}
 *   stats ID                -> {"id":ID,"up":B,"masters":[...],"moved":N,...}
 *   quit                    -> closes everything, exits 0
 * and, unasked: {"event":"state","up":B}, {"event":"master","addr":A,"up":B},
 * {"event":"message","kind":K,"channel":C,"data":D}. Arguments are split on single spaces; "%20"
 * in an argument stands for a space. Replies: strings and status as JSON strings, integers as
 * numbers, nil as null, errors as {"err":TEXT}, arrays as arrays.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "common/buf.h"
#include "common/config.h"
#include "common/json.h"
#include "common/log.h"
#include "common/redis/redis_client.h"
#include "common/redis/redis_topology.h"

#define MAX_ARGS 64

typedef struct probe {
    uv_loop_t loop;
    uv_pipe_t in;
    cfg_t cfg;
    redis_topology_t *topo;
    redis_client_t *cmd;
    redis_client_t *sub;
    buf_t line;
    buf_t out;
    int closing;
} probe_t;

typedef struct req {
    probe_t *p;
    long id;
} req_t;

static void emit(probe_t *p)
{
    buf_putc(&p->out, '\n');
    fwrite(p->out.data, 1, p->out.len, stdout);
    fflush(stdout);
    buf_reset(&p->out);
}

static void write_reply(buf_t *o, const redisReply *r)
{
    switch (r->type) {
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
        json_write_string(o, r->str, r->len);
        break;
    case REDIS_REPLY_INTEGER:
        buf_printf(o, "%lld", r->integer);
        break;
    case REDIS_REPLY_NIL:
        buf_puts(o, "null");
        break;
    case REDIS_REPLY_ERROR:
        buf_puts(o, "{\"err\":");
        json_write_string(o, r->str, r->len);
        buf_putc(o, '}');
        break;
    case REDIS_REPLY_ARRAY:
        buf_putc(o, '[');
        for (size_t i = 0; i < r->elements; i++) {
            if (i)
                buf_putc(o, ',');
            write_reply(o, r->element[i]);
        }
        buf_putc(o, ']');
        break;
    default:
        buf_puts(o, "\"?\"");
    }
}

static void on_reply(const redisReply *r, void *arg)
{
    req_t *q = arg;
    probe_t *p = q->p;
    buf_printf(&p->out, "{\"id\":%ld,\"reply\":", q->id);
    if (r)
        write_reply(&p->out, r);
    else
        buf_puts(&p->out, "\"NULL\"");
    buf_putc(&p->out, '}');
    emit(p);
    free(q);
}

static void answer_rc(probe_t *p, long id, int rc)
{
    if (rc == 0)
        buf_printf(&p->out, "{\"id\":%ld,\"ok\":true}", id);
    else
        buf_printf(&p->out, "{\"id\":%ld,\"error\":\"%s\"}", id,
                   rc == -ENOTCONN  ? "ENOTCONN"
                   : rc == -ENOBUFS ? "ENOBUFS"
                   : rc == -EINVAL  ? "EINVAL"
                   : rc == -ENOENT  ? "ENOENT"
                                    : "ESHUTDOWN");
    emit(p);
}

static void on_state(redis_client_t *c, bool up, void *arg)
{
    probe_t *p = arg;
    buf_printf(&p->out, "{\"event\":\"state\",\"client\":\"%s\",\"up\":%s}",
               c == p->cmd ? "probe" : "probe-sub", up ? "true" : "false");
    emit(p);
}

static void on_master(redis_client_t *c, redis_node_t *n, bool up, void *arg)
{
    probe_t *p = arg;
    if (c != p->cmd)
        return;
    buf_puts(&p->out, "{\"event\":\"master\",\"addr\":");
    json_write_string(&p->out, redis_node_addr(n), strlen(redis_node_addr(n)));
    buf_printf(&p->out, ",\"up\":%s}", up ? "true" : "false");
    emit(p);
}

static const char *const kinds[] = {"channel", "pattern", "shard"};

static void on_message(redis_client_t *c, const redis_push_t *m, void *arg)
{
    (void)c;
    probe_t *p = arg;
    buf_printf(&p->out, "{\"event\":\"message\",\"kind\":\"%s\",\"channel\":", kinds[m->kind]);
    json_write_string(&p->out, m->channel, m->channel_len);
    buf_puts(&p->out, ",\"data\":");
    json_write_string(&p->out, m->data, m->len);
    buf_putc(&p->out, '}');
    emit(p);
}

static const redis_client_cbs_t cbs = {
    .state = on_state, .master = on_master, .message = on_message};

typedef struct find {
    const char *addr;
    redis_node_t *n;
    buf_t *list;
} find_t;

static void find_master(redis_node_t *n, void *arg)
{
    find_t *f = arg;
    if (f->addr && strcmp(redis_node_addr(n), f->addr) == 0)
        f->n = n;
    if (f->list) {
        if (f->list->data[f->list->len - 1] != '[')
            buf_putc(f->list, ',');
        json_write_string(f->list, redis_node_addr(n), strlen(redis_node_addr(n)));
    }
}

static void stats(probe_t *p, long id)
{
    redis_client_stats_t s;
    redis_client_stats(p->cmd, &s);
    redis_client_stats_t t;
    redis_client_stats(p->sub, &t);
    buf_printf(&p->out, "{\"id\":%ld,\"up\":%s,\"sub_up\":%s,\"masters\":[", id,
               redis_client_up(p->cmd) ? "true" : "false",
               redis_client_up(p->sub) ? "true" : "false");
    find_t f = {.list = &p->out};
    redis_client_each_master(p->cmd, find_master, &f);
    buf_printf(&p->out,
               "],\"moved\":%llu,\"asked\":%llu,\"retried\":%llu,\"expired\":%llu,"
               "\"sub_moves\":%llu,\"changes\":%llu}",
               (unsigned long long)s.moved, (unsigned long long)s.asked,
               (unsigned long long)s.retried, (unsigned long long)s.expired,
               (unsigned long long)t.sub_moves,
               (unsigned long long)redis_topology_changes(p->topo));
    emit(p);
}

static void unescape(char *s)
{
    char *o = s;
    for (char *i = s; *i; i++) {
        if (i[0] == '%' && i[1] == '2' && i[2] == '0') {
            *o++ = ' ';
            i += 2;
        } else {
            *o++ = *i;
        }
    }
    *o = '\0';
}

static void on_closed(void *arg)
{
    probe_t *p = arg;
    if (--p->closing == 0)
        redis_topology_close(p->topo, NULL, NULL);
}

static void quit(probe_t *p)
{
    if (p->closing)
        return;
    p->closing = 2;
    uv_close((uv_handle_t *)&p->in, NULL);
    redis_client_close(p->cmd, on_closed, p);
    redis_client_close(p->sub, on_closed, p);
}

static int sub_kind(const char *s)
{
    for (int i = 0; i < 3; i++) {
        if (strcmp(s, kinds[i]) == 0)
            return i;
    }
    return -1;
}

static void run_line(probe_t *p, char *line)
{
    char *argv[MAX_ARGS];
    int argc = 0;
    for (char *save = NULL, *t = strtok_r(line, " ", &save); t && argc < MAX_ARGS;
         t = strtok_r(NULL, " ", &save)) {
        unescape(t);
        argv[argc++] = t;
    }
    if (argc == 0)
        return;
    if (strcmp(argv[0], "quit") == 0) {
        quit(p);
        return;
    }
    if (argc < 2)
        return;
    long id = strtol(argv[1], NULL, 10);
    if (strcmp(argv[0], "stats") == 0) {
        stats(p, id);
    } else if ((strcmp(argv[0], "cmd") == 0 || strcmp(argv[0], "node") == 0) && argc >= 4) {
        req_t *q = malloc(sizeof(*q));
        q->p = p;
        q->id = id;
        int rc;
        if (argv[0][0] == 'n') {
            find_t f = {.addr = argv[2]};
            redis_client_each_master(p->cmd, find_master, &f);
            rc = f.n ? redis_client_command_node(p->cmd, f.n, on_reply, q, argc - 3,
                                                 (const char **)argv + 3, NULL)
                     : -ENOENT;
        } else {
            const char *key = strcmp(argv[2], "-") ? argv[2] : NULL;
            rc = redis_client_command(p->cmd, key, key ? strlen(key) : 0, on_reply, q, argc - 3,
                                      (const char **)argv + 3, NULL);
        }
        if (rc) {
            free(q);
            answer_rc(p, id, rc);
        }
    } else if (argc == 4 && sub_kind(argv[2]) >= 0) {
        redis_sub_kind_t k = (redis_sub_kind_t)sub_kind(argv[2]);
        size_t n = strlen(argv[3]);
        int rc = -EINVAL;
        if (strcmp(argv[0], "sub") == 0)
            rc = redis_client_subscribe(p->sub, k, argv[3], n);
        else if (strcmp(argv[0], "unsub") == 0)
            rc = redis_client_unsubscribe(p->sub, k, argv[3], n);
        else if (strcmp(argv[0], "subm") == 0)
            rc = redis_client_subscribe_masters(p->sub, k, argv[3], n);
        answer_rc(p, id, rc);
    }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    (void)h;
    b->base = malloc(suggested);
    b->len = b->base ? suggested : 0;
}

static void on_stdin(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    probe_t *p = s->data;
    if (n < 0) {
        free(b->base);
        quit(p);
        return;
    }
    buf_append(&p->line, b->base, (size_t)n);
    free(b->base);
    char *nl;
    while (!p->closing && p->line.len && (nl = memchr(p->line.data, '\n', p->line.len))) {
        size_t len = (size_t)(nl - p->line.data);
        char *one = strndup(p->line.data, len);
        memmove(p->line.data, nl + 1, p->line.len - len - 1);
        p->line.len -= len + 1;
        run_line(p, one);
        free(one);
    }
}

int main(void)
{
    static probe_t p;
    signal(SIGPIPE, SIG_IGN);
    buf_t err;
    buf_init(&err);
    if (config_load_env(&p.cfg, &err)) {
        fprintf(stderr, "%s\n", err.data);
        buf_free(&err);
        return 2;
    }
    log_setup(p.cfg.log_level, "probe", 0);
    uv_loop_init(&p.loop);
    redis_topology_opts_t o;
    redis_topology_opts_from_cfg(&o, &p.cfg);
    o.refresh_ms = 2000;
    if (redis_topology_new(&p.topo, &p.loop, &o, &err)) {
        fprintf(stderr, "%s\n", err.data);
        buf_free(&err);
        uv_loop_close(&p.loop);
        return 2;
    }
    buf_free(&err);
    buf_init(&p.line);
    buf_init(&p.out);
    p.cmd = redis_client_new(p.topo, "probe", &cbs, &p);
    p.sub = redis_client_new(p.topo, "probe-sub", &cbs, &p);
    uv_pipe_init(&p.loop, &p.in, 0);
    uv_pipe_open(&p.in, 0);
    p.in.data = &p;
    uv_read_start((uv_stream_t *)&p.in, on_alloc, on_stdin);
    uv_run(&p.loop, UV_RUN_DEFAULT);
    int rc = uv_loop_close(&p.loop);
    buf_free(&p.line);
    buf_free(&p.out);
    if (rc) {
        fprintf(stderr, "redis_probe: handles left open at exit\n");
        return 1;
    }
    return 0;
}
