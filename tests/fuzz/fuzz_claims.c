/*
 * Fuzzes common/auth's claim rules past the signature: the input is a claims object, signed here
 * with libjwt (HS256, the verifier's secret) and verified. A token is either refused with one of
 * the documented reasons or granted; a grant's `sub` is 1..AUTH_MAX_SUBJECT bytes without NUL,
 * and without a `publish` claim every name may be published.
 */
#include <errno.h>
#include <jwt.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/auth.h"
#include "common/buf.h"
#include "common/config.h"
#include "common/json.h"

#define SECRET "0123456789abcdef0123456789abcdef"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static auth_t *verifier(void)
{
    static auth_t *a;
    if (!a) {
        static cfg_t cfg;
        cfg.auth_enabled = true;
        strcpy(cfg.auth_jwt_secret, SECRET);
        buf_t err;
        buf_init(&err);
        if (auth_new(&a, &cfg, &err) != 0)
            __builtin_trap();
        buf_free(&err);
    }
    return a;
}

static bool known_reason(const char *why)
{
    static const char *const reasons[] = {AUTH_ERR_INVALID, AUTH_ERR_EXPIRED,  AUTH_ERR_NOT_YET,
                                          AUTH_ERR_ISSUER,  AUTH_ERR_AUDIENCE, AUTH_ERR_ROOMS,
                                          AUTH_ERR_PUBLISH, AUTH_ERR_MISSING};
    for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++) {
        if (why && strcmp(why, reasons[i]) == 0)
            return true;
    }
    return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096 || json_validate((const char *)data, size) != 0)
        return 0;
    char *claims = malloc(size + 1);
    memcpy(claims, data, size);
    claims[size] = '\0';
    jwt_t *jwt = NULL;
    char *token = NULL;
    if (memchr(claims, 0, size) == NULL && jwt_new(&jwt) == 0 &&
        jwt_add_grants_json(jwt, claims) == 0 &&
        jwt_set_alg(jwt, JWT_ALG_HS256, (const unsigned char *)SECRET, strlen(SECRET)) == 0)
        token = jwt_encode_str(jwt);
    jwt_free(jwt);
    free(claims);
    if (!token)
        return 0;
    auth_grant_t *g = NULL;
    const char *why = NULL;
    int rc = auth_verify(verifier(), token, strlen(token), 1700000000, &g, &why);
    free(token);
    if (rc == 0) {
        if (!g || why)
            __builtin_trap();
        const char *sub = auth_grant_subject(g);
        if (sub && (strlen(sub) == 0 || strlen(sub) > AUTH_MAX_SUBJECT))
            __builtin_trap();
        if (!auth_grant_gates_publish(g) && !auth_grant_may_publish(g, "any.event", 9))
            __builtin_trap();
        auth_grant_allows(g, "chat.1", 6);
        auth_grant_free(g);
    } else if (rc != -EACCES || g || !known_reason(why)) {
        __builtin_trap();
    }
    return 0;
}
