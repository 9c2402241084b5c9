/* sio_auth: see sio_auth.h. */
#include "worker/sio/sio_auth.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "common/log.h"
#include "common/xalloc.h"

struct sio_auth {
    uv_loop_t *loop;
    const cfg_t *cfg;
    auth_t *auth;
    deadlineq_t *expiryq;
    sio_auth_expired_fn expired;
    void *arg;
    buf_t token; /* the token of the CONNECT being verified */
};

static void on_expiry(deadline_node_t *n, void *arg)
{
    sio_auth_t *a = arg;
    a->expired((sio_auth_socket_t *)((char *)n - offsetof(sio_auth_socket_t, expiry)), a->arg);
}

int sio_auth_new(sio_auth_t **out, uv_loop_t *loop, const cfg_t *cfg, sio_auth_expired_fn fn,
                 void *arg)
{
    sio_auth_t *a = xcalloc(1, sizeof(*a));
    a->loop = loop;
    a->cfg = cfg;
    a->expired = fn;
    a->arg = arg;
    buf_init(&a->token);
    buf_t err;
    buf_init(&err);
    int rc = auth_new(&a->auth, cfg, &err);
    if (rc)
        LOG_ERROR("%s", err.data ? err.data : "cannot set up authentication");
    buf_free(&err);
    if (!rc)
        rc = deadlineq_new(&a->expiryq, loop, on_expiry, a);
    if (rc) {
        sio_auth_free(a);
        return rc;
    }
    *out = a;
    return 0;
}

void sio_auth_free(sio_auth_t *a)
{
    if (!a)
        return;
    deadlineq_close(a->expiryq);
    auth_free(a->auth);
    buf_free(&a->token);
    free(a);
}

bool sio_auth_enabled(const sio_auth_t *a)
{
    return auth_enabled(a->auth);
}

void sio_auth_open(const sio_auth_t *a, sio_auth_socket_t *as, const http_req_t *req)
{
    buf_init(&as->qtoken);
    if (auth_enabled(a->auth) && http_req_query(req, "token", &as->qtoken) != 0)
        buf_reset(&as->qtoken);
}

/* Disconnects the socket when the token expires (exp + AUTH_JWT_LEEWAY). */
static void arm_expiry(sio_auth_t *a, sio_auth_socket_t *as, int64_t exp_s)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t now_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    int64_t left = (exp_s + a->cfg->auth_jwt_leeway_s) * 1000 - now_ms;
    uv_update_time(a->loop); /* the cached loop time may lag: never cut a token off early */
    deadlineq_add(a->expiryq, &as->expiry, uv_now(a->loop) + (uint64_t)(left > 0 ? left : 0));
}

const char *sio_auth_connect(sio_auth_t *a, sio_auth_socket_t *as, const char *json, size_t len)
{
    if (!auth_enabled(a->auth))
        return NULL;
    buf_reset(&a->token);
    int rc = auth_token_from_connect(json, len, &a->token);
    const char *tok = a->token.data;
    size_t tlen = a->token.len;
    if (rc == -ENOENT) {
        tok = as->qtoken.data;
        tlen = as->qtoken.len;
        if (tlen == 0)
            return AUTH_ERR_MISSING;
    } else if (rc) {
        return AUTH_ERR_INVALID;
    }
    auth_grant_t *g = NULL;
    const char *why = NULL;
    if (auth_verify(a->auth, tok, tlen, (int64_t)time(NULL), &g, &why))
        return why ? why : AUTH_ERR_INVALID;
    auth_grant_free(as->grant);
    as->grant = g;
    arm_expiry(a, as, auth_grant_expires(g));
    return NULL;
}

bool sio_auth_room_allowed(const sio_auth_t *a, const sio_auth_socket_t *as, const char *room,
                           size_t len)
{
    return auth_room_allowed(a->auth, as->grant, room, len);
}

void sio_auth_stop(sio_auth_t *a, sio_auth_socket_t *as)
{
    deadlineq_remove(a->expiryq, &as->expiry);
}

void sio_auth_close(sio_auth_socket_t *as)
{
    buf_free(&as->qtoken);
    auth_grant_free(as->grant);
    as->grant = NULL;
}
