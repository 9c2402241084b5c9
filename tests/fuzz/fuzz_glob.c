/*
 * Fuzzes common/glob on what settings, tokens and clients control: the input is split on its
 * first 0x00 into a pattern (also read as a comma-separated setting and, when it is JSON, as a
 * claim) and a subject (an event or room name). A pattern without wildcards or escapes must match
 * exactly itself; a list must match when one of its items does.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/glob.h"
#include "common/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    const char *z = memchr(in, 0, size);
    if (!z)
        return 0;
    size_t plen = (size_t)(z - in);
    const char *s = z + 1;
    size_t slen = size - plen - 1;
    bool m = glob_match(in, plen, s, slen);
    if (!memchr(in, '*', plen) && !memchr(in, '?', plen) && !memchr(in, '\\', plen)) {
        bool same = plen == slen && memcmp(in, s, plen) == 0;
        if (m != same)
            __builtin_trap();
    }
    char *v = malloc(plen + 1);
    memcpy(v, in, plen);
    v[plen] = '\0';
    glob_list_t *l = NULL;
    if (glob_list_from_csv(v, 64, 512, &l) == 0) {
        if (glob_list_count(l) > 64)
            __builtin_trap();
        /* a setting without commas, escapes or blanks is that one pattern */
        if (plen && !strpbrk(v, ",\\ \t") && glob_list_count(l) == 1 &&
            glob_list_match(l, s, slen) != m)
            __builtin_trap();
        glob_list_free(l);
    }
    json_span_t claim = {JSON_NULL, in, plen};
    if (json_validate(in, plen) == 0 && json_type_of(in, plen, &claim.type) == 0) {
        size_t a = json_skip_ws(in, plen, 0), b = json_value_end(in, plen, a);
        claim.p = in + a;
        claim.len = b - a;
        if (glob_list_from_json(&claim, 16, 64, &l) == 0) {
            if (glob_list_count(l) > 16)
                __builtin_trap();
            glob_list_match(l, s, slen);
            glob_list_free(l);
        }
    }
    free(v);
    return 0;
}
