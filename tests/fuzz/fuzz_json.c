/*
 * Fuzzes common/json: validation, minifying (both flavours), walking, string and number
 * decoding, and the JSON -> msgpack -> JSON round trip of common/mpack. Every output that the
 * contracts say is JSON must validate again.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/json.h"
#include "common/mpack.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    buf_t a, b;
    buf_init(&a);
    buf_init(&b);
    int valid = json_validate(in, size) == 0;
    int rc = json_minify(&a, in, size);
    if ((rc == 0) != valid)
        __builtin_trap();
    if (valid) {
        if (json_validate(a.data, a.len) != 0)
            __builtin_trap();
        buf_reset(&a);
        if (json_minify_utf8(&a, in, size) != 0 || json_validate(a.data, a.len) != 0)
            __builtin_trap();
        json_type_t t;
        if (json_type_of(in, size, &t) != 0)
            __builtin_trap();
        size_t start = json_skip_ws(in, size, 0);
        size_t end = json_value_end(in, size, start);
        if (end > size || json_skip_ws(in, size, end) != size)
            __builtin_trap();
        if (t == JSON_ARRAY) {
            json_span_t items[8];
            size_t n;
            rc = json_array_items(in, size, items, 8, &n);
            if (rc != 0 && rc != -E2BIG)
                __builtin_trap();
        } else if (t == JSON_STRING) {
            size_t want;
            if (json_string_decoded_len(in + start, end - start, &want) != 0)
                __builtin_trap();
            buf_reset(&b);
            if (json_string_decode(in + start, end - start, &b) != 0 || b.len != want)
                __builtin_trap();
            /* the bound callers reserve by before decoding in place */
            if (want > json_decoded_max(in, size))
                __builtin_trap();
        } else if (t == JSON_NUMBER) {
            double d;
            if (json_number_parse(in + start, end - start, &d) != 0)
                __builtin_trap();
            buf_reset(&b);
            json_write_number(&b, d);
            if (json_validate(b.data, b.len) != 0)
                __builtin_trap();
        }
        buf_reset(&b);
        if (mpack_from_json(&b, in, size) == 0) {
            size_t used = 0;
            buf_reset(&a);
            rc = mpack_to_json(&a, (const uint8_t *)b.data, b.len, &used);
            if (rc == 0 && (used != b.len || json_validate(a.data, a.len) != 0))
                __builtin_trap();
        }
    }
    buf_reset(&a);
    json_write_string(&a, in, size);
    if (json_validate(a.data, a.len) != 0)
        __builtin_trap();
    buf_free(&a);
    buf_free(&b);
    return 0;
}
