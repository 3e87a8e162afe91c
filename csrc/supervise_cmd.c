/* supervise_cmd.c: command-line judgement for exec (DESIGN §3).
 *
 * A command is matched as argv joined by single spaces with argv[0] reduced
 * to its basename.  Because argv[0] is chosen by the caller, the line is
 * judged twice when the executed file's basename differs from argv[0]'s
 * (execve("/usr/bin/curl", {"git", ...}) is judged as `git ...` AND as
 * `curl ...`).  Wrappers (env, nice, timeout, stdbuf, xargs, nohup, setsid,
 * busybox APPLET, the ELF loader run directly) are unwrapped, so `env curl x`
 * is judged as `env curl x` and as `curl x`.  A shell started with -c is
 * judged by each simple command of its string as well.
 *
 * Verdict: deny if any judged form matches a deny rule (forbid overrides
 * permit); allow if the innermost form of every chain matches an allow rule
 * (or, for a shell, every segment of its string does); else undecided, and
 * the caller applies inheritance or the default.
 *
 * Globs: '*' matches any run of characters (spaces and '/' included: command
 * lines are not paths), '?' one character, [set] / [!set] a class, '\' quotes.
 * Must mirror sandbox.policy's match_command; tests/supervise/test_matcher.py
 * compares the two on generated commands.
 */
#include <stdbool.h>
#include <string.h>

#include "supervise_int.h"

/* ---- globs -------------------------------------------------------------- */

/* One UTF-8 character at s (n bytes left): its code point and length.  An
 * invalid byte counts as one character, as Python's surrogateescape decoding
 * of argv does, so '?' and classes agree with sandbox.policy on any bytes. */
static size_t u8(const char *s, size_t n, unsigned *cp)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t len = u[0] < 0x80 ? 1 : (u[0] & 0xe0) == 0xc0 ? 2 : (u[0] & 0xf0) == 0xe0 ? 3
               : (u[0] & 0xf8) == 0xf0 ? 4 : 0;
    if (len == 0 || len > n) {
        *cp = 0xdc00u + u[0];
        return 1;
    }
    unsigned v = len == 1 ? u[0] : len == 2 ? (u[0] & 0x1fu) : len == 3 ? (u[0] & 0x0fu) : (u[0] & 0x07u);
    for (size_t i = 1; i < len; i++) {
        if ((u[i] & 0xc0) != 0x80) {
            *cp = 0xdc00u + u[0];
            return 1;
        }
        v = (v << 6) | (u[i] & 0x3fu);
    }
    *cp = v;
    return len;
}

/* One character class at g (pointing after '['); sets *end past ']'.
 * Returns 1 if code point c is in the class, 0 if not, -1 if the class is
 * malformed (then '[' is taken literally by the caller). */
static int class_match(const char *g, unsigned c, const char **end)
{
    bool neg = false, hit = false;
    const char *p = g;
    if (*p == '!' || *p == '^') {
        neg = true;
        p++;
    }
    bool first = true;
    while (*p && (first || *p != ']')) {
        unsigned lo, hi;
        if (*p == '\\' && p[1])
            p++;
        p += u8(p, strlen(p), &lo);
        hi = lo;
        if (p[0] == '-' && p[1] && p[1] != ']') {
            p++;
            if (*p == '\\' && p[1])
                p++;
            p += u8(p, strlen(p), &hi);
        }
        if (c >= lo && c <= hi)
            hit = true;
        first = false;
    }
    if (*p != ']')
        return -1;
    *end = p + 1;
    return hit != neg;
}

/* Single-star backtracking: O(len(glob) * len(text)), no recursion. */
int lg_glob_command(const char *g, const char *t, size_t tlen)
{
    const char *star_g = NULL;
    size_t star_t = 0, i = 0;
    while (i < tlen) {
        if (*g == '*') {
            while (*g == '*')
                g++;
            if (!*g)
                return 1;
            star_g = g;
            star_t = i;
            continue;
        }
        if (*g) {
            const char *next = g + 1;
            unsigned tc;
            size_t tl = u8(t + i, tlen - i, &tc);
            int ok;
            if (*g == '?') {
                ok = 1;
            } else if (*g == '[') {
                ok = class_match(g + 1, tc, &next);
                if (ok < 0) {
                    ok = t[i] == '[';
                    next = g + 1;
                    tl = 1;
                }
            } else {
                const char *lit = g;
                if (*g == '\\' && g[1])
                    lit = g + 1;
                unsigned gc;
                size_t gl = u8(lit, strlen(lit), &gc);
                ok = gc == tc;
                next = lit + gl;
            }
            if (ok) {
                g = next;
                i += tl;
                continue;
            }
        }
        if (!star_g)
            return 0;
        g = star_g;
        unsigned skip;
        star_t += u8(t + star_t, tlen - star_t, &skip);
        i = star_t;
    }
    while (*g == '*')
        g++;
    return *g == '\0';
}

/* Path globs: '*' and '?' stay within one component, '**' crosses them.
 * Recursive on '*' (patterns come from the policy author, paths are bounded
 * by PATH_MAX); depth is bounded by the pattern's length. */
static int path_match(const char *g, const char *p)
{
    for (;;) {
        if (*g == '*' && g[1] == '*') {
            while (*g == '*')
                g++;
            for (const char *q = p;; q++) {
                if (path_match(g, q))
                    return 1;
                if (!*q)
                    return 0;
            }
        }
        if (*g == '*') {
            g++;
            for (const char *q = p;; q++) {
                if (path_match(g, q))
                    return 1;
                if (!*q || *q == '/')
                    return 0;
            }
        }
        if (!*g)
            return !*p;
        if (!*p)
            return 0;
        if (*g == '?') {
            if (*p == '/')
                return 0;
            g++;
            p++;
            continue;
        }
        if (*g == '[') {
            const char *end;
            unsigned pc;
            size_t pl = u8(p, strlen(p), &pc);
            int ok = class_match(g + 1, pc, &end);
            if (ok >= 0) {
                if (!ok || *p == '/')
                    return 0;
                g = end;
                p += pl;
                continue;
            }
        }
        if (*g == '\\' && g[1])
            g++;
        if (*g != *p)
            return 0;
        g++;
        p++;
    }
}

int lg_glob_path(const char *glob, const char *path)
{
    return path_match(glob, path);
}

int lg_match_command(const char *glob, const char *text)
{
    return lg_glob_command(glob, text, strlen(text));
}

int lg_match_path(const char *glob, const char *path)
{
    return lg_glob_path(glob, path);
}

/* ---- words and lines ---------------------------------------------------- */

const char *lg_basename(const char *p, int len, int *outlen)
{
    int i = len;
    while (i > 0 && p[i - 1] != '/')
        i--;
    *outlen = len - i;
    return p + i;
}

static bool name_is(const char *name, int len, const char *lit)
{
    size_t n = strlen(lit);
    return (size_t)len == n && memcmp(name, lit, n) == 0;
}

/* Join words[k..n) with single spaces, the first replaced by name0.
 * Returns the length, or -1 if it does not fit (caller fails closed). */
static long build_line(char *out, size_t cap, const struct lg_words *w, int k,
                       const char *name0, int name0len)
{
    size_t pos = 0;
    for (int i = k; i < w->n; i++) {
        const char *src = i == k ? name0 : w->w[i];
        size_t len = (size_t)(i == k ? name0len : w->len[i]);
        if (pos + len + 2 > cap)
            return -1;
        if (i > k)
            out[pos++] = ' ';
        memcpy(out + pos, src, len);
        pos += len;
    }
    out[pos] = '\0';
    return (long)pos;
}

/* Result of matching one line against the exec rules. */
struct form_result {
    int effect;  /* 0 = no rule matched */
    int rule;
    int inherit;
};

static void match_line(const struct lg_sup *s, const char *line, size_t len, struct form_result *r)
{
    r->effect = 0;
    r->rule = -1;
    r->inherit = 0;
    for (int i = 0; i < s->t.n_exec; i++) {
        const struct lg_exec_rule *er = &s->t.exec[i];
        if (!lg_glob_command(er->glob, line, len))
            continue;
        if (er->effect == LG_EFFECT_DENY) {
            r->effect = LG_EFFECT_DENY;
            r->rule = er->rule;
            return;  /* forbid overrides permit */
        }
        if (r->effect == 0) {
            r->effect = LG_EFFECT_ALLOW;
            r->rule = er->rule;
            r->inherit = er->inherit;
        }
    }
}

/* ---- wrappers ------------------------------------------------------------ */

static bool is_loader(const char *n, int len)
{
    /* ld-linux-x86-64.so.2, ld-linux.so.2, ld.so, ld-2.36.so, ld-musl-x86_64.so.1 */
    if (len >= 3 && memcmp(n, "ld-", 3) == 0 && memmem(n, (size_t)len, ".so", 3) != NULL)
        return true;
    return name_is(n, len, "ld.so");
}

/* Options (of a wrapper) that consume the next word. */
static bool takes_arg(const char *wrapper, int wlen, const char *opt, int olen)
{
    static const char *const env_o[] = {"-u", "--unset", "-C", "--chdir", "-S", "--split-string", NULL};
    static const char *const nice_o[] = {"-n", "--adjustment", NULL};
    static const char *const timeout_o[] = {"-s", "--signal", "-k", "--kill-after", NULL};
    static const char *const stdbuf_o[] = {"-i", "-o", "-e", "--input", "--output", "--error", NULL};
    static const char *const xargs_o[] = {"-a", "--arg-file", "-d", "--delimiter", "-E", "-I", "-L",
                                          "--max-lines", "-n", "--max-args", "-P", "--max-procs",
                                          "-s", "--max-chars", "--process-slot-var", NULL};
    static const char *const setsid_o[] = {NULL};
    static const char *const ld_o[] = {"--library-path", "--preload", "--argv0", "--audit",
                                       "--inhibit-rpath", "--glibc-hwcaps-prepend",
                                       "--glibc-hwcaps-mask", NULL};
    const char *const *list = setsid_o;
    if (name_is(wrapper, wlen, "env"))
        list = env_o;
    else if (name_is(wrapper, wlen, "nice"))
        list = nice_o;
    else if (name_is(wrapper, wlen, "timeout"))
        list = timeout_o;
    else if (name_is(wrapper, wlen, "stdbuf"))
        list = stdbuf_o;
    else if (name_is(wrapper, wlen, "xargs"))
        list = xargs_o;
    else if (is_loader(wrapper, wlen))
        list = ld_o;
    for (int i = 0; list[i]; i++)
        if (name_is(opt, olen, list[i]))
            return true;
    return false;
}

static bool is_wrapper(const char *n, int len)
{
    return name_is(n, len, "env") || name_is(n, len, "nice") || name_is(n, len, "timeout") ||
           name_is(n, len, "stdbuf") || name_is(n, len, "xargs") || name_is(n, len, "nohup") ||
           name_is(n, len, "setsid") || name_is(n, len, "busybox") || is_loader(n, len);
}

/* The index of the wrapped command in w (after the wrapper at k), or -1 when
 * the wrapper runs nothing (`env` alone prints the environment) or cannot be
 * unwrapped faithfully (`env -S STRING`: judged as written, so only an
 * explicit allow of that form lets it run). */
static int unwrap(const struct lg_words *w, int k, const char *name, int nlen)
{
    int i = k + 1;
    if (name_is(name, nlen, "busybox"))
        return i < w->n ? i : -1;
    bool env = name_is(name, nlen, "env");
    bool timeout = name_is(name, nlen, "timeout");
    while (i < w->n) {
        const char *a = w->w[i];
        int alen = w->len[i];
        if (name_is(a, alen, "--")) {
            i++;
            break;
        }
        if (alen > 1 && a[0] == '-') {
            if (env && (name_is(a, alen, "-S") || (alen > 2 && memcmp(a, "-S", 2) == 0) ||
                        (alen >= 14 && memcmp(a, "--split-string", 14) == 0)))
                return -1;
            if (takes_arg(name, nlen, a, alen))
                i++;
            i++;
            continue;
        }
        break;
    }
    if (env)  /* NAME=VALUE assignments */
        while (i < w->n && memchr(w->w[i], '=', (size_t)w->len[i]) != NULL)
            i++;
    if (timeout && i < w->n)  /* DURATION */
        i++;
    return i < w->n ? i : -1;
}

/* ---- shells -------------------------------------------------------------- */

static bool is_shell(const char *n, int len)
{
    return name_is(n, len, "sh") || name_is(n, len, "bash") || name_is(n, len, "dash") ||
           name_is(n, len, "zsh") || name_is(n, len, "ksh") || name_is(n, len, "mksh") ||
           name_is(n, len, "ash") || name_is(n, len, "rbash");
}

/* The index of the -c command string of the shell at k, or -1. */
static int shell_string(const struct lg_words *w, int k)
{
    bool c = false;
    for (int i = k + 1; i < w->n; i++) {
        const char *a = w->w[i];
        int alen = w->len[i];
        if (name_is(a, alen, "--"))
            return c && i + 1 < w->n ? i + 1 : -1;
        if (alen > 1 && (a[0] == '-' || a[0] == '+')) {
            if (name_is(a + 1, alen - 1, "o") || name_is(a + 1, alen - 1, "O"))
                i++;
            else if (a[0] == '-' && a[1] != '-' && memchr(a, 'c', (size_t)alen))
                c = true;
            continue;
        }
        return c ? i : -1;
    }
    return -1;
}

struct judge {
    struct lg_sup *s;
    int denied;          /* a form matched a deny rule */
    int deny_rule;
    int all_allowed;     /* every required innermost form matched an allow rule */
    int allow_rule;
    int inherit;         /* AND of the allow rules' inherit */
    unsigned flags;
    int toolong;
};

static void judge_chain(struct judge *j, const struct lg_words *w, const char *name0, int n0len, int depth);

/* Tokenise a shell string into simple commands and judge each one.
 * Returns true if every segment was judged allowed. */
static bool judge_shell_string(struct judge *j, const char *str, int len, int depth)
{
    if (depth >= LG_SEG_DEPTH)
        return false;
    struct lg_words *w = &j->s->segw[depth];
    char *buf = j->s->seg + (size_t)depth * LG_CMD_MAX;
    size_t bpos = 0;
    bool all = true;
    bool any = false;
    int i = 0;
    w->n = 0;
    j->flags |= LG_EV_SHELL;

    /* State of the current word. */
    bool in_word = false, skip_next = false, at_start = true, drop_segment = false;
    size_t wstart = 0;
    char heredoc[64];
    size_t heredoc_len = 0;
    bool pending_heredoc = false;

#define FLUSH_WORD()                                                                   \
    do {                                                                               \
        if (in_word) {                                                                 \
            buf[bpos++] = '\0';                                                        \
            if (skip_next) {                                                           \
                if (pending_heredoc && heredoc_len == 0) {                             \
                    size_t hl = bpos - 1 - wstart;                                     \
                    if (hl >= sizeof heredoc)                                          \
                        hl = sizeof heredoc - 1;                                       \
                    memcpy(heredoc, buf + wstart, hl);                                 \
                    heredoc_len = hl;                                                  \
                }                                                                      \
                skip_next = false;                                                     \
            } else if (!drop_segment) {                                                \
                const char *wp = buf + wstart;                                         \
                int wl = (int)(bpos - 1 - wstart);                                     \
                bool assign = false;                                                   \
                if (at_start) {                                                        \
                    const char *eq = memchr(wp, '=', (size_t)wl);                      \
                    assign = eq != NULL && eq != wp;                                   \
                    for (const char *q = wp; assign && q < eq; q++)                    \
                        if (!(*q == '_' || (*q >= 'A' && *q <= 'Z') ||                 \
                              (*q >= 'a' && *q <= 'z') || (q > wp && *q >= '0' && *q <= '9'))) \
                            assign = false;                                            \
                }                                                                      \
                static const char *const kw[] = {"if", "then", "else", "elif", "fi", "do", \
                    "done", "while", "until", "!", "{", "}", "time", "exec", "command",    \
                    "builtin", "nohup", NULL};                                         \
                bool keyword = false;                                                  \
                if (at_start && !assign)                                               \
                    for (int q = 0; kw[q]; q++)                                        \
                        if (name_is(wp, wl, kw[q]))                                    \
                            keyword = true;                                            \
                if (at_start && !assign && (name_is(wp, wl, "for") || name_is(wp, wl, "case") || \
                                            name_is(wp, wl, "select") || name_is(wp, wl, "function"))) \
                    drop_segment = true;                                               \
                else if (!assign && !keyword) {                                        \
                    if (w->n >= w->cap) {                                              \
                        j->toolong = 1;                                                \
                        return false;                                                  \
                    }                                                                  \
                    w->w[w->n] = wp;                                                   \
                    w->len[w->n] = wl;                                                 \
                    w->n++;                                                            \
                    at_start = false;                                                  \
                }                                                                      \
            }                                                                          \
            in_word = false;                                                           \
        }                                                                              \
    } while (0)

#define END_SEGMENT()                                                                  \
    do {                                                                               \
        FLUSH_WORD();                                                                  \
        if (w->n > 0) {                                                                \
            int save_allowed = j->all_allowed;                                         \
            j->all_allowed = 1;                                                        \
            int b0len;                                                                 \
            const char *b0 = lg_basename(w->w[0], w->len[0], &b0len);                  \
            judge_chain(j, w, b0, b0len, depth + 1);                                   \
            if (!j->all_allowed)                                                       \
                all = false;                                                           \
            j->all_allowed = save_allowed;                                             \
            any = true;                                                                \
            /* the segment's words are done: reuse the space (recursion used depth+1) */ \
        }                                                                              \
        w->n = 0;                                                                      \
        at_start = true;                                                               \
        drop_segment = false;                                                          \
        skip_next = false;                                                             \
    } while (0)

#define PUT(ch)                                                                        \
    do {                                                                               \
        if (bpos + 2 >= LG_CMD_MAX) {                                                  \
            j->toolong = 1;                                                            \
            return false;                                                              \
        }                                                                              \
        if (!in_word) {                                                                \
            in_word = true;                                                            \
            wstart = bpos;                                                             \
        }                                                                              \
        buf[bpos++] = (ch);                                                            \
    } while (0)

    while (i < len) {
        char c = str[i];
        if (c == '\n' && pending_heredoc && heredoc_len > 0) {
            /* skip the here-document body up to its delimiter line */
            END_SEGMENT();
            i++;
            while (i < len) {
                int e = i;
                while (e < len && str[e] != '\n')
                    e++;
                int ll = e - i;
                const char *lp = str + i;
                while (ll > 0 && *lp == '\t') {
                    lp++;
                    ll--;
                }
                i = e < len ? e + 1 : e;
                if ((size_t)ll == heredoc_len && memcmp(lp, heredoc, heredoc_len) == 0)
                    break;
            }
            pending_heredoc = false;
            heredoc_len = 0;
            continue;
        }
        if (c == ' ' || c == '\t') {
            FLUSH_WORD();
            i++;
            continue;
        }
        if (c == '#' && !in_word) {
            while (i < len && str[i] != '\n')
                i++;
            continue;
        }
        if (c == '\n' || c == ';' || c == '&' || c == '|' || c == '(' || c == ')' || c == '`') {
            END_SEGMENT();
            i++;
            continue;
        }
        if (c == '$' && i + 1 < len && str[i + 1] == '(') {
            END_SEGMENT();
            i += 2;
            continue;
        }
        if (c == '<' || c == '>') {
            /* a redirection: drop a preceding fd number, skip the operator and its target */
            if (in_word) {
                bool digits = true;
                for (size_t q = wstart; q < bpos; q++)
                    if (buf[q] < '0' || buf[q] > '9')
                        digits = false;
                if (digits) {
                    bpos = wstart;
                    in_word = false;
                } else {
                    FLUSH_WORD();
                }
            }
            if (c == '<' && i + 1 < len && str[i + 1] == '<') {
                pending_heredoc = true;
                heredoc_len = 0;
            }
            if ((c == '<' || c == '>') && i + 1 < len && str[i + 1] == '(') {
                END_SEGMENT();  /* process substitution */
                i += 2;
                continue;
            }
            while (i < len && (str[i] == '<' || str[i] == '>' || str[i] == '&' || str[i] == '|' ||
                               str[i] == '-'))
                i++;
            skip_next = true;
            continue;
        }
        if (c == '\\' && i + 1 < len) {
            if (str[i + 1] != '\n')
                PUT(str[i + 1]);
            i += 2;
            continue;
        }
        if (c == '\'') {
            PUT('\0');
            bpos--;  /* an empty '' is still a word */
            i++;
            while (i < len && str[i] != '\'')
                PUT(str[i++]);
            i++;
            continue;
        }
        if (c == '"') {
            PUT('\0');
            bpos--;
            i++;
            while (i < len && str[i] != '"') {
                if (str[i] == '\\' && i + 1 < len &&
                    (str[i + 1] == '"' || str[i + 1] == '\\' || str[i + 1] == '$' || str[i + 1] == '`')) {
                    PUT(str[i + 1]);
                    i += 2;
                    continue;
                }
                if (str[i] == '`' || (str[i] == '$' && i + 1 < len && str[i + 1] == '(')) {
                    /* command substitution inside quotes: judge what follows as
                     * a command (approximate: the quote state restarts) */
                    i += str[i] == '`' ? 1 : 2;
                    break;
                }
                PUT(str[i++]);
            }
            if (i < len && str[i] == '"')
                i++;
            else
                END_SEGMENT();
            continue;
        }
        PUT(c);
        i++;
    }
    END_SEGMENT();
#undef PUT
#undef END_SEGMENT
#undef FLUSH_WORD
    return any && all;
}

/* Judge the chain that starts at words[0] named name0: the form itself, each
 * unwrapped form, and the -c string of an innermost shell. */
static void judge_chain(struct judge *j, const struct lg_words *w, const char *name0, int n0len, int depth)
{
    int k = 0;
    const char *name = name0;
    int nlen = n0len;
    struct form_result r = {0, -1, 0};
    for (int hops = 0; hops < 16; hops++) {
        long len = build_line(j->s->line, LG_LINE_MAX, w, k, name, nlen);
        if (len < 0) {
            j->toolong = 1;
            j->all_allowed = 0;
            return;
        }
        match_line(j->s, j->s->line, (size_t)len, &r);
        if (r.effect == LG_EFFECT_DENY && !j->denied) {
            j->denied = 1;
            j->deny_rule = r.rule;
        }
        if (!is_wrapper(name, nlen))
            break;
        int next = unwrap(w, k, name, nlen);
        if (next < 0)
            break;
        j->flags |= LG_EV_WRAPPER;
        k = next;
        name = lg_basename(w->w[k], w->len[k], &nlen);
    }
    /* r is the innermost form's result */
    bool allowed = r.effect == LG_EFFECT_ALLOW;
    if (is_shell(name, nlen)) {
        int si = shell_string(w, k);
        if (si >= 0) {
            int save_rule = j->allow_rule, save_inh = j->inherit;
            bool segs = judge_shell_string(j, w->w[si], w->len[si], depth);
            if (!allowed && segs) {
                allowed = true;  /* every simple command of the string is allowed */
                r.rule = j->allow_rule != save_rule ? j->allow_rule : r.rule;
                r.inherit = j->inherit;
            } else {
                j->allow_rule = save_rule;
                j->inherit = save_inh;
            }
        }
    }
    if (!allowed) {
        j->all_allowed = 0;
        return;
    }
    if (j->allow_rule < 0)
        j->allow_rule = r.rule;
    j->inherit = j->inherit && r.inherit;
}

void lg_judge_command(struct lg_sup *s, const struct lg_words *argv, const char *filename,
                      struct lg_verdict *v)
{
    struct judge j = {.s = s, .denied = 0, .deny_rule = -1, .all_allowed = 1, .allow_rule = -1,
                      .inherit = 1, .flags = 0, .toolong = 0};
    if (argv->n == 0) {
        /* execve with an empty argv: judged by the file name alone */
        static const char *const none[1] = {""};
        static int nonelen[1] = {0};
        struct lg_words w1 = {(const char **)none, nonelen, 1, 1};
        int fl;
        const char *fb = lg_basename(filename, (int)strlen(filename), &fl);
        judge_chain(&j, &w1, fb, fl, 0);
    } else {
        int a0len;
        const char *a0 = lg_basename(argv->w[0], argv->len[0], &a0len);
        judge_chain(&j, argv, a0, a0len, 0);
        int flen;
        const char *fb = lg_basename(filename, (int)strlen(filename), &flen);
        if (flen > 0 && (flen != a0len || memcmp(fb, a0, (size_t)flen) != 0))
            judge_chain(&j, argv, fb, flen, 0);
    }
    v->flags = j.flags;
    if (j.toolong) {
        v->effect = LG_EFFECT_DENY;
        v->rule = -1;
        v->inherit = 0;
        v->flags |= LG_EV_FAILCLOSED;
        return;
    }
    if (j.denied) {
        v->effect = LG_EFFECT_DENY;
        v->rule = j.deny_rule;
        v->inherit = 0;
        return;
    }
    if (j.all_allowed) {
        v->effect = LG_EFFECT_ALLOW;
        v->rule = j.allow_rule;
        v->inherit = j.inherit;
        return;
    }
    v->effect = 0;  /* undecided: inheritance, then the default */
    v->rule = -1;
    v->inherit = 0;
}
