/*
 * Fuzzes worker/payload: the input is split on 0x00 into stream, id, then name/value pairs, as a
 * stream entry arrives from Redis (any bytes). The payload must always be valid JSON.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "common/buf.h"
#include "common/json.h"
#include "common/proto/payload.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_PARTS 202

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *parts[MAX_PARTS];
    size_t lens[MAX_PARTS];
    size_t n = 0;
    const char *p = (const char *)data, *end = p + size;
    while (n < MAX_PARTS) {
        const char *z = memchr(p, 0, (size_t)(end - p));
        parts[n] = p;
        lens[n] = z ? (size_t)(z - p) : (size_t)(end - p);
        n++;
        if (!z)
            break;
        p = z + 1;
    }
    if (n < 2)
        return 0;
    payload_field_t fields[(MAX_PARTS - 2) / 2];
    size_t nfields = 0;
    for (size_t i = 2; i + 1 < n; i += 2) {
        fields[nfields].name = parts[i];
        fields[nfields].name_len = lens[i];
        fields[nfields].value = parts[i + 1];
        fields[nfields].value_len = lens[i + 1];
        nfields++;
    }
    buf_t out;
    buf_init(&out);
    payload_build(&out, parts[0], lens[0], parts[1], lens[1], fields, nfields);
    if (json_validate(out.data, out.len) != 0)
        __builtin_trap();
    buf_free(&out);
    return 0;
}
