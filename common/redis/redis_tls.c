/* redis_tls: see redis_tls.h. OpenSSL keeps its error queue per thread, so every operation
 * starts from a cleared queue and reads its own reason right after failing. */
#include "common/redis/redis_tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"

struct redis_tls {
    SSL_CTX *ctx;
    bool insecure;
};

struct redis_tls_session {
    SSL *ssl;
    BIO *rbio; /* network -> OpenSSL; owned by ssl */
    BIO *wbio; /* OpenSSL -> network; owned by ssl */
    char err[256];
};

/* The reason of the last OpenSSL error, e.g. "no such file" or "tlsv1 alert unknown ca". */
static const char *last_reason(void)
{
    unsigned long e = ERR_peek_last_error();
    const char *r = e ? ERR_reason_error_string(e) : NULL;
    return r ? r : "unknown error";
}

static int file_error(buf_t *err, const char *var, const char *path, const char *what)
{
    buf_printf(err, "streamio: invalid %s=\"%s\": %s (%s)", var, path, what, last_reason());
    return -EINVAL;
}

static bool set(const char *s)
{
    return s && *s;
}

static int load_files(SSL_CTX *ctx, const redis_tls_opts_t *o, buf_t *err)
{
    if (set(o->ca_file)) {
        if (SSL_CTX_load_verify_locations(ctx, o->ca_file, NULL) != 1)
            return file_error(err, "REDIS_TLS_CA_FILE", o->ca_file, "cannot load CA certificates");
    } else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
        buf_printf(err, "streamio: invalid REDIS_TLS_CA_FILE=\"\": the system CA store cannot "
                        "be loaded; name a CA file");
        return -EINVAL;
    }
    if (set(o->cert_file) != set(o->key_file)) {
        buf_printf(err, "streamio: invalid %s=\"\": expected with %s (mutual TLS needs both)",
                   set(o->cert_file) ? "REDIS_TLS_KEY_FILE" : "REDIS_TLS_CERT_FILE",
                   set(o->cert_file) ? "REDIS_TLS_CERT_FILE" : "REDIS_TLS_KEY_FILE");
        return -EINVAL;
    }
    if (!set(o->cert_file))
        return 0;
    if (SSL_CTX_use_certificate_chain_file(ctx, o->cert_file) != 1)
        return file_error(err, "REDIS_TLS_CERT_FILE", o->cert_file, "cannot load the certificate");
    /* OpenSSL also checks here that the key is the certificate's ("key values mismatch") */
    if (SSL_CTX_use_PrivateKey_file(ctx, o->key_file, SSL_FILETYPE_PEM) != 1)
        return file_error(err, "REDIS_TLS_KEY_FILE", o->key_file, "cannot load the private key");
    return 0;
}

int redis_tls_new(redis_tls_t **out, const redis_tls_opts_t *o, buf_t *err)
{
    ERR_clear_error();
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx)
        xalloc_die(0);
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_verify(ctx, o->insecure ? SSL_VERIFY_NONE : SSL_VERIFY_PEER, NULL);
    int rc = load_files(ctx, o, err);
    if (rc) {
        SSL_CTX_free(ctx);
        return rc;
    }
    redis_tls_t *t = xcalloc(1, sizeof(*t));
    t->ctx = ctx;
    t->insecure = o->insecure;
    *out = t;
    return 0;
}

void redis_tls_free(redis_tls_t *t)
{
    if (!t)
        return;
    SSL_CTX_free(t->ctx);
    free(t);
}

static bool is_ip(const char *name)
{
    unsigned char a[16];
    return inet_pton(AF_INET, name, a) == 1 || inet_pton(AF_INET6, name, a) == 1;
}

redis_tls_session_t *redis_tls_session_new(redis_tls_t *t, const char *server_name)
{
    ERR_clear_error();
    redis_tls_session_t *s = xcalloc(1, sizeof(*s));
    s->ssl = SSL_new(t->ctx);
    if (!s->ssl)
        xalloc_die(0);
    s->rbio = BIO_new(BIO_s_mem());
    if (!s->rbio)
        xalloc_die(0);
    s->wbio = BIO_new(BIO_s_mem());
    if (!s->wbio)
        xalloc_die(0);
    /* an empty input BIO means "more data later", not end of stream */
    BIO_set_mem_eof_return(s->rbio, -1);
    SSL_set_bio(s->ssl, s->rbio, s->wbio);
    SSL_set_connect_state(s->ssl);
    bool ip = is_ip(server_name);
    if (!ip)
        SSL_set_tlsext_host_name(s->ssl, server_name);
    if (!t->insecure) {
        if (ip)
            X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(s->ssl), server_name);
        else
            SSL_set1_host(s->ssl, server_name);
    }
    return s;
}

void redis_tls_session_free(redis_tls_session_t *s)
{
    if (!s)
        return;
    SSL_free(s->ssl);
    free(s);
}

void redis_tls_session_feed(redis_tls_session_t *s, const char *p, size_t n)
{
    while (n) {
        int chunk = n > (1u << 30) ? 1 << 30 : (int)n;
        int w = BIO_write(s->rbio, p, chunk);
        if (w <= 0)
            xalloc_die(0); /* a memory BIO only refuses when it cannot grow */
        p += w;
        n -= (size_t)w;
    }
}

/* Records why an SSL call failed; returns -EAGAIN when it only wants more input. */
static int ssl_fail(redis_tls_session_t *s, int ret)
{
    int e = SSL_get_error(s->ssl, ret);
    if (e == SSL_ERROR_WANT_READ)
        return -EAGAIN;
    long v = SSL_get_verify_result(s->ssl);
    if (v != X509_V_OK)
        snprintf(s->err, sizeof(s->err), "certificate verify failed: %s",
                 X509_verify_cert_error_string(v));
    else if (e == SSL_ERROR_ZERO_RETURN)
        snprintf(s->err, sizeof(s->err), "closed by the server");
    else
        snprintf(s->err, sizeof(s->err), "%s", last_reason());
    return -EPROTO;
}

int redis_tls_session_handshake(redis_tls_session_t *s)
{
    ERR_clear_error();
    int r = SSL_do_handshake(s->ssl);
    return r == 1 ? 0 : ssl_fail(s, r);
}

ssize_t redis_tls_session_read(redis_tls_session_t *s, char *out, size_t cap)
{
    ERR_clear_error();
    int want = cap > INT32_MAX ? INT32_MAX : (int)cap;
    int r = SSL_read(s->ssl, out, want);
    if (r > 0)
        return r;
    if (SSL_get_error(s->ssl, r) == SSL_ERROR_ZERO_RETURN)
        return 0;
    return ssl_fail(s, r);
}

int redis_tls_session_write(redis_tls_session_t *s, const char *p, size_t n)
{
    while (n) {
        ERR_clear_error();
        int chunk = n > (1u << 30) ? 1 << 30 : (int)n;
        int r = SSL_write(s->ssl, p, chunk);
        if (r <= 0) {
            ssl_fail(s, r);
            return -EPROTO;
        }
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

size_t redis_tls_session_pending(const redis_tls_session_t *s)
{
    return BIO_ctrl_pending(s->wbio);
}

size_t redis_tls_session_take(redis_tls_session_t *s, char *out, size_t cap)
{
    int want = cap > INT32_MAX ? INT32_MAX : (int)cap;
    int r = want ? BIO_read(s->wbio, out, want) : 0;
    return r > 0 ? (size_t)r : 0;
}

const char *redis_tls_session_error(const redis_tls_session_t *s)
{
    return s->err;
}
