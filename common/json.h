/*
 * json: JSON text utilities without a DOM. The module validates, minifies and walks JSON text in
 * place (spans point into the caller's input) and writes JSON scalars exactly as JavaScript's
 * JSON.stringify spells them, so the server's output is byte-identical to a Node peer's. It also
 * owns the rule for the order of an object's keys in JavaScript (array-index keys first, duplicate
 * keys collapsed), shared by every module that re-emits objects.
 *
 * It must never recurse on nesting taken from input (json_validate and the walkers are iterative),
 * never read outside [in, in + len), and never allocate except by growing the caller's buf_t.
 * Input bytes inside strings are not required to be valid UTF-8 (a JavaScript peer receives them
 * already decoded with U+FFFD replacements); the writers always produce valid UTF-8 except
 * json_minify, which copies string contents byte for byte.
 */
#ifndef STREAMIO_COMMON_JSON_H
#define STREAMIO_COMMON_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

/* Maximum nesting of arrays/objects accepted anywhere in the project. */
#define JSON_MAX_DEPTH 128

typedef enum json_type {
    JSON_NULL,
    JSON_FALSE,
    JSON_TRUE,
    JSON_NUMBER,
    JSON_STRING,
    JSON_ARRAY,
    JSON_OBJECT
} json_type_t;

/* p/len = exact text of the value (no surrounding whitespace); strings include their quotes. */
typedef struct json_span {
    json_type_t type;
    const char *p;
    size_t len;
} json_span_t;

/*
 * Accepts one JSON text exactly as JavaScript's JSON.parse does (RFC 8259 grammar, surrounding
 * space/tab/CR/LF allowed, no BOM). Nesting deeper than JSON_MAX_DEPTH is rejected. Iterative.
 * Returns 0 or -EINVAL.
 */
int json_validate(const char *in, size_t len);

/*
 * Type of the JSON text from its first non-whitespace byte. Does not validate the rest: call it on
 * validated text. Returns 0, or -EINVAL when no value can start there.
 */
int json_type_of(const char *in, size_t len, json_type_t *out);

/*
 * Appends `in` with every whitespace byte outside strings removed; string contents are copied byte
 * for byte. The whole text is validated first: on -EINVAL `out` is left as it was.
 */
int json_minify(buf_t *out, const char *in, size_t len);

/*
 * As json_minify, but any invalid UTF-8 inside strings is replaced by U+FFFD exactly as a WHATWG
 * decoder (Node's Buffer#toString) would, so the output is always valid UTF-8 and parses in a
 * browser to the value a Node peer sees. Returns 0 or -EINVAL (out unchanged on error).
 */
int json_minify_utf8(buf_t *out, const char *in, size_t len);

/*
 * `in` must be a valid JSON array text: fills items[] with the spans of its top-level elements
 * (borrowing `in`) and *count with their number. -EINVAL if `in` is not a valid array; -E2BIG if it
 * has more than `max` elements (the first `max` are filled and *count = max).
 */
int json_array_items(const char *in, size_t len, json_span_t *items, size_t max, size_t *count);

/*
 * Appends s as a string literal exactly like JSON.stringify: escapes '"', '\\' and control
 * characters (\b \f \n \r \t, others \u00xx in lowercase hex), copies other bytes raw; each
 * maximal invalid UTF-8 subsequence becomes U+FFFD (EF BF BD). s may be NULL when len is 0 (an
 * absent adapter_str_t, such as a request without requestId): "".
 */
void json_write_string(buf_t *out, const char *s, size_t len);

/*
 * The string JSON.parse gives for json_write_string(s): s with each maximal invalid UTF-8
 * subsequence replaced by U+FFFD, unescaped. json_utf8_len is its length (n when s is valid).
 */
size_t json_utf8_len(const char *s, size_t n);
/* Whether s[0..n) is valid UTF-8 (RFC 3629: no surrogates, no overlong forms). */
bool json_utf8_valid(const char *s, size_t n);
void json_write_utf8(buf_t *out, const char *s, size_t n);

/*
 * Appends v exactly like JavaScript's Number#toString / JSON.stringify: shortest digits that
 * round-trip (nearest on ties), ECMAScript layout (1e+21, 1.5e-7, 0.000001, 123456789012345680000),
 * -0 as "0"; NaN and +-Infinity as "null".
 */
void json_write_number(buf_t *out, double v);

/*
 * lit = a string literal including its quotes. Appends its UTF-8 bytes: escapes resolved, \u
 * surrogate pairs joined, lone surrogates and invalid UTF-8 replaced by U+FFFD. Returns 0, or
 * -EINVAL if lit is not a valid literal (out unchanged).
 */
int json_string_decode(const char *lit, size_t len, buf_t *out);

/* Number of bytes json_string_decode would append for lit. Returns 0 or -EINVAL. */
int json_string_decoded_len(const char *lit, size_t len, size_t *out);

/*
 * An upper bound of what json_string_decode appends for all the string literals of the text
 * in[0..len) together. Decoding is not always shorter than the literal: escapes are, but an
 * invalid UTF-8 byte becomes U+FFFD (3 bytes), so len plus 2 per byte >= 0x80.
 */
size_t json_decoded_max(const char *in, size_t len);

/*
 * lit = the text of a JSON number (a span from validated text). *out = the double JSON.parse gives
 * (correctly rounded; overflow gives +-Infinity). Returns 0 or -EINVAL. Integers of up to 15
 * digits are read directly; the rest relies on strtod, so the process must keep the "C"
 * LC_NUMERIC locale. Allocates only for numbers longer than 64 bytes.
 */
int json_number_parse(const char *lit, size_t len, double *out);

/*
 * Walking helpers for text that already passed json_validate (behaviour on other text is bounded
 * but unspecified). json_skip_ws returns the first offset >= pos that is not whitespace (or len).
 * json_value_end takes the offset of a value's first byte and returns the offset just past the
 * value. Both iterative and never read past len.
 */
size_t json_skip_ws(const char *in, size_t len, size_t pos);
size_t json_value_end(const char *in, size_t len, size_t pos);
/*
 * The member `key` (NUL-terminated, compared with the decoded key) of the object `in` (text that
 * passed json_validate): *out is its value, the last one when the key repeats (as JSON.parse).
 * tmp is scratch. 0, -ENOENT (no such member, or `in` is not an object). (Not named
 * json_object_get: libjansson, which libjwt loads, exports that symbol.)
 */
int json_member_get(const char *in, size_t len, const char *key, json_span_t *out, buf_t *tmp);

/*
 * One member of an object, for json_keys_order. The caller sets p/len (the key's bytes as compared,
 * i.e. decoded UTF-8) and the two opaque refs; `seq` is scratch owned by json_keys_order (free for
 * the caller's use before the call).
 */
typedef struct json_key {
    const char *p;
    size_t len;
    size_t key_ref; /* kept from the key's first occurrence */
    size_t val_ref; /* after ordering: taken from the key's last occurrence */
    uint64_t seq;
} json_key_t;

/*
 * keys[0..n) are the members of an object in the order they were assigned. Rewrites the array into
 * the order JavaScript lists the resulting object's own keys (Object.keys / JSON.stringify): keys
 * that are array indices ("0".."4294967294", canonical decimal) ascending, then the other keys by
 * first occurrence; each duplicate key keeps its first position and the val_ref of its last
 * occurrence. With drop_proto, "__proto__" members are removed (plain assignment `obj[k] = v` never
 * creates that own property; JSON.parse does, so pass false for JSON input). Returns the number of
 * members kept, now at keys[0..ret). In place, O(n log n), no allocation, no recursion.
 */
size_t json_keys_order(json_key_t *keys, size_t n, bool drop_proto);

#endif
