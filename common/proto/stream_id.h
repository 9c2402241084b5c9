/*
 * stream_id: Redis stream entry ids (`<ms>-<seq>`, two u64s) as values: parsed once where the
 * text enters (the reader, a client's recovery offset, a peer's packet) and carried beside the
 * bytes from there on. Pure functions; no state.
 */
#ifndef STREAMIO_COMMON_PROTO_STREAM_ID_H
#define STREAMIO_COMMON_PROTO_STREAM_ID_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STREAM_ID_MAX 41 /* longest id text: "<u64>-<u64>" */

/* A stream entry id; {0, 0} is "none" (Redis never hands it out). */
typedef struct stream_id {
    uint64_t ms, seq;
} stream_id_t;

/* Parses `<ms>-<seq>` or `<ms>` (decimal u64s). false when it is anything else. */
bool stream_id_parse(const char *p, size_t len, stream_id_t *out);
/* One half of an id: a decimal u64 of 1..20 digits, no sign, no overflow. */
bool stream_id_parse_u64(const char *p, size_t len, uint64_t *out);
/* Writes `<ms>-<seq>` and a NUL into out (STREAM_ID_MAX + 1 bytes); returns the length. */
size_t stream_id_format(stream_id_t id, char *out);
/* Orders ids like Redis: <0, 0, >0. */
int stream_id_cmp(stream_id_t a, stream_id_t b);
/* The id of the last entry before wall-clock millisecond ms (a join's starting point). */
stream_id_t stream_id_before_ms(uint64_t ms);

#endif
