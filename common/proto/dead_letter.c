/* dead_letter: see dead_letter.h. */
#include "common/proto/dead_letter.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "common/decimal.h"
#include "common/json.h"

#define PREFIX_LEN (sizeof(DEAD_LETTER_FIELD_PREFIX) - 1)
#define HEAD_FIELDS 6 /* stream, id, reason, deliveries, bytes, ts */

const char *const dead_letter_reason_names[DEAD_LETTER_REASONS] = {"poison", "oversized"};

uint64_t dead_letter_entry_bytes(const payload_field_t *fields, size_t nfields)
{
    uint64_t n = 0;
    for (size_t i = 0; i < nfields; i++)
        n += fields[i].name_len + fields[i].value_len;
    return n;
}

size_t dead_letter_argc(size_t nfields)
{
    return 3 + 2 * HEAD_FIELDS + 2 * nfields;
}

void dead_letter_xadd(const char *dl, size_t dl_len, const dead_letter_t *d, buf_t *scratch,
                      const char **argv, size_t *lens)
{
    /* numbers and prefixed names first, pointers after: the buffer may move while it grows */
    buf_reset(scratch);
    size_t num_off[3];
    uint64_t nums[3] = {d->deliveries, d->bytes, d->ts_ms};
    for (size_t i = 0; i < 3; i++) {
        num_off[i] = scratch->len;
        buf_printf(scratch, "%llu", (unsigned long long)nums[i]);
        buf_putc(scratch, '\0');
    }
    size_t names_off = scratch->len;
    for (size_t i = 0; i < d->nfields; i++) {
        buf_append(scratch, DEAD_LETTER_FIELD_PREFIX, PREFIX_LEN);
        buf_append(scratch, d->fields[i].name, d->fields[i].name_len);
    }
    size_t a = 0;
#define ARG(p, n) (argv[a] = (p), lens[a++] = (n))
    ARG("XADD", 4);
    ARG(dl, dl_len);
    ARG("*", 1);
    ARG("stream", 6);
    ARG(d->stream, d->stream_len);
    ARG("id", 2);
    ARG(d->id, d->id_len);
    ARG("reason", 6);
    const char *why = dead_letter_reason_names[d->reason];
    ARG(why, strlen(why));
    static const char *const num_names[3] = {"deliveries", "bytes", "ts"};
    for (size_t i = 0; i < 3; i++) {
        ARG(num_names[i], strlen(num_names[i]));
        ARG(scratch->data + num_off[i], strlen(scratch->data + num_off[i]));
    }
    size_t off = names_off;
    for (size_t i = 0; i < d->nfields; i++) {
        size_t n = PREFIX_LEN + d->fields[i].name_len;
        ARG(scratch->data + off, n);
        ARG(d->fields[i].value, d->fields[i].value_len);
        off += n;
    }
#undef ARG
}

static bool is(const payload_field_t *f, const char *name)
{
    return f->name_len == strlen(name) && memcmp(f->name, name, f->name_len) == 0;
}

static int number(const payload_field_t *f, uint64_t *out)
{
    uint64_t v;
    if (f->value_len == 0 || decimal_read(f->value, f->value_len, 19, &v) != f->value_len)
        return -EINVAL;
    *out = v;
    return 0;
}

int dead_letter_decode(const payload_field_t *pairs, size_t npairs, dead_letter_t *out,
                       payload_field_t *fields)
{
    memset(out, 0, sizeof(*out));
    out->fields = fields;
    bool reason = false;
    for (size_t i = 0; i < npairs; i++) {
        const payload_field_t *f = &pairs[i];
        int rc = 0;
        if (is(f, "stream")) {
            out->stream = f->value;
            out->stream_len = f->value_len;
        } else if (is(f, "id")) {
            out->id = f->value;
            out->id_len = f->value_len;
        } else if (is(f, "reason")) {
            rc = -EINVAL;
            for (int r = 0; r < DEAD_LETTER_REASONS; r++) {
                if (f->value_len == strlen(dead_letter_reason_names[r]) &&
                    memcmp(f->value, dead_letter_reason_names[r], f->value_len) == 0) {
                    out->reason = (dead_letter_reason_t)r;
                    reason = true;
                    rc = 0;
                }
            }
        } else if (is(f, "deliveries")) {
            rc = number(f, &out->deliveries);
        } else if (is(f, "bytes")) {
            rc = number(f, &out->bytes);
        } else if (is(f, "ts")) {
            rc = number(f, &out->ts_ms);
        } else if (f->name_len > PREFIX_LEN &&
                   memcmp(f->name, DEAD_LETTER_FIELD_PREFIX, PREFIX_LEN) == 0) {
            fields[out->nfields++] = (payload_field_t){
                f->name + PREFIX_LEN, f->name_len - PREFIX_LEN, f->value, f->value_len};
        } else {
            rc = -EINVAL;
        }
        if (rc)
            return rc;
    }
    return out->stream && out->id && reason ? 0 : -EINVAL;
}

void dead_letter_json(buf_t *out, const char *dlid, size_t dlid_len, const dead_letter_t *d,
                      size_t max_value)
{
    bool cut = false;
    buf_puts(out, "{\"id\":");
    json_write_string(out, dlid, dlid_len);
    buf_puts(out, ",\"stream\":");
    json_write_string(out, d->stream, d->stream_len);
    buf_puts(out, ",\"entryId\":");
    json_write_string(out, d->id, d->id_len);
    buf_printf(out,
               ",\"reason\":\"%s\",\"deliveries\":%llu,\"bytes\":%llu,\"ts\":%llu,\"fields\":{",
               dead_letter_reason_names[d->reason], (unsigned long long)d->deliveries,
               (unsigned long long)d->bytes, (unsigned long long)d->ts_ms);
    for (size_t i = 0; i < d->nfields; i++) {
        const payload_field_t *f = &d->fields[i];
        size_t n = f->value_len;
        if (n > max_value) {
            n = max_value;
            cut = true;
        }
        if (i)
            buf_putc(out, ',');
        json_write_string(out, f->name, f->name_len);
        buf_putc(out, ':');
        json_write_string(out, f->value, n);
    }
    buf_puts(out, cut ? "},\"truncated\":true}" : "}}");
}

size_t dead_letter_replay_argc(size_t nfields)
{
    return 3 + 2 * nfields;
}

void dead_letter_replay(const dead_letter_t *d, const char **argv, size_t *lens)
{
    argv[0] = "XADD";
    lens[0] = 4;
    argv[1] = d->stream;
    lens[1] = d->stream_len;
    argv[2] = "*";
    lens[2] = 1;
    for (size_t i = 0; i < d->nfields; i++) {
        argv[3 + 2 * i] = d->fields[i].name;
        lens[3 + 2 * i] = d->fields[i].name_len;
        argv[4 + 2 * i] = d->fields[i].value;
        lens[4 + 2 * i] = d->fields[i].value_len;
    }
}
