/* render_event.c: drained ring records straight into sealed audit trail lines.
 *
 * The Python drainer used to turn each record into a DecisionEvent, an entry dict,
 * canonical JSON and a hash chain link: ~17 us of CPU per record, on the CPU the
 * agent's loop runs on (issue 19).  This renders the same bytes in C.  Nothing here
 * decides anything: the line is a record of a decision already answered, and
 * tests/audit/test_render_contract.py compares every byte of it with the Python
 * path (sandbox/audit/canonical.py's spelling) over generated records.
 *
 * The spelling it must match, field by field (sandbox/audit/event.py to_entry,
 * entries.py decision_entry, chain.py write_many, canonical.py seal):
 * - keys sorted, "," and ":" with no spaces, UTF-8;
 * - strings as json's encoder writes them with ensure_ascii=False: '"' and '\\'
 *   escaped, \b \t \n \f \r short, other bytes < 0x20 as \u00xx, the rest as is;
 *   a byte that is not part of well-formed UTF-8 (Python decodes it with
 *   surrogateescape to U+DC80..U+DCFF) as \udcxx;
 * - floats as Python's repr (the shortest digits that read back to the same
 *   double); only the range a clock gives ([1e9, 1e16), and 0) is rendered here,
 *   anything else makes the whole batch take the Python path;
 * - "hash" is SHA-256 of the line without its own member, then keyed BLAKE2s-128
 *   ("lgentry2") of that digest.
 */
#include <stdint.h>
#include <string.h>

#include "supervise_api.h"

/* ------------------------------------------------------------------ SHA-256 */

struct sha256 {
    void (*compress)(uint32_t h[8], const unsigned char *p);
    uint32_t h[8];
    uint64_t len;
    unsigned char buf[64];
    size_t fill;
};

static const uint32_t K256[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
    0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
    0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
    0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
    0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
    0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
    0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
    0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
    0xc67178f2};

#define ROR32(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void sha256_block(uint32_t h[8], const unsigned char *p)
{
    uint32_t w[64];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
               (uint32_t)p[4 * i + 2] << 8 | (uint32_t)p[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = ROR32(w[i - 15], 7) ^ ROR32(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = ROR32(w[i - 2], 17) ^ ROR32(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], k = h[7];
    for (int i = 0; i < 64; i++) {
        uint32_t t1 = k + (ROR32(e, 6) ^ ROR32(e, 11) ^ ROR32(e, 25)) + ((e & f) ^ (~e & g)) +
                      K256[i] + w[i];
        uint32_t t2 = (ROR32(a, 2) ^ ROR32(a, 13) ^ ROR32(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        k = g;
        g = f;
        f = e;
        e = d + t1;
        d = c;
        c = b;
        b = a;
        a = t1 + t2;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
    h[5] += f;
    h[6] += g;
    h[7] += k;
}

/* The same compression with the CPU's SHA extensions (x86 SHA-NI: ~5x faster on a
 * 600-byte line, which is most of a record's cost), chosen once at load when the CPU
 * has them.  tests/audit/test_render_contract.py checks both against hashlib. */
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <immintrin.h>

__attribute__((target("sha,sse4.1,ssse3"))) static void sha256_block_ni(uint32_t h[8],
                                                                        const unsigned char *p)
{
    const __m128i mask = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
    __m128i tmp = _mm_loadu_si128((const __m128i *)&h[0]);
    __m128i st1 = _mm_loadu_si128((const __m128i *)&h[4]);
    tmp = _mm_shuffle_epi32(tmp, 0xB1);         /* CDAB */
    st1 = _mm_shuffle_epi32(st1, 0x1B);         /* EFGH */
    __m128i st0 = _mm_alignr_epi8(tmp, st1, 8); /* ABEF */
    st1 = _mm_blend_epi16(st1, tmp, 0xF0);      /* CDGH */
    __m128i abef = st0, cdgh = st1, w[16];
    for (int i = 0; i < 4; i++)
        w[i] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 16 * i)), mask);
    for (int i = 4; i < 16; i++) {
        __m128i t = _mm_sha256msg1_epu32(w[i - 4], w[i - 3]);
        t = _mm_add_epi32(t, _mm_alignr_epi8(w[i - 1], w[i - 2], 4));
        w[i] = _mm_sha256msg2_epu32(t, w[i - 1]);
    }
    for (int i = 0; i < 16; i++) {
        __m128i msg = _mm_add_epi32(w[i], _mm_loadu_si128((const __m128i *)&K256[4 * i]));
        st1 = _mm_sha256rnds2_epu32(st1, st0, msg);
        msg = _mm_shuffle_epi32(msg, 0x0E);
        st0 = _mm_sha256rnds2_epu32(st0, st1, msg);
    }
    st0 = _mm_add_epi32(st0, abef);
    st1 = _mm_add_epi32(st1, cdgh);
    tmp = _mm_shuffle_epi32(st0, 0x1B);      /* FEBA */
    st1 = _mm_shuffle_epi32(st1, 0xB1);      /* DCHG */
    st0 = _mm_blend_epi16(tmp, st1, 0xF0);   /* DCBA */
    st1 = _mm_alignr_epi8(st1, tmp, 8);      /* HGFE */
    _mm_storeu_si128((__m128i *)&h[0], st0);
    _mm_storeu_si128((__m128i *)&h[4], st1);
}

static int cpu_has_sha_ni(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_SSE4_1) || !(c & bit_SSSE3))
        return 0;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d))
        return 0;
    return (b & (1u << 29)) != 0; /* CPUID.7.0:EBX.SHA */
}
#else
static void sha256_block_ni(uint32_t h[8], const unsigned char *p)
{
    sha256_block(h, p);
}

static int cpu_has_sha_ni(void)
{
    return 0;
}
#endif

/* Set once when the module loads, before any thread can render. */
static void (*sha256_compress)(uint32_t h[8], const unsigned char *p) = sha256_block;

__attribute__((constructor)) static void sha256_choose(void)
{
    if (cpu_has_sha_ni())
        sha256_compress = sha256_block_ni;
}

static void sha256_init(struct sha256 *s)
{
    static const uint32_t iv[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    memcpy(s->h, iv, sizeof iv);
    s->compress = sha256_compress;
    s->len = 0;
    s->fill = 0;
}

static void sha256_update(struct sha256 *s, const unsigned char *p, size_t n)
{
    s->len += n;
    if (s->fill) {
        size_t take = 64 - s->fill < n ? 64 - s->fill : n;
        memcpy(s->buf + s->fill, p, take);
        s->fill += take;
        p += take;
        n -= take;
        if (s->fill < 64)
            return;
        s->compress(s->h, s->buf);
        s->fill = 0;
    }
    for (; n >= 64; p += 64, n -= 64)
        s->compress(s->h, p);
    memcpy(s->buf, p, n);
    s->fill = n;
}

static void sha256_final(struct sha256 *s, unsigned char out[32])
{
    uint64_t bits = s->len * 8;
    unsigned char pad = 0x80;
    sha256_update(s, &pad, 1);
    unsigned char zero[64] = {0};
    sha256_update(s, zero, (s->fill <= 56 ? 56 : 120) - s->fill);
    unsigned char lenb[8];
    for (int i = 0; i < 8; i++)
        lenb[i] = (unsigned char)(bits >> (56 - 8 * i));
    sha256_update(s, lenb, 8);
    for (int i = 0; i < 8; i++) {
        out[4 * i] = (unsigned char)(s->h[i] >> 24);
        out[4 * i + 1] = (unsigned char)(s->h[i] >> 16);
        out[4 * i + 2] = (unsigned char)(s->h[i] >> 8);
        out[4 * i + 3] = (unsigned char)s->h[i];
    }
}

/* ------------------------------------------------------------------ BLAKE2s */

static const uint32_t B2S_IV[8] = {0x6A09E667, 0xBB67AE85, 0x3C6EF372, 0xA54FF53A,
                                   0x510E527F, 0x9B05688C, 0x1F83D9AB, 0x5BE0CD19};
static const unsigned char B2S_SIGMA[10][16] = {
    {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
    {14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3},
    {11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4},
    {7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8},
    {9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13},
    {2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9},
    {12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11},
    {13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10},
    {6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5},
    {10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0}};

static uint32_t le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

#define B2S_G(a, b, c, d, x, y)                                                                    \
    do {                                                                                           \
        v[a] = v[a] + v[b] + (x);                                                                  \
        v[d] = ROR32(v[d] ^ v[a], 16);                                                             \
        v[c] = v[c] + v[d];                                                                        \
        v[b] = ROR32(v[b] ^ v[c], 12);                                                             \
        v[a] = v[a] + v[b] + (y);                                                                  \
        v[d] = ROR32(v[d] ^ v[a], 8);                                                              \
        v[c] = v[c] + v[d];                                                                        \
        v[b] = ROR32(v[b] ^ v[c], 7);                                                              \
    } while (0)

/* One compression: block of 64 bytes, t = bytes hashed so far including it. */
static void b2s_compress(uint32_t h[8], const unsigned char block[64], uint32_t t, int last)
{
    uint32_t m[16], v[16];
    for (int i = 0; i < 16; i++)
        m[i] = le32(block + 4 * i);
    for (int i = 0; i < 8; i++) {
        v[i] = h[i];
        v[i + 8] = B2S_IV[i];
    }
    v[12] ^= t; /* the high word of the counter stays 0: inputs are < 4 GB */
    if (last)
        v[14] = ~v[14];
    for (int r = 0; r < 10; r++) {
        const unsigned char *s = B2S_SIGMA[r];
        B2S_G(0, 4, 8, 12, m[s[0]], m[s[1]]);
        B2S_G(1, 5, 9, 13, m[s[2]], m[s[3]]);
        B2S_G(2, 6, 10, 14, m[s[4]], m[s[5]]);
        B2S_G(3, 7, 11, 15, m[s[6]], m[s[7]]);
        B2S_G(0, 5, 10, 15, m[s[8]], m[s[9]]);
        B2S_G(1, 6, 11, 12, m[s[10]], m[s[11]]);
        B2S_G(2, 7, 8, 13, m[s[12]], m[s[13]]);
        B2S_G(3, 4, 9, 14, m[s[14]], m[s[15]]);
    }
    for (int i = 0; i < 8; i++)
        h[i] ^= v[i] ^ v[i + 8];
}

/* The keyed state after the key block (canonical.tag_base): digest 16 bytes, key
 * `klen` (1..32) bytes, personalisation "lgentry2". */
static void tag_base(uint32_t h[8], const unsigned char *key, int klen)
{
    static const unsigned char person[8] = {'l', 'g', 'e', 'n', 't', 'r', 'y', '2'};
    for (int i = 0; i < 8; i++)
        h[i] = B2S_IV[i];
    h[0] ^= 16u | (uint32_t)klen << 8 | 1u << 16 | 1u << 24; /* fanout 1, depth 1 */
    h[6] ^= le32(person);
    h[7] ^= le32(person + 4);
    unsigned char block[64] = {0};
    memcpy(block, key, (size_t)klen);
    b2s_compress(h, block, 64, 0);
}

/* canonical.entry_tag: keyed BLAKE2s-128 of the raw digest (its only, last block). */
static void entry_tag(const uint32_t base[8], const unsigned char digest[32], unsigned char out[16])
{
    uint32_t h[8];
    unsigned char block[64] = {0};
    memcpy(h, base, sizeof h);
    memcpy(block, digest, 32);
    b2s_compress(h, block, 64 + 32, 1);
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++)
            out[4 * i + j] = (unsigned char)(h[i] >> (8 * j));
}

/* ------------------------------------------------------------ JSON pieces */

static const char HEX[] = "0123456789abcdef";

struct out {
    char *p; /* next byte */
};

static void put(struct out *o, const char *s, size_t n)
{
    memcpy(o->p, s, n);
    o->p += n;
}

#define PUTS(o, lit) put((o), (lit), sizeof(lit) - 1)

static void put_str0(struct out *o, const char *s)
{
    put(o, s, strlen(s));
}

static void put_u64(struct out *o, unsigned long long v)
{
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        *o->p++ = tmp[--n];
}

static void put_int(struct out *o, int v)
{
    if (v < 0) {
        *o->p++ = '-';
        put_u64(o, (unsigned long long)(-(long long)v));
    } else {
        put_u64(o, (unsigned long long)v);
    }
}

static void put_escape_u(struct out *o, unsigned hi, unsigned char b)
{
    /* \u00xx for a control character, \udcxx for a byte that is not UTF-8 */
    o->p[0] = '\\';
    o->p[1] = 'u';
    o->p[2] = hi == 0 ? '0' : 'd';
    o->p[3] = hi == 0 ? '0' : 'c';
    o->p[4] = HEX[b >> 4];
    o->p[5] = HEX[b & 15];
    o->p += 6;
}

/* Length of the well-formed UTF-8 sequence at s[0..n) (Unicode table 3-7, which is
 * what Python's decoder accepts), or 0 when s[0] starts none. */
static int utf8_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        return n >= 2 && (s[1] & 0xC0) == 0x80 ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
        unsigned char lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
        return n >= 3 && s[1] >= lo && s[1] <= hi && (s[2] & 0xC0) == 0x80 ? 3 : 0;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        unsigned char lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
        return n >= 4 && s[1] >= lo && s[1] <= hi && (s[2] & 0xC0) == 0x80 &&
                       (s[3] & 0xC0) == 0x80
                   ? 4
                   : 0;
    }
    return 0;
}

/* The contents of a JSON string (no quotes) for bytes decoded with surrogateescape. */
static void put_text(struct out *o, const char *text, size_t n)
{
    const unsigned char *s = (const unsigned char *)text;
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
            *o->p++ = (char)c;
            i++;
            continue;
        }
        if (c < 0x80) {
            *o->p++ = '\\';
            switch (c) {
            case '"': *o->p++ = '"'; break;
            case '\\': *o->p++ = '\\'; break;
            case '\b': *o->p++ = 'b'; break;
            case '\t': *o->p++ = 't'; break;
            case '\n': *o->p++ = 'n'; break;
            case '\f': *o->p++ = 'f'; break;
            case '\r': *o->p++ = 'r'; break;
            default:
                o->p--; /* the backslash is part of the \u00xx form */
                put_escape_u(o, 0, c);
            }
            i++;
            continue;
        }
        int k = utf8_len(s + i, n - i);
        if (k == 0) {
            put_escape_u(o, 1, c);
            i++;
        } else {
            put(o, text + i, (size_t)k);
            i += (size_t)k;
        }
    }
}

static void put_jstr(struct out *o, const char *text, size_t n)
{
    *o->p++ = '"';
    put_text(o, text, n);
    *o->p++ = '"';
}

/* Python's repr of d, for d == 0 or 1e9 <= d < 1e16 (fixed notation there); -1 for
 * any other value.  repr gives the fewest significant digits that read back as d,
 * the nearest such number when several do, ties to an even last digit.  Exact
 * integer arithmetic: d = m * 2^e (53-bit m, -23 <= e <= 1 in this range), so with
 * k = max(0, -e), d * 10^k * 4 = V is an integer below 2^110, and so are the
 * bounds of the interval of numbers that read back as d (half a step either way,
 * a quarter below when m is a power of two; included when m is even, as
 * round-half-even reads them).  The answer is the nearest multiple of 4 * 10^t in
 * that interval for the largest t that has one. */
int lg_render_double(double d, char *out)
{
    typedef unsigned __int128 u128;
    if (d == 0) {
        memcpy(out, "0.0", 4);
        return 3;
    }
    if (!(d >= 1e9 && d < 1e16))
        return -1;
    uint64_t bits;
    memcpy(&bits, &d, sizeof bits);
    int e = (int)((bits >> 52) & 0x7ff) - 1075;
    uint64_t m = (bits & ((1ULL << 52) - 1)) | (1ULL << 52);
    int k = e < 0 ? -e : 0;
    u128 scale = 1; /* 5^k, or 2^e when e >= 0 */
    for (int i = 0; i < (e < 0 ? k : e); i++)
        scale *= e < 0 ? 5 : 2;
    u128 v = (u128)m * 4 * scale, up = 2 * scale, dn = m == (1ULL << 52) ? scale : 2 * scale;
    u128 lo = v - dn, hi = v + up;
    int inclusive = (m & 1) == 0;
    /* A grid finer than the interval is wide has a point in it; a coarser grid's
     * points are also the finer one's, so the largest t is found going up from
     * there (one or two steps; each a 128-bit division). */
    u128 g = 4; /* 4 * 10^t */
    int t = 0;
    while (g * 10 < up + dn)
        g *= 10, t++;
    u128 c = 0;
    for (int have = 0;; g *= 10, t++) {
        u128 below = v / g, above = below + 1; /* the grid points around v */
        int ok_b = below * g == v || (inclusive ? below * g >= lo : below * g > lo);
        int ok_a = below * g != v && (inclusive ? above * g <= hi : above * g < hi);
        if (!ok_b && !ok_a) {
            if (!have)
                return -1; /* cannot happen: the first grid is finer than the interval */
            g /= 10, t--;
            break;
        }
        if (ok_b && ok_a) {
            u128 db = v - below * g, da = above * g - v;
            c = db < da ? below : da < db ? above : (below & 1) ? above : below;
        } else {
            c = ok_b ? below : above;
        }
        have = 1;
        if (g > hi)
            break;
    }
    /* c * 10^t / 10^k: the digits of c, t - k being the decimal exponent */
    char digits[48];
    int nd = 0;
    char tmp[48];
    do {
        tmp[nd++] = (char)('0' + (int)(c % 10));
        c /= 10;
    } while (c);
    for (int i = 0; i < nd; i++)
        digits[i] = tmp[nd - 1 - i];
    while (nd > 1 && digits[nd - 1] == '0')
        nd--, t++;
    int decpt = nd + t - k; /* digits before the point: 10..16 in this range */
    if (decpt < 1 || decpt > 17)
        return -1;
    int n = 0;
    for (int i = 0; i < decpt; i++)
        out[n++] = i < nd ? digits[i] : '0';
    out[n++] = '.';
    if (nd <= decpt)
        out[n++] = '0';
    else
        for (int i = decpt; i < nd; i++)
            out[n++] = digits[i];
    out[n] = 0;
    return n;
}

/* -------------------------------------------------------------- one record */

/* The flag names in bit order (sandbox/supervise/supervisor.py _FLAGS). */
static const struct {
    unsigned bit;
    const char *json;
} FLAGS[] = {
    {LG_EV_SIMULATED, "\"simulated\""},  {LG_EV_ROOT, "\"root\""},
    {LG_EV_INHERITED, "\"inherited\""},  {LG_EV_EXEC_RACE, "\"exec-race\""},
    {LG_EV_VERIFIED, "\"verified\""},    {LG_EV_TRUNCATED, "\"truncated\""},
    {LG_EV_FAILCLOSED, "\"fail-closed\""}, {LG_EV_SHELL, "\"shell-string\""},
    {LG_EV_WRAPPER, "\"unwrapped\""},    {LG_EV_FORWARDED, "\"forwarded\""},
    {LG_EV_MISSING, "\"missing\""},      {LG_EV_EXECUTED, "\"executed-object\""},
};

#define HASH_GAP (1 + 8 + 96 + 1) /* ,"hash":" + digest and tag + " */

static size_t cstrnlen(const char *s, size_t max)
{
    const char *z = memchr(s, 0, max);
    return z ? (size_t)(z - s) : max;
}

/* An upper bound of one record's line: each byte of the target may appear twice
 * (argv and target) as a 6-byte escape, with quotes, commas and spaces around the
 * words; each byte of detail once; the rest is fixed text and the rule's fragments. */
static size_t record_bound(const struct lg_render *r, const struct lg_event *e,
                           const struct lg_render_rule *rule)
{
    size_t tl = LG_TARGET_MAX; /* the exec words' bytes, or the target string's */
    if (e->action == LG_ACT_EXEC && e->argc > 0)
        tl = e->target_len < 0 ? 0 : e->target_len > LG_TARGET_MAX ? LG_TARGET_MAX
                                                                     : (size_t)e->target_len;
    else
        tl = cstrnlen(e->target, LG_TARGET_MAX);
    return 16 * tl + 6 * cstrnlen(e->detail, LG_DETAIL_MAX) + 1100 + strlen(r->session) +
           strlen(r->mode) + strlen(rule->refs) + strlen(rule->origin) +
           (rule->open_action ? strlen(rule->open_action) : 0);
}

static int render_one(const struct lg_render *r, const struct lg_event *e,
                      const struct lg_render_rule *rule, unsigned long long seq,
                      const char prev[64], const uint32_t tag0[8], struct out *o,
                      unsigned char digest[32], unsigned char *code)
{
    char ts[40], ts_decided[40];
    if (lg_render_double((double)e->t_recv_ns / 1e9, ts) < 0 ||
        lg_render_double((double)e->t_resp_ns / 1e9, ts_decided) < 0)
        return -1;
    int act = e->action, deny = e->result != LG_EFFECT_ALLOW;
    size_t dlen = cstrnlen(e->detail, LG_DETAIL_MAX);
    const char *action, *layer;
    int action_code;
    switch (act) {
    case LG_ACT_EXEC:
        action = "\"shell_exec\"", layer = "\"exec\"", action_code = LG_RENDER_SHELL_EXEC;
        break;
    case LG_ACT_CONNECT:
    case LG_ACT_SEND:
        action = "\"network\"", layer = "\"connect\"", action_code = LG_RENDER_NETWORK;
        break;
    case LG_ACT_OPEN:
        layer = "\"carve-outs\"";
        if (rule->open_action) {
            action = rule->open_action, action_code = rule->open_code;
        } else {
            /* detail: "read" / "write", then the object's real path when it differs */
            size_t w = cstrnlen(e->detail, dlen);
            const char *sp = memchr(e->detail, ' ', w);
            size_t first = sp ? (size_t)(sp - e->detail) : w;
            int write = first == 5 && memcmp(e->detail, "write", 5) == 0;
            action = write ? "\"file_write\"" : "\"file_read\"";
            action_code = write ? LG_RENDER_FILE_WRITE : LG_RENDER_FILE_READ;
        }
        break;
    default:
        action = "\"unknown\"", layer = "\"seccomp\"", action_code = LG_RENDER_UNKNOWN;
    }
    *code = (unsigned char)(action_code << 1 | deny);

    char *start = o->p;
    PUTS(o, "{\"action\":");
    put_str0(o, action);
    PUTS(o, ",\"argv\":");
    const char *raw = e->target;
    int exec_argv = act == LG_ACT_EXEC && e->argc > 0;
    /* exec: argc NUL-separated words in the first target_len bytes (split whole,
     * the first argc parts kept, as the Python reader does) */
    size_t rawlen = e->target_len < 0 ? 0
                    : e->target_len > LG_TARGET_MAX ? LG_TARGET_MAX
                                                    : (size_t)e->target_len;
    if (exec_argv) {
        *o->p++ = '[';
        size_t pos = 0;
        for (int k = 0; k < e->argc; k++) {
            const char *z = memchr(raw + pos, 0, rawlen - pos);
            size_t end = z ? (size_t)(z - raw) : rawlen;
            if (k)
                *o->p++ = ',';
            put_jstr(o, raw + pos, end - pos);
            if (!z)
                break; /* the last part: fewer than argc words */
            pos = end + 1;
        }
        *o->p++ = ']';
    } else {
        PUTS(o, "null");
    }
    PUTS(o, ",\"detail\":");
    if (dlen)
        put_jstr(o, e->detail, dlen);
    else
        PUTS(o, "null");
    PUTS(o, ",\"errno\":");
    put_int(o, e->err);
    PUTS(o, ",\"event_seq\":");
    put_u64(o, e->seq);
    PUTS(o, ",\"exec_race\":");
    if (e->flags & LG_EV_EXEC_RACE)
        PUTS(o, "true");
    else
        PUTS(o, "false");
    PUTS(o, ",\"flags\":[");
    int nf = 0;
    for (size_t k = 0; k < sizeof FLAGS / sizeof FLAGS[0]; k++)
        if (e->flags & FLAGS[k].bit) {
            if (nf++)
                *o->p++ = ',';
            put_str0(o, FLAGS[k].json);
        }
    *o->p++ = ']';
    char *gap = o->p; /* the hash member goes here once the rest is hashed */
    o->p += HASH_GAP;
    char *after = o->p;
    PUTS(o, ",\"layer\":");
    put_str0(o, layer);
    PUTS(o, ",\"mode\":");
    put_str0(o, r->mode);
    PUTS(o, ",\"origin\":");
    put_str0(o, rule->origin);
    PUTS(o, ",\"pid\":");
    put_int(o, e->pid);
    PUTS(o, ",\"prev\":\"");
    put(o, prev, 64);
    PUTS(o, "\",\"result\":");
    if (deny)
        PUTS(o, "\"deny\",");
    else
        PUTS(o, "\"allow\",");
    put_str0(o, rule->refs);
    PUTS(o, ",\"seq\":");
    put_u64(o, seq);
    PUTS(o, ",\"session\":");
    put_str0(o, r->session);
    PUTS(o, ",\"syscall\":");
    put_int(o, e->syscall_nr);
    PUTS(o, ",\"target\":\"");
    if (exec_argv) {
        /* the program's base name, then its arguments, joined by spaces */
        const char *z = memchr(raw, 0, rawlen);
        size_t end0 = z ? (size_t)(z - raw) : rawlen;
        const char *slash = NULL;
        for (size_t k = end0; k > 0; k--)
            if (raw[k - 1] == '/') {
                slash = raw + k - 1;
                break;
            }
        size_t b0 = slash ? (size_t)(slash - raw) + 1 : 0;
        put_text(o, raw + b0, end0 - b0);
        size_t pos = end0 + 1;
        for (int k = 1; k < e->argc && z; k++) {
            z = memchr(raw + pos, 0, rawlen - pos);
            size_t end = z ? (size_t)(z - raw) : rawlen;
            *o->p++ = ' ';
            put_text(o, raw + pos, end - pos);
            pos = end + 1;
        }
    } else {
        put_text(o, raw, cstrnlen(raw, LG_TARGET_MAX));
    }
    PUTS(o, "\",\"tid\":");
    put_int(o, e->tid);
    PUTS(o, ",\"ts\":");
    put_str0(o, ts);
    PUTS(o, ",\"ts_decided\":");
    put_str0(o, ts_decided);
    PUTS(o, ",\"type\":\"decision\"}");

    struct sha256 sh;
    sha256_init(&sh);
    sha256_update(&sh, (const unsigned char *)start, (size_t)(gap - start));
    sha256_update(&sh, (const unsigned char *)after, (size_t)(o->p - after));
    sha256_final(&sh, digest);
    unsigned char tag[16];
    entry_tag(tag0, digest, tag);
    memcpy(gap, ",\"hash\":\"", 9);
    for (int k = 0; k < 32; k++) {
        gap[9 + 2 * k] = HEX[digest[k] >> 4];
        gap[10 + 2 * k] = HEX[digest[k] & 15];
    }
    for (int k = 0; k < 16; k++) {
        gap[73 + 2 * k] = HEX[tag[k] >> 4];
        gap[74 + 2 * k] = HEX[tag[k] & 15];
    }
    gap[105] = '"';
    *o->p++ = '\n';
    return 0;
}

int lg_render_events(const struct lg_render *r, const struct lg_event *evs, int n,
                     unsigned long long seq, const char *prev, char *out, size_t cap,
                     size_t *used, unsigned char *digests, unsigned char *codes, int *missing)
{
    *missing = -1;
    *used = 0;
    if (r->key_len < 1 || r->key_len > 32 || n < 0)
        return -1;
    uint32_t tag0[8];
    tag_base(tag0, r->key, r->key_len);
    struct out o = {out};
    char link[64];
    memcpy(link, prev, 64);
    int done = 0;
    for (; done < n; done++) {
        const struct lg_event *e = &evs[done];
        const struct lg_render_rule *rule =
            e->rule >= 0 && e->rule < r->nrules ? &r->rules[e->rule] : r->none;
        if (rule->refs == NULL) { /* filled on first use: the caller fills it and goes on */
            *missing = e->rule;
            break;
        }
        if ((size_t)(o.p - out) + record_bound(r, e, rule) > cap)
            break; /* the caller renders the rest into a fresh buffer */
        unsigned char *digest = digests + 32 * (size_t)done;
        if (render_one(r, e, rule, seq + 1 + (unsigned long long)done, link, tag0, &o, digest,
                       codes + done) < 0)
            return -1;
        for (int k = 0; k < 32; k++) {
            link[2 * k] = HEX[digest[k] >> 4];
            link[2 * k + 1] = HEX[digest[k] & 15];
        }
    }
    *used = (size_t)(o.p - out);
    return done;
}

/* SHA-256 of p[0..n) with the compression chosen at load (portable = 0) or the
 * portable one: 1 if the CPU's SHA extensions were used.  For the tests. */
int lg_render_sha256(const unsigned char *p, size_t n, unsigned char *out, int portable)
{
    struct sha256 s;
    sha256_init(&s);
    if (portable)
        s.compress = sha256_block;
    sha256_update(&s, p, n);
    sha256_final(&s, out);
    return s.compress == sha256_block_ni;
}
