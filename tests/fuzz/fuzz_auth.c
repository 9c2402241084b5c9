/*
 * Fuzzes worker/auth on what a client controls: the CONNECT payload the token is taken from, the
 * token itself (HS256 verifier with a fixed secret; signed claims are covered by the unit tests).
 * Patterns are fuzz_glob's.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "common/buf.h"
#include "common/config.h"
#include "common/auth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static auth_t *verifier(void)
{
    static auth_t *a;
    if (!a) {
        static cfg_t cfg;
        cfg.auth_enabled = true;
        strcpy(cfg.auth_jwt_secret, "0123456789abcdef0123456789abcdef");
        buf_t err;
        buf_init(&err);
        if (auth_new(&a, &cfg, &err) != 0)
            __builtin_trap();
        buf_free(&err);
    }
    return a;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    buf_t tok;
    buf_init(&tok);
    int rc = auth_token_from_connect(in, size, &tok);
    if (rc == 0 && tok.len > AUTH_MAX_TOKEN)
        __builtin_trap();
    auth_grant_t *g = NULL;
    const char *why = NULL;
    rc = auth_verify(verifier(), in, size, 1700000000, &g, &why);
    if (rc == 0) {
        if (!g || why)
            __builtin_trap();
        auth_grant_allows(g, "room", 4);
        auth_grant_free(g);
    } else if (rc != -EACCES || !why || g) {
        __builtin_trap();
    }
    buf_free(&tok);
    return 0;
}
