/* attachments: see attachments.h. */
#include "worker/sio/attachments.h"
#include "common/decimal.h"

#include <errno.h>
#include <string.h>

void attachments_init(attachments_t *a)
{
    buf_init(&a->packet);
    buf_init(&a->atts);
    a->want = a->have = 0;
    a->keep = false;
}

void attachments_free(attachments_t *a)
{
    buf_free(&a->packet);
    buf_free(&a->atts);
}

bool attachments_pending(const attachments_t *a)
{
    return a->want != 0;
}

/* Every placeholder {"_placeholder":true,"num":k} must have k < n (Node's reconstruction). */
static bool placeholders_ok(const char *p, size_t len, unsigned n)
{
    static const char key[] = "\"num\":";
    const char *end = p + len;
    const char *q = p;
    while ((q = memmem(q, (size_t)(end - q), key, sizeof(key) - 1)) != NULL) {
        q += sizeof(key) - 1;
        uint64_t k; /* a number past 64 bits stops where it would wrap: still too large */
        if (decimal_read(q, (size_t)(end - q), SIZE_MAX, &k) == 0 || k >= n)
            return false;
    }
    return true;
}

int attachments_start(attachments_t *a, const char *p, size_t len, const sio_packet_t *pk,
                      bool keep)
{
    if (!placeholders_ok(pk->data, pk->data_len, pk->attachments))
        return -EPROTO;
    attachments_reset(a);
    buf_append(&a->packet, p, len);
    a->want = pk->attachments;
    a->keep = keep;
    return 0;
}

int attachments_add(attachments_t *a, const uint8_t *p, size_t len)
{
    if (a->want == 0 || len > UINT32_MAX)
        return -EPROTO;
    if (a->keep) {
        uint32_t n = (uint32_t)len;
        buf_append(&a->atts, &n, sizeof(n));
        buf_append(&a->atts, p, len);
    }
    a->have++;
    return --a->want ? 0 : 1;
}

void attachments_reset(attachments_t *a)
{
    buf_reset(&a->packet);
    buf_reset(&a->atts);
    a->want = a->have = 0;
}
