/* payload: JSON text of the seed's room:message payload for one stream entry. */
#include "common/proto/payload.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"

static bool is_name(const json_key_t *k, const char *s, size_t n)
{
    return k->len == n && !memcmp(k->p, s, n);
}

static int put_value(buf_t *out, const json_key_t *k, const payload_field_t *f)
{
    if (is_name(k, "data", 4) && !json_validate(f->value, f->value_len))
        return json_minify_utf8(out, f->value, f->value_len);
    return json_write_string(out, f->value, f->value_len);
}

static int build(buf_t *out, const char *stream, size_t stream_len, const char *id, size_t id_len,
                 const payload_field_t *fields, json_key_t *keys, size_t n)
{
    const payload_field_t *event = NULL;
    int rc = buf_puts(out, "{\"from\":\"service\",\"message\":{");
    for (size_t i = 0; !rc && i < n; i++) {
        const payload_field_t *f = &fields[keys[i].val_ref];
        if (is_name(&keys[i], "event", 5))
            event = f;
        if (i)
            rc = buf_putc(out, ',');
        if (!rc)
            rc = json_write_string(out, keys[i].p, keys[i].len);
        if (!rc)
            rc = buf_putc(out, ':');
        if (!rc)
            rc = put_value(out, &keys[i], f);
    }
    if (!rc)
        rc = buf_puts(out, "},\"roomId\":");
    if (!rc)
        rc = json_write_string(out, stream, stream_len);
    if (!rc && event) {
        rc = buf_puts(out, ",\"event\":");
        if (!rc)
            rc = json_write_string(out, event->value, event->value_len);
    }
    if (!rc)
        rc = buf_puts(out, ",\"messageId\":");
    if (!rc)
        rc = json_write_string(out, id, id_len);
    return rc ? rc : buf_putc(out, '}');
}

int payload_build(buf_t *out, const char *stream, size_t stream_len, const char *id, size_t id_len,
                  const payload_field_t *fields, size_t nfields)
{
    json_key_t inline_keys[PAYLOAD_INLINE_FIELDS], *keys = inline_keys;
    if (nfields > PAYLOAD_INLINE_FIELDS && !(keys = calloc(nfields, sizeof *keys)))
        return -ENOMEM;
    for (size_t i = 0; i < nfields; i++) {
        keys[i].p = fields[i].name;
        keys[i].len = fields[i].name_len;
        keys[i].key_ref = i;
        keys[i].val_ref = i;
    }
    size_t mark = out->len;
    size_t n = json_keys_order(keys, nfields, true);
    int rc = build(out, stream, stream_len, id, id_len, fields, keys, n);
    if (keys != inline_keys)
        free(keys);
    if (rc && out->data) {
        out->len = mark;
        out->data[mark] = '\0';
    }
    return rc;
}

int payload_packet(buf_t *out, const char *stream, size_t stream_len, const char *id, size_t id_len,
                   const payload_field_t *fields, size_t nfields, bool offset)
{
    size_t mark = out->len;
    int rc = buf_puts(out, PAYLOAD_PACKET_PREFIX);
    if (!rc)
        rc = payload_build(out, stream, stream_len, id, id_len, fields, nfields);
    if (!rc && offset && !(rc = buf_putc(out, ',')))
        rc = json_write_string(out, id, id_len);
    if (!rc)
        rc = buf_putc(out, ']');
    if (rc && out->data) {
        out->len = mark;
        out->data[mark] = '\0';
    }
    return rc;
}
