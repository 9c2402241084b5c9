/*
 * ilist: the intrusive doubly-linked list every module threads through its own structs, so that
 * joining, leaving and walking a list allocates nothing and costs no indirection beyond the links.
 * Invariants:
 *  - a list is a sentinel ilist_t made circular by ilist_init (empty: it points to itself); it
 *    must be initialised before any other call names it;
 *  - a node is in one list at most; a node in none has next == NULL, so zeroed memory (calloc,
 *    {0}) is an unlinked node, and ilist_remove leaves the node that way;
 *  - the list never owns its nodes: whoever frees a node removes it first.
 * Header-only (static inline): the broadcast paths walk and push through these per recipient.
 */
#ifndef STREAMIO_COMMON_ILIST_H
#define STREAMIO_COMMON_ILIST_H

#include <stdbool.h>
#include <stddef.h>

typedef struct ilist {
    struct ilist *prev, *next;
} ilist_t;

/* The struct of `type` whose field `member` is the node n. */
#define ILIST_ENTRY(n, type, member) ((type *)(void *)((char *)(n)-offsetof(type, member)))

/* Walks the nodes of head from the front; the body must not remove `it` (see the _SAFE form). */
#define ILIST_FOREACH(it, head) for (ilist_t *it = (head)->next; it != (head); it = it->next)

/* As ILIST_FOREACH, but the body may remove `it` (not the node after it): the next node is
 * read before the body runs. */
#define ILIST_FOREACH_SAFE(it, head)                                                               \
    for (ilist_t *it = (head)->next, *it##_next = it->next; it != (head);                          \
         it = it##_next, it##_next = it->next)

static inline void ilist_init(ilist_t *head)
{
    head->prev = head->next = head;
}

static inline bool ilist_empty(const ilist_t *head)
{
    return head->next == head;
}

/* Whether n is in a list (any list: the node does not know which). */
static inline bool ilist_linked(const ilist_t *n)
{
    return n->next != NULL;
}

/* Inserts n (unlinked) between two adjacent nodes. */
static inline void ilist_insert(ilist_t *prev, ilist_t *next, ilist_t *n)
{
    n->prev = prev;
    n->next = next;
    prev->next = n;
    next->prev = n;
}

static inline void ilist_push_back(ilist_t *head, ilist_t *n)
{
    ilist_insert(head->prev, head, n);
}

static inline void ilist_push_front(ilist_t *head, ilist_t *n)
{
    ilist_insert(head, head->next, n);
}

/* Takes n out of whatever list holds it and leaves it unlinked; a no-op on an unlinked node. */
static inline void ilist_remove(ilist_t *n)
{
    if (!n->next)
        return;
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->prev = n->next = NULL;
}

/* The front node, or NULL when the list is empty. */
static inline ilist_t *ilist_first(const ilist_t *head)
{
    return ilist_empty(head) ? NULL : head->next;
}

/* Removes and returns the front node (now unlinked), or NULL when the list is empty. */
static inline ilist_t *ilist_pop_front(ilist_t *head)
{
    ilist_t *n = ilist_first(head);
    if (n)
        ilist_remove(n);
    return n;
}

/* Moves every node of `from`, in order, to the back of head; `from` is left empty. */
static inline void ilist_splice_back(ilist_t *head, ilist_t *from)
{
    if (ilist_empty(from))
        return;
    head->prev->next = from->next;
    from->next->prev = head->prev;
    head->prev = from->prev;
    from->prev->next = head;
    ilist_init(from);
}

#endif
