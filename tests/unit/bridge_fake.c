/* bridge_fake: see bridge_fake.h. */
#include "tests/unit/bridge_fake.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"

typedef struct cmd {
    char *text;
    redis_reply_fn cb;
    void *arg;
    bool answered;
} cmd_t;

struct bridge_fake {
    cmd_t *cmds;
    size_t n, cap, taken;
    int refuse;
    char line[4096];
};

bridge_fake_t *bridge_fake_new(void)
{
    return calloc(1, sizeof(bridge_fake_t));
}

static int f_command(void *ctx, const char *key, size_t key_len, redis_reply_fn cb, void *arg,
                     int argc, const char **argv, const size_t *lens)
{
    bridge_fake_t *f = ctx;
    if (f->refuse)
        return -f->refuse;
    buf_t b;
    buf_init(&b);
    buf_append(&b, key ? key : "", key ? key_len : 0);
    buf_puts(&b, " |");
    bool eval = argc > 1 && strcmp(argv[0], "EVAL") == 0;
    for (int i = 0; i < argc; i++) {
        buf_putc(&b, ' ');
        if (eval && i == 1)
            buf_puts(&b, "<script>");
        else
            buf_append(&b, argv[i], lens[i]);
    }
    if (f->n == f->cap) {
        f->cap = f->cap ? f->cap * 2 : 32;
        f->cmds = realloc(f->cmds, f->cap * sizeof(*f->cmds));
    }
    f->cmds[f->n++] = (cmd_t){buf_steal(&b), cb, arg, cb == NULL};
    return 0;
}

bridge_redis_t bridge_fake_ops(bridge_fake_t *f)
{
    return (bridge_redis_t){.ctx = f, .command = f_command};
}

void bridge_fake_refuse(bridge_fake_t *f, int err)
{
    f->refuse = err;
}

const char *bridge_fake_next(bridge_fake_t *f)
{
    if (f->taken == f->n)
        return "(none)";
    snprintf(f->line, sizeof(f->line), "%s", f->cmds[f->taken++].text);
    return f->line;
}

static void free_reply(redisReply *r)
{
    if (!r)
        return;
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++)
        free_reply(r->element[i]);
    free(r->element);
    free(r->str);
    free(r);
}

void bridge_fake_answer(bridge_fake_t *f, redisReply *rep)
{
    for (size_t i = 0; i < f->n; i++) {
        cmd_t *c = &f->cmds[i];
        if (c->answered)
            continue;
        c->answered = true;
        c->cb(rep, c->arg);
        free_reply(rep);
        return;
    }
    fail_msg("no command waits for a reply");
}

size_t bridge_fake_waiting(const bridge_fake_t *f)
{
    size_t k = 0;
    for (size_t i = 0; i < f->n; i++)
        k += !f->cmds[i].answered;
    return k;
}

void bridge_fake_free(bridge_fake_t *f)
{
    for (size_t i = 0; i < f->n; i++) {
        if (!f->cmds[i].answered) {
            f->cmds[i].answered = true;
            f->cmds[i].cb(NULL, f->cmds[i].arg);
        }
    }
    for (size_t i = 0; i < f->n; i++)
        free(f->cmds[i].text);
    free(f->cmds);
    free(f);
}

static redisReply *mk(int type)
{
    redisReply *r = calloc(1, sizeof(*r));
    r->type = type;
    return r;
}

redisReply *bf_str(const char *s)
{
    redisReply *r = mk(REDIS_REPLY_STRING);
    r->str = strdup(s);
    r->len = strlen(s);
    return r;
}

redisReply *bf_int(long long v)
{
    redisReply *r = mk(REDIS_REPLY_INTEGER);
    r->integer = v;
    return r;
}

redisReply *bf_err(const char *s)
{
    redisReply *r = bf_str(s);
    r->type = REDIS_REPLY_ERROR;
    return r;
}

redisReply *bf_arr(size_t n, ...)
{
    redisReply *r = mk(REDIS_REPLY_ARRAY);
    r->elements = n;
    r->element = calloc(n ? n : 1, sizeof(*r->element));
    va_list ap;
    va_start(ap, n);
    for (size_t i = 0; i < n; i++)
        r->element[i] = va_arg(ap, redisReply *);
    va_end(ap);
    return r;
}

static const char *env_get(const char *name, void *arg)
{
    for (const char *const *e = arg; e && *e; e += 2) {
        if (strcmp(e[0], name) == 0)
            return e[1];
    }
    return NULL;
}

void bridge_fake_config(cfg_t *cfg, const char *const *env)
{
    buf_t err;
    buf_init(&err);
    int rc = config_load(cfg, env_get, (void *)env, &err);
    if (rc)
        fail_msg("%s", err.data ? err.data : "config_load failed");
    buf_free(&err);
}
