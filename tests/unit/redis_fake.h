/*
 * redis_fake: a scripted RESP server on 127.0.0.1 for the Redis layer's unit tests, running on
 * the test's own libuv loop. Every command a client sends is parsed (hiredis' reader) and handed
 * to the test's handler, which answers with raw RESP bytes, stays silent (a stall), or closes
 * the connection. fake_handshake answers what redis_conn sends on connect. Also: run the loop
 * until a condition holds, with a deadline (cmocka has no per-test timeout).
 */
#ifndef STREAMIO_TESTS_REDIS_FAKE_H
#define STREAMIO_TESTS_REDIS_FAKE_H

#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "common/redis/redis_topology.h"

typedef struct fake fake_t;
typedef struct fake_conn fake_conn_t;

/* One command: argv[i] is NUL-terminated (binary-safe with lens). Borrowed for the call. */
typedef void (*fake_cmd_fn)(fake_conn_t *fc, int argc, char **argv, size_t *lens, void *arg);

/* Listens on an ephemeral loopback port. */
fake_t *fake_new(uv_loop_t *loop, fake_cmd_fn fn, void *arg);
int fake_port(const fake_t *f);
/* Accepted connections so far, and the newest one still open (NULL if none). */
size_t fake_accepted(const fake_t *f);
fake_conn_t *fake_last(const fake_t *f);
/* The connections still open, newest first: fake_first, then fake_next until NULL. */
fake_conn_t *fake_first(const fake_t *f);
fake_conn_t *fake_next(const fake_conn_t *fc);
/* Stops listening and closes every connection; memory released by the loop. */
void fake_free(fake_t *f);

/* Commands received so far, each as "ARG ARG..." (truncated at 255 bytes). */
size_t fake_nseen(const fake_t *f);
const char *fake_seen(const fake_t *f, size_t i);
/* How many received commands are exactly `line`, or start with `prefix`. */
size_t fake_count(const fake_t *f, const char *line);
size_t fake_count_prefix(const fake_t *f, const char *prefix);

/* Sends raw bytes (RESP written by the test). */
void fake_send(fake_conn_t *fc, const char *resp);
/* The same, binary-safe. */
void fake_send_bytes(fake_conn_t *fc, const char *p, size_t n);
/* Sends p[0..n), then closes the connection once it is written (the client reads it all, then
 * the end of the stream). */
void fake_send_last(fake_conn_t *fc, const char *p, size_t n);
/* Closes one connection from the server side. */
void fake_drop(fake_conn_t *fc);
/* Per-connection slot for the test's state. */
void **fake_conn_data(fake_conn_t *fc);
fake_t *fake_of(fake_conn_t *fc);

/* Sends a (un)subscribe confirmation ["word", ch, count]. */
void fake_sub_confirm(fake_conn_t *fc, const char *word, const char *ch, int count);

/* What the client side received, for a reply callback of the layer (fake_on_reply, arg = a
 * fake_replies_t): counts, and the text of the last string/status/error reply. */
typedef struct fake_replies {
    size_t replies, nulls;
    char last[128];
} fake_replies_t;
void fake_on_reply(const redisReply *r, void *arg);

/* Answers AUTH, SELECT, CLIENT SETNAME, CLIENT ID, ROLE (master), PING, ASKING like Redis does,
 * and remembers the connection's CLIENT SETNAME. True when the command was one of those. */
bool fake_handshake(fake_conn_t *fc, int argc, char **argv);
/* fake_handshake, plus a pub/sub Redis: confirms SUBSCRIBE, PSUBSCRIBE, SSUBSCRIBE (count 1,
 * marking the connection subscribed) and SUNSUBSCRIBE (count 0). True when it answered. */
bool fake_pubsub(fake_conn_t *fc, int argc, char **argv);
/* How many open connections were named `name` (CLIENT SETNAME) and subscribed (or not, as
 * `subscribed` says); *found is one of them (NULL when none). Tells a client's pub/sub connection
 * from its command connection. */
size_t fake_named(const fake_t *f, const char *name, bool subscribed, fake_conn_t **found);

/* A single-node topology on f's port that reconnects quickly (10 to 50 ms); timeout_ms, when not
 * 0, bounds each connect and command. Close it with redis_topology_close. */
redis_topology_t *fake_topology(fake_t *f, uv_loop_t *loop, unsigned timeout_ms);

/* A bound for fake_run_until where the wait is only a hang bound, never a timing assertion: it
 * must hold on a loaded box (a busy 2-core CI, ASan). */
#define FAKE_WAIT_MS 10000
/* Runs the loop until cond(arg) is true or ms elapsed; returns cond's last value. */
bool fake_run_until(uv_loop_t *loop, bool (*cond)(void *arg), void *arg, unsigned ms);
/* Runs the loop for ms (for "nothing happens" checks). */
void fake_run_for(uv_loop_t *loop, unsigned ms);
/* Closes every handle left on the loop and runs it dry; returns uv_loop_close's result. */
int fake_loop_close(uv_loop_t *loop);

#endif
