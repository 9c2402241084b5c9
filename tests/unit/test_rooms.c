/* Unit tests for worker/rooms: membership both ways, room lifetime, binary names, scale. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "worker/sio/rooms.h"

typedef struct sock {
    rooms_sock_t rooms;
    int id;
    int visits;
} sock_t;

static int setup(void **state)
{
    rooms_t *r = rooms_new();
    if (!r)
        return -1;
    *state = r;
    return 0;
}

static int teardown(void **state)
{
    rooms_free(*state);
    return 0;
}

#define JOIN(r, s, name) rooms_join((r), &(s)->rooms, (s), (name), strlen(name))
#define LEAVE(r, s, name) rooms_leave((r), &(s)->rooms, (name), strlen(name))
#define FIND(r, name) rooms_find((r), (name), strlen(name))

static void visit(void *owner, void *arg)
{
    sock_t *s = owner;
    s->visits++;
    (*(size_t *)arg)++;
}

static void test_join_leave(void **state)
{
    rooms_t *r = *state;
    sock_t a = {.id = 1}, b = {.id = 2};

    assert_null(FIND(r, "chat"));
    assert_int_equal(rooms_count(r), 0);
    assert_int_equal(JOIN(r, &a, "chat"), 0);
    assert_int_equal(rooms_count(r), 1);
    assert_int_equal(JOIN(r, &a, "chat"), 1);
    assert_int_equal(JOIN(r, &b, "chat"), 0);
    assert_int_equal(JOIN(r, &b, "chat"), 1);
    assert_int_equal(JOIN(r, &a, "news"), 0);
    assert_int_equal(rooms_count(r), 2);
    assert_int_equal(a.rooms.count, 2);
    assert_int_equal(b.rooms.count, 1);

    room_t *chat = FIND(r, "chat");
    assert_non_null(chat);
    assert_int_equal(rooms_members(chat), 2);
    size_t len;
    assert_memory_equal(rooms_name(chat, &len), "chat", 5);
    assert_int_equal(len, 4);
    assert_true(rooms_is_member(&a.rooms, "chat", 4));
    assert_true(rooms_is_member(&b.rooms, "chat", 4));
    assert_false(rooms_is_member(&b.rooms, "news", 4));
    assert_false(rooms_is_member(&a.rooms, "cha", 3));
    assert_false(rooms_is_member(&a.rooms, "chats", 5));

    size_t n = 0;
    rooms_foreach(chat, visit, &n);
    assert_int_equal(n, 2);
    assert_int_equal(a.visits, 1);
    assert_int_equal(b.visits, 1);

    assert_int_equal(LEAVE(r, &b, "news"), -ENOENT);
    assert_int_equal(LEAVE(r, &b, "nowhere"), -ENOENT);
    assert_int_equal(LEAVE(r, &a, "chat"), 0);
    assert_int_equal(LEAVE(r, &a, "chat"), -ENOENT);
    assert_ptr_equal(FIND(r, "chat"), chat);
    assert_int_equal(rooms_members(chat), 1);
    assert_false(rooms_is_member(&a.rooms, "chat", 4));
    assert_int_equal(a.rooms.count, 1);

    /* The last leave frees the room. */
    assert_int_equal(LEAVE(r, &b, "chat"), 0);
    assert_null(FIND(r, "chat"));
    assert_int_equal(rooms_count(r), 1);
    assert_int_equal(b.rooms.count, 0);
    assert_null(b.rooms.first);

    /* Rejoining recreates it. */
    assert_int_equal(JOIN(r, &b, "chat"), 0);
    assert_int_equal(rooms_members(FIND(r, "chat")), 1);
    rooms_leave_all(r, &a.rooms);
    rooms_leave_all(r, &b.rooms);
    assert_int_equal(rooms_count(r), 0);
}

static void test_leave_all(void **state)
{
    rooms_t *r = *state;
    sock_t a = {.id = 1}, b = {.id = 2};

    assert_int_equal(JOIN(r, &a, "solo1"), 0);
    assert_int_equal(JOIN(r, &a, "shared"), 0);
    assert_int_equal(JOIN(r, &a, "solo2"), 0);
    assert_int_equal(JOIN(r, &b, "shared"), 0);
    assert_int_equal(JOIN(r, &b, "other"), 0);
    assert_int_equal(rooms_count(r), 4);

    rooms_leave_all(r, &a.rooms);
    assert_null(a.rooms.first);
    assert_int_equal(a.rooms.count, 0);
    assert_int_equal(rooms_count(r), 2);
    assert_null(FIND(r, "solo1"));
    assert_null(FIND(r, "solo2"));
    assert_int_equal(rooms_members(FIND(r, "shared")), 1);
    assert_true(rooms_is_member(&b.rooms, "shared", 6));

    size_t n = 0;
    rooms_foreach(FIND(r, "shared"), visit, &n);
    assert_int_equal(n, 1);
    assert_int_equal(a.visits, 0);
    assert_int_equal(b.visits, 1);

    rooms_leave_all(r, &a.rooms); /* no rooms: no-op */
    rooms_leave_all(r, &b.rooms);
    assert_int_equal(rooms_count(r), 0);
}

/* Names are bytes: NULs inside, prefixes of each other, and the empty name are all distinct. */
static void test_binary_names(void **state)
{
    rooms_t *r = *state;
    sock_t a = {.id = 1};
    static const char n1[] = {'a', '\0', 'b'};
    static const char n2[] = {'a', '\0', 'c'};
    static const char n3[] = {'a'};
    static const char n4[] = {'a', '\0'};
    static const char n5[] = {'\0'};

    assert_int_equal(rooms_join(r, &a.rooms, &a, n1, 3), 0);
    assert_int_equal(rooms_join(r, &a.rooms, &a, n2, 3), 0);
    assert_int_equal(rooms_join(r, &a.rooms, &a, n3, 1), 0);
    assert_int_equal(rooms_join(r, &a.rooms, &a, n4, 2), 0);
    assert_int_equal(rooms_join(r, &a.rooms, &a, n5, 1), 0);
    assert_int_equal(rooms_join(r, &a.rooms, &a, "", 0), 0);
    assert_int_equal(rooms_join(r, &a.rooms, &a, NULL, 0), 1);
    assert_int_equal(rooms_join(r, &a.rooms, &a, n1, 3), 1);
    assert_int_equal(rooms_count(r), 6);
    assert_int_equal(a.rooms.count, 6);

    assert_true(rooms_is_member(&a.rooms, n2, 3));
    assert_true(rooms_is_member(&a.rooms, "", 0));
    assert_false(rooms_is_member(&a.rooms, "a\0d", 3));
    room_t *room = rooms_find(r, n4, 2);
    assert_non_null(room);
    size_t len;
    const char *name = rooms_name(room, &len);
    assert_int_equal(len, 2);
    assert_memory_equal(name, n4, 2);
    assert_int_equal(name[2], '\0');

    assert_int_equal(rooms_leave(r, &a.rooms, n1, 3), 0);
    assert_null(rooms_find(r, n1, 3));
    assert_non_null(rooms_find(r, n2, 3));
    assert_int_equal(rooms_leave(r, &a.rooms, n1, 3), -ENOENT);
    assert_int_equal(rooms_leave(r, &a.rooms, "", 0), 0);
    assert_non_null(rooms_find(r, n5, 1));
    assert_int_equal(rooms_count(r), 4);
    rooms_leave_all(r, &a.rooms);
    assert_int_equal(rooms_count(r), 0);
}

typedef struct collect {
    char names[8][8];
    size_t lens[8];
    size_t n;
} collect_t;

static void collect_name(const char *name, size_t len, void *arg)
{
    collect_t *c = arg;
    assert_true(c->n < 8 && len < 8);
    memcpy(c->names[c->n], name, len + 1);
    c->lens[c->n++] = len;
}

static void test_sock_foreach(void **state)
{
    rooms_t *r = *state;
    sock_t a = {.id = 1};
    collect_t c = {.n = 0};

    rooms_sock_foreach(&a.rooms, collect_name, &c);
    assert_int_equal(c.n, 0);
    assert_int_equal(JOIN(r, &a, "x"), 0);
    assert_int_equal(JOIN(r, &a, "yy"), 0);
    assert_int_equal(rooms_join(r, &a.rooms, &a, "z\0z", 3), 0);
    rooms_sock_foreach(&a.rooms, collect_name, &c);
    assert_int_equal(c.n, 3);
    /* Most recent first. */
    assert_int_equal(c.lens[0], 3);
    assert_memory_equal(c.names[0], "z\0z", 4);
    assert_string_equal(c.names[1], "yy");
    assert_string_equal(c.names[2], "x");
    rooms_leave_all(r, &a.rooms);
}

static void bump_mark(void *owner, rooms_mark_t *mark, void *arg)
{
    sock_t *s = owner;
    (void)arg;
    mark->tag += (uint32_t)s->id;
}

static void sum_tags(const char *name, size_t len, rooms_mark_t *mark, void *arg)
{
    (void)name;
    (void)len;
    *(uint32_t *)arg += mark->tag;
}

/* Each membership has its own mark, zeroed by the join, reached from both sides. */
static void test_marks(void **state)
{
    rooms_t *r = *state;
    sock_t a = {.id = 1}, b = {.id = 10};
    assert_int_equal(JOIN(r, &a, "x"), 0);
    assert_int_equal(JOIN(r, &b, "x"), 0);
    assert_int_equal(JOIN(r, &a, "y"), 0);
    rooms_mark_t *ax = rooms_sock_mark(&a.rooms, "x", 1);
    assert_non_null(ax);
    assert_int_equal(ax->tag, 0);
    assert_int_equal(ax->last[0] | ax->last[1] | ax->held[0] | ax->held[1], 0);
    ax->last[0] = 7;
    assert_null(rooms_sock_mark(&a.rooms, "z", 1));
    assert_null(rooms_sock_mark(&b.rooms, "y", 1));
    rooms_foreach_mark(FIND(r, "x"), bump_mark, NULL);
    assert_int_equal(rooms_sock_mark(&a.rooms, "x", 1)->tag, 1);
    assert_int_equal(rooms_sock_mark(&a.rooms, "x", 1)->last[0], 7);
    assert_int_equal(rooms_sock_mark(&b.rooms, "x", 1)->tag, 10);
    assert_int_equal(rooms_sock_mark(&a.rooms, "y", 1)->tag, 0);
    uint32_t sum = 0;
    rooms_sock_mark(&a.rooms, "y", 1)->tag = 5;
    rooms_sock_foreach_mark(&a.rooms, sum_tags, &sum);
    assert_int_equal(sum, 6);
    /* a rejoin starts from a zeroed mark */
    assert_int_equal(LEAVE(r, &a, "x"), 0);
    assert_int_equal(JOIN(r, &a, "x"), 0);
    assert_int_equal(rooms_sock_mark(&a.rooms, "x", 1)->tag, 0);
    assert_int_equal(rooms_sock_mark(&a.rooms, "x", 1)->last[0], 0);
    rooms_leave_all(r, &a.rooms);
    rooms_leave_all(r, &b.rooms);
}

/* One socket in 10k rooms, then 2000 sockets sharing rooms: counts, lookups, walks. */
static void test_many_rooms(void **state)
{
    rooms_t *r = *state;
    sock_t a = {.id = 1};
    char name[32];

    for (int i = 0; i < 10000; i++) {
        snprintf(name, sizeof(name), "room:%d", i);
        assert_int_equal(JOIN(r, &a, name), 0);
    }
    assert_int_equal(rooms_count(r), 10000);
    assert_int_equal(a.rooms.count, 10000);
    for (int i = 0; i < 10000; i++) {
        snprintf(name, sizeof(name), "room:%d", i);
        room_t *room = FIND(r, name);
        assert_non_null(room);
        assert_int_equal(rooms_members(room), 1);
        size_t len;
        assert_string_equal(rooms_name(room, &len), name);
    }
    assert_null(FIND(r, "room:10000"));
    assert_int_equal(JOIN(r, &a, "room:9999"), 1);

    for (int i = 0; i < 10000; i += 2) {
        snprintf(name, sizeof(name), "room:%d", i);
        assert_int_equal(LEAVE(r, &a, name), 0);
    }
    assert_int_equal(rooms_count(r), 5000);
    assert_int_equal(a.rooms.count, 5000);
    assert_null(FIND(r, "room:0"));
    assert_non_null(FIND(r, "room:1"));

    enum { NSOCK = 2000 };
    sock_t *socks = calloc(NSOCK, sizeof(*socks));
    assert_non_null(socks);
    for (int i = 0; i < NSOCK; i++) {
        socks[i].id = i;
        assert_int_equal(JOIN(r, &socks[i], "all"), 0);
        snprintf(name, sizeof(name), "mod:%d", i % 7);
        assert_int_equal(JOIN(r, &socks[i], name), 0);
        /* Joining a room with thousands of members walks the socket's short list. */
        assert_int_equal(JOIN(r, &socks[i], "all"), 1);
    }
    /* Socket `a` (5000 rooms) against "all" (2000 members): the room's list is walked. */
    assert_int_equal(JOIN(r, &a, "all"), 0);
    assert_int_equal(JOIN(r, &a, "all"), 1);
    assert_int_equal(rooms_members(FIND(r, "all")), NSOCK + 1);
    size_t n = 0;
    rooms_foreach(FIND(r, "all"), visit, &n);
    assert_int_equal(n, NSOCK + 1);
    for (int i = 0; i < NSOCK; i++)
        assert_int_equal(socks[i].visits, 1);
    assert_int_equal(rooms_members(FIND(r, "mod:3")), (NSOCK - 3 + 6) / 7);
    assert_int_equal(LEAVE(r, &a, "all"), 0);
    assert_int_equal(LEAVE(r, &a, "all"), -ENOENT);

    for (int i = 0; i < NSOCK; i++)
        rooms_leave_all(r, &socks[i].rooms);
    assert_null(FIND(r, "all"));
    assert_int_equal(rooms_count(r), 5000);
    rooms_leave_all(r, &a.rooms);
    assert_int_equal(rooms_count(r), 0);
    free(socks);
}

static uint64_t xorshift(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Random joins and leaves checked against a membership matrix. */
static void test_random_model(void **state)
{
    rooms_t *r = *state;
    enum { NS = 40, NR = 25 };
    sock_t socks[NS];
    bool in[NS][NR];
    memset(socks, 0, sizeof(socks));
    memset(in, 0, sizeof(in));
    uint64_t seed = 88172645463325252ULL;
    char name[16];

    for (int step = 0; step < 50000; step++) {
        uint64_t x = xorshift(&seed);
        int s = (int)(x % NS), k = (int)((x >> 16) % NR);
        int len = snprintf(name, sizeof(name), "r%d", k);
        int op = (int)((x >> 32) % 10);
        if (op < 5) {
            assert_int_equal(rooms_join(r, &socks[s].rooms, &socks[s], name, (size_t)len),
                             in[s][k] ? 1 : 0);
            in[s][k] = true;
        } else if (op < 9) {
            assert_int_equal(rooms_leave(r, &socks[s].rooms, name, (size_t)len),
                             in[s][k] ? 0 : -ENOENT);
            in[s][k] = false;
        } else {
            rooms_leave_all(r, &socks[s].rooms);
            memset(in[s], 0, sizeof(in[s]));
        }
        if (step % 1000 == 0 || step == 49999) {
            size_t live = 0;
            for (int kk = 0; kk < NR; kk++) {
                size_t members = 0;
                len = snprintf(name, sizeof(name), "r%d", kk);
                for (int ss = 0; ss < NS; ss++) {
                    members += in[ss][kk];
                    assert_int_equal(rooms_is_member(&socks[ss].rooms, name, (size_t)len),
                                     in[ss][kk]);
                }
                room_t *room = rooms_find(r, name, (size_t)len);
                if (members) {
                    live++;
                    assert_non_null(room);
                    assert_int_equal(rooms_members(room), members);
                } else {
                    assert_null(room);
                }
            }
            assert_int_equal(rooms_count(r), live);
            for (int ss = 0; ss < NS; ss++) {
                size_t cnt = 0;
                for (int kk = 0; kk < NR; kk++)
                    cnt += in[ss][kk];
                assert_int_equal(socks[ss].rooms.count, cnt);
            }
        }
    }
    /* Members left behind on purpose: rooms_free in teardown must release them (ASan). */
}

/* Long names and names whose hashes land in shared buckets across growth. */
static void test_long_names(void **state)
{
    rooms_t *r = *state;
    sock_t a = {.id = 1};
    char name[600];
    for (int i = 0; i < 300; i++) {
        memset(name, 'a' + i % 26, sizeof(name));
        name[i] = '\0';
        assert_int_equal(rooms_join(r, &a.rooms, &a, name, sizeof(name) - (size_t)i), 0);
    }
    assert_int_equal(rooms_count(r), 300);
    for (int i = 0; i < 300; i++) {
        memset(name, 'a' + i % 26, sizeof(name));
        name[i] = '\0';
        assert_true(rooms_is_member(&a.rooms, name, sizeof(name) - (size_t)i));
        assert_non_null(rooms_find(r, name, sizeof(name) - (size_t)i));
        name[i] = 'x';
        assert_null(rooms_find(r, name, sizeof(name) - (size_t)i));
    }
}

static void test_free_null_and_populated(void **state)
{
    (void)state;
    rooms_free(NULL);
    rooms_t *r = rooms_new();
    assert_non_null(r);
    sock_t a = {.id = 1}, b = {.id = 2};
    assert_int_equal(JOIN(r, &a, "x"), 0);
    assert_int_equal(JOIN(r, &b, "x"), 0);
    assert_int_equal(JOIN(r, &b, "y"), 0);
    rooms_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_join_leave, setup, teardown),
        cmocka_unit_test_setup_teardown(test_leave_all, setup, teardown),
        cmocka_unit_test_setup_teardown(test_binary_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sock_foreach, setup, teardown),
        cmocka_unit_test_setup_teardown(test_marks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_rooms, setup, teardown),
        cmocka_unit_test_setup_teardown(test_random_model, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_names, setup, teardown),
        cmocka_unit_test(test_free_null_and_populated),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
