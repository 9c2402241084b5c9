/* sio_packet: Socket.IO v5 text packet codec (protocol.md §2.1, §2.2). */
#include "common/proto/sio_packet.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "common/decimal.h"
#include "common/hex.h"
#include "common/json.h"

static const char root_nsp[] = "/";

static const struct {
    const char *name;
    size_t len;
} reserved_events[] = {
    {"connect", 7},        {"connect_error", 13}, {"disconnect", 10},
    {"disconnecting", 13}, {"newListener", 11},   {"removeListener", 14},
};

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/*
 * `s` is a valid JSON string token, quotes included. Escapes are decoded because Node compares
 * the parsed value: "\u0063onnect" is as reserved as "connect".
 */
static bool is_reserved_event(const char *s, size_t n)
{
    char name[16];
    size_t k = 0;

    for (size_t i = 1; i + 1 < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\\') {
            c = (unsigned char)s[++i];
            if (c == 'u') {
                unsigned code = 0;
                for (int d = 0; d < 4; d++)
                    code = code * 16 + (unsigned)hex_digit(s[++i]);
                if (code > 0x7f)
                    return false;
                c = (unsigned char)code;
            } else if (c != '"' && c != '\\' && c != '/') {
                return false; /* \b \f \n \r \t: no reserved name holds a control character */
            }
        }
        if (k == sizeof(name))
            return false;
        name[k++] = (char)c;
    }
    for (size_t r = 0; r < sizeof(reserved_events) / sizeof(reserved_events[0]); r++) {
        if (reserved_events[r].len == k && memcmp(reserved_events[r].name, name, k) == 0)
            return true;
    }
    return false;
}

static bool event_payload_ok(const char *p, size_t n)
{
    json_span_t first;
    size_t count = 0;

    /* -E2BIG only says there are more elements than the one asked for. */
    int rc = json_array_items(p, n, &first, 1, &count);
    if ((rc != 0 && rc != -E2BIG) || count == 0)
        return false;
    if (first.type == JSON_NUMBER)
        return true;
    return first.type == JSON_STRING && !is_reserved_event(first.p, first.len);
}

/* Applies the §2.1 payload rule; p/n is the non-empty rest of the packet. */
static bool payload_ok(int type, const char *p, size_t n)
{
    json_type_t t;

    if (type == SIO_DISCONNECT)
        return false;
    if (json_validate(p, n) != 0 || json_type_of(p, n, &t) != 0)
        return false;
    switch (type) {
    case SIO_CONNECT:
        return t == JSON_OBJECT;
    case SIO_CONNECT_ERROR:
        return t == JSON_OBJECT || t == JSON_STRING;
    case SIO_EVENT:
    case SIO_BINARY_EVENT:
        return t == JSON_ARRAY && event_payload_ok(p, n);
    default:
        return t == JSON_ARRAY;
    }
}

static bool payload_may_be_absent(int type)
{
    return type == SIO_CONNECT || type == SIO_DISCONNECT;
}

int sio_packet_decode(const char *in, size_t len, sio_packet_t *out)
{
    if (len == 0 || in[0] < '0' || in[0] > '6')
        return -EPROTO;

    memset(out, 0, sizeof(*out));
    out->type = in[0] - '0';
    out->nsp = root_nsp;
    out->nsp_len = 1;
    size_t i = 1;

    if (out->type == SIO_BINARY_EVENT || out->type == SIO_BINARY_ACK) {
        /* the bound is on the value: socket.io-parser reads the count with Number(), leading
         * zeros and all; a count past 64 bits stops before a digit, not at the '-' */
        uint64_t n;
        size_t digits = decimal_read(in + i, len - i, SIZE_MAX, &n);
        i += digits;
        if (digits == 0 || n == 0 || n > SIO_MAX_ATTACHMENTS || i == len || in[i] != '-')
            return -EPROTO;
        out->attachments = (unsigned)n;
        i++;
    }

    if (i < len && in[i] == '/') {
        const char *comma = memchr(in + i, ',', len - i);
        size_t end = comma ? (size_t)(comma - in) : len;
        out->nsp = in + i;
        out->nsp_len = end - i;
        i = comma ? end + 1 : len;
    }

    if (i < len && is_digit(in[i])) {
        uint64_t id;
        i += decimal_read(in + i, len - i, SIZE_MAX, &id);
        if (i < len && is_digit(in[i])) /* past UINT64_MAX */
            return -EPROTO;
        out->has_id = true;
        out->id = id;
    }

    if (i == len)
        return payload_may_be_absent(out->type) ? 0 : -EPROTO;
    if (!payload_ok(out->type, in + i, len - i))
        return -EPROTO;
    out->data = in + i;
    out->data_len = len - i;
    return 0;
}

static bool nsp_is_root(const char *nsp, size_t nsp_len)
{
    return nsp == NULL || nsp_len == 0 || (nsp_len == 1 && nsp[0] == '/');
}

static bool nsp_valid(const char *nsp, size_t nsp_len)
{
    return nsp_is_root(nsp, nsp_len) || (nsp[0] == '/' && memchr(nsp, ',', nsp_len) == NULL);
}

/* Appends the namespace (with its ',') unless it is "/", then the ack id if any. */
static void put_nsp_id(buf_t *out, const char *nsp, size_t nsp_len, const uint64_t *id)
{
    if (!nsp_is_root(nsp, nsp_len)) {
        buf_append(out, nsp, nsp_len);
        buf_putc(out, ',');
    }
    if (id)
        buf_printf(out, "%" PRIu64, *id);
}

int sio_packet_encode(buf_t *out, int type, const char *nsp, size_t nsp_len, const uint64_t *id,
                      const char *json, size_t json_len)
{
    if (type < SIO_CONNECT || type > SIO_CONNECT_ERROR || !nsp_valid(nsp, nsp_len))
        return -EINVAL;

    char head[2] = {'4', (char)('0' + type)};
    buf_append(out, head, sizeof(head));
    put_nsp_id(out, nsp, nsp_len, id);
    buf_append(out, json, json_len);
    return 0;
}

int sio_packet_encode_binary(buf_t *out, int type, unsigned attachments, const char *nsp,
                             size_t nsp_len, const uint64_t *id, const char *json, size_t json_len)
{
    if ((type != SIO_BINARY_EVENT && type != SIO_BINARY_ACK) || attachments == 0 ||
        attachments > SIO_MAX_ATTACHMENTS || !nsp_valid(nsp, nsp_len))
        return -EINVAL;

    buf_printf(out, "4%d%u-", type, attachments);
    put_nsp_id(out, nsp, nsp_len, id);
    buf_append(out, json, json_len);
    return 0;
}

int sio_packet_encode_event(buf_t *out, const char *nsp, size_t nsp_len, const char *event,
                            const char *args_json, size_t args_len)
{
    if (!nsp_valid(nsp, nsp_len) || event == NULL)
        return -EINVAL;

    buf_append(out, "42", 2);
    put_nsp_id(out, nsp, nsp_len, NULL);
    buf_putc(out, '[');
    json_write_string(out, event, strlen(event));
    if (args_len > 0) {
        buf_putc(out, ',');
        buf_append(out, args_json, args_len);
    }
    buf_putc(out, ']');
    return 0;
}
