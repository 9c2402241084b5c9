/* envfile: see envfile.h. */
#include "common/envfile.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/xalloc.h"

#define ENVFILE_MAX_BYTES (1u << 20)

typedef struct envvar {
    char *key;
    char *value;
} envvar_t;

struct envfile {
    envvar_t *vars;
    size_t n, cap;
};

void envfile_free(envfile_t *ef)
{
    if (!ef)
        return;
    for (size_t i = 0; i < ef->n; i++) {
        free(ef->vars[i].key);
        free(ef->vars[i].value);
    }
    free(ef->vars);
    free(ef);
}

/* A later assignment of the same key wins, as with the shell and systemd. */
static void set_var(envfile_t *ef, const char *k, size_t klen, const char *v, size_t vlen)
{
    char *key = xmemdup(k, klen), *value = xmemdup(v, vlen);
    for (size_t i = 0; i < ef->n; i++) {
        if (strcmp(ef->vars[i].key, key) == 0) {
            free(key);
            free(ef->vars[i].value);
            ef->vars[i].value = value;
            return;
        }
    }
    if (ef->n == ef->cap) {
        ef->cap = ef->cap ? ef->cap * 2 : 16;
        ef->vars = xrealloc(ef->vars, ef->cap * sizeof(*ef->vars));
    }
    ef->vars[ef->n++] = (envvar_t){key, value};
}

static bool key_char(char c, bool first)
{
    return c == '_' || isalpha((unsigned char)c) || (!first && isdigit((unsigned char)c));
}

static int parse_line(envfile_t *ef, const char *p, const char *end, const char **why)
{
    while (p < end && isspace((unsigned char)*p))
        p++;
    while (end > p && isspace((unsigned char)end[-1]))
        end--;
    if (p == end || *p == '#' || *p == ';')
        return 0;
    if (end - p > 7 && memcmp(p, "export ", 7) == 0)
        p += 7;
    const char *k = p;
    while (p < end && key_char(*p, p == k))
        p++;
    size_t klen = (size_t)(p - k);
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    if (klen == 0 || p == end || *p != '=') {
        *why = "expected KEY=VALUE";
        return -EINVAL;
    }
    p++;
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    if (p < end && (*p == '"' || *p == '\'')) {
        if (end - p < 2 || end[-1] != *p) {
            *why = "unterminated quoted value";
            return -EINVAL;
        }
        p++;
        end--;
    }
    set_var(ef, k, klen, p, (size_t)(end - p));
    return 0;
}

int envfile_parse(const char *name, const char *text, size_t len, envfile_t **out, buf_t *err)
{
    envfile_t *ef = xcalloc(1, sizeof(*ef));
    const char *p = text, *end = text + len;
    for (unsigned line = 1; p < end; line++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *eol = nl ? nl : end;
        const char *why = "invalid line";
        int rc = parse_line(ef, p, eol, &why);
        if (rc) {
            buf_printf(err, "%s:%u: %s", name, line, why);
            envfile_free(ef);
            return rc;
        }
        p = nl ? nl + 1 : end;
    }
    *out = ef;
    return 0;
}

int envfile_load(const char *path, envfile_t **out, buf_t *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return envfile_parse(path, "", 0, out, err);
        int rc = -errno;
        buf_printf(err, "%s: %s", path, strerror(errno));
        return rc;
    }
    buf_t text;
    buf_init(&text);
    int rc = 0;
    for (;;) {
        buf_reserve(&text, 4096);
        ssize_t n = read(fd, text.data + text.len, text.cap - text.len - 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = -errno;
            buf_printf(err, "%s: %s", path, strerror(errno));
            break;
        }
        if (n == 0)
            break;
        text.len += (size_t)n;
        if (text.len > ENVFILE_MAX_BYTES) {
            rc = -E2BIG;
            buf_printf(err, "%s: larger than %u bytes", path, ENVFILE_MAX_BYTES);
            break;
        }
    }
    close(fd);
    if (rc == 0)
        rc = envfile_parse(path, text.data ? text.data : "", text.len, out, err);
    buf_free(&text);
    return rc;
}

const char *envfile_get(const envfile_t *ef, const char *key)
{
    for (size_t i = 0; ef && i < ef->n; i++) {
        if (strcmp(ef->vars[i].key, key) == 0)
            return ef->vars[i].value;
    }
    return NULL;
}
