/*
 * Fuzzes connection state recovery (worker/recovery) on what a reconnecting client and Redis
 * control: the input is split on its first 0x00 into a CONNECT payload (read for `pid` and
 * `offset` as worker/recovery/restore.c does) and a record as stored under
 * `<prefix>:recovery:<pid>` (recovery_decode). The offset is placed in the decoded log and each
 * room's replay point taken, as a restore does. A record that decodes must encode back to one
 * that decodes to the same sid, log and rooms; a parsed offset must format back to itself.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/json.h"
#include "common/proto/stream_id.h"
#include "worker/recovery/recovery.h"
#include "worker/sio/sio.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_ROOMS 64

typedef struct rooms {
    size_t n, seen;
    recovery_room_t r[MAX_ROOMS];
} rooms_t;

static void on_room(void *arg, const recovery_room_t *r)
{
    rooms_t *rs = arg;
    rs->seen++;
    if (rs->n < MAX_ROOMS)
        rs->r[rs->n++] = *r;
}

/* The client's offset, as restore.c reads it: false when absent or not an entry id. */
static bool connect_offset(const char *p, size_t len, stream_id_t *offset, bool *has)
{
    json_span_t pid, off;
    buf_t tmp, name;
    buf_init(&tmp);
    buf_init(&name);
    bool ok = false;
    *has = false;
    if (json_validate(p, len) || json_member_get(p, len, "pid", &pid, &tmp) ||
        pid.type != JSON_STRING || json_string_decode(pid.p, pid.len, &name) ||
        !sio_id_ok(name.data, name.len))
        goto out;
    ok = true;
    if (json_member_get(p, len, "offset", &off, &tmp) == 0) {
        buf_reset(&tmp);
        ok = off.type == JSON_STRING && json_string_decode(off.p, off.len, &tmp) == 0 &&
             tmp.len <= STREAM_ID_MAX && stream_id_parse(tmp.data, tmp.len, offset);
        *has = ok;
        if (ok) {
            char again[STREAM_ID_MAX + 1];
            stream_id_t back;
            size_t n = stream_id_format(*offset, again);
            if (!stream_id_parse(again, n, &back) || stream_id_cmp(back, *offset) != 0)
                __builtin_trap();
        }
    }
out:
    buf_free(&tmp);
    buf_free(&name);
    return ok;
}

static bool same_log(const recovery_log_t *a, const recovery_log_t *b)
{
    if (a->count != b->count)
        return false;
    uint32_t first = a->count > RECOVERY_LOG_LEN ? a->count - RECOVERY_LOG_LEN : 0;
    for (uint32_t k = first; k < a->count; k++) {
        const recovery_send_t *x = &a->e[k % RECOVERY_LOG_LEN], *y = &b->e[k % RECOVERY_LOG_LEN];
        if (x->tag != y->tag || stream_id_cmp(x->id, y->id) || stream_id_cmp(x->prev, y->prev))
            return false;
    }
    return true;
}

static void record(const char *p, size_t len, const stream_id_t *offset)
{
    /* a copy of exactly len bytes, so ASan sees any read past the end */
    char *rec = malloc(len ? len : 1);
    memcpy(rec, p, len);
    const char *sid;
    size_t sid_len;
    recovery_log_t *log = malloc(sizeof(*log)), *log2 = malloc(sizeof(*log2));
    rooms_t *rs = calloc(1, sizeof(*rs)), *rs2 = calloc(1, sizeof(*rs2));
    if (recovery_decode(rec, len, &sid, &sid_len, log, on_room, rs) != 0) {
        if (rs->seen)
            __builtin_trap(); /* no room reported from a record refused */
        goto out;
    }
    if (sid_len == 0 || sid < rec || sid + sid_len > rec + len)
        __builtin_trap();
    for (size_t i = 0; i < rs->n; i++) {
        if (rs->r[i].name < rec || rs->r[i].name + rs->r[i].len > rec + len)
            __builtin_trap();
    }
    uint32_t pos;
    if (recovery_log_locate(log, offset, &pos) == 0) {
        if (pos > log->count)
            __builtin_trap();
        for (size_t i = 0; i < rs->n; i++)
            (void)recovery_log_received(log, pos, &rs->r[i]);
    }
    /* written again (when every room was kept), it reads back the same */
    if (rs->seen == rs->n) {
        buf_t again;
        buf_init(&again);
        const char *sid2;
        size_t sid2_len;
        if (recovery_encode(&again, sid, sid_len, log, rs->r, rs->n) != 0 ||
            recovery_decode(again.data, again.len, &sid2, &sid2_len, log2, on_room, rs2) != 0 ||
            sid2_len != sid_len || memcmp(sid2, sid, sid_len) != 0 || !same_log(log, log2) ||
            rs2->n != rs->n)
            __builtin_trap();
        for (size_t i = 0; i < rs->n; i++) {
            const recovery_room_t *x = &rs->r[i], *y = &rs2->r[i];
            if (x->tag != y->tag || x->len != y->len || memcmp(x->name, y->name, x->len) ||
                stream_id_cmp(x->first, y->first) || stream_id_cmp(x->last, y->last))
                __builtin_trap();
        }
        buf_free(&again);
    }
    if (recovery_log_locate(log, offset, &pos) == 0)
        recovery_log_truncate(log, pos);
out:
    free(rec);
    free(log);
    free(log2);
    free(rs);
    free(rs2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    const char *z = memchr(in, 0, size);
    size_t clen = z ? (size_t)(z - in) : size;
    stream_id_t offset = {0, 0};
    bool has = false;
    (void)connect_offset(in, clen, &offset, &has);
    if (z)
        record(z + 1, size - clen - 1, has ? &offset : NULL);
    return 0;
}
