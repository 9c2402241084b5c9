/* refbuf: one allocation per buffer (header and bytes together), freed by the last unref. */
#include "common/refbuf.h"

#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"

struct refbuf {
    size_t refs;
    size_t len;
    char data[];
};

refbuf_t *refbuf_new(size_t len)
{
    refbuf_t *rb = xmalloc(sizeof(*rb) + len);
    rb->refs = 1;
    rb->len = len;
    return rb;
}

refbuf_t *refbuf_from(const void *p, size_t len)
{
    refbuf_t *rb = refbuf_new(len);
    if (len)
        memcpy(rb->data, p, len);
    return rb;
}

refbuf_t *refbuf_ref(refbuf_t *rb)
{
    rb->refs++;
    return rb;
}

void refbuf_unref(refbuf_t *rb)
{
    if (rb && --rb->refs == 0)
        free(rb);
}

char *refbuf_data(refbuf_t *rb)
{
    return rb->data;
}

size_t refbuf_len(const refbuf_t *rb)
{
    return rb->len;
}
