/*
 * redis_reply: hiredis' reader, bounded, and the few Redis replies the layer itself acts on:
 * error classes (MOVED/ASK with their slot and address, TRYAGAIN, CLUSTERDOWN,
 * READONLY, NOAUTH...), pub/sub pushes (messages and (un)subscribe notices of the three kinds),
 * ROLE, a sentinel's address reply and its +switch-master message. Every input comes from the
 * network and is validated, never asserted; results borrow from the reply. The readers aside,
 * pure functions: no allocation, no logging.
 */
#ifndef STREAMIO_COMMON_REDIS_REPLY_H
#define STREAMIO_COMMON_REDIS_REPLY_H

#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/redis_url.h"

/* Largest array a reply may announce: hiredis allocates the element table from the announced
 * count (and 0.14 aborts when that fails), so "*2147483647" must not reach it. */
#define REDIS_REPLY_MAX_ELEMENTS (1 << 22)

/* hiredis' reader with the bound above: a larger array is a reader error ("out of memory"),
 * which drops the connection. Its replies are hiredis' redisReply objects, owned by the reader:
 * never freeReplyObject them; each one redisReaderGetReply returns lives until
 * redis_reply_release (call it before the next redisReaderGetReply) or the reader's free.
 * Aborts on out-of-memory. */
redisReader *redis_reply_reader_new(void);
/* Ends the life of the reply the reader returned last (its memory is reused). */
void redis_reply_release(redisReader *r);
/* NULL is a no-op; also ends the reply returned last. */
void redis_reply_reader_free(redisReader *r);

typedef enum redis_fault {
    REDIS_FAULT_NONE = 0, /* not an error reply */
    REDIS_FAULT_OTHER,    /* an error the layer passes on as it is */
    REDIS_FAULT_MOVED,    /* the slot lives on another node for good */
    REDIS_FAULT_ASK,      /* this one command goes to another node, after ASKING */
    REDIS_FAULT_TRYAGAIN, /* multi-key command during a slot migration */
    REDIS_FAULT_CLUSTERDOWN,
    REDIS_FAULT_READONLY,   /* a write reached a replica (a demoted primary) */
    REDIS_FAULT_NOAUTH,     /* a password is needed */
    REDIS_FAULT_LOADING,    /* the server is loading its data set */
    REDIS_FAULT_MASTERDOWN, /* a replica lost its primary */
} redis_fault_t;

/* Where MOVED/ASK send a command. addr.host "" means "the host that answered" (Redis 7 writes
 * `MOVED 3999 :6381` when a node has no known endpoint). */
typedef struct redis_redirect {
    unsigned slot;
    redis_addr_t addr;
} redis_redirect_t;

/*
 * Classifies r (NULL: REDIS_FAULT_NONE). For MOVED and ASK fills *redir (may be NULL); a MOVED
 * or ASK whose slot or address cannot be read is REDIS_FAULT_OTHER.
 */
redis_fault_t redis_reply_fault(const redisReply *r, redis_redirect_t *redir);

typedef enum redis_sub_kind {
    REDIS_SUB_CHANNEL = 0, /* SUBSCRIBE / PUBLISH */
    REDIS_SUB_PATTERN,     /* PSUBSCRIBE */
    REDIS_SUB_SHARD,       /* SSUBSCRIBE / SPUBLISH (Redis 7) */
} redis_sub_kind_t;

typedef enum redis_push_type {
    REDIS_PUSH_NONE = 0,    /* not a pub/sub reply */
    REDIS_PUSH_MESSAGE,     /* message, pmessage, smessage */
    REDIS_PUSH_SUBSCRIBE,   /* subscribe, psubscribe, ssubscribe */
    REDIS_PUSH_UNSUBSCRIBE, /* unsubscribe, punsubscribe, sunsubscribe */
    REDIS_PUSH_PONG,        /* PING's answer on a subscribed connection */
} redis_push_type_t;

/* A pub/sub reply; strings borrowed from the reply. pattern is set for pmessage only. */
typedef struct redis_push {
    redis_push_type_t type;
    redis_sub_kind_t kind;
    const char *channel;
    size_t channel_len;
    const char *pattern;
    size_t pattern_len;
    const char *data; /* MESSAGE */
    size_t len;
} redis_push_t;

/* Reads r as a pub/sub reply into *out: 0, or -EPROTO (out->type NONE) when it is not one. */
int redis_reply_push(const redisReply *r, redis_push_t *out);

/*
 * Finds where the RESP2 item at the start of p[0..n) ends without building it, so that a
 * subscribed connection hands each message over without allocating: 0 and *used (its length),
 * -EAGAIN when it is not whole yet, -EPROTO when it is not RESP2 as Redis writes it (lengths
 * without a leading zero, CRLF after each bulk string, arrays nested at most 7 deep; hiredis
 * judges those). For a pub/sub message (message, smessage, pmessage) *msg is filled as
 * redis_reply_push would (strings point into p, not NUL-terminated); for anything else msg->type is
 * REDIS_PUSH_NONE.
 */
int redis_reply_scan(const char *p, size_t n, size_t *used, redis_push_t *msg);

typedef enum redis_role {
    REDIS_ROLE_MASTER = 1,
    REDIS_ROLE_REPLICA,
    REDIS_ROLE_SENTINEL,
} redis_role_t;

/* ROLE's reply: a redis_role_t, or -EPROTO. */
int redis_reply_role(const redisReply *r);

/*
 * A sentinel's SENTINEL get-master-addr-by-name reply ([ip, port]) into *out: 0, -ENOENT for
 * nil (the sentinel does not know the name), -EPROTO for anything else.
 */
int redis_reply_addr(const redisReply *r, redis_addr_t *out);

/*
 * A +switch-master message ("<name> <old-ip> <old-port> <new-ip> <new-port>"): 0 with the new
 * primary in *out when it is about `name`, -ENOENT when about another name, -EPROTO when
 * malformed.
 */
int redis_reply_switch_master(const char *msg, size_t len, const char *name, redis_addr_t *out);

#endif
