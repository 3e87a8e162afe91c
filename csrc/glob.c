/* glob.c: the one glob interpreter (DESIGN §3).
 *
 * Python (sandbox/policy/compiled.py) parses every glob of a policy once and
 * compiles it into a program of LG_OP_* words; this file only runs programs.
 * explain, simulation and the supervisor all call lg_glob_match, so a glob
 * means the same everywhere by construction.
 *
 * Text is matched character by character, a character being one UTF-8
 * sequence as Python's strict decoder accepts it (no overlong forms, no
 * surrogates, nothing above U+10FFFF); any other byte is one character whose
 * code point is 0xDC00 + byte, which is what os.fsdecode (surrogateescape)
 * makes of it.  So '?' is one character, never one byte.
 */
#include <stddef.h>

#include "supervise_int.h"

size_t lg_utf8(const unsigned char *s, size_t n, unsigned *cp)
{
    unsigned c = s[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    size_t len;
    unsigned v, lo = 0x80, hi = 0xbf;  /* bounds of the second byte */
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
        v = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        v = c & 0x0f;
        if (c == 0xe0)
            lo = 0xa0;  /* overlong */
        if (c == 0xed)
            hi = 0x9f;  /* UTF-16 surrogates */
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        v = c & 0x07;
        if (c == 0xf0)
            lo = 0x90;  /* overlong */
        if (c == 0xf4)
            hi = 0x8f;  /* above U+10FFFF */
    } else {
        goto invalid;
    }
    if (len > n || s[1] < lo || s[1] > hi)
        goto invalid;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            goto invalid;
        v = (v << 6) | (s[i] & 0x3fu);
    }
    *cp = v;
    return len;
invalid:
    *cp = 0xdc00u + c;
    return 1;
}

/* Does the one-character op at p accept code point c?  Sets *next past it. */
static int one_char(const unsigned *p, unsigned c, int path, const unsigned **next)
{
    unsigned op = LG_OP_CODE(*p), arg = LG_OP_ARG(*p);
    *next = p + 1;
    if (op == LG_OP_LIT)
        return c == arg;
    if (op == LG_OP_ONE)
        return !path || c != '/';
    if (op == LG_OP_CLASS) {
        unsigned n = arg & LG_CLASS_COUNT;
        int hit = 0;
        for (unsigned k = 0; k < n; k++)
            if (c >= p[1 + 2 * k] && c <= p[2 + 2 * k])
                hit = 1;
        *next = p + 1 + 2 * n;
        if (arg & LG_CLASS_NEG)
            return !hit && !(path && c == '/');
        return hit;
    }
    return 0;
}

/* Command lines: '*' matches any run.  One star to return to is enough
 * (a later star only ever needs the earlier one to match less), so this is
 * O(len(glob) * len(text)) without recursion, for lines up to LG_CMD_MAX. */
static int match_line(const unsigned *g, const unsigned char *t, size_t n)
{
    const unsigned *star_g = NULL;
    size_t star_t = 0, i = 0;
    unsigned c;
    while (i < n) {
        if (LG_OP_CODE(*g) == LG_OP_STAR) {
            while (LG_OP_CODE(*g) == LG_OP_STAR)
                g++;
            if (LG_OP_CODE(*g) == LG_OP_END)
                return 1;
            star_g = g;
            star_t = i;
            continue;
        }
        size_t l = lg_utf8(t + i, n - i, &c);
        const unsigned *next;
        if (LG_OP_CODE(*g) != LG_OP_END && one_char(g, c, 0, &next)) {
            g = next;
            i += l;
            continue;
        }
        if (!star_g)
            return 0;
        g = star_g;
        star_t += lg_utf8(t + star_t, n - star_t, &c);
        i = star_t;
    }
    while (LG_OP_CODE(*g) == LG_OP_STAR)
        g++;
    return LG_OP_CODE(*g) == LG_OP_END;
}

/* Paths: '*' stays within a component; LG_OP_ANY crosses them; SUBDIRS is
 * "nothing, or '/' and anything" (a directory and what is beneath it),
 * PARENTS "nothing, or anything ending in '/'" (at any depth).  Recursive at
 * each variable-length op; depth is bounded by the program's length. */
static int match_path(const unsigned *g, const unsigned char *t, size_t n)
{
    unsigned c;
    for (;;) {
        unsigned op = LG_OP_CODE(*g);
        if (op == LG_OP_END)
            return n == 0;
        if (op == LG_OP_STAR || op == LG_OP_ANY) {
            for (size_t i = 0;; ) {
                if (match_path(g + 1, t + i, n - i))
                    return 1;
                if (i == n || (op == LG_OP_STAR && t[i] == '/'))
                    return 0;
                i += lg_utf8(t + i, n - i, &c);
            }
        }
        if (op == LG_OP_SUBDIRS) {
            if (match_path(g + 1, t, n))
                return 1;
            if (n == 0 || t[0] != '/')
                return 0;
            for (size_t i = 1; i <= n; i += i < n ? lg_utf8(t + i, n - i, &c) : 1)
                if (match_path(g + 1, t + i, n - i))
                    return 1;
            return 0;
        }
        if (op == LG_OP_PARENTS) {
            if (match_path(g + 1, t, n))
                return 1;
            for (size_t i = 0; i < n; i++)
                if (t[i] == '/' && match_path(g + 1, t + i + 1, n - i - 1))
                    return 1;
            return 0;
        }
        if (n == 0)
            return 0;
        size_t l = lg_utf8(t, n, &c);
        const unsigned *next;
        if (!one_char(g, c, 1, &next))
            return 0;
        g = next;
        t += l;
        n -= l;
    }
}

int lg_glob_match(const unsigned *glob, const char *text, size_t len, int path)
{
    if (!glob)
        return 0;
    const unsigned char *t = (const unsigned char *)text;
    return path ? match_path(glob, t, len) : match_line(glob, t, len);
}
