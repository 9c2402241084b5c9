/* glob: see glob.h. A list is one allocation: the header, the spans, then the patterns. */
#include "common/glob.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/xalloc.h"

typedef struct span {
    size_t off, len;
} span_t;

struct glob_list {
    size_t n;
    span_t *pat;
    char *text;
};

bool glob_match(const char *pat, size_t plen, const char *s, size_t len)
{
    size_t p = 0, i = 0;
    size_t star = SIZE_MAX, star_i = 0; /* resume point after the last `*` */
    while (i < len) {
        if (p < plen && pat[p] == '*') {
            star = ++p;
            star_i = i;
            continue;
        }
        if (p < plen) {
            size_t q = p;
            bool any = pat[q] == '?';
            if (pat[q] == '\\' && q + 1 < plen)
                q++;
            if (any || pat[q] == s[i]) {
                p = q + 1;
                i++;
                continue;
            }
        }
        if (star == SIZE_MAX)
            return false;
        p = star;
        i = ++star_i;
    }
    while (p < plen && pat[p] == '*')
        p++;
    return p == plen;
}

/* Patterns gathered back to back in text, each as (u32 length, bytes), then packed. */
static glob_list_t *pack(const buf_t *items, size_t n)
{
    size_t total = items->len - n * sizeof(uint32_t);
    glob_list_t *l = xmalloc(sizeof(*l) + n * sizeof(span_t) + total + 1);
    l->n = n;
    l->pat = (span_t *)(l + 1);
    l->text = (char *)(l->pat + n);
    size_t in = 0, off = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t len;
        memcpy(&len, items->data + in, sizeof(len));
        in += sizeof(len);
        memcpy(l->text + off, items->data + in, len);
        l->pat[i] = (span_t){off, len};
        in += len;
        off += len;
    }
    return l;
}

static void add(buf_t *items, const char *p, size_t len)
{
    uint32_t n = (uint32_t)len;
    buf_append(items, (const char *)&n, sizeof(n));
    buf_append(items, p, len);
}

static bool blank(char c)
{
    return c == ' ' || c == '\t';
}

int glob_list_from_csv(const char *v, size_t max_items, size_t max_len, glob_list_t **out)
{
    buf_t items, cur;
    buf_init(&items);
    buf_init(&cur);
    size_t n = 0, vlen = strlen(v);
    bool all_blank = true;
    for (size_t i = 0; i < vlen; i++)
        all_blank = all_blank && blank(v[i]);
    int rc = 0;
    for (size_t i = 0; !all_blank && i <= vlen && rc == 0;) {
        /* one item, up to an unescaped comma: `\,` is a comma, other escapes stay for glob_match */
        buf_reset(&cur);
        for (; i < vlen && v[i] != ','; i++) {
            if (v[i] == '\\' && i + 1 < vlen && v[i + 1] != ',')
                buf_putc(&cur, v[i++]);
            else if (v[i] == '\\' && i + 1 < vlen)
                i++;
            buf_putc(&cur, v[i]);
        }
        i++; /* past the comma, or the end */
        size_t a = 0, b = cur.len;
        while (a < b && blank(cur.data[a]))
            a++;
        while (b > a && blank(cur.data[b - 1]))
            b--;
        if (a == b || b - a > max_len || n == max_items) {
            rc = -EINVAL;
        } else {
            add(&items, cur.data + a, b - a);
            n++;
        }
    }
    if (rc == 0)
        *out = pack(&items, n);
    buf_free(&items);
    buf_free(&cur);
    return rc;
}

/* One string of a claim: decoded, 1..max_len bytes. */
static int add_claim_item(buf_t *items, const json_span_t *item, size_t max_len, buf_t *tmp)
{
    buf_reset(tmp);
    if (item->type != JSON_STRING || json_string_decode(item->p, item->len, tmp) != 0 ||
        tmp->len == 0 || tmp->len > max_len)
        return -EINVAL;
    add(items, tmp->data, tmp->len);
    return 0;
}

int glob_list_from_json(const json_span_t *claim, size_t max_items, size_t max_len,
                        glob_list_t **out)
{
    if (claim->type != JSON_STRING && claim->type != JSON_ARRAY)
        return -EINVAL;
    buf_t items, tmp;
    buf_init(&items);
    buf_init(&tmp);
    int rc = 0;
    size_t n = 0;
    if (claim->type == JSON_STRING) {
        rc = max_items ? add_claim_item(&items, claim, max_len, &tmp) : -EINVAL;
        n = 1;
    } else {
        /* walked in place: a claim may be long, so no fixed table of spans */
        const char *p = claim->p;
        size_t len = claim->len, pos = json_skip_ws(p, len, 1);
        while (rc == 0 && pos < len && p[pos] != ']') {
            size_t end = json_value_end(p, len, pos);
            json_span_t item = {JSON_NULL, p + pos, end - pos};
            if (n == max_items || json_type_of(item.p, item.len, &item.type) != 0)
                rc = -EINVAL;
            else
                rc = add_claim_item(&items, &item, max_len, &tmp);
            n++;
            pos = json_skip_ws(p, len, end);
            if (pos < len && p[pos] == ',')
                pos = json_skip_ws(p, len, pos + 1);
        }
    }
    if (rc == 0)
        *out = pack(&items, n);
    buf_free(&items);
    buf_free(&tmp);
    return rc;
}

bool glob_list_match(const glob_list_t *l, const char *s, size_t len)
{
    for (size_t i = 0; l && i < l->n; i++) {
        if (glob_match(l->text + l->pat[i].off, l->pat[i].len, s, len))
            return true;
    }
    return false;
}

size_t glob_list_count(const glob_list_t *l)
{
    return l ? l->n : 0;
}

void glob_list_free(glob_list_t *l)
{
    free(l);
}
