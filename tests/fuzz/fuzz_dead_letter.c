/*
 * Fuzzes common/proto/dead_letter on what anyone who can write to the dead-letter stream
 * controls: the input is split on 0x00 into alternating field names and values (an entry as
 * `streamioctl dead-letter list` reads it back). An entry read as a dead letter must render as
 * valid JSON and give a replay XADD of its fields; writing it again must read back the same.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "common/proto/dead_letter.h"

#define MAX_PAIRS 32

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    payload_field_t pairs[MAX_PAIRS], fields[MAX_PAIRS];
    size_t n = 0, pos = 0;
    while (pos <= size && n < MAX_PAIRS) {
        const char *a = in + pos;
        const char *z = memchr(a, 0, size - pos);
        size_t alen = z ? (size_t)(z - a) : size - pos;
        pos += alen + 1;
        const char *b = in + (pos <= size ? pos : size);
        const char *z2 = pos <= size ? memchr(b, 0, size - pos) : NULL;
        size_t blen = pos <= size ? (z2 ? (size_t)(z2 - b) : size - pos) : 0;
        pos += blen + 1;
        pairs[n++] = (payload_field_t){a, alen, b, blen};
    }
    dead_letter_t d;
    if (dead_letter_decode(pairs, n, &d, fields) != 0)
        return 0;
    buf_t j, scratch;
    buf_init(&j);
    buf_init(&scratch);
    dead_letter_json(&j, "1-0", 3, &d, 64);
    if (json_validate(j.data, j.len) != 0)
        __builtin_trap();
    const char *argv[3 + 2 * MAX_PAIRS + 12];
    size_t lens[3 + 2 * MAX_PAIRS + 12];
    dead_letter_replay(&d, argv, lens);
    size_t argc = dead_letter_argc(d.nfields);
    dead_letter_xadd("dl", 2, &d, &scratch, argv, lens);
    payload_field_t again[MAX_PAIRS + 6], f2[MAX_PAIRS + 6];
    size_t m = 0;
    for (size_t i = 3; i + 1 < argc; i += 2)
        again[m++] = (payload_field_t){argv[i], lens[i], argv[i + 1], lens[i + 1]};
    dead_letter_t d2;
    if (dead_letter_decode(again, m, &d2, f2) != 0 || d2.nfields != d.nfields ||
        d2.reason != d.reason || d2.deliveries != d.deliveries || d2.stream_len != d.stream_len)
        __builtin_trap();
    buf_free(&j);
    buf_free(&scratch);
    return 0;
}
