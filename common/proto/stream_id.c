/* stream_id: see stream_id.h. */
#include "common/proto/stream_id.h"

#include <stdio.h>
#include <string.h>

#include "common/decimal.h"

bool stream_id_parse_u64(const char *p, size_t len, uint64_t *out)
{
    /* all of it digits, at most 20 and no wrap past UINT64_MAX */
    uint64_t v;
    if (len == 0 || decimal_read(p, len, 20, &v) != len)
        return false;
    *out = v;
    return true;
}

bool stream_id_parse(const char *p, size_t len, stream_id_t *out)
{
    if (len == 0)
        return false;
    const char *dash = memchr(p, '-', len);
    out->seq = 0;
    if (!dash)
        return stream_id_parse_u64(p, len, &out->ms);
    return stream_id_parse_u64(p, (size_t)(dash - p), &out->ms) &&
           stream_id_parse_u64(dash + 1, len - (size_t)(dash - p) - 1, &out->seq);
}

size_t stream_id_format(stream_id_t id, char *out)
{
    int n = snprintf(out, STREAM_ID_MAX + 1, "%llu-%llu", (unsigned long long)id.ms,
                     (unsigned long long)id.seq);
    return (size_t)n;
}

int stream_id_cmp(stream_id_t a, stream_id_t b)
{
    if (a.ms != b.ms)
        return a.ms < b.ms ? -1 : 1;
    if (a.seq != b.seq)
        return a.seq < b.seq ? -1 : 1;
    return 0;
}

stream_id_t stream_id_before_ms(uint64_t ms)
{
    if (ms == 0)
        return (stream_id_t){0, 0};
    return (stream_id_t){ms - 1, UINT64_MAX};
}
