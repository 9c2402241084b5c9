/*
 * http_req: http-parser callbacks copy the URL and the kept header values into one arena
 * (NUL-separated strings addressed by offset, so growth never invalidates them); the parser is
 * paused at the end of the head and at the end of the message to report those positions.
 */
#include "common/proto/http_req.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <http_parser.h>

#include "common/hex.h"
#include "common/xalloc.h"

#define FIELD_MAX 32

enum cb_state { CB_URL, CB_FIELD, CB_VALUE };

typedef struct str_ref {
    uint32_t off;
    uint32_t len;
    bool present;
} str_ref_t;

struct http_req {
    http_parser hp;
    size_t max_head;
    size_t max_arena; /* bounds the copies made when a header repeats */
    size_t head_len;
    size_t max_body;
    buf_t arena;
    buf_t body;
    str_ref_t url, path, query;
    str_ref_t hdr[HTTP_REQ_HDR_COUNT];
    char field[FIELD_MAX];
    size_t field_len; /* > FIELD_MAX: a name we do not keep */
    int cur;          /* header whose value is being read, -1 if not kept */
    enum cb_state cb;
    bool head_pause; /* the parser paused in on_headers_complete */
    bool head_done;
    bool done;
    bool keep_alive;
    bool upgrade;
    int err;
};

static const char *const hdr_names[HTTP_REQ_HDR_COUNT] = {
    [HTTP_REQ_HOST] = "host",
    [HTTP_REQ_UPGRADE] = "upgrade",
    [HTTP_REQ_CONNECTION] = "connection",
    [HTTP_REQ_WS_KEY] = "sec-websocket-key",
    [HTTP_REQ_WS_VERSION] = "sec-websocket-version",
    [HTTP_REQ_WS_EXTENSIONS] = "sec-websocket-extensions",
    [HTTP_REQ_ORIGIN] = "origin",
    [HTTP_REQ_CONTENT_LENGTH] = "content-length",
    [HTTP_REQ_ACCEPT_ENCODING] = "accept-encoding",
    [HTTP_REQ_AUTHORIZATION] = "authorization",
};

static http_req_t *req_of(http_parser *hp)
{
    return hp->data;
}

/* -1 rather than 1: on_headers_complete returning 1 means "no body", not an error. */
static int cb_fail(http_req_t *r, int err)
{
    r->err = err;
    return -1;
}

static int arena_room(http_req_t *r, size_t n)
{
    if (n > r->max_arena - r->arena.len)
        return -E2BIG;
    buf_reserve(&r->arena, n);
    return 0;
}

/* Ends the string that starts at s->off and is the arena's tail. */
static int arena_close(http_req_t *r, str_ref_t *s)
{
    int rc = arena_room(r, 1);
    if (rc)
        return rc;
    s->len = (uint32_t)(r->arena.len - s->off);
    r->arena.data[r->arena.len++] = '\0';
    return 0;
}

static int finish_value(http_req_t *r)
{
    if (r->cur < 0)
        return 0;
    str_ref_t *s = &r->hdr[r->cur];
    while (r->arena.len > s->off &&
           (r->arena.data[r->arena.len - 1] == ' ' || r->arena.data[r->arena.len - 1] == '\t'))
        r->arena.len--;
    r->cur = -1;
    return arena_close(r, s);
}

static int on_url(http_parser *hp, const char *at, size_t len)
{
    http_req_t *r = req_of(hp);
    int rc = arena_room(r, len);
    if (rc)
        return cb_fail(r, rc);
    buf_append(&r->arena, at, len);
    return 0;
}

/* Ends the URL or header value being collected, if any. */
static int close_open(http_req_t *r)
{
    if (r->cb == CB_URL)
        return arena_close(r, &r->url);
    if (r->cb == CB_VALUE)
        return finish_value(r);
    return 0;
}

static int on_header_field(http_parser *hp, const char *at, size_t len)
{
    http_req_t *r = req_of(hp);
    int rc = close_open(r);
    if (rc)
        return cb_fail(r, rc);
    if (r->cb != CB_FIELD) {
        r->cb = CB_FIELD;
        r->field_len = 0;
    }
    if (r->field_len + len <= FIELD_MAX)
        memcpy(r->field + r->field_len, at, len);
    r->field_len = r->field_len + len <= FIELD_MAX ? r->field_len + len : FIELD_MAX + 1;
    return 0;
}

static int lookup_field(const http_req_t *r)
{
    if (r->field_len > FIELD_MAX)
        return -1;
    for (int i = 0; i < HTTP_REQ_HDR_COUNT; i++) {
        if (strlen(hdr_names[i]) == r->field_len &&
            strncasecmp(hdr_names[i], r->field, r->field_len) == 0)
            return i;
    }
    return -1;
}

/* A repeated header: its earlier value moves to the arena's tail, then ", " and the new one. */
static int begin_value(http_req_t *r, int i)
{
    str_ref_t *s = &r->hdr[i];
    if (!s->present) {
        s->present = true;
        s->off = (uint32_t)r->arena.len;
        return 0;
    }
    size_t old_off = s->off, old_len = s->len;
    int rc = arena_room(r, old_len + 2);
    if (rc)
        return rc;
    s->off = (uint32_t)r->arena.len;
    memmove(r->arena.data + r->arena.len, r->arena.data + old_off, old_len);
    r->arena.len += old_len;
    memcpy(r->arena.data + r->arena.len, ", ", 2);
    r->arena.len += 2;
    return 0;
}

static int on_header_value(http_parser *hp, const char *at, size_t len)
{
    http_req_t *r = req_of(hp);
    if (r->cb != CB_VALUE) {
        r->cb = CB_VALUE;
        r->cur = lookup_field(r);
        if (r->cur >= 0) {
            int rc = begin_value(r, r->cur);
            if (rc)
                return cb_fail(r, rc);
        }
    }
    if (r->cur < 0)
        return 0;
    int rc = arena_room(r, len);
    if (rc)
        return cb_fail(r, rc);
    buf_append(&r->arena, at, len);
    return 0;
}

static int copy_url_part(http_req_t *r, const struct http_parser_url *u, int field, str_ref_t *s)
{
    if (!(u->field_set & (1u << field)))
        return 0;
    int rc = arena_room(r, u->field_data[field].len);
    if (rc)
        return rc;
    s->off = (uint32_t)r->arena.len;
    s->present = true;
    buf_append(&r->arena, r->arena.data + r->url.off + u->field_data[field].off,
               u->field_data[field].len);
    return arena_close(r, s);
}

static int on_headers_complete(http_parser *hp)
{
    http_req_t *r = req_of(hp);
    int rc = close_open(r);
    if (rc)
        return cb_fail(r, rc);
    struct http_parser_url u;
    http_parser_url_init(&u);
    if (http_parser_parse_url(r->arena.data, r->url.len, 0, &u) != 0 ||
        !(u.field_set & (1u << UF_PATH)))
        return cb_fail(r, -EPROTO);
    rc = copy_url_part(r, &u, UF_PATH, &r->path);
    if (!rc)
        rc = copy_url_part(r, &u, UF_QUERY, &r->query);
    if (rc)
        return cb_fail(r, rc);
    if (r->max_body && !(hp->flags & F_CHUNKED) && hp->content_length != ULLONG_MAX &&
        hp->content_length > r->max_body)
        return cb_fail(r, -EMSGSIZE);
    r->keep_alive = http_should_keep_alive(hp) != 0;
    r->upgrade = hp->upgrade != 0;
    r->head_done = true;
    r->head_pause = true;
    http_parser_pause(hp, 1);
    return 0;
}

static int on_body(http_parser *hp, const char *at, size_t len)
{
    http_req_t *r = req_of(hp);
    if (!r->max_body)
        return 0;
    if (len > r->max_body - r->body.len)
        return cb_fail(r, -EMSGSIZE);
    buf_append(&r->body, at, len);
    return 0;
}

static int on_message_complete(http_parser *hp)
{
    http_req_t *r = req_of(hp);
    r->done = true;
    http_parser_pause(hp, 1);
    return 0;
}

static const http_parser_settings settings = {
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

static void reset(http_req_t *r)
{
    http_parser_init(&r->hp, HTTP_REQUEST);
    r->hp.data = r;
    r->head_len = 0;
    buf_reset(&r->arena);
    buf_reset(&r->body);
    memset(&r->url, 0, sizeof(r->url));
    memset(&r->path, 0, sizeof(r->path));
    memset(&r->query, 0, sizeof(r->query));
    memset(r->hdr, 0, sizeof(r->hdr));
    r->field_len = 0;
    r->cur = -1;
    r->cb = CB_URL;
    r->head_pause = false;
    r->head_done = r->done = r->keep_alive = r->upgrade = false;
}

http_req_t *http_req_new(size_t max_head)
{
    http_req_t *r = xcalloc(1, sizeof(*r));
    r->max_head = max_head ? max_head : HTTP_REQ_DEFAULT_MAX_HEAD;
    r->max_arena = 2 * r->max_head + 64;
    buf_init(&r->arena);
    buf_init(&r->body);
    reset(r);
    return r;
}

void http_req_free(http_req_t *r)
{
    if (!r)
        return;
    buf_free(&r->arena);
    buf_free(&r->body);
    free(r);
}

/* A buffer larger than this is freed on reuse: a big request does not pin its size. */
#define REUSE_KEEP_BYTES 1024

void http_req_reuse(http_req_t *r)
{
    if (r->arena.cap > REUSE_KEEP_BYTES)
        buf_free(&r->arena);
    if (r->body.cap > REUSE_KEEP_BYTES)
        buf_free(&r->body);
    r->err = 0;
    reset(r);
}

void http_req_set_max_body(http_req_t *r, size_t max)
{
    r->max_body = max;
}

const char *http_req_body(const http_req_t *r, size_t *len)
{
    *len = r->body.len;
    return r->body.data ? r->body.data : "";
}

static int fail(http_req_t *r, int err)
{
    r->err = err;
    return err;
}

static int parser_error(http_req_t *r)
{
    if (r->err)
        return r->err;
    return HTTP_PARSER_ERRNO(&r->hp) == HPE_HEADER_OVERFLOW ? -E2BIG : -EPROTO;
}

int http_req_feed(http_req_t *r, const void *p, size_t len, size_t *consumed)
{
    *consumed = 0;
    if (r->err)
        return r->err;
    if (r->done)
        reset(r);
    if (len == 0)
        return 0;
    const char *d = p;
    bool had_head = r->head_done;
    size_t n = len;
    if (!had_head) {
        if (r->head_len >= r->max_head)
            return fail(r, -E2BIG);
        if (n > r->max_head - r->head_len)
            n = r->max_head - r->head_len;
    }
    size_t k = http_parser_execute(&r->hp, &settings, d, n);
    if (HTTP_PARSER_ERRNO(&r->hp) == HPE_PAUSED) {
        http_parser_pause(&r->hp, 0);
        if (r->head_pause) {
            /* The pause in on_headers_complete leaves the head's final LF unconsumed
             * (http_parser.c, s_headers_almost_done); take it now so that *consumed ends
             * exactly at the end of the head. It may complete a body-less message. */
            r->head_pause = false;
            k += http_parser_execute(&r->hp, &settings, d + k, 1);
            if (HTTP_PARSER_ERRNO(&r->hp) == HPE_PAUSED)
                http_parser_pause(&r->hp, 0);
        }
    }
    if (HTTP_PARSER_ERRNO(&r->hp) != HPE_OK)
        return fail(r, parser_error(r));
    if (!had_head) {
        r->head_len += k;
        if (!r->head_done && r->head_len >= r->max_head && k < len)
            return fail(r, -E2BIG);
    }
    *consumed = k;
    int rc = 0;
    if (!had_head && r->head_done)
        rc |= HTTP_REQ_HEAD;
    if (r->done)
        rc |= HTTP_REQ_DONE;
    return rc;
}

bool http_req_head_complete(const http_req_t *r)
{
    return r->head_done;
}

bool http_req_done(const http_req_t *r)
{
    return r->done;
}

static const char *str_of(const http_req_t *r, const str_ref_t *s)
{
    return s->present ? r->arena.data + s->off : NULL;
}

const char *http_req_method(const http_req_t *r)
{
    return http_method_str((enum http_method)r->hp.method);
}

const char *http_req_path(const http_req_t *r)
{
    const char *s = str_of(r, &r->path);
    return s ? s : "";
}

const char *http_req_query_string(const http_req_t *r)
{
    const char *s = str_of(r, &r->query);
    return s ? s : "";
}

const char *http_req_header(const http_req_t *r, http_req_hdr_t h)
{
    if ((unsigned)h >= HTTP_REQ_HDR_COUNT)
        return NULL;
    return str_of(r, &r->hdr[h]);
}

bool http_req_keep_alive(const http_req_t *r)
{
    return r->keep_alive;
}

bool http_req_is_upgrade(const http_req_t *r)
{
    return r->upgrade;
}

/* Case-insensitive search for `token` in a comma-separated list. */
static bool has_token(const char *list, const char *token)
{
    size_t tlen = strlen(token);
    const char *p = list;
    while (p && *p) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        while (n && (p[n - 1] == ' ' || p[n - 1] == '\t'))
            n--;
        if (n == tlen && strncasecmp(p, token, n) == 0)
            return true;
        p = end;
    }
    return false;
}

bool http_req_is_websocket(const http_req_t *r)
{
    /* done: no body follows the head, so what follows is the WebSocket stream */
    if (!r->done || !r->upgrade || r->hp.method != HTTP_GET)
        return false;
    const char *up = http_req_header(r, HTTP_REQ_UPGRADE);
    const char *ver = http_req_header(r, HTTP_REQ_WS_VERSION);
    const char *key = http_req_header(r, HTTP_REQ_WS_KEY);
    /* A key is base64 of 16 bytes (RFC 6455 §4.1): 24 characters. */
    return up && has_token(up, "websocket") && ver && strcmp(ver, "13") == 0 && key &&
           strlen(key) == 24;
}

/* Decodes the byte at s[*i] (advancing *i past it and any escape); '+' is a space in a query. */
static char decode_at(const char *s, size_t n, size_t *i, bool plus)
{
    char c = s[*i];
    if (c == '+' && plus) {
        (*i)++;
        return ' ';
    }
    if (c == '%' && *i + 2 < n) {
        int hi = hex_digit(s[*i + 1]);
        int lo = hex_digit(s[*i + 2]);
        if (hi >= 0 && lo >= 0) {
            *i += 3;
            return (char)(hi << 4 | lo);
        }
    }
    (*i)++;
    return c;
}

static bool decoded_equals(const char *s, size_t n, const char *key)
{
    size_t i = 0;
    for (; *key; key++) {
        if (i >= n || decode_at(s, n, &i, true) != *key)
            return false;
    }
    return i == n;
}

static void decode_into(buf_t *out, const char *s, size_t n, bool plus)
{
    buf_reserve(out, n);
    size_t i = 0;
    while (i < n)
        out->data[out->len++] = decode_at(s, n, &i, plus);
    out->data[out->len] = '\0';
}

void http_req_path_decode(const char *s, size_t n, buf_t *out)
{
    buf_reset(out);
    decode_into(out, s, n, false);
}

int http_req_query_each(const http_req_t *r, buf_t *tmp,
                        int (*fn)(const char *key, size_t klen, const char *val, size_t vlen,
                                  void *arg),
                        void *arg)
{
    return http_query_each(http_req_query_string(r), tmp, fn, arg);
}

int http_query_each(const char *q, buf_t *tmp,
                    int (*fn)(const char *key, size_t klen, const char *val, size_t vlen,
                              void *arg),
                    void *arg)
{
    const char *end = q + strlen(q);
    while (q < end) {
        const char *amp = memchr(q, '&', (size_t)(end - q));
        const char *seg_end = amp ? amp : end;
        const char *eq = memchr(q, '=', (size_t)(seg_end - q));
        const char *kend = eq ? eq : seg_end;
        if (seg_end > q) {
            buf_reset(tmp);
            decode_into(tmp, q, (size_t)(kend - q), true);
            size_t klen = tmp->len;
            if (eq)
                decode_into(tmp, eq + 1, (size_t)(seg_end - eq - 1), true);
            int rc = fn(tmp->data, klen, tmp->data + klen, tmp->len - klen, arg);
            if (rc)
                return rc;
        }
        q = seg_end + 1;
    }
    return 0;
}

int http_req_query(const http_req_t *r, const char *key, buf_t *out)
{
    const char *q = http_req_query_string(r);
    const char *end = q + strlen(q);
    while (q <= end) {
        const char *amp = memchr(q, '&', (size_t)(end - q));
        const char *seg_end = amp ? amp : end;
        const char *eq = memchr(q, '=', (size_t)(seg_end - q));
        const char *kend = eq ? eq : seg_end;
        if (decoded_equals(q, (size_t)(kend - q), key)) {
            buf_reset(out);
            /* a key without '=' has the value "" (still NUL-terminated storage) */
            decode_into(out, eq ? eq + 1 : kend, eq ? (size_t)(seg_end - eq - 1) : 0, true);
            return 0;
        }
        if (!amp)
            break;
        q = amp + 1;
    }
    return -ENOENT;
}
