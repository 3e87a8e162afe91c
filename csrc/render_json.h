/* render_json.h: the JSON writers of csrc/render_event.c's trail lines, spelled as
 * Python's json encoder writes them (sandbox/audit/canonical.py): escapes, UTF-8 with
 * surrogateescape bytes as \udcxx, integers.  The caller sizes the buffer (an upper
 * bound of the line, record_bound), so no writer checks its end.
 *
 * static inline, in a header: render_one calls these per byte of a record, on the
 * audit drain's hot path, and they must stay inlined into it (no LTO in this build).
 */
#ifndef LG_RENDER_JSON_H
#define LG_RENDER_JSON_H
#include <stddef.h>
#include <string.h>

static const char LG_HEX[] = "0123456789abcdef";

struct out {
    char *p; /* next byte */
};

static inline void put(struct out *o, const char *s, size_t n)
{
    memcpy(o->p, s, n);
    o->p += n;
}

#define PUTS(o, lit) put((o), (lit), sizeof(lit) - 1)

static inline void put_str0(struct out *o, const char *s)
{
    put(o, s, strlen(s));
}

static inline void put_u64(struct out *o, unsigned long long v)
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

static inline void put_int(struct out *o, int v)
{
    if (v < 0) {
        *o->p++ = '-';
        put_u64(o, (unsigned long long)(-(long long)v));
    } else {
        put_u64(o, (unsigned long long)v);
    }
}

static inline void put_escape_u(struct out *o, unsigned hi, unsigned char b)
{
    /* \u00xx for a control character, \udcxx for a byte that is not UTF-8 */
    o->p[0] = '\\';
    o->p[1] = 'u';
    o->p[2] = hi == 0 ? '0' : 'd';
    o->p[3] = hi == 0 ? '0' : 'c';
    o->p[4] = LG_HEX[b >> 4];
    o->p[5] = LG_HEX[b & 15];
    o->p += 6;
}

/* n bytes as 2n lowercase hex digits at dst (no NUL): a digest in a line. */
static inline void put_hex(char *dst, const unsigned char *src, size_t n)
{
    for (size_t k = 0; k < n; k++) {
        dst[2 * k] = LG_HEX[src[k] >> 4];
        dst[2 * k + 1] = LG_HEX[src[k] & 15];
    }
}

/* Length of the well-formed UTF-8 sequence at s[0..n) (Unicode table 3-7, which is
 * what Python's decoder accepts), or 0 when s[0] starts none.  The same decoding as
 * glob.c's lg_utf8, kept inline here: calling that one out of line costs this hot path
 * ~50 instructions per multi-byte character (+1.5% per record for a non-ASCII path). */
static inline int utf8_len(const unsigned char *s, size_t n)
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
static inline void put_text(struct out *o, const char *text, size_t n)
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

static inline void put_jstr(struct out *o, const char *text, size_t n)
{
    *o->p++ = '"';
    put_text(o, text, n);
    *o->p++ = '"';
}

#endif
