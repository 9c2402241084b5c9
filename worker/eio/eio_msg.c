/* eio_msg: see eio_msg.h. The content is kept once; each form is one refbuf made on demand. */
#include "worker/eio/eio_msg.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/proto/eio_payload.h"
#include "common/proto/ws_frame.h"
#include "common/xalloc.h"

struct eio_msg {
    size_t refs;
    refbuf_t *frames;  /* NULL until needed */
    refbuf_t *zframes; /* the permessage-deflate form: NULL until needed */
    refbuf_t *records; /* NULL until needed */
    bool no_records;   /* the text cannot ride polling */
    bool has_text;
    size_t text_len;
    size_t atts_len;
    unsigned natt;
    char bytes[]; /* text, NUL, then the attachments (u32 length + bytes each) */
};

eio_msg_t *eio_msg_new(const char *text, size_t text_len, const void *atts, size_t atts_len,
                       unsigned natt)
{
    if (!text)
        text_len = 0;
    eio_msg_t *m = xmalloc(sizeof(*m) + text_len + 1 + atts_len);
    *m = (eio_msg_t){.refs = 1,
                     .has_text = text != NULL,
                     .text_len = text_len,
                     .atts_len = atts_len,
                     .natt = natt};
    if (text_len)
        memcpy(m->bytes, text, text_len);
    m->bytes[text_len] = '\0';
    if (atts_len)
        memcpy(m->bytes + text_len + 1, atts, atts_len);
    return m;
}

eio_msg_t *eio_msg_ref(eio_msg_t *m)
{
    m->refs++;
    return m;
}

void eio_msg_unref(eio_msg_t *m)
{
    if (!m || --m->refs)
        return;
    refbuf_unref(m->frames);
    refbuf_unref(m->zframes);
    refbuf_unref(m->records);
    free(m);
}

const char *eio_msg_text(const eio_msg_t *m, size_t *len)
{
    *len = m->text_len;
    return m->has_text ? m->bytes : NULL;
}

/* Calls fn once per attachment, in order. */
static void each_att(const eio_msg_t *m, void (*fn)(const char *p, size_t n, void *arg), void *arg)
{
    const char *a = m->bytes + m->text_len + 1;
    for (size_t off = 0, i = 0; i < m->natt && off + sizeof(uint32_t) <= m->atts_len; i++) {
        uint32_t n;
        memcpy(&n, a + off, sizeof(n));
        off += sizeof(n);
        fn(a + off, n, arg);
        off += n;
    }
}

static void put_frame(buf_t *out, uint8_t opcode, const void *p, size_t len)
{
    uint8_t hdr[WS_FRAME_HEADER_MAX];
    buf_append(out, hdr, ws_frame_header(hdr, opcode, len));
    buf_append(out, p, len);
}

static void add_binary_frame(const char *p, size_t n, void *arg)
{
    put_frame(arg, WS_FRAME_BINARY, p, n);
}

refbuf_t *eio_msg_frames(eio_msg_t *m)
{
    if (m->frames)
        return m->frames;
    if (m->natt == 0) {
        m->frames = ws_frame_new(WS_FRAME_TEXT, m->bytes, m->text_len);
        return m->frames;
    }
    buf_t b;
    buf_init(&b);
    if (m->has_text)
        put_frame(&b, WS_FRAME_TEXT, m->bytes, m->text_len);
    each_att(m, add_binary_frame, &b);
    m->frames = refbuf_from(b.data, b.len);
    buf_free(&b);
    return m->frames;
}

typedef struct deflating {
    buf_t *out;
    buf_t z;
    ws_deflate_t *d;
    bool any; /* a message was compressed */
} deflating_t;

static void put_maybe_deflated(deflating_t *st, uint8_t opcode, const void *p, size_t len)
{
    if (len < WS_DEFLATE_THRESHOLD) {
        put_frame(st->out, opcode, p, len);
        return;
    }
    buf_reset(&st->z);
    ws_deflate_compress(st->d, p, len, &st->z);
    put_frame(st->out, opcode | WS_FRAME_RSV1, st->z.data, st->z.len);
    st->any = true;
}

static void add_deflated_binary(const char *p, size_t n, void *arg)
{
    put_maybe_deflated(arg, WS_FRAME_BINARY, p, n);
}

refbuf_t *eio_msg_frames_deflated(eio_msg_t *m, ws_deflate_t *d)
{
    if (m->zframes)
        return m->zframes;
    deflating_t st = {.d = d};
    buf_t b;
    buf_init(&b);
    buf_init(&st.z);
    st.out = &b;
    if (m->has_text)
        put_maybe_deflated(&st, WS_FRAME_TEXT, m->bytes, m->text_len);
    each_att(m, add_deflated_binary, &st);
    /* nothing long enough: the plain form is the same bytes */
    m->zframes = st.any ? refbuf_from(b.data, b.len) : refbuf_ref(eio_msg_frames(m));
    buf_free(&b);
    buf_free(&st.z);
    return m->zframes;
}

static void add_binary_record(const char *p, size_t n, void *arg)
{
    eio_payload_add_binary(arg, p, n);
}

refbuf_t *eio_msg_records(eio_msg_t *m)
{
    if (m->records || m->no_records)
        return m->records;
    buf_t b;
    buf_init(&b);
    if (m->has_text && eio_payload_add_text(&b, m->bytes, m->text_len) != 0) {
        m->no_records = true;
    } else {
        each_att(m, add_binary_record, &b);
        m->records = refbuf_from(b.data, b.len);
    }
    buf_free(&b);
    return m->records;
}
