/*
 * envfile: a systemd-style environment file (KEY=VALUE lines, '#' or ';' comments, blank lines,
 * values optionally in single or double quotes, an optional leading "export "), parsed into a
 * private table so a reload can validate a whole new configuration before anything changes.
 * It never touches the process environment and never logs.
 */
#ifndef STREAMIO_COMMON_ENVFILE_H
#define STREAMIO_COMMON_ENVFILE_H

#include "common/buf.h"

typedef struct envfile envfile_t;

/*
 * Parses the file at `path` into a new table (*out, free with envfile_free). A missing file is
 * an empty table (0). A malformed line returns -EINVAL and appends "path:line: why" to err;
 * -E2BIG beyond 1 MiB; other -errno from open/read. Nothing is returned in *out on error.
 */
int envfile_load(const char *path, envfile_t **out, buf_t *err);
/* Parses `len` bytes of file text (same rules, `name` only labels errors). */
int envfile_parse(const char *name, const char *text, size_t len, envfile_t **out, buf_t *err);
void envfile_free(envfile_t *ef);
/* The value of `key` (borrowed, valid until envfile_free), or NULL when the file does not set it
 * (or ef is NULL). */
const char *envfile_get(const envfile_t *ef, const char *key);

#endif
