/* judge_exec.c: command-line judgement for exec (DESIGN §3).
 *
 * A command is matched as argv joined by single spaces with argv[0] reduced
 * to its basename (a rule naming the program by path is matched against the
 * line with the executable's path first).  Because argv[0] is chosen by the
 * caller, the line is judged twice when the executed file's basename differs
 * from argv[0]'s (execve("/usr/bin/curl", {"git", ...}) is judged as `git ...`
 * AND as `curl ...`).  Wrappers (env, nice, timeout, ..., busybox APPLET, the
 * ELF loader run directly) are unwrapped, so `env curl x` is judged as
 * `env curl x` and as `curl x`.  A shell started with -c is judged by each
 * simple command of its string as well, up to lg_syntax.depth strings deep.
 *
 * Which programs are wrappers or shells, which of their options take a value,
 * the keywords and the depth are data (struct lg_syntax, compiled by
 * sandbox/policy/compiled.py); the globs are programs run by glob.c.
 * `explain` calls this same code (lg_judge_exec), so it cannot disagree.
 *
 * Verdict: deny if any judged form matches a deny rule (forbid overrides
 * permit); allow if the innermost form of every chain matches an allow rule
 * (or, for a shell, every segment of its string does); else undecided, and
 * the caller applies inheritance or the default.
 *
 * The shell -c string's tokeniser is apart (judge_shell.c; judge_exec_int.h holds
 * what the two share): it is a lexer of its own, and this file is the judgement.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "judge_exec_int.h"

/* ---- words and lines ---------------------------------------------------- */

const char *lg_basename(const char *p, int len, int *outlen)
{
    int i = len;
    while (i > 0 && p[i - 1] != '/')
        i--;
    *outlen = len - i;
    return p + i;
}

static bool word_is(const char *w, int len, const char *lit)
{
    size_t n = strlen(lit);
    return (size_t)len == n && memcmp(w, lit, n) == 0;
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

/* Match one form against the exec rules: `line` (argv[0] as a basename) for
 * rules naming a program, `exe_line` (NULL when no path is known) for rules
 * naming it by path.  The first deny decides; else the first allow. */
static void match_form(const struct lg_tables *t, const char *line, size_t len,
                       const char *exe_line, size_t exe_len, struct form_result *r)
{
    r->effect = 0;
    r->rule = -1;
    r->inherit = 0;
    for (int i = 0; i < t->n_exec; i++) {
        const struct lg_exec_rule *er = &t->exec[i];
        const char *subject = er->by_path ? exe_line : line;
        size_t n = er->by_path ? exe_len : len;
        if (!subject || lg_glob_rejects(er->glob, subject, n) ||
            !lg_glob_match(er->glob, subject, n, 0))
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

/* The rules that match one form (`explain` lists them beside the verdict):
 * indices into t->exec, at most max; returns how many. */
int lg_exec_hits(const struct lg_tables *t, const char *line, size_t len, const char *exe_line,
                 size_t exe_len, int *hits, int max)
{
    int n = 0;
    for (int i = 0; i < t->n_exec && n < max; i++) {
        const struct lg_exec_rule *er = &t->exec[i];
        const char *subject = er->by_path ? exe_line : line;
        size_t sl = er->by_path ? exe_len : len;
        if (subject && !lg_glob_rejects(er->glob, subject, sl) && lg_glob_match(er->glob, subject, sl, 0))
            hits[n++] = i;
    }
    return n;
}

/* ---- wrappers ------------------------------------------------------------ */

static const struct lg_wrapper *wrapper_of(const struct lg_syntax *sx, const char *n, int len)
{
    for (int i = 0; sx && i < sx->n_wrappers; i++)
        if (!lg_glob_rejects(sx->wrappers[i].name, n, (size_t)len) &&
            lg_glob_match(sx->wrappers[i].name, n, (size_t)len, 0))
            return &sx->wrappers[i];
    return NULL;
}

/* The index of the wrapped command in w (after the wrapper at k), or -1 when
 * the wrapper runs nothing (`env` alone prints the environment) or cannot be
 * unwrapped faithfully (`env -S STRING`: judged as written, so only an
 * explicit allow of that form lets it run). */
static int unwrap(const struct lg_words *w, int k, const struct lg_wrapper *wr)
{
    int i = k + 1;
    while (wr->options && i < w->n) {
        const char *a = w->w[i];
        int alen = w->len[i];
        if (word_is(a, alen, "--")) {
            i++;
            break;
        }
        if (alen > 1 && a[0] == '-') {
            if (lg_in_list(wr->stop_opts, wr->n_stop_opts, a, alen))
                return -1;
            if (lg_in_list(wr->arg_opts, wr->n_arg_opts, a, alen))
                i++;
            i++;
            continue;
        }
        break;
    }
    if (wr->assignments)  /* NAME=VALUE */
        while (i < w->n && memchr(w->w[i], '=', (size_t)w->len[i]) != NULL)
            i++;
    i += wr->operands;
    return i < w->n ? i : -1;
}

/* ---- shells -------------------------------------------------------------- */

/* The index of the -c command string of the shell at k, or -1. */
static int shell_string(const struct lg_syntax *sx, const struct lg_words *w, int k)
{
    bool c = false;
    for (int i = k + 1; i < w->n; i++) {
        const char *a = w->w[i];
        int alen = w->len[i];
        if (word_is(a, alen, "--"))
            return c && i + 1 < w->n ? i + 1 : -1;
        if (alen > 1 && (a[0] == '-' || a[0] == '+')) {
            if (lg_in_list(sx->shell_arg_opts, sx->n_shell_arg_opts, a, alen))
                i++;
            else if (a[0] == '-' && a[1] != '-' && memchr(a, 'c', (size_t)alen))
                c = true;
            continue;
        }
        return c ? i : -1;
    }
    return -1;
}

/* Judge the chain that starts at words[0] named name0: the form itself, each
 * unwrapped form, and the -c string of an innermost shell.  exe: the path of
 * the executed file for the first form (NULL: words[0] if it is a path). */
void lg_judge_chain(struct judgement *j, const struct lg_words *w, const char *name0, int n0len,
                    const char *exe, int depth)
{
    int k = 0;
    const char *name = name0;
    int nlen = n0len;
    struct form_result r = {0, -1, 0};
    for (int hops = 0; hops < 16; hops++) {
        long len = build_line(j->b->line, LG_LINE_MAX, w, k, name, nlen);
        const char *path = k == 0 && exe ? exe : memchr(w->w[k], '/', (size_t)w->len[k]) ? w->w[k] : NULL;
        long plen = 0;
        if (path && j->has_by_path)
            plen = build_line(j->b->exe_line, LG_LINE_MAX, w, k, path,
                              path == exe ? (int)strlen(exe) : w->len[k]);
        if (len < 0 || plen < 0) {
            j->toolong = 1;
            j->all_allowed = 0;
            return;
        }
        match_form(j->t, j->b->line, (size_t)len, path && j->has_by_path ? j->b->exe_line : NULL,
                   (size_t)plen, &r);
        if (r.effect == LG_EFFECT_DENY && !j->denied) {
            j->denied = 1;
            j->deny_rule = r.rule;
        }
        const struct lg_wrapper *wr = wrapper_of(j->sx, name, nlen);
        if (!wr)
            break;
        int next = unwrap(w, k, wr);
        if (next < 0)
            break;
        j->flags |= LG_EV_WRAPPER;
        k = next;
        name = lg_basename(w->w[k], w->len[k], &nlen);
    }
    /* r is the innermost form's result */
    bool allowed = r.effect == LG_EFFECT_ALLOW;
    if (lg_in_list(j->sx->shells, j->sx->n_shells, name, nlen)) {
        int si = shell_string(j->sx, w, k);
        if (si >= 0) {
            int save_rule = j->allow_rule, save_inh = j->inherit;
            bool segs = lg_judge_shell_string(j, w->w[si], w->len[si], depth);
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

/* Judge the argv in j->argv (exec of file `filename`). */
void lg_judge_words(struct lg_judge *b, const struct lg_tables *t, const char *filename,
                    struct lg_verdict *v)
{
    static const struct lg_syntax none_syntax;  /* no wrappers, no shells: plain matching */
    struct judgement j = {.t = t, .sx = t->syntax ? t->syntax : &none_syntax, .b = b, .denied = 0,
                          .deny_rule = -1, .all_allowed = 1, .allow_rule = -1, .inherit = 1,
                          .flags = 0, .toolong = 0, .has_by_path = 0};
    for (int i = 0; i < t->n_exec; i++)
        j.has_by_path |= t->exec[i].by_path;
    const struct lg_words *argv = &b->argv;
    const char *exe = filename && memchr(filename, '/', strlen(filename)) ? filename : NULL;
    if (argv->n == 0) {
        /* execve with an empty argv: judged by the file name alone */
        static const char *const none[1] = {""};
        static int nonelen[1] = {0};
        struct lg_words w1 = {(const char **)none, nonelen, 1, 1};
        int fl;
        const char *fb = lg_basename(filename ? filename : "", filename ? (int)strlen(filename) : 0, &fl);
        lg_judge_chain(&j, &w1, fb, fl, exe, 0);
    } else {
        int a0len;
        const char *a0 = lg_basename(argv->w[0], argv->len[0], &a0len);
        lg_judge_chain(&j, argv, a0, a0len, exe, 0);
        int flen = 0;
        const char *fb = filename ? lg_basename(filename, (int)strlen(filename), &flen) : NULL;
        if (flen > 0 && (flen != a0len || memcmp(fb, a0, (size_t)flen) != 0))
            lg_judge_chain(&j, argv, fb, flen, exe, 0);
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

int lg_judge_exec(struct lg_judge *b, const struct lg_tables *t, const char *argv_nul,
                  int argv_len, const char *exe, struct lg_verdict *v)
{
    if (!b || argv_len < 0 || argv_len >= LG_CMD_MAX)
        return -E2BIG;
    memcpy(b->cmd, argv_nul, (size_t)argv_len);
    b->argv.n = 0;
    int pos = 0;
    while (pos < argv_len) {
        if (b->argv.n >= b->argv.cap)
            return -E2BIG;
        int l = (int)strnlen(b->cmd + pos, (size_t)(argv_len - pos));
        b->argv.w[b->argv.n] = b->cmd + pos;
        b->argv.len[b->argv.n] = l;
        b->argv.n++;
        pos += l + 1;
    }
    lg_judge_words(b, t, exe, v);
    return 0;
}

/* ---- buffers ----------------------------------------------------------- */

static int alloc_words(struct lg_words *w, int cap)
{
    /* lg_pages_new, not calloc: 9 x 3 MiB, resident only as far as an exec's
     * words reach (calloc could clear, so fault in, all of it: supervise.c). */
    w->w = lg_pages_new((size_t)cap * sizeof *w->w);
    w->len = lg_pages_new((size_t)cap * sizeof *w->len);
    w->n = 0;
    w->cap = cap;
    return w->w && w->len ? 0 : -ENOMEM;
}

static void free_words(struct lg_words *w)
{
    lg_pages_free(w->w, (size_t)w->cap * sizeof *w->w);
    lg_pages_free(w->len, (size_t)w->cap * sizeof *w->len);
}

void lg_judge_free(struct lg_judge *b)
{
    if (!b)
        return;
    free(b->cmd);
    free(b->line);
    free(b->exe_line);
    free(b->seg);
    free_words(&b->argv);
    for (int i = 0; i < LG_DEPTH_MAX; i++) {
        free_words(&b->segw[i]);
    }
    free(b);
}

/* Large buffers, malloc'd once and only touched as far as an exec uses them. */
struct lg_judge *lg_judge_new(void)
{
    struct lg_judge *b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    b->cmd = malloc(LG_CMD_MAX);
    b->line = malloc(LG_LINE_MAX);
    b->exe_line = malloc(LG_LINE_MAX);
    b->seg = malloc((size_t)LG_DEPTH_MAX * LG_CMD_MAX);
    int rc = alloc_words(&b->argv, LG_ARGS_MAX);
    for (int i = 0; i < LG_DEPTH_MAX; i++)
        rc |= alloc_words(&b->segw[i], LG_ARGS_MAX);
    if (rc || !b->cmd || !b->line || !b->exe_line || !b->seg) {
        lg_judge_free(b);
        return NULL;
    }
    return b;
}
