/* conformance: see conformance.h. Per socket: the namespaces whose `auth` emit is due. */
#include "worker/sio/conformance.h"

#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"
#include "worker/net/timerq.h"

struct conformance {
    sio_t *sio;
    int slot;
    timerq_t *authq;
    buf_t json; /* the payload being answered */
    buf_t out;  /* the packet */
};

typedef struct pending {
    timerq_node_t node; /* first: the queue hands it back */
    sio_socket_t *s;
    uint32_t nsps; /* namespaces whose `auth` emit is due */
} pending_t;

static void on_auth_due(timerq_node_t *n, void *arg)
{
    (void)arg;
    pending_t *p = (pending_t *)n;
    for (unsigned i = 0; i < SIO_NSP_MAX; i++) {
        if ((p->nsps & (1u << i)) && sio_socket_connected(p->s, i)) {
            const char *auth = sio_socket_auth(p->s, i);
            sio_socket_emit(p->s, i, "auth", auth, strlen(auth));
        }
    }
    p->nsps = 0;
}

static void on_connected(void *arg, sio_socket_t *s, unsigned nsp)
{
    conformance_t *c = arg;
    pending_t *p = sio_socket_ext(s, c->slot);
    if (!p) {
        p = xcalloc(1, sizeof(*p));
        p->s = s;
        sio_socket_set_ext(s, c->slot, p);
    }
    p->nsps |= 1u << nsp;
    if (!timerq_armed(&p->node))
        timerq_add(c->authq, &p->node);
}

static void on_freed(void *arg, sio_socket_t *s)
{
    conformance_t *c = arg;
    pending_t *p = sio_socket_ext(s, c->slot);
    if (!p)
        return;
    timerq_remove(c->authq, &p->node);
    free(p);
}

/*
 * `message` → `message-back` with the same arguments, `message-with-ack` → the ack with the same
 * arguments; attachments are sent back unchanged after the packet.
 */
static void on_event(void *arg, sio_socket_t *s, const sio_event_t *ev)
{
    conformance_t *c = arg;
    const json_span_t *name = &ev->args[0];
    const sio_packet_t *pk = ev->pk;
    bool back = name->len == 9 && memcmp(name->p, "\"message\"", 9) == 0;
    bool ack = name->len == 18 && memcmp(name->p, "\"message-with-ack\"", 18) == 0;
    if (!back && !(ack && pk->has_id))
        return;
    const char *args = ev->rest;
    size_t args_len = ev->rest_len;
    buf_reset(&c->json);
    if (back) {
        buf_puts(&c->json, "[\"message-back\"");
        buf_append(&c->json, args, args_len);
    } else {
        buf_putc(&c->json, '[');
        buf_append(&c->json, args[0] == ',' ? args + 1 : args,
                   args[0] == ',' ? args_len - 1 : args_len);
    }
    buf_reset(&c->out);
    const uint64_t *id = ack ? &pk->id : NULL;
    if (ev->natt)
        sio_packet_encode_binary(&c->out, back ? SIO_BINARY_EVENT : SIO_BINARY_ACK, ev->natt,
                                 pk->nsp, pk->nsp_len, id, c->json.data, c->json.len);
    else
        sio_packet_encode(&c->out, back ? SIO_EVENT : SIO_ACK, pk->nsp, pk->nsp_len, id,
                          c->json.data, c->json.len);
    eio_msg_t *m = eio_msg_new(c->out.data, c->out.len, ev->atts, ev->atts_len, ev->natt);
    sio_socket_send_msg(s, m);
    eio_msg_unref(m);
}

int conformance_new(conformance_t **out, uv_loop_t *loop, sio_t *sio)
{
    conformance_t *c = xcalloc(1, sizeof(*c));
    c->sio = sio;
    buf_init(&c->json);
    buf_init(&c->out);
    int rc = timerq_new(&c->authq, loop, AUTH_EMIT_DELAY_MS, on_auth_due, c);
    if (rc) {
        free(c);
        return rc;
    }
    c->slot =
        sio_observe(sio, &(sio_observer_t){.arg = c,
                                           .connected = on_connected,
                                           .event = on_event,
                                           .reads_attachments = true, /* the echo sends them back */
                                           .freed = on_freed});
    *out = c;
    return 0;
}

void conformance_free(conformance_t *c)
{
    if (!c)
        return;
    timerq_close(c->authq);
    buf_free(&c->json);
    buf_free(&c->out);
    free(c);
}
