/* Unit tests for common/redis/redis_tls: a client session against an in-process OpenSSL server
 * over memory, with a CA and certificates generated at test time: verification on (by name and
 * by IP), refused for another CA or another name, insecure mode, mutual TLS, data both ways,
 * and the startup errors that name the variable. */
#include <errno.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/redis/redis_tls.h"

typedef struct pki {
    char dir[64];
    char ca[128], other_ca[128], client_cert[128], client_key[128], server_cert[128],
        server_key[128];
    EVP_PKEY *ca_key, *server_key_obj;
    X509 *ca_cert, *server_cert_obj;
} pki_t;

static long serial = 1;

static void add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
    assert_non_null(e);
    X509_add_ext(x, e, -1);
    X509_EXTENSION_free(e);
}

static X509 *make_cert(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *issuer_key,
                       const char *san)
{
    X509 *x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_set_pubkey(x, key);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name);
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer ? issuer : x, x, NULL, NULL, 0);
    if (!issuer) {
        add_ext(x, &ctx, NID_basic_constraints, "critical,CA:TRUE");
        add_ext(x, &ctx, NID_key_usage, "critical,keyCertSign,cRLSign");
    }
    if (san)
        add_ext(x, &ctx, NID_subject_alt_name, san);
    assert_true(X509_sign(x, issuer_key ? issuer_key : key, EVP_sha256()) > 0);
    return x;
}

static void write_cert(const char *path, X509 *x)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    PEM_write_X509(f, x);
    fclose(f);
}

static void write_key(const char *path, EVP_PKEY *k)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL);
    fclose(f);
}

static int setup(void **state)
{
    pki_t *p = calloc(1, sizeof(*p));
    strcpy(p->dir, "/tmp/streamio-tls-XXXXXX");
    assert_non_null(mkdtemp(p->dir));
    p->ca_key = EVP_EC_gen("P-256");
    p->ca_cert = make_cert(p->ca_key, "test ca", NULL, NULL, NULL);
    p->server_key_obj = EVP_EC_gen("P-256");
    p->server_cert_obj =
        make_cert(p->server_key_obj, "server", p->ca_cert, p->ca_key, "DNS:localhost,IP:127.0.0.1");
    EVP_PKEY *client_key = EVP_EC_gen("P-256");
    X509 *client = make_cert(client_key, "client", p->ca_cert, p->ca_key, NULL);
    EVP_PKEY *other_key = EVP_EC_gen("P-256");
    X509 *other = make_cert(other_key, "other ca", NULL, NULL, NULL);
    snprintf(p->ca, sizeof(p->ca), "%s/ca.pem", p->dir);
    snprintf(p->other_ca, sizeof(p->other_ca), "%s/other.pem", p->dir);
    snprintf(p->client_cert, sizeof(p->client_cert), "%s/client.pem", p->dir);
    snprintf(p->client_key, sizeof(p->client_key), "%s/client.key", p->dir);
    snprintf(p->server_cert, sizeof(p->server_cert), "%s/server.pem", p->dir);
    snprintf(p->server_key, sizeof(p->server_key), "%s/server.key", p->dir);
    write_cert(p->ca, p->ca_cert);
    write_cert(p->other_ca, other);
    write_cert(p->client_cert, client);
    write_key(p->client_key, client_key);
    write_cert(p->server_cert, p->server_cert_obj);
    write_key(p->server_key, p->server_key_obj);
    X509_free(client);
    X509_free(other);
    EVP_PKEY_free(client_key);
    EVP_PKEY_free(other_key);
    *state = p;
    return 0;
}

static int teardown(void **state)
{
    pki_t *p = *state;
    const char *files[] = {p->ca,         p->other_ca,    p->client_cert,
                           p->client_key, p->server_cert, p->server_key};
    for (size_t i = 0; i < 6; i++)
        unlink(files[i]);
    rmdir(p->dir);
    X509_free(p->ca_cert);
    X509_free(p->server_cert_obj);
    EVP_PKEY_free(p->ca_key);
    EVP_PKEY_free(p->server_key_obj);
    free(p);
    return 0;
}

/* The in-process server: an SSL over two memory BIOs. */
typedef struct server {
    SSL_CTX *ctx;
    SSL *ssl;
    BIO *in, *out;
} server_t;

static void server_init(server_t *s, pki_t *p, bool want_client_cert)
{
    s->ctx = SSL_CTX_new(TLS_server_method());
    SSL_CTX_use_certificate(s->ctx, p->server_cert_obj);
    SSL_CTX_use_PrivateKey(s->ctx, p->server_key_obj);
    if (want_client_cert) {
        SSL_CTX_load_verify_locations(s->ctx, p->ca, NULL);
        SSL_CTX_set_verify(s->ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    }
    s->ssl = SSL_new(s->ctx);
    s->in = BIO_new(BIO_s_mem());
    s->out = BIO_new(BIO_s_mem());
    BIO_set_mem_eof_return(s->in, -1);
    SSL_set_bio(s->ssl, s->in, s->out);
    SSL_set_accept_state(s->ssl);
}

static void server_free(server_t *s)
{
    SSL_free(s->ssl);
    SSL_CTX_free(s->ctx);
}

/* Moves bytes both ways until the client handshake settles; returns its result. */
static int pump(redis_tls_session_t *c, server_t *s)
{
    int rc = -EAGAIN;
    for (int i = 0; i < 20 && rc == -EAGAIN; i++) {
        rc = redis_tls_session_handshake(c);
        char buf[16384];
        size_t n;
        while ((n = redis_tls_session_take(c, buf, sizeof(buf))) > 0)
            BIO_write(s->in, buf, (int)n);
        SSL_do_handshake(s->ssl);
        int m;
        while ((m = BIO_read(s->out, buf, sizeof(buf))) > 0)
            redis_tls_session_feed(c, buf, (size_t)m);
    }
    return rc;
}

static redis_tls_t *ctx_with(const char *ca, const char *cert, const char *key, bool insecure)
{
    redis_tls_opts_t o = {.ca_file = ca, .cert_file = cert, .key_file = key, .insecure = insecure};
    redis_tls_t *t = NULL;
    buf_t err;
    buf_init(&err);
    int rc = redis_tls_new(&t, &o, &err);
    if (rc)
        fail_msg("redis_tls_new: %s", err.data);
    buf_free(&err);
    return t;
}

static void handshake_ok(pki_t *p, const char *name)
{
    redis_tls_t *t = ctx_with(p->ca, NULL, NULL, false);
    redis_tls_session_t *c = redis_tls_session_new(t, name);
    server_t s;
    server_init(&s, p, false);
    assert_int_equal(pump(c, &s), 0);
    assert_string_equal(redis_tls_session_error(c), "");
    /* client -> server */
    assert_int_equal(redis_tls_session_write(c, "*1\r\n$4\r\nPING\r\n", 14), 0);
    char buf[16384];
    size_t n = redis_tls_session_take(c, buf, sizeof(buf));
    BIO_write(s.in, buf, (int)n);
    char got[64];
    int r = SSL_read(s.ssl, got, sizeof(got));
    assert_int_equal(r, 14);
    assert_memory_equal(got, "*1\r\n$4\r\nPING\r\n", 14);
    /* server -> client, fed one byte at a time */
    SSL_write(s.ssl, "+PONG\r\n", 7);
    int m = BIO_read(s.out, buf, sizeof(buf));
    ssize_t k = -EAGAIN;
    for (int i = 0; i < m; i++) {
        redis_tls_session_feed(c, buf + i, 1);
        k = redis_tls_session_read(c, got, sizeof(got));
        if (k != -EAGAIN)
            break;
    }
    assert_int_equal(k, 7);
    assert_memory_equal(got, "+PONG\r\n", 7);
    assert_int_equal(redis_tls_session_read(c, got, sizeof(got)), -EAGAIN);
    /* close_notify reads as 0 */
    SSL_shutdown(s.ssl);
    m = BIO_read(s.out, buf, sizeof(buf));
    redis_tls_session_feed(c, buf, (size_t)m);
    assert_int_equal(redis_tls_session_read(c, got, sizeof(got)), 0);
    redis_tls_session_free(c);
    server_free(&s);
    redis_tls_free(t);
}

static void test_verified_by_name_and_ip(void **state)
{
    handshake_ok(*state, "localhost");
    handshake_ok(*state, "127.0.0.1");
}

static void refused(redis_tls_t *t, pki_t *p, const char *name)
{
    redis_tls_session_t *c = redis_tls_session_new(t, name);
    server_t s;
    server_init(&s, p, false);
    assert_int_equal(pump(c, &s), -EPROTO);
    if (!strstr(redis_tls_session_error(c), "certificate verify failed"))
        fail_msg("error: %s", redis_tls_session_error(c));
    redis_tls_session_free(c);
    server_free(&s);
}

static void test_wrong_name_or_ca_refused(void **state)
{
    pki_t *p = *state;
    redis_tls_t *t = ctx_with(p->ca, NULL, NULL, false);
    refused(t, p, "redis.example.net");
    refused(t, p, "127.0.0.2");
    redis_tls_free(t);
    t = ctx_with(p->other_ca, NULL, NULL, false);
    refused(t, p, "localhost");
    redis_tls_free(t);
}

static void test_insecure_skips_verification(void **state)
{
    pki_t *p = *state;
    redis_tls_t *t = ctx_with(p->other_ca, NULL, NULL, true);
    redis_tls_session_t *c = redis_tls_session_new(t, "anything.example");
    server_t s;
    server_init(&s, p, false);
    assert_int_equal(pump(c, &s), 0);
    redis_tls_session_free(c);
    server_free(&s);
    redis_tls_free(t);
}

static void test_mutual_tls(void **state)
{
    pki_t *p = *state;
    redis_tls_t *t = ctx_with(p->ca, p->client_cert, p->client_key, false);
    redis_tls_session_t *c = redis_tls_session_new(t, "localhost");
    server_t s;
    server_init(&s, p, true);
    assert_int_equal(pump(c, &s), 0);
    assert_int_equal(SSL_is_init_finished(s.ssl), 1);
    X509 *peer = SSL_get1_peer_certificate(s.ssl);
    assert_non_null(peer);
    X509_free(peer);
    redis_tls_session_free(c);
    server_free(&s);
    redis_tls_free(t);
}

static void startup_error(const redis_tls_opts_t *o, const char *want)
{
    redis_tls_t *t = NULL;
    buf_t err;
    buf_init(&err);
    assert_int_equal(redis_tls_new(&t, o, &err), -EINVAL);
    assert_null(t);
    if (!err.data || !strstr(err.data, want))
        fail_msg("error '%s' lacks '%s'", err.data ? err.data : "", want);
    assert_null(strchr(err.data, '\n'));
    buf_free(&err);
}

static void test_startup_errors_name_the_variable(void **state)
{
    pki_t *p = *state;
    redis_tls_opts_t o = {.ca_file = "/nonexistent/ca.pem"};
    startup_error(&o, "streamio: invalid REDIS_TLS_CA_FILE=\"/nonexistent/ca.pem\"");
    o = (redis_tls_opts_t){.ca_file = p->client_key}; /* a key is no CA */
    startup_error(&o, "REDIS_TLS_CA_FILE");
    o = (redis_tls_opts_t){.ca_file = p->ca, .cert_file = p->client_cert};
    startup_error(&o, "REDIS_TLS_KEY_FILE");
    o = (redis_tls_opts_t){.ca_file = p->ca, .key_file = p->client_key};
    startup_error(&o, "REDIS_TLS_CERT_FILE");
    o = (redis_tls_opts_t){
        .ca_file = p->ca, .cert_file = p->client_cert, .key_file = p->server_key};
    startup_error(&o, "mismatch"); /* OpenSSL checks the pair as it loads the key */
    o = (redis_tls_opts_t){
        .ca_file = p->ca, .cert_file = "/nonexistent", .key_file = p->client_key};
    startup_error(&o, "invalid REDIS_TLS_CERT_FILE=\"/nonexistent\"");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_verified_by_name_and_ip),
        cmocka_unit_test(test_wrong_name_or_ca_refused),
        cmocka_unit_test(test_insecure_skips_verification),
        cmocka_unit_test(test_mutual_tls),
        cmocka_unit_test(test_startup_errors_name_the_variable),
    };
    return cmocka_run_group_tests_name("redis_tls", tests, setup, teardown);
}
