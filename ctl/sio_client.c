/* sio_client: see sio_client.h. */
#include "ctl/sio_client.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "common/proto/sio_packet.h"
#include "common/xalloc.h"
#include "ctl/term_text.h"

#define MAX_ARGS 8

enum state { AWAIT_OPEN, AWAIT_CONNECT, CONNECTED };

struct sio_client {
    sio_client_cb_t cb;
    char **rooms;
    size_t nrooms, joined;
    char *token;
    enum state state;
    int silence_ms;
    buf_t out, tmp, line;
};

int sio_client_new(sio_client_t **out, const char *const *rooms, size_t n, const char *token,
                   const sio_client_cb_t *cb)
{
    if (n == 0)
        return -EINVAL;
    sio_client_t *c = xcalloc(1, sizeof(*c));
    c->cb = *cb;
    buf_init(&c->out);
    buf_init(&c->tmp);
    buf_init(&c->line);
    c->rooms = xcalloc(n, sizeof(*c->rooms));
    c->token = token ? xstrdup(token) : NULL;
    for (size_t i = 0; i < n; i++, c->nrooms++)
        c->rooms[i] = xstrdup(rooms[i]);
    *out = c;
    return 0;
}

void sio_client_free(sio_client_t *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->nrooms; i++)
        free(c->rooms[i]);
    free(c->rooms);
    free(c->token);
    buf_free(&c->out);
    buf_free(&c->tmp);
    buf_free(&c->line);
    free(c);
}

void sio_client_restart(sio_client_t *c)
{
    c->state = AWAIT_OPEN;
    c->joined = 0;
    c->silence_ms = 0;
}

int sio_client_silence_ms(const sio_client_t *c)
{
    return c->silence_ms;
}

bool sio_client_joined(const sio_client_t *c)
{
    return c->state == CONNECTED && c->joined == c->nrooms;
}

static int send_buf(sio_client_t *c)
{
    return c->cb.send(c->cb.arg, c->out.data, c->out.len);
}

/* A number member of the open packet, in ms (0 when absent or not a number). */
static double open_ms(sio_client_t *c, const char *json, size_t len, const char *key)
{
    json_span_t v;
    double ms = 0;
    if (json_member_get(json, len, key, &v, &c->tmp) == 0 && v.type == JSON_NUMBER &&
        json_number_parse(v.p, v.len, &ms) == 0 && ms >= 0 && ms < 1e9)
        return ms;
    return 0;
}

static int on_open(sio_client_t *c, const char *json, size_t len, buf_t *err)
{
    if (json_validate(json, len) != 0) {
        buf_puts(err, "a malformed Engine.IO open packet");
        return -EPROTO;
    }
    double ms = open_ms(c, json, len, "pingInterval") + open_ms(c, json, len, "pingTimeout");
    c->silence_ms = ms > 0 ? (int)ms : 45000;
    buf_reset(&c->out);
    buf_puts(&c->out, "40");
    if (c->token) {
        buf_puts(&c->out, "{\"token\":");
        json_write_string(&c->out, c->token, strlen(c->token));
        buf_putc(&c->out, '}');
    }
    c->state = AWAIT_CONNECT;
    return send_buf(c);
}

static int join_all(sio_client_t *c)
{
    c->state = CONNECTED;
    for (size_t i = 0; i < c->nrooms; i++) {
        buf_reset(&c->out);
        uint64_t id = i + 1;
        buf_reset(&c->tmp);
        buf_puts(&c->tmp, "[\"join-room\",");
        json_write_string(&c->tmp, c->rooms[i], strlen(c->rooms[i]));
        buf_putc(&c->tmp, ']');
        int rc = sio_packet_encode(&c->out, SIO_EVENT, NULL, 0, &id, c->tmp.data, c->tmp.len);
        if (rc == 0)
            rc = send_buf(c);
        if (rc)
            return rc;
    }
    return 0;
}

/* The decoded text of a JSON string span into c->tmp; false when it is not a string. */
static bool string_of(sio_client_t *c, const json_span_t *s)
{
    buf_reset(&c->tmp);
    return s->type == JSON_STRING && json_string_decode(s->p, s->len, &c->tmp) == 0 && c->tmp.data;
}

/* `member` of an object span as text in c->tmp ("" when absent or not a string). */
static const char *member_text(sio_client_t *c, const json_span_t *obj, const char *member)
{
    json_span_t v;
    buf_t scratch;
    buf_init(&scratch);
    bool ok = obj->type == JSON_OBJECT &&
              json_member_get(obj->p, obj->len, member, &v, &scratch) == 0 && string_of(c, &v);
    buf_free(&scratch);
    return ok ? c->tmp.data : "";
}

/* What the server said (escaped for the terminal), or `none` when it said nothing. */
static void put_said(buf_t *b, const char *said, const char *none)
{
    if (*said)
        term_text_put(b, said, strlen(said));
    else
        buf_puts(b, none);
}

static int on_ack(sio_client_t *c, const sio_packet_t *p, buf_t *err)
{
    json_span_t items[MAX_ARGS];
    size_t n = 0;
    if (!p->has_id || p->id < 1 || p->id > c->nrooms)
        return 0; /* not one of ours */
    const char *room = c->rooms[p->id - 1];
    json_array_items(p->data, p->data_len, items, MAX_ARGS, &n);
    json_span_t ok;
    if (n >= 1 && items[0].type == JSON_OBJECT &&
        json_member_get(items[0].p, items[0].len, "ok", &ok, &c->tmp) == 0 &&
        ok.type == JSON_TRUE) {
        c->joined++;
        buf_reset(&c->line);
        buf_printf(&c->line, "joined %s", room);
        c->cb.note(c->cb.arg, c->line.data);
        return 0;
    }
    const char *why = n >= 1 ? member_text(c, &items[0], "error") : "";
    buf_printf(err, "join-room %s refused: ", room);
    put_said(err, why, "no reason given");
    return -EACCES;
}

static int on_event(sio_client_t *c, const sio_packet_t *p)
{
    json_span_t items[MAX_ARGS];
    size_t n = 0;
    int rc = json_array_items(p->data, p->data_len, items, MAX_ARGS, &n);
    if ((rc && rc != -E2BIG) || n < 2 || !string_of(c, &items[0]))
        return 0;
    if (strcmp(c->tmp.data, "room:message") == 0) {
        buf_reset(&c->line);
        if (json_minify_utf8(&c->line, items[1].p, items[1].len) == 0)
            c->cb.message(c->cb.arg, c->line.data, c->line.len);
    } else if (strcmp(c->tmp.data, "error") == 0) {
        const char *m = member_text(c, &items[1], "message");
        buf_reset(&c->line);
        buf_puts(&c->line, "the server sent error: ");
        put_said(&c->line, m, "(no message)");
        c->cb.note(c->cb.arg, c->line.data);
    }
    return 0;
}

static int on_packet(sio_client_t *c, const char *in, size_t len, buf_t *err)
{
    sio_packet_t p;
    if (sio_packet_decode(in, len, &p) != 0) {
        buf_puts(err, "a malformed Socket.IO packet: ");
        term_text_put(err, in, len > 80 ? 80 : len);
        return -EPROTO;
    }
    if (p.nsp_len > 1)
        return 0; /* only the main namespace is ours */
    switch (p.type) {
    case SIO_CONNECT:
        return c->state == AWAIT_CONNECT ? join_all(c) : 0;
    case SIO_CONNECT_ERROR: {
        json_span_t d = {JSON_OBJECT, p.data, p.data_len};
        json_type_of(p.data, p.data_len, &d.type);
        const char *m = d.type == JSON_STRING ? (string_of(c, &d) ? c->tmp.data : "")
                                              : member_text(c, &d, "message");
        buf_puts(err, "the server refused the connection: ");
        put_said(err, m, "no reason given");
        return -EACCES;
    }
    case SIO_DISCONNECT:
        buf_puts(err, "the server disconnected this client");
        return -EACCES;
    case SIO_ACK:
        return on_ack(c, &p, err);
    case SIO_EVENT:
        return on_event(c, &p);
    default:
        return 0; /* binary packets: their attachments are not read */
    }
}

int sio_client_feed(sio_client_t *c, const char *msg, size_t len, buf_t *err)
{
    if (len == 0) {
        buf_puts(err, "an empty Engine.IO message");
        return -EPROTO;
    }
    if (c->state == AWAIT_OPEN) {
        if (msg[0] != '0') {
            buf_puts(err, "expected the Engine.IO open packet, got \"");
            term_text_put(err, msg, len > 40 ? 40 : len);
            buf_putc(err, '"');
            return -EPROTO;
        }
        return on_open(c, msg + 1, len - 1, err);
    }
    switch (msg[0]) {
    case '2': /* ping: the pong carries the same data */
        buf_reset(&c->out);
        buf_putc(&c->out, '3');
        buf_append(&c->out, msg + 1, len - 1);
        return send_buf(c);
    case '1':
        buf_puts(err, "the server closed the Engine.IO session");
        return -ECONNRESET;
    case '4':
        return on_packet(c, msg + 1, len - 1, err);
    case '3':
    case '6':
        return 0;
    default:
        buf_puts(err, "an unknown Engine.IO packet type '");
        term_text_put(err, msg, 1);
        buf_putc(err, '\'');
        return -EPROTO;
    }
}
