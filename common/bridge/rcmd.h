/*
 * rcmd: one Redis command being built: each argument either borrowed (the caller keeps it alive
 * until the command is sent) or written into the command's own text (numbers, keys put together
 * from parts), and the argument the command is routed by. argv() resolves the text arguments once
 * the command is complete, so appending never leaves a pointer into moved memory. Reused from
 * command to command without allocating once it has grown.
 */
#ifndef STREAMIO_COMMON_BRIDGE_RCMD_H
#define STREAMIO_COMMON_BRIDGE_RCMD_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

typedef struct rcmd_arg {
    const char *p; /* borrowed, or NULL: `off` into text */
    size_t off, len;
} rcmd_arg_t;

typedef struct rcmd {
    buf_t text;
    rcmd_arg_t *args;
    const char **argv;
    size_t *lens;
    size_t argc, cap;
    size_t key; /* index of the routing key; SIZE_MAX: none */
} rcmd_t;

void rcmd_init(rcmd_t *c);
void rcmd_free(rcmd_t *c);
/* Starts a new command (keeps the storage). */
void rcmd_reset(rcmd_t *c);
/* A borrowed argument. */
void rcmd_arg(rcmd_t *c, const char *p, size_t len);
void rcmd_str(rcmd_t *c, const char *s); /* strlen */
void rcmd_u64(rcmd_t *c, uint64_t v);
void rcmd_i64(rcmd_t *c, int64_t v);
/* An argument written into the command's text: begin, append to rcmd_text(c), end. */
void rcmd_begin(rcmd_t *c);
buf_t *rcmd_text(rcmd_t *c);
void rcmd_end(rcmd_t *c);
/* The argument just added is the key the command is routed by. */
void rcmd_mark_key(rcmd_t *c);
/* The finished command (valid until the next change of c). */
const char **rcmd_argv(rcmd_t *c);
const size_t *rcmd_lens(const rcmd_t *c);
int rcmd_argc(const rcmd_t *c);
/* The routing key (NULL, 0 when none was marked); valid with rcmd_argv. */
const char *rcmd_key(const rcmd_t *c, size_t *len);

#endif
