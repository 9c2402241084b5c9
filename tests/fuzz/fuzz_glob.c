/*
 * Fuzzes common/glob on what settings, tokens and clients control: the input is split on its
 * first 0x00 into a pattern (also read as a comma-separated setting and, when it is JSON, as a
 * claim) and a subject (an event or room name). A pattern without wildcards or escapes must match
 * exactly itself; a list must match when one of its items does. The pattern is also a
 * STREAM_EXCLUDE glob (common/stream_exclude, Redis glob syntax with classes) and the subject a
 * key discovery found (any Redis writer names it): without wildcards it must exclude exactly
 * itself, besides the keys always excluded.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/config.h"
#include "common/glob.h"
#include "common/json.h"
#include "common/stream_exclude.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* STREAM_EXCLUDE=<pattern> (one glob, as config_load keeps it) against a discovered key. */
static void check_exclude(const char *pattern, size_t plen, const char *key, size_t klen)
{
    static cfg_t none, one;
    if (!none.redis_key[0]) {
        strcpy(none.redis_key, "socket.io");
        strcpy(none.stream_name, "socket.io");
        one = none;
    }
    if (plen >= sizeof(one.stream_exclude.buf) || memchr(pattern, 0, plen))
        return;
    memcpy(one.stream_exclude.buf, pattern, plen);
    one.stream_exclude.buf[plen] = '\0';
    one.stream_exclude.item[0] = one.stream_exclude.buf;
    one.stream_exclude.n = 1;
    bool always = stream_exclude_match(&none, key, klen);
    bool m = stream_exclude_match(&one, key, klen);
    if (always && !m)
        __builtin_trap();
    if (!strpbrk(one.stream_exclude.buf, "*?[\\") &&
        m != (always || (plen == klen && memcmp(pattern, key, klen) == 0)))
        __builtin_trap();
}

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
    check_exclude(in, plen, s, slen);
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
