/*
 * Fuzzes common/config through its getenv seam: the input is lines NAME=VALUE (the last one for
 * a name wins). A refusal must come with its one-line message; a success with sane values.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_VARS 64

typedef struct table {
    size_t n;
    char *name[MAX_VARS];
    char *value[MAX_VARS];
} table_t;

static const char *table_get(const char *name, void *arg)
{
    const table_t *t = arg;
    const char *v = NULL;
    for (size_t i = 0; i < t->n; i++) {
        if (strcmp(t->name[i], name) == 0)
            v = t->value[i];
    }
    return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    table_t t = {0};
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line && t.n < MAX_VARS;
         line = strtok_r(NULL, "\n", &save)) {
        char *eq = strchr(line, '=');
        if (!eq)
            continue;
        *eq = '\0';
        t.name[t.n] = line;
        t.value[t.n] = eq + 1;
        t.n++;
    }
    cfg_t *cfg = malloc(sizeof(*cfg));
    buf_t err;
    buf_init(&err);
    if (cfg) {
        int rc = config_load(cfg, table_get, &t, &err);
        if (rc != 0 && (rc != -EINVAL || err.len == 0 || memchr(err.data, '\n', err.len)))
            __builtin_trap();
        if (rc == 0 && (err.len != 0 || cfg->cluster_workers < 1 || cfg->port < 1 ||
                        cfg->priority.n > CONFIG_MAX_LIST || cfg->stream_exclude.n > CONFIG_MAX_LIST))
            __builtin_trap();
    }
    buf_free(&err);
    free(cfg);
    free(text);
    return 0;
}
