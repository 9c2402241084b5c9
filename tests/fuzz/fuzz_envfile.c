/*
 * Fuzzes common/envfile on the text of STREAMIO_ENV_FILE (quotes, comments, `export`, CRLF,
 * NUL bytes, duplicate keys), then common/config on the table it gives, as config_load_env reads
 * it. A refusal must come with one line naming the file and line; a parsed file must answer every
 * key it assigns; the configuration must load or be refused with its one-line message.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/config.h"
#include "common/envfile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *file_get(const char *name, void *arg)
{
    return envfile_get(arg, name);
}

/* Every KEY= line that parsed (the key at the start of a line, after an optional "export ")
 * must be answered. */
static void check_keys(const envfile_t *ef, const char *text, size_t len)
{
    for (size_t pos = 0; pos < len;) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - text - pos) : len - pos;
        const char *l = text + pos;
        if (n > 7 && memcmp(l, "export ", 7) == 0) {
            l += 7;
            n -= 7;
        }
        size_t k = 0;
        while (k < n && (l[k] == '_' || (l[k] >= 'A' && l[k] <= 'Z')))
            k++;
        if (k && k < n && l[k] == '=') {
            char key[64];
            if (k < sizeof(key)) {
                memcpy(key, l, k);
                key[k] = '\0';
                if (!envfile_get(ef, key))
                    __builtin_trap();
            }
        }
        pos += n + (l - (text + pos)) + 1;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* a copy of exactly `size` bytes, so ASan sees any read past the end */
    char *text = malloc(size ? size : 1);
    memcpy(text, data, size);
    buf_t err;
    buf_init(&err);
    envfile_t *ef = NULL;
    int rc = envfile_parse("env", text, size, &ef, &err);
    if (rc) {
        if (rc != -EINVAL || ef || err.len < 4 || memcmp(err.data, "env:", 4) != 0 ||
            memchr(err.data, '\n', err.len))
            __builtin_trap();
    } else {
        check_keys(ef, text, size);
        cfg_t *cfg = malloc(sizeof(*cfg));
        buf_reset(&err);
        rc = config_load(cfg, file_get, ef, &err);
        if (rc != 0 && (rc != -EINVAL || err.len == 0 || memchr(err.data, '\n', err.len)))
            __builtin_trap();
        free(cfg);
        envfile_free(ef);
    }
    buf_free(&err);
    free(text);
    return 0;
}
