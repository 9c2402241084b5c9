/* workdesc: see workdesc.h. memcpy for every field: records are only 8-byte aligned. */
#include "shm/workdesc.h"

#include <errno.h>
#include <string.h>

void workdesc_begin(buf_t *out, uint32_t pool)
{
    uint32_t hdr[2] = {pool, 0};
    buf_reset(out);
    buf_append(out, hdr, sizeof(hdr));
}

int workdesc_add(buf_t *out, const char *name, size_t len)
{
    if (len > WORKDESC_MAX_NAME)
        return -E2BIG;
    uint16_t l = (uint16_t)len;
    buf_reserve(out, sizeof(l) + len);
    buf_append(out, &l, sizeof(l));
    buf_append(out, name, len);
    uint32_t count;
    memcpy(&count, out->data + 4, 4);
    count++;
    memcpy(out->data + 4, &count, 4);
    return 0;
}

uint32_t workdesc_count(const buf_t *out)
{
    uint32_t count = 0;
    if (out->len >= 8)
        memcpy(&count, out->data + 4, 4);
    return count;
}

static int walk(const unsigned char *p, size_t len, uint32_t count, workdesc_name_fn fn, void *arg)
{
    size_t off = 8;
    for (uint32_t i = 0; i < count; i++) {
        uint16_t l;
        if (len - off < sizeof(l))
            return -EPROTO;
        memcpy(&l, p + off, sizeof(l));
        off += sizeof(l);
        if (len - off < l)
            return -EPROTO;
        if (fn)
            fn((const char *)p + off, l, arg);
        off += l;
    }
    return off == len ? 0 : -EPROTO;
}

int workdesc_decode(const void *p, size_t len, uint32_t *pool, workdesc_name_fn fn, void *arg)
{
    if (len < 8)
        return -EPROTO;
    uint32_t count;
    memcpy(pool, p, 4);
    memcpy(&count, (const char *)p + 4, 4);
    int rc = walk(p, len, count, NULL, NULL);
    if (rc)
        return rc;
    return walk(p, len, count, fn, arg);
}
