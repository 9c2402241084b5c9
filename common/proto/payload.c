/* payload: JSON text of the seed's room:message payload for one stream entry. */
#include "common/proto/payload.h"

#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "common/mpack.h"
#include "common/proto/stream_id.h"
#include "common/xalloc.h"

static bool is_name(const json_key_t *k, const char *s, size_t n)
{
    return k->len == n && !memcmp(k->p, s, n);
}

/* data_valid: json_validate accepted the `data` field (checked once per entry, see with_keys). */
static void put_value(buf_t *out, const json_key_t *k, const payload_field_t *f, bool data_valid)
{
    /* json_minify_utf8 fails only on invalid JSON, which json_validate just ruled out */
    if (data_valid && is_name(k, "data", 4))
        (void)json_minify_utf8(out, f->value, f->value_len);
    else
        json_write_string(out, f->value, f->value_len);
}

static void build(buf_t *out, const char *stream, size_t stream_len, const char *id, size_t id_len,
                  const payload_field_t *fields, const json_key_t *keys, size_t n, bool data_valid)
{
    const payload_field_t *event = NULL;
    buf_puts(out, "{\"from\":\"service\",\"message\":{");
    for (size_t i = 0; i < n; i++) {
        const payload_field_t *f = &fields[keys[i].val_ref];
        if (is_name(&keys[i], "event", 5))
            event = f;
        if (i)
            buf_putc(out, ',');
        json_write_string(out, keys[i].p, keys[i].len);
        buf_putc(out, ':');
        put_value(out, &keys[i], f, data_valid);
    }
    buf_puts(out, "},\"roomId\":");
    json_write_string(out, stream, stream_len);
    if (event) {
        buf_puts(out, ",\"event\":");
        json_write_string(out, event->value, event->value_len);
    }
    buf_puts(out, ",\"messageId\":");
    json_write_string(out, id, id_len);
    buf_putc(out, '}');
}

/* The same object as msgpack, as notepack.encode(JSON.parse(<what build writes>)) gives it. */
static void build_msgpack(buf_t *out, const char *stream, size_t stream_len, const char *id,
                          size_t id_len, const payload_field_t *fields, const json_key_t *keys,
                          size_t n, bool data_valid)
{
    const payload_field_t *event = NULL;
    for (size_t i = 0; i < n; i++)
        if (is_name(&keys[i], "event", 5))
            event = &fields[keys[i].val_ref];
    /* the writers fail only past 4 GiB, beyond any stream entry */
    mpack_write_map(out, event ? 5 : 4);
    (void)mpack_write_str(out, "from", 4);
    (void)mpack_write_str(out, "service", 7);
    (void)mpack_write_str(out, "message", 7);
    mpack_write_map(out, (uint32_t)n);
    for (size_t i = 0; i < n; i++) {
        const payload_field_t *f = &fields[keys[i].val_ref];
        (void)mpack_write_str_utf8(out, keys[i].p, keys[i].len);
        if (!data_valid || !is_name(&keys[i], "data", 4) ||
            mpack_from_valid_json(out, f->value, f->value_len) != 0)
            (void)mpack_write_str_utf8(out, f->value, f->value_len);
    }
    (void)mpack_write_str(out, "roomId", 6);
    (void)mpack_write_str_utf8(out, stream, stream_len);
    if (event) {
        (void)mpack_write_str(out, "event", 5);
        (void)mpack_write_str_utf8(out, event->value, event->value_len);
    }
    (void)mpack_write_str(out, "messageId", 9);
    (void)mpack_write_str_utf8(out, id, id_len);
}

/* Orders the fields as Node's object assignment would and validates `data` once, then writes the
 * payload object as JSON to json and, unless mpack is NULL, as msgpack to mpack. */
static void with_keys(buf_t *json, buf_t *mpack, const char *stream, size_t stream_len,
                      const char *id, size_t id_len, const payload_field_t *fields, size_t nfields)
{
    json_key_t inline_keys[PAYLOAD_INLINE_FIELDS], *keys = inline_keys;
    if (nfields > PAYLOAD_INLINE_FIELDS)
        keys = xcalloc(nfields, sizeof *keys);
    for (size_t i = 0; i < nfields; i++) {
        keys[i].p = fields[i].name;
        keys[i].len = fields[i].name_len;
        keys[i].key_ref = i;
        keys[i].val_ref = i;
    }
    size_t n = json_keys_order(keys, nfields, true);
    bool data_valid = false; /* names are unique once ordered: one `data` at most */
    for (size_t i = 0; i < n; i++) {
        const payload_field_t *f = &fields[keys[i].val_ref];
        if (is_name(&keys[i], "data", 4))
            data_valid = json_validate(f->value, f->value_len) == 0;
    }
    build(json, stream, stream_len, id, id_len, fields, keys, n, data_valid);
    if (mpack)
        build_msgpack(mpack, stream, stream_len, id, id_len, fields, keys, n, data_valid);
    if (keys != inline_keys)
        free(keys);
}

void payload_build(buf_t *out, const char *stream, size_t stream_len, const char *id, size_t id_len,
                   const payload_field_t *fields, size_t nfields)
{
    with_keys(out, NULL, stream, stream_len, id, id_len, fields, nfields);
}

void payload_packet_pair(buf_t *out, buf_t *mpack, const char *stream, size_t stream_len,
                         const char *id, size_t id_len, const payload_field_t *fields,
                         size_t nfields, bool offset)
{
    buf_puts(out, PAYLOAD_PACKET_PREFIX);
    if (mpack) {
        mpack_write_array(mpack, offset ? 3 : 2);
        (void)mpack_write_str(mpack, "room:message", 12);
    }
    with_keys(out, mpack, stream, stream_len, id, id_len, fields, nfields);
    if (offset) {
        buf_putc(out, ',');
        json_write_string(out, id, id_len);
        if (mpack)
            (void)mpack_write_str_utf8(mpack, id, id_len);
    }
    buf_putc(out, ']');
}

void payload_packet(buf_t *out, const char *stream, size_t stream_len, const char *id,
                    size_t id_len, const payload_field_t *fields, size_t nfields, bool offset)
{
    payload_packet_pair(out, NULL, stream, stream_len, id, id_len, fields, nfields, offset);
}

bool payload_packet_offset(const char *p, size_t len, const char **id, size_t *id_len)
{
    size_t pre = sizeof(PAYLOAD_PACKET_PREFIX) - 1;
    if (len < pre + 6 || memcmp(p, PAYLOAD_PACKET_PREFIX, pre) != 0 || p[len - 1] != ']' ||
        p[len - 2] != '"')
        return false;
    size_t end = len - 2, start = end;
    while (start > pre && end - start <= STREAM_ID_MAX && p[start - 1] != '"')
        start--;
    if (start <= pre + 1 || p[start - 1] != '"' || p[start - 2] != ',' ||
        !memchr(p + start, '-', end - start))
        return false;
    *id = p + start;
    *id_len = end - start;
    return true;
}
