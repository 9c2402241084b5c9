/*
 * auth: libjwt checks the signature; everything about the claims is read here from the claims
 * JSON with common/json, so the rules (types, leeway, audience arrays) are ours and tested.
 */
#include "common/auth.h"

#include <errno.h>
#include <jwt.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/glob.h"
#include "common/json.h"
#include "common/xalloc.h"

/* A PEM public key is a few hundred bytes; anything far larger is not one. */
#define KEY_FILE_MAX 65536
#define RSA_MIN_BITS 2048

struct auth {
    bool enabled;
    jwt_alg_t alg;
    unsigned char *key; /* secret bytes, or the PEM text */
    size_t key_len;
    char issuer[256];
    char audience[256];
    int64_t leeway;
};

struct auth_grant {
    int64_t exp;
    glob_list_t *rooms;   /* empty: no room */
    glob_list_t *publish; /* NULL: no `publish` claim */
    char *sub;            /* NULL: no `sub` claim (or not a string of 1..AUTH_MAX_SUBJECT bytes) */
};

static int key_error(buf_t *err, const char *path, const char *expected)
{
    buf_printf(err, "streamio: invalid AUTH_JWT_PUBLIC_KEY_FILE=\"%s\": expected %s", path,
               expected);
    return -EINVAL;
}

static int read_file(const char *path, unsigned char **out, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -errno;
    unsigned char *p = xmalloc(KEY_FILE_MAX + 1);
    size_t n = fread(p, 1, KEY_FILE_MAX + 1, f);
    int rc = ferror(f) ? -EIO : n > KEY_FILE_MAX ? -E2BIG : 0;
    fclose(f);
    if (rc) {
        free(p);
        return rc;
    }
    p[n] = '\0';
    *out = p;
    *len = n;
    return 0;
}

/* The algorithm a PEM public key is for, or JWT_ALG_INVAL. */
static jwt_alg_t key_alg(const unsigned char *pem, size_t len)
{
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    if (!bio) /* NULL only when OpenSSL cannot allocate it */
        xalloc_die(sizeof(bio));
    EVP_PKEY *pk = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
    BIO_free(bio);
    if (!pk)
        return JWT_ALG_INVAL;
    jwt_alg_t alg = JWT_ALG_INVAL;
    char group[64];
    size_t glen = 0;
    if (EVP_PKEY_get_base_id(pk) == EVP_PKEY_RSA && EVP_PKEY_get_bits(pk) >= RSA_MIN_BITS)
        alg = JWT_ALG_RS256;
    else if (EVP_PKEY_get_base_id(pk) == EVP_PKEY_EC &&
             EVP_PKEY_get_utf8_string_param(pk, "group", group, sizeof(group), &glen) == 1 &&
             strcmp(group, "prime256v1") == 0)
        alg = JWT_ALG_ES256;
    EVP_PKEY_free(pk);
    return alg;
}

int auth_new(auth_t **out, const cfg_t *cfg, buf_t *err)
{
    auth_t *a = xcalloc(1, sizeof(*a));
    a->enabled = cfg->auth_enabled;
    a->leeway = cfg->auth_jwt_leeway_s;
    snprintf(a->issuer, sizeof(a->issuer), "%s", cfg->auth_jwt_issuer);
    snprintf(a->audience, sizeof(a->audience), "%s", cfg->auth_jwt_audience);
    if (!a->enabled) {
        *out = a;
        return 0;
    }
    int rc = 0;
    const char *path = cfg->auth_jwt_public_key_file;
    if (cfg->auth_jwt_secret[0]) {
        a->alg = JWT_ALG_HS256;
        a->key_len = strlen(cfg->auth_jwt_secret);
        a->key = xmalloc(a->key_len);
        memcpy(a->key, cfg->auth_jwt_secret, a->key_len);
    } else if (path[0] == '\0') {
        buf_puts(err, "streamio: invalid AUTH_ENABLED=\"true\": expected AUTH_JWT_SECRET or "
                      "AUTH_JWT_PUBLIC_KEY_FILE");
        rc = -EINVAL;
    } else {
        rc = read_file(path, &a->key, &a->key_len);
        if (rc)
            rc = key_error(err, path, "a readable file of at most 64 KiB");
        else if (rc == 0 && (a->alg = key_alg(a->key, a->key_len)) == JWT_ALG_INVAL)
            rc = key_error(err, path, "a PEM RSA (2048 bits or more) or P-256 EC public key");
    }
    if (rc) {
        auth_free(a);
        return rc;
    }
    *out = a;
    return 0;
}

void auth_free(auth_t *a)
{
    if (!a)
        return;
    if (a->key) {
        /* the secret should not outlive its use in freed heap memory */
        volatile unsigned char *k = a->key;
        for (size_t i = 0; i < a->key_len; i++)
            k[i] = 0;
        free(a->key);
    }
    free(a);
}

bool auth_enabled(const auth_t *a)
{
    return a && a->enabled;
}

/* ---- claims ---- */

typedef struct claims {
    json_span_t exp, nbf, iss, aud, rooms, publish, sub;
} claims_t;

static bool key_is(const char *lit, size_t len, const char *name, buf_t *tmp)
{
    buf_reset(tmp);
    return json_string_decode(lit, len, tmp) == 0 && tmp->len == strlen(name) &&
           memcmp(tmp->data, name, tmp->len) == 0;
}

/*
 * Finds the members we read in validated object text; a repeated key keeps its last value (what
 * JSON.parse and jansson do). Members absent keep p == NULL.
 */
static int read_claims(const char *in, size_t len, claims_t *c, buf_t *tmp)
{
    memset(c, 0, sizeof(*c));
    struct {
        const char *name;
        json_span_t *span;
    } want[] = {{"exp", &c->exp},     {"nbf", &c->nbf},         {"iss", &c->iss}, {"aud", &c->aud},
                {"rooms", &c->rooms}, {"publish", &c->publish}, {"sub", &c->sub}};
    size_t pos = json_skip_ws(in, len, 0);
    if (pos >= len || in[pos] != '{')
        return -EINVAL;
    pos = json_skip_ws(in, len, pos + 1);
    while (pos < len && in[pos] != '}') {
        size_t kend = json_value_end(in, len, pos);
        size_t v = json_skip_ws(in, len, json_skip_ws(in, len, kend) + 1); /* past ':' */
        size_t vend = json_value_end(in, len, v);
        json_span_t val = {JSON_NULL, in + v, vend - v};
        if (json_type_of(val.p, val.len, &val.type) != 0)
            return -EINVAL;
        for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
            if (key_is(in + pos, kend - pos, want[i].name, tmp))
                *want[i].span = val;
        }
        pos = json_skip_ws(in, len, vend);
        if (pos < len && in[pos] == ',')
            pos = json_skip_ws(in, len, pos + 1);
    }
    return 0;
}

static bool string_equals(const json_span_t *s, const char *want, buf_t *tmp)
{
    if (s->type != JSON_STRING)
        return false;
    buf_reset(tmp);
    return json_string_decode(s->p, s->len, tmp) == 0 && tmp->len == strlen(want) &&
           memcmp(tmp->data, want, tmp->len) == 0;
}

static bool audience_ok(const json_span_t *aud, const char *want, buf_t *tmp)
{
    if (aud->p == NULL)
        return false;
    if (aud->type != JSON_ARRAY)
        return string_equals(aud, want, tmp);
    size_t pos = json_skip_ws(aud->p, aud->len, 1);
    while (pos < aud->len && aud->p[pos] != ']') {
        size_t end = json_value_end(aud->p, aud->len, pos);
        json_span_t item = {JSON_NULL, aud->p + pos, end - pos};
        if (json_type_of(item.p, item.len, &item.type) == 0 && string_equals(&item, want, tmp))
            return true;
        pos = json_skip_ws(aud->p, aud->len, end);
        if (pos < aud->len && aud->p[pos] == ',')
            pos = json_skip_ws(aud->p, aud->len, pos + 1);
    }
    return false;
}

static int number_of(const json_span_t *s, double *out)
{
    if (s->type != JSON_NUMBER)
        return -EINVAL;
    return json_number_parse(s->p, s->len, out);
}

/*
 * The grant: `rooms` absent = nothing allowed, a string = one pattern; `publish` absent = no gate
 * (NULL), else the same shapes; `sub` kept when it is a string (a number is written as JSON has
 * it, as socket.io back ends compare user ids as strings).
 */
static int build_grant(const claims_t *c, int64_t exp, auth_grant_t **out, const char **reason)
{
    auth_grant_t *g = xcalloc(1, sizeof(*g));
    g->exp = exp;
    static const json_span_t none = {JSON_ARRAY, "[]", 2};
    int rc = 0;
    if (glob_list_from_json(c->rooms.p ? &c->rooms : &none, AUTH_MAX_ROOM_PATTERNS,
                            AUTH_MAX_PATTERN, &g->rooms) != 0) {
        *reason = AUTH_ERR_ROOMS;
        rc = -EACCES;
    } else if (c->publish.p && glob_list_from_json(&c->publish, AUTH_MAX_ROOM_PATTERNS,
                                                   AUTH_MAX_PATTERN, &g->publish) != 0) {
        *reason = AUTH_ERR_PUBLISH;
        rc = -EACCES;
    } else if (c->sub.p) {
        buf_t tmp;
        buf_init(&tmp);
        if (c->sub.type == JSON_STRING)
            (void)json_string_decode(c->sub.p, c->sub.len, &tmp);
        else if (c->sub.type == JSON_NUMBER)
            buf_append(&tmp, c->sub.p, c->sub.len);
        if (tmp.len > 0 && tmp.len <= AUTH_MAX_SUBJECT && !memchr(tmp.data, '\0', tmp.len))
            g->sub = xmemdup(tmp.data, tmp.len);
        buf_free(&tmp);
    }
    if (rc) {
        auth_grant_free(g);
        return rc;
    }
    *out = g;
    return 0;
}

static int check_claims(const auth_t *a, const char *json, size_t len, int64_t now,
                        auth_grant_t **out, const char **reason)
{
    claims_t c;
    double exp, nbf;
    buf_t tmp;
    buf_init(&tmp);
    int rc = -EACCES;
    *reason = AUTH_ERR_INVALID;
    if (json_validate(json, len) != 0 || read_claims(json, len, &c, &tmp) != 0)
        goto done;
    if (c.exp.p == NULL || number_of(&c.exp, &exp) != 0)
        goto done;
    *reason = AUTH_ERR_EXPIRED;
    if (!((double)now < exp + (double)a->leeway))
        goto done;
    *reason = AUTH_ERR_NOT_YET;
    if (c.nbf.p && (number_of(&c.nbf, &nbf) != 0 || (double)now + (double)a->leeway < nbf))
        goto done;
    *reason = AUTH_ERR_ISSUER;
    if (a->issuer[0] && (c.iss.p == NULL || !string_equals(&c.iss, a->issuer, &tmp)))
        goto done;
    *reason = AUTH_ERR_AUDIENCE;
    if (a->audience[0] && !audience_ok(&c.aud, a->audience, &tmp))
        goto done;
    /* in the future here; clamped so that callers' arithmetic on it cannot overflow */
    rc = build_grant(&c, exp > (double)AUTH_EXP_MAX ? AUTH_EXP_MAX : (int64_t)exp, out, reason);
    if (rc == 0)
        *reason = NULL;
done:
    buf_free(&tmp);
    return rc;
}

/* A compact JWS: three base64url parts (the signature may not be empty). */
static bool well_formed(const char *t, size_t len)
{
    size_t dots = 0;
    for (size_t i = 0; i < len; i++) {
        char ch = t[i];
        if (ch == '.')
            dots++;
        else if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
                   (ch >= '0' && ch <= '9') || ch == '-' || ch == '_'))
            return false;
    }
    return dots == 2 && t[0] != '.' && t[len - 1] != '.';
}

int auth_verify(const auth_t *a, const char *token, size_t len, int64_t now_s, auth_grant_t **out,
                const char **reason)
{
    if (!auth_enabled(a))
        return -EINVAL;
    *reason = len == 0 ? AUTH_ERR_MISSING : AUTH_ERR_INVALID;
    if (len == 0 || len > AUTH_MAX_TOKEN || !well_formed(token, len))
        return -EACCES;
    char *z = xmalloc(len + 1);
    memcpy(z, token, len);
    z[len] = '\0';
    jwt_t *jwt = NULL;
    int rc = jwt_decode(&jwt, z, a->key, (int)a->key_len);
    free(z);
    if (rc == ENOMEM) /* libjwt's only out-of-memory report: its allocations failed */
        xalloc_die(len);
    /* the key decides the algorithm: never the token's header */
    if (rc != 0 || !jwt || jwt_get_alg(jwt) != a->alg) {
        jwt_free(jwt);
        return -EACCES;
    }
    char *claims = jwt_get_grants_json(jwt, NULL);
    jwt_free(jwt);
    if (!claims)
        return -EACCES;
    rc = check_claims(a, claims, strlen(claims), now_s, out, reason);
    free(claims);
    return rc;
}

void auth_grant_free(auth_grant_t *g)
{
    if (!g)
        return;
    glob_list_free(g->rooms);
    glob_list_free(g->publish);
    free(g->sub);
    free(g);
}

int64_t auth_grant_expires(const auth_grant_t *g)
{
    return g->exp;
}

bool auth_grant_allows(const auth_grant_t *g, const char *room, size_t len)
{
    return g && glob_list_match(g->rooms, room, len);
}

const char *auth_grant_subject(const auth_grant_t *g)
{
    return g ? g->sub : NULL;
}

bool auth_grant_gates_publish(const auth_grant_t *g)
{
    return g && g->publish;
}

bool auth_grant_may_publish(const auth_grant_t *g, const char *name, size_t len)
{
    return g && (!g->publish || glob_list_match(g->publish, name, len));
}

bool auth_room_allowed(const auth_t *a, const auth_grant_t *g, const char *room, size_t len)
{
    return !auth_enabled(a) || auth_grant_allows(g, room, len);
}

int auth_token_from_connect(const char *json, size_t len, buf_t *out)
{
    buf_reset(out);
    json_type_t t;
    if (!json || json_validate(json, len) != 0 || json_type_of(json, len, &t) != 0 ||
        t != JSON_OBJECT)
        return -ENOENT;
    buf_t tmp;
    buf_init(&tmp);
    json_span_t tok = {JSON_NULL, NULL, 0};
    size_t pos = json_skip_ws(json, len, json_skip_ws(json, len, 0) + 1);
    while (pos < len && json[pos] != '}') {
        size_t kend = json_value_end(json, len, pos);
        size_t v = json_skip_ws(json, len, json_skip_ws(json, len, kend) + 1);
        size_t vend = json_value_end(json, len, v);
        if (key_is(json + pos, kend - pos, "token", &tmp)) {
            tok.p = json + v;
            tok.len = vend - v;
            json_type_of(tok.p, tok.len, &tok.type);
        }
        pos = json_skip_ws(json, len, vend);
        if (pos < len && json[pos] == ',')
            pos = json_skip_ws(json, len, pos + 1);
    }
    buf_free(&tmp);
    if (!tok.p || tok.type != JSON_STRING)
        return -ENOENT;
    size_t n;
    if (json_string_decoded_len(tok.p, tok.len, &n) != 0)
        return -ENOENT;
    if (n > AUTH_MAX_TOKEN)
        return -E2BIG;
    (void)json_string_decode(tok.p, tok.len, out); /* valid: json_string_decoded_len said so */
    return 0;
}
