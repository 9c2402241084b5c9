/*
 * adapter_json: the small readers and writers the adapter's codecs (adapter_msg, cluster_msg)
 * share over JSON text that already passed json_validate: walking an object's members or an
 * array's elements as spans, reading strings (escapes decoded) and small integers, writing a
 * room list, and rolling a buffer back on error. Never allocates except by growing the caller's
 * buffers.
 */
#ifndef STREAMIO_COMMON_PROTO_ADAPTER_JSON_H
#define STREAMIO_COMMON_PROTO_ADAPTER_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/json.h"
#include "common/proto/adapter_msg.h"

/* Members of an object or elements of an array of validated JSON text. */
typedef struct ajson_walk {
    const char *in;
    size_t len, pos;
    bool first;
} ajson_walk_t;

/* Starts walking v, which must be of type `want`: 0 or -EPROTO. */
int ajson_open(const json_span_t *v, json_type_t want, ajson_walk_t *w);
/* Next element (key NULL) or member (key: the key's span, quotes included); false at the end. */
bool ajson_next(ajson_walk_t *w, json_span_t *key, json_span_t *val);
/* The span of the value starting at in[pos], with its type. */
void ajson_span_at(const char *in, size_t len, size_t pos, json_span_t *out);
/* A key span equals the plain (escape-free) name s. */
bool ajson_key_is(const json_span_t *k, const char *s);
/*
 * Readies scratch for the ajson_str calls over the strings of the text in[0..len): room for all
 * of them decoded (json_decoded_max), so no string decoded into it moves afterwards. `in` may
 * lie in scratch itself: take such pointers again after the call.
 */
void ajson_reserve(buf_t *scratch, const char *in, size_t len);
/* A string value: borrowed when it has no escape, else decoded into scratch. Never grows
 * scratch (earlier strings point into it): 0, -EPROTO (not a string, bad escape), -ENOBUFS (not
 * reserved by ajson_reserve for this text). */
int ajson_str(buf_t *scratch, const json_span_t *v, adapter_str_t *out);
/* An integer 0..1e9: 0 or -EPROTO. */
int ajson_int(const json_span_t *v, int64_t *out);
/* Appends ["room", ...]. */
void ajson_put_rooms(buf_t *out, const adapter_str_t *rooms, size_t n);
/* Appends `prefix` (the JSON around the value, e.g. `,"uid":`) then s as a JSON string. */
void ajson_put_member(buf_t *out, const char *prefix, const char *s, size_t len);
/* On error (rc != 0) cuts out back to `mark`; returns rc. */
int ajson_rollback(buf_t *out, size_t mark, int rc);

#endif
