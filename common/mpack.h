/*
 * mpack: MessagePack as notepack.io 3.x (the codec of @socket.io/redis-adapter) writes and reads
 * it. The writer appends the smallest encoding of each value to a buf_t; the reader walks a byte
 * range header by header with borrowed pointers; the converters translate between JSON text and
 * msgpack with the value semantics of a JavaScript peer (JSON.parse + notepack.encode, and
 * notepack.decode + JSON.stringify), so what a Node server would send is reproduced byte for byte.
 *
 * The reader never reads outside [p, end), never trusts a length or a count that the remaining
 * bytes cannot hold, and never recurses on input nesting beyond MPACK_MAX_DEPTH. No global state.
 */
#ifndef STREAMIO_COMMON_MPACK_H
#define STREAMIO_COMMON_MPACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

/* Deepest array/map nesting the converters accept (same bound as JSON_MAX_DEPTH). */
#define MPACK_MAX_DEPTH 128

/* ------------------------------------------------------------------ writer (never fails but for
 * -E2BIG) */

void mpack_write_nil(buf_t *out);
void mpack_write_bool(buf_t *out, bool v);
/* Smallest of positive fixint / uint8..64 (v >= 0) or negative fixint / int8..64 (v < 0). */
void mpack_write_int(buf_t *out, int64_t v);
void mpack_write_uint(buf_t *out, uint64_t v);
/*
 * Like notepack for a JS number: an integral v within int64/uint64 range is written with
 * mpack_write_int/uint (-0 as 0x00), anything else as float64 `cb` (NaN canonical 7ff8...).
 * notepack wraps integral values beyond 64 bits; here they stay float64 and keep their value.
 */
void mpack_write_double(buf_t *out, double v);
/* fixstr / str8 / str16 / str32 header then the bytes (copied as given). -E2BIG beyond 4 GiB. */
int mpack_write_str(buf_t *out, const char *s, size_t len);
/* As mpack_write_str, for bytes that may not be valid UTF-8: each maximal invalid subsequence
 * becomes U+FFFD (json_write_utf8), the string a JavaScript peer decodes them to. */
int mpack_write_str_utf8(buf_t *out, const char *s, size_t len);
/* bin8 / bin16 / bin32. -E2BIG beyond 4 GiB. */
int mpack_write_bin(buf_t *out, const void *p, size_t len);
/* Headers only: the caller then writes n values (array) or n key/value pairs (map). */
void mpack_write_array(buf_t *out, uint32_t n);
void mpack_write_map(buf_t *out, uint32_t n);

/* ------------------------------------------------------------------ reader */

typedef struct mpack_reader {
    const uint8_t *p, *end;
} mpack_reader_t;

typedef enum mpack_type {
    MPACK_NIL,
    MPACK_BOOL,
    MPACK_INT,   /* a negative integer, whatever encoding carried it: value in .i */
    MPACK_UINT,  /* a non-negative integer, whatever encoding carried it: value in .u */
    MPACK_FLOAT, /* float32 (widened exactly) or float64: value in .f */
    MPACK_STR,
    MPACK_BIN,
    MPACK_ARRAY,
    MPACK_MAP,
    MPACK_EXT
} mpack_type_t;

typedef struct mpack_item {
    mpack_type_t type;
    bool b;
    int64_t i;
    uint64_t u;
    double f;
    const uint8_t *p; /* STR/BIN/EXT payload, borrowed from the reader's input */
    uint32_t len;     /* STR/BIN/EXT payload length */
    uint32_t count;   /* ARRAY: elements; MAP: key/value pairs */
    int8_t ext_type;  /* EXT */
} mpack_item_t;

static inline void mpack_reader_init(mpack_reader_t *r, const void *p, size_t len)
{
    r->p = p;
    r->end = r->p + len;
}

/*
 * Reads one header into *it and advances; STR/BIN/EXT payloads are consumed (it->p borrows them),
 * ARRAY/MAP elements are not. An ARRAY/MAP count that the remaining bytes cannot hold (one byte per
 * element, two per pair at least) is rejected. Returns 0, or -EPROTO on truncation or the unused
 * byte 0xc1; the reader does not move on error.
 */
int mpack_read(mpack_reader_t *r, mpack_item_t *it);

/* Skips one whole value, iteratively (O(bytes), no depth limit needed). 0 or -EPROTO. */
int mpack_skip(mpack_reader_t *r);

/* ------------------------------------------------------------------ converters */

/*
 * Appends the msgpack notepack.encode(JSON.parse(json)) would produce: numbers parsed to double and
 * written with mpack_write_double, strings decoded (json_string_decode), objects as maps with the
 * JavaScript key order (json_keys_order: array-index keys first, duplicates at their first position
 * with the last value; "__proto__" kept as JSON.parse does). Lone surrogates become U+FFFD
 * (notepack's output for them is not well-formed). Returns 0, -EINVAL on invalid JSON;
 * `out` is unchanged on error. Allocates temporary scratch (freed before returning) only when the
 * objects open on one nesting path hold more than 32 keys, for keys with escapes or invalid UTF-8,
 * and for numbers longer than 64 characters.
 */
int mpack_from_json(buf_t *out, const char *json, size_t len);
/* The same for text the caller already passed through json_validate (accepted): not checked
 * again (the validation is what bounds the conversion's recursion). */
int mpack_from_valid_json(buf_t *out, const char *json, size_t len);

/*
 * Converts one msgpack value at p[0..len) into the compact JSON that JSON.stringify prints for
 * notepack.decode's result: integers as JS numbers (beyond 2^53 via json_write_number of the
 * nearest double), floats via json_write_number, strings via json_write_string, maps with
 * string or integer keys in JavaScript key order and with the effect of `obj[key] = value` for
 * "__proto__" keys (prototype set, or own property once the prototype chain ends; a Date or
 * Buffer prototype makes JSON.stringify throw: -EPROTO), nil as null, timestamps (ext -1:
 * fixext4/8, ext8 of 12 bytes; legacy fixext8 type 0) as Date#toJSON ("2024-01-02T03:04:05.678Z",
 * null when out of range), legacy undefined `d4 00 xx` as null in arrays and at top level and as an
 * omitted member in maps. Sets *used to the bytes consumed. Returns 0; -ENOTSUP for bin and other
 * ext values (binary attachments); -EPROTO for malformed input, other key types or nesting beyond
 * MPACK_MAX_DEPTH. `out` is unchanged on error. Allocates temporary scratch (freed before
 * returning) only when the maps open on one nesting path hold more than 32 keys, and for integer
 * map keys.
 */
int mpack_to_json(buf_t *out, const uint8_t *p, size_t len, size_t *used);

/* Writes the JSON that stands for a bin value (p[0..len), borrowed) into out; 0 or -errno. */
typedef int (*mpack_bin_fn)(buf_t *out, const uint8_t *p, size_t len, void *arg);
/*
 * As mpack_to_json, but each bin value is handed to bin(), once, in the order its JSON is
 * written (JavaScript key order, as socket.io-parser numbers attachments); bin's error ends the
 * conversion with that error.
 */
int mpack_to_json_bin(buf_t *out, const uint8_t *p, size_t len, size_t *used, mpack_bin_fn bin,
                      void *arg);

#endif
