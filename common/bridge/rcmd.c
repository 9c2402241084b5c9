/* rcmd: see rcmd.h. */
#include "common/bridge/rcmd.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"

void rcmd_init(rcmd_t *c)
{
    memset(c, 0, sizeof(*c));
    buf_init(&c->text);
    c->key = SIZE_MAX;
}

void rcmd_free(rcmd_t *c)
{
    buf_free(&c->text);
    free(c->args);
    free(c->argv);
    free(c->lens);
    rcmd_init(c);
}

void rcmd_reset(rcmd_t *c)
{
    buf_reset(&c->text);
    c->argc = 0;
    c->key = SIZE_MAX;
}

static rcmd_arg_t *push(rcmd_t *c)
{
    if (c->argc == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 16;
        c->args = xrealloc(c->args, c->cap * sizeof(*c->args));
        c->argv = xrealloc(c->argv, c->cap * sizeof(*c->argv));
        c->lens = xrealloc(c->lens, c->cap * sizeof(*c->lens));
    }
    return &c->args[c->argc++];
}

void rcmd_arg(rcmd_t *c, const char *p, size_t len)
{
    *push(c) = (rcmd_arg_t){p ? p : "", 0, len};
}

void rcmd_str(rcmd_t *c, const char *s)
{
    rcmd_arg(c, s, strlen(s));
}

void rcmd_begin(rcmd_t *c)
{
    *push(c) = (rcmd_arg_t){NULL, c->text.len, 0};
}

buf_t *rcmd_text(rcmd_t *c)
{
    return &c->text;
}

void rcmd_end(rcmd_t *c)
{
    rcmd_arg_t *a = &c->args[c->argc - 1];
    a->len = c->text.len - a->off;
}

void rcmd_u64(rcmd_t *c, uint64_t v)
{
    rcmd_begin(c);
    buf_printf(&c->text, "%" PRIu64, v);
    rcmd_end(c);
}

void rcmd_i64(rcmd_t *c, int64_t v)
{
    rcmd_begin(c);
    buf_printf(&c->text, "%" PRId64, v);
    rcmd_end(c);
}

void rcmd_mark_key(rcmd_t *c)
{
    c->key = c->argc - 1;
}

const char **rcmd_argv(rcmd_t *c)
{
    for (size_t i = 0; i < c->argc; i++) {
        const rcmd_arg_t *a = &c->args[i];
        c->argv[i] = a->p ? a->p : c->text.data ? c->text.data + a->off : "";
        c->lens[i] = a->len;
    }
    return c->argv;
}

const size_t *rcmd_lens(const rcmd_t *c)
{
    return c->lens;
}

int rcmd_argc(const rcmd_t *c)
{
    return (int)c->argc;
}

const char *rcmd_key(const rcmd_t *c, size_t *len)
{
    if (c->key == SIZE_MAX) {
        *len = 0;
        return NULL;
    }
    *len = c->lens[c->key];
    return c->argv[c->key];
}
