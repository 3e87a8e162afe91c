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
#include <stdint.h>

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
 * PARENTS "nothing, or anything ending in '/'" (at any depth).
 *
 * Two interpreters that mean the same (tests/policy/test_glob_steps.py runs
 * both over the same cases):
 *
 * match_path_rec backtracks: fast for the globs policies have (it skips along
 * the path with a byte compare), but it tries every way to split the path
 * between the spanning ops, a power of the path's length per spanning op
 * (`/w/ ** / *a* / ** / *a* / ** / *a* /x` took 6 s over an 854-byte path), and the
 * path is the agent's choice.  So it runs on a budget of steps, the most the
 * second interpreter can take, and gives up when that is spent.
 *
 * match_path_nfa runs the program as a set of states over the text, one
 * character at a time (Thompson's construction), never backtracking: each
 * character visits each op at most twice, O(program words x characters)
 * whatever the glob.  It answers whenever the budget ran out, so a match costs
 * at most twice the state-set bound.
 *
 * A state is an op's word index in one of two sets:
 *   at[w]  "at op w": about to match it.  For STAR and ANY it is also the loop
 *          (they consume by staying at w); SUBDIRS and PARENTS consume nothing
 *          there yet.
 *   in[w]  inside SUBDIRS (after its '/': anything may follow) or PARENTS (in the
 *          middle of a component, which must end with '/' before the next op).
 * Every op that can match nothing (STAR, ANY, SUBDIRS, PARENTS, and SUBDIRS'
 * inside) also puts the next op in the set: the closure.  Next ops always have
 * higher indices, so one ascending pass over the set closes it. */

#ifndef LG_GLOB_STEP
#define LG_GLOB_STEP() ((void)0)  /* tests count the states visited (tests/policy) */
#endif
#ifndef LG_GLOB_NFA_WORDS
#define LG_GLOB_NFA_WORDS 4096  /* programs up to this many words run as state sets */
#endif
#define SETW ((LG_GLOB_NFA_WORDS + 63) / 64)
/* Steps the backtracking interpreter may take before the state sets answer: the
 * most those take (each character visits each word at most twice, once stepping
 * and once closing; once more for the first closure). */
#ifndef LG_GLOB_BUDGET
#define LG_GLOB_BUDGET(words, n) (2 * (words) * ((n) + 1))
#endif

/* The word index of the op after the one at w. */
static size_t next_op(const unsigned *g, size_t w)
{
    if (LG_OP_CODE(g[w]) == LG_OP_CLASS)
        return w + 1 + 2 * (size_t)(LG_OP_ARG(g[w]) & LG_CLASS_COUNT);
    return w + 1;
}

static int spans(unsigned op)
{
    return op == LG_OP_STAR || op == LG_OP_ANY || op == LG_OP_SUBDIRS || op == LG_OP_PARENTS;
}

#define HAS(set, w) (((set)[(w) >> 6] >> ((w) & 63)) & 1u)
#define ADD(set, w) ((set)[(w) >> 6] |= (uint64_t)1 << ((w) & 63))

/* Add to `at` every op reachable from its members (and from `in`'s SUBDIRS)
 * without consuming a character.  Ascending: what is added lies ahead. */
static void closure(const unsigned *g, uint64_t *at, const uint64_t *in, size_t nw)
{
    for (size_t k = 0; k < nw; k++) {
        uint64_t seen = 0;
        for (;;) {
            uint64_t m = (at[k] | in[k]) & ~seen;
            if (!m)
                break;
            unsigned b = (unsigned)__builtin_ctzll(m);
            seen = b == 63 ? ~(uint64_t)0 : ((uint64_t)1 << (b + 1)) - 1;
            size_t w = k * 64 + b;
            unsigned op = LG_OP_CODE(g[w]);
            LG_GLOB_STEP();
            if ((HAS(at, w) && spans(op)) || (HAS(in, w) && op == LG_OP_SUBDIRS))
                ADD(at, next_op(g, w));
        }
    }
}

/* PARENTS after a character: at '/' a component ended (the next op may follow,
 * through the closure); any other character is inside a component. */
static void parents_char(size_t w, unsigned c, uint64_t *nat, uint64_t *nin)
{
    if (c == '/')
        ADD(nat, w);
    else
        ADD(nin, w);
}

/* One character c taken from state at[w] (op is g[w]'s code): what it leads to. */
static void step_at(const unsigned *g, size_t w, unsigned op, unsigned c, uint64_t *nat,
                    uint64_t *nin)
{
    const unsigned *next;
    switch (op) {
    case LG_OP_STAR:
        if (c != '/')
            ADD(nat, w);  /* one more character of the component */
        return;
    case LG_OP_ANY:
        ADD(nat, w);  /* one more character, '/' included */
        return;
    case LG_OP_SUBDIRS:
        if (c == '/')
            ADD(nin, w);  /* the '/' into the directory */
        return;
    case LG_OP_PARENTS:
        parents_char(w, c, nat, nin);
        return;
    case LG_OP_END:
        return;  /* text left over: this state fails */
    default:
        if (one_char(g + w, c, 1, &next))
            ADD(nat, (size_t)(next - g));
        return;
    }
}

static int match_path_nfa(const unsigned *g, size_t words, const unsigned char *t, size_t n)
{
    uint64_t a[2][SETW], i[2][SETW];
    size_t nw = (words + 63) / 64, cur = 0;
    for (size_t k = 0; k < nw; k++)
        a[0][k] = i[0][k] = 0;
    a[0][0] = 1;  /* at the first op */
    closure(g, a[0], i[0], nw);
    for (size_t pos = 0; pos < n;) {
        unsigned c;
        size_t l = lg_utf8(t + pos, n - pos, &c);
        uint64_t *at = a[cur], *in = i[cur], *nat = a[!cur], *nin = i[!cur];
        uint64_t any = 0;
        for (size_t k = 0; k < nw; k++)
            nat[k] = nin[k] = 0;
        for (size_t k = 0; k < nw; k++) {
            for (uint64_t m = at[k] | in[k]; m; m &= m - 1) {
                size_t w = k * 64 + (unsigned)__builtin_ctzll(m);
                unsigned op = LG_OP_CODE(g[w]);
                LG_GLOB_STEP();
                if (HAS(at, w))
                    step_at(g, w, op, c, nat, nin);
                if (HAS(in, w) && op == LG_OP_SUBDIRS)
                    ADD(nin, w);  /* anything beneath the directory */
                else if (HAS(in, w) && op == LG_OP_PARENTS)
                    parents_char(w, c, nat, nin);
            }
        }
        closure(g, nat, nin, nw);
        for (size_t k = 0; k < nw; k++)
            any |= nat[k] | nin[k];
        if (!any)
            return 0;  /* no state left: nothing more of the text can match */
        cur = !cur;
        pos += l;
    }
    return (int)HAS(a[cur], words - 1);  /* at the END op when the text is used up */
}

/* One step of the backtracking interpreter: -1 once the budget is spent. */
#define CHARGE(budget)                                                        \
    do {                                                                      \
        if (*(budget) == 0)                                                   \
            return -1;                                                        \
        --*(budget);                                                          \
        LG_GLOB_STEP();                                                       \
    } while (0)

/* 1 match, 0 none, -1 the budget ran out first (a budget of SIZE_MAX: never,
 * for programs too long for match_path_nfa's sets).  Recursive at each
 * variable-length op; depth is bounded by the program's length.  Every loop
 * iteration and every character is charged, so the work is bounded by the
 * budget. */
static int match_path_rec(const unsigned *g, const unsigned char *t, size_t n, size_t *budget)
{
    unsigned c;
    int r;
    for (;;) {
        CHARGE(budget);
        unsigned op = LG_OP_CODE(*g);
        if (op == LG_OP_END)
            return n == 0;
        if (op == LG_OP_STAR || op == LG_OP_ANY) {
            for (size_t i = 0;; ) {
                CHARGE(budget);
                if ((r = match_path_rec(g + 1, t + i, n - i, budget)) != 0)
                    return r;
                if (i == n || (op == LG_OP_STAR && t[i] == '/'))
                    return 0;
                i += lg_utf8(t + i, n - i, &c);
            }
        }
        if (op == LG_OP_SUBDIRS) {
            if ((r = match_path_rec(g + 1, t, n, budget)) != 0)
                return r;
            if (n == 0 || t[0] != '/')
                return 0;
            for (size_t i = 1; i <= n; i += i < n ? lg_utf8(t + i, n - i, &c) : 1) {
                CHARGE(budget);
                if ((r = match_path_rec(g + 1, t + i, n - i, budget)) != 0)
                    return r;
            }
            return 0;
        }
        if (op == LG_OP_PARENTS) {
            if ((r = match_path_rec(g + 1, t, n, budget)) != 0)
                return r;
            for (size_t i = 0; i < n; i++) {
                CHARGE(budget);
                if (t[i] == '/' && (r = match_path_rec(g + 1, t + i + 1, n - i - 1, budget)) != 0)
                    return r;
            }
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

static int match_path(const unsigned *g, const unsigned char *t, size_t n)
{
    size_t words = 0, budget = SIZE_MAX, tail = 0;
    while (LG_OP_CODE(g[words]) != LG_OP_END) {
        tail = LG_OP_CODE(g[words]) == LG_OP_LIT ? tail : next_op(g, words);
        words = next_op(g, words);
        if (words >= LG_GLOB_NFA_WORDS)  /* only a policy's author writes such a glob */
            return match_path_rec(g, t, n, &budget) == 1;
    }
    /* g[tail..words) are the literals the program ends with: each matches one
     * character and END needs the text used up, so the text must end with them
     * ("**" "/" ".env": any path not ending in "/.env" fails here, before the
     * matcher tries every place the PARENTS op could stop).  Checked from the end
     * while they are ASCII: an ASCII byte is always a whole character (no UTF-8
     * sequence contains one), so the last k characters are those k literals exactly
     * when the last k bytes are. */
    for (size_t w = words, k = n; w > tail && LG_OP_ARG(g[w - 1]) < 0x80; w--) {
        if (k == 0 || t[k - 1] != LG_OP_ARG(g[w - 1]))
            return 0;
        k--;
    }
    words++;  /* the END op */
    /* The state sets' own bound: what match_path_nfa may take at most. */
    budget = LG_GLOB_BUDGET(words, n);
    int r = match_path_rec(g, t, n, &budget);
    return r >= 0 ? r : match_path_nfa(g, words, t, n);
}

/* Programs the path matcher runs within its bound have fewer words than this: a longer
 * one would backtrack without a budget (match_path), so the tables refuse it
 * (sandbox/supervise/tables.py: a policy error naming the rule). */
int lg_glob_path_limit(void)
{
    return LG_GLOB_NFA_WORDS;
}

/* The words of a program up to and including its END op, at most `cap` (then cap). */
int lg_glob_words(const unsigned *glob, int cap)
{
    size_t w = 0;
    if (!glob)
        return 0;
    while (LG_OP_CODE(glob[w]) != LG_OP_END) {
        w = next_op(glob, w);
        if (w >= (size_t)cap)
            return cap;
    }
    return (int)w + 1;
}

int lg_glob_match(const unsigned *glob, const char *text, size_t len, int path)
{
    if (!glob)
        return 0;
    const unsigned char *t = (const unsigned char *)text;
    return path ? match_path(glob, t, len) : match_line(glob, t, len);
}
