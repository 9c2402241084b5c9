/* sha1: see sha1.h. */
#include "common/proto/sha1.h"

#include <string.h>

/* The SHA extensions are looked up with GCC's __builtin_cpu_supports (libgcc reads CPUID once at
 * start-up); clang's (the fuzz build) does not know "sha": it uses the portable rounds. */
#if defined(__x86_64__) && !defined(__clang__)
#define SHA1_SHANI 1
#include <immintrin.h>
#endif

static uint32_t rol(uint32_t x, unsigned n)
{
    return (x << n) | (x >> (32 - n));
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* One round: e takes the sum, b is rotated in place; the callers rotate the names instead of the
 * values, so a round is a few instructions with no moves and no branch. */
#define ROUND(a, b, c, d, e, f, k, w)                                                              \
    do {                                                                                           \
        (e) += rol((a), 5) + (f) + (k) + (w);                                                      \
        (b) = rol((b), 30);                                                                        \
    } while (0)
#define F1(b, c, d) ((d) ^ ((b) & ((c) ^ (d))))
#define F2(b, c, d) ((b) ^ (c) ^ (d))
#define F3(b, c, d) (((b) & (c)) | ((d) & ((b) | (c))))
/* Word t of the message schedule: the block's own for t < 16, else computed in place in a ring of
 * 16 where round t needs it (t is a constant: the test folds away). */
#define W(t)                                                                                       \
    ((t) < 16 ? w[(t)&15]                                                                          \
              : (w[(t)&15] = rol(                                                                  \
                     w[((t) + 13) & 15] ^ w[((t) + 8) & 15] ^ w[((t) + 2) & 15] ^ w[(t)&15], 1)))
/* Rounds t..t+4, the names rotated once around. */
#define FIVE(f, k, t)                                                                              \
    do {                                                                                           \
        ROUND(a, bb, c, d, e, f(bb, c, d), k, W(t));                                               \
        ROUND(e, a, bb, c, d, f(a, bb, c), k, W((t) + 1));                                         \
        ROUND(d, e, a, bb, c, f(e, a, bb), k, W((t) + 2));                                         \
        ROUND(c, d, e, a, bb, f(d, e, a), k, W((t) + 3));                                          \
        ROUND(bb, c, d, e, a, f(c, d, e), k, W((t) + 4));                                          \
    } while (0)

/* One 64-byte block into the state h (FIPS 180-4 §6.1.2), unrolled: about a third of the
 * instructions of the textbook loop (80 words, a branch per round), on every handshake. */
static void block(uint32_t h[5], const uint8_t *b)
{
    uint32_t w[16];
    for (int t = 0; t < 16; t++)
        w[t] = be32(b + 4 * t);
    uint32_t a = h[0], bb = h[1], c = h[2], d = h[3], e = h[4];
    FIVE(F1, 0x5a827999, 0);
    FIVE(F1, 0x5a827999, 5);
    FIVE(F1, 0x5a827999, 10);
    FIVE(F1, 0x5a827999, 15);
    FIVE(F2, 0x6ed9eba1, 20);
    FIVE(F2, 0x6ed9eba1, 25);
    FIVE(F2, 0x6ed9eba1, 30);
    FIVE(F2, 0x6ed9eba1, 35);
    FIVE(F3, 0x8f1bbcdc, 40);
    FIVE(F3, 0x8f1bbcdc, 45);
    FIVE(F3, 0x8f1bbcdc, 50);
    FIVE(F3, 0x8f1bbcdc, 55);
    FIVE(F2, 0xca62c1d6, 60);
    FIVE(F2, 0xca62c1d6, 65);
    FIVE(F2, 0xca62c1d6, 70);
    FIVE(F2, 0xca62c1d6, 75);
    h[0] += a;
    h[1] += bb;
    h[2] += c;
    h[3] += d;
    h[4] += e;
}

#ifdef SHA1_SHANI
/* The x86 SHA extensions (SHA-NI): the 80 rounds in 20 instructions of 4 rounds each, the
 * schedule in sha1msg1/sha1msg2. Step g runs rounds 4g..4g+3 with message word group m[g % 4] and
 * prepares the groups later steps need (FIPS 180-4's W, four words at a time); the E value
 * alternates between e0 and e1. After Intel's reference ("Intel SHA Extensions", 2013). */
#define SHANI_STEP(g)                                                                              \
    do {                                                                                           \
        __m128i *ein = (g) % 2 ? &e1 : &e0, *eout = (g) % 2 ? &e0 : &e1;                           \
        if ((g) < 4)                                                                               \
            m[(g)] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(b + 16 * (g))), bswap);    \
        *ein = (g) == 0 ? _mm_add_epi32(*ein, m[0]) : _mm_sha1nexte_epu32(*ein, m[(g) % 4]);       \
        *eout = abcd;                                                                              \
        if ((g) >= 3 && (g) <= 18)                                                                 \
            m[((g) + 1) % 4] = _mm_sha1msg2_epu32(m[((g) + 1) % 4], m[(g) % 4]);                   \
        abcd = _mm_sha1rnds4_epu32(abcd, *ein, (g) / 5);                                           \
        if ((g) >= 1 && (g) <= 16)                                                                 \
            m[((g) + 3) % 4] = _mm_sha1msg1_epu32(m[((g) + 3) % 4], m[(g) % 4]);                   \
        if ((g) >= 2 && (g) <= 17)                                                                 \
            m[((g) + 2) % 4] = _mm_xor_si128(m[((g) + 2) % 4], m[(g) % 4]);                        \
    } while (0)

__attribute__((target("sha,ssse3,sse4.1"))) static void block_shani(uint32_t h[5], const uint8_t *b)
{
    const __m128i bswap = _mm_set_epi64x(0x0001020304050607LL, 0x08090a0b0c0d0e0fLL);
    __m128i abcd = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)h), 0x1b);
    __m128i e0 = _mm_set_epi32((int)h[4], 0, 0, 0), e1;
    __m128i abcd_in = abcd, e_in = e0, m[4];
    SHANI_STEP(0);
    SHANI_STEP(1);
    SHANI_STEP(2);
    SHANI_STEP(3);
    SHANI_STEP(4);
    SHANI_STEP(5);
    SHANI_STEP(6);
    SHANI_STEP(7);
    SHANI_STEP(8);
    SHANI_STEP(9);
    SHANI_STEP(10);
    SHANI_STEP(11);
    SHANI_STEP(12);
    SHANI_STEP(13);
    SHANI_STEP(14);
    SHANI_STEP(15);
    SHANI_STEP(16);
    SHANI_STEP(17);
    SHANI_STEP(18);
    SHANI_STEP(19);
    e0 = _mm_sha1nexte_epu32(e0, e_in);
    abcd = _mm_shuffle_epi32(_mm_add_epi32(abcd, abcd_in), 0x1b);
    _mm_storeu_si128((__m128i *)h, abcd);
    h[4] = (uint32_t)_mm_extract_epi32(e0, 3);
}
#endif

bool sha1_accelerated(void)
{
#ifdef SHA1_SHANI
    /* valgrind hides the extension: under it, block() runs */
    return __builtin_cpu_supports("sha") && __builtin_cpu_supports("sse4.1");
#else
    return false;
#endif
}

static void digest(const void *p, size_t len, uint8_t out[SHA1_DIGEST_LEN],
                   void (*fn)(uint32_t h[5], const uint8_t *b))
{
    uint32_t h[5] = {0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0};
    const uint8_t *in = p;
    size_t left = len;
    for (; left >= 64; left -= 64, in += 64)
        fn(h, in);
    /* the tail, a 1 bit, zeros, and the length in bits as a 64-bit big-endian number */
    uint8_t last[128] = {0};
    memcpy(last, in, left);
    last[left] = 0x80;
    size_t n = left + 1 + 8 <= 64 ? 64 : 128;
    uint64_t bits = (uint64_t)len * 8;
    for (int i = 0; i < 8; i++)
        last[n - 1 - i] = (uint8_t)(bits >> (8 * i));
    for (size_t off = 0; off < n; off += 64)
        fn(h, last + off);
    for (int i = 0; i < 5; i++) {
        out[4 * i] = (uint8_t)(h[i] >> 24);
        out[4 * i + 1] = (uint8_t)(h[i] >> 16);
        out[4 * i + 2] = (uint8_t)(h[i] >> 8);
        out[4 * i + 3] = (uint8_t)h[i];
    }
}

void sha1(const void *p, size_t len, uint8_t out[SHA1_DIGEST_LEN])
{
#ifdef SHA1_SHANI
    if (sha1_accelerated()) {
        digest(p, len, out, block_shani);
        return;
    }
#endif
    digest(p, len, out, block);
}

void sha1_generic(const void *p, size_t len, uint8_t out[SHA1_DIGEST_LEN])
{
    digest(p, len, out, block);
}
