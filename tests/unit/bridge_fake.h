/*
 * A fake bridge_redis for the worker/bridge tests: every command is logged as
 * "<routing key> | <argv joined by spaces>" (an EVAL's script text shown as "<script>"), in send
 * order, and answered by the test, oldest first, as Redis would.
 */
#ifndef STREAMIO_TESTS_BRIDGE_FAKE_H
#define STREAMIO_TESTS_BRIDGE_FAKE_H

#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/bridge/bridge_redis.h"
#include "common/config.h"

typedef struct bridge_fake bridge_fake_t;

bridge_fake_t *bridge_fake_new(void);
/* Every command not answered gets NULL (a lost connection), then it is freed. */
void bridge_fake_free(bridge_fake_t *f);
bridge_redis_t bridge_fake_ops(bridge_fake_t *f);
/* Commands are refused with this errno (0: accepted). */
void bridge_fake_refuse(bridge_fake_t *f, int err);
/* The next command not yet checked, or "(none)". */
const char *bridge_fake_next(bridge_fake_t *f);
/* Answers the oldest unanswered command with a callback; rep is freed (NULL: a lost reply). */
void bridge_fake_answer(bridge_fake_t *f, redisReply *rep);
/* Unanswered commands with a callback. */
size_t bridge_fake_waiting(const bridge_fake_t *f);

/* Loads cfg from env: name, value, ..., NULL (the defaults for the rest); fails the test on an
 * error. */
void bridge_fake_config(cfg_t *cfg, const char *const *env);

/* Replies, freed by bridge_fake_answer. */
redisReply *bf_str(const char *s);
redisReply *bf_int(long long v);
redisReply *bf_err(const char *s);
redisReply *bf_arr(size_t n, ...);

#endif
