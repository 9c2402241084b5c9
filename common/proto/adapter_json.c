/* adapter_json: see adapter_json.h. */
#include "common/proto/adapter_json.h"

#include <errno.h>
#include <math.h>
#include <string.h>

int ajson_rollback(buf_t *out, size_t mark, int rc)
{
    if (rc && out->data) {
        out->len = mark;
        out->data[mark] = '\0';
    }
    return rc;
}

int ajson_open(const json_span_t *v, json_type_t want, ajson_walk_t *w)
{
    if (v->type != want)
        return -EPROTO;
    w->in = v->p;
    w->len = v->len;
    w->pos = 1;
    w->first = true;
    return 0;
}

void ajson_span_at(const char *in, size_t len, size_t pos, json_span_t *out)
{
    size_t end = json_value_end(in, len, pos);
    out->p = in + pos;
    out->len = end - pos;
    json_type_of(out->p, out->len, &out->type);
}

/* Next element (key NULL) or member; false at the end. */
bool ajson_next(ajson_walk_t *w, json_span_t *key, json_span_t *val)
{
    size_t pos = json_skip_ws(w->in, w->len, w->pos);
    if (pos >= w->len || w->in[pos] == '}' || w->in[pos] == ']')
        return false;
    if (!w->first)
        pos = json_skip_ws(w->in, w->len, pos + 1); /* the ',' */
    w->first = false;
    if (key) {
        ajson_span_at(w->in, w->len, pos, key);
        pos = json_skip_ws(w->in, w->len, pos + key->len);
        pos = json_skip_ws(w->in, w->len, pos + 1); /* the ':' */
    }
    ajson_span_at(w->in, w->len, pos, val);
    w->pos = pos + val->len;
    return true;
}

bool ajson_key_is(const json_span_t *k, const char *s)
{
    size_t n = strlen(s);
    return k->len == n + 2 && memcmp(k->p + 1, s, n) == 0;
}

void ajson_reserve(buf_t *scratch, const char *in, size_t len)
{
    buf_reserve(scratch, json_decoded_max(in, len));
}

int ajson_str(buf_t *scratch, const json_span_t *v, adapter_str_t *out)
{
    if (v->type != JSON_STRING)
        return -EPROTO;
    if (!memchr(v->p, '\\', v->len)) {
        out->p = v->p + 1;
        out->len = v->len - 2;
        return 0;
    }
    size_t n, mark = scratch->len;
    if (json_string_decoded_len(v->p, v->len, &n))
        return -EPROTO;
    if (scratch->cap - scratch->len < n + 1)
        return -ENOBUFS; /* a realloc would leave the strings decoded before dangling */
    if (json_string_decode(v->p, v->len, scratch))
        return -EPROTO;
    out->p = scratch->data + mark;
    out->len = scratch->len - mark;
    return 0;
}

int ajson_int(const json_span_t *v, int64_t *out)
{
    double d;
    if (v->type != JSON_NUMBER || json_number_parse(v->p, v->len, &d) || d != floor(d) || d < 0 ||
        d > 1e9)
        return -EPROTO;
    *out = (int64_t)d;
    return 0;
}

void ajson_put_member(buf_t *out, const char *prefix, const char *s, size_t len)
{
    buf_puts(out, prefix);
    json_write_string(out, s, len);
}

void ajson_put_rooms(buf_t *out, const adapter_str_t *rooms, size_t n)
{
    buf_putc(out, '[');
    for (size_t i = 0; i < n; i++) {
        if (i)
            buf_putc(out, ',');
        json_write_string(out, rooms[i].p, rooms[i].len);
    }
    buf_putc(out, ']');
}
