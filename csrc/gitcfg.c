/* gitcfg.c: judge a git config file's new content (protected paths, DESIGN §2).
 *
 * git writes .git/config (and ~/.gitconfig, ~/.config/git/config) by
 * creating CONFIG.lock and renaming it over CONFIG.  The supervisor performs
 * that rename itself and, before it does, judges the bytes: an entry that
 * makes git run a program (core.pager, alias.x=!cmd, filter.*...) and was
 * not in the file before is refused, so `git config user.name x` works and
 * `git config core.pager 'sh -c evil'` does not.  Entries the file already
 * had are the user's, not the agent's: they may stay.
 *
 * The parser follows git's config.c (get_base_var, get_value, parse_value):
 *  - "[section]", "[section \"subsection\"]" (\" and \\ escapes; any other
 *    backslash is dropped), the deprecated "[section.subsection]" (lower-cased);
 *    section names are alphanumerics, '-' and '.', case-insensitive;
 *  - a key (a letter, then alphanumerics and '-') may follow a header on the
 *    same line; "key" alone is a boolean (no value); "key = value";
 *  - values: leading and trailing blanks dropped outside quotes, '"' toggles
 *    quoting, # and ; start a comment outside quotes, \n \t \b \" \\ escapes,
 *    backslash-newline continues the line; any other escape is an error;
 *  - a UTF-8 BOM at the start is skipped.
 * Anything it cannot parse is refused (fail closed): git would refuse to
 * read that file too.  Keys are spelled as `git config --list` spells them:
 * section and name lower-case, subsection as written.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "supervise_int.h"

/* Keys (git's --list spelling, compared lower-cased) whose value git runs or
 * that make git read or write a file this judge never sees.  '*' matches any
 * run of characters, dots included. */
static const char *const runs_program[] = {
    "core.pager", "core.editor", "core.askpass", "core.sshcommand", "core.gitproxy",
    "core.hookspath", "core.fsmonitor", "core.alternaterefscommand",
    "core.worktree",        /* checkout would write the work tree elsewhere (into ~) */
    "core.attributesfile",  /* attributes name filter drivers */
    "core.excludesfile", "sequence.editor", "diff.external", "diff.*.command", "*.textconv",
    "filter.*", "merge.*.driver", "difftool.*.cmd", "mergetool.*.cmd", "credential.helper",
    "credential.*.helper", "gpg.program", "gpg.*.program", "pager.*", "include.*", "includeif.*",
    "uploadpack.packobjectshook", "remote.*.uploadpack", "remote.*.receivepack", "remote.*.vcs",
    "protocol.*",           /* protocol.ext.allow=always + an ext:: url runs a command */
    "url.*.insteadof", "url.*.pushinsteadof", "sendemail.*", "web.browser", "browser.*", "man.*",
    "instaweb.*", "trace2.*", "extensions.worktreeconfig", "ssh.variant",
};

#define GITCFG_MAX_BYTES (4 * 1024 * 1024)

struct entry {
    char *key;
    char *value;  /* NULL: a bare boolean */
    int used;     /* matched by an entry of the other file */
};

struct cfg {
    struct entry *e;
    int n, cap;
};

static void cfg_free(struct cfg *c)
{
    for (int i = 0; i < c->n; i++) {
        free(c->e[i].key);
        free(c->e[i].value);
    }
    free(c->e);
    c->e = NULL;
    c->n = c->cap = 0;
}

/* A growing byte buffer. */
struct buf {
    char *p;
    size_t n, cap;
};

static int buf_put(struct buf *b, char ch)
{
    if (b->n + 1 >= b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 64;
        char *p = realloc(b->p, cap);
        if (!p)
            return -ENOMEM;
        b->p = p;
        b->cap = cap;
    }
    b->p[b->n++] = ch;
    b->p[b->n] = '\0';
    return 0;
}

struct parser {
    const char *s;
    size_t len, i;
    int line;
    int eof;
};

/* git's get_next_char: "\r\n" reads as '\n'; the end of the data reads as
 * '\n' with eof set. */
static int next(struct parser *p)
{
    if (p->i >= p->len) {
        p->eof = 1;
        return '\n';
    }
    int c = (unsigned char)p->s[p->i++];
    if (c == '\r' && p->i < p->len && p->s[p->i] == '\n') {
        p->i++;
        c = '\n';
    }
    if (c == '\n')
        p->line++;
    return c;
}

static int is_key_char(int c)
{
    return isalnum(c) || c == '-';
}

/* get_base_var after the '[': "section", "section \"sub\"", "section.sub". */
static int parse_header(struct parser *p, struct buf *sec)
{
    sec->n = 0;
    for (;;) {
        int c = next(p);
        if (p->eof)
            return -EINVAL;
        if (c == ']')
            return sec->n ? 0 : -EINVAL;
        if (isspace(c)) {
            /* get_extended_base_var: blanks, a quoted subsection, then ']' */
            do {
                if (c == '\n')
                    return -EINVAL;
                c = next(p);
            } while (isspace(c));
            if (c != '"' || sec->n == 0)  /* git takes an empty section here; we refuse */
                return -EINVAL;
            if (buf_put(sec, '.') < 0)
                return -ENOMEM;
            for (;;) {
                c = next(p);
                if (c == '\n')
                    return -EINVAL;
                if (c == '"')
                    break;
                if (c == '\\') {
                    c = next(p);
                    if (c == '\n')
                        return -EINVAL;
                }
                if (buf_put(sec, (char)c) < 0)
                    return -ENOMEM;
            }
            return next(p) == ']' ? 0 : -EINVAL;
        }
        if (!is_key_char(c) && c != '.')
            return -EINVAL;
        if (buf_put(sec, (char)tolower(c)) < 0)  /* [a.B]: the deprecated, lower-cased form */
            return -ENOMEM;
    }
}

/* git's parse_value: after '=' up to the end of the line. */
static int parse_value(struct parser *p, struct buf *val)
{
    int quoted = 0, comment = 0, space = 0;
    val->n = 0;
    if (buf_put(val, '\0') < 0)
        return -ENOMEM;
    val->n = 0;
    val->p[0] = '\0';
    for (;;) {
        int c = next(p);
        if (c == '\n')
            return quoted ? -EINVAL : 0;
        if (comment)
            continue;
        if (isspace(c) && !quoted) {
            if (val->n)
                space++;  /* an inner run: kept as that many spaces if more follows */
            continue;
        }
        if (!quoted && (c == ';' || c == '#')) {
            comment = 1;
            continue;
        }
        for (; space; space--)
            if (buf_put(val, ' ') < 0)
                return -ENOMEM;
        if (c == '\\') {
            c = next(p);
            switch (c) {
            case '\n': continue;  /* continuation (also at the end of the data) */
            case 't': c = '\t'; break;
            case 'b': c = '\b'; break;
            case 'n': c = '\n'; break;
            case '\\': case '"': break;
            default: return -EINVAL;  /* git: "bad config line" */
            }
            if (buf_put(val, (char)c) < 0)
                return -ENOMEM;
            continue;
        }
        if (c == '"') {
            quoted = !quoted;
            continue;
        }
        if (buf_put(val, (char)c) < 0)
            return -ENOMEM;
    }
}

static int cfg_add(struct cfg *c, const struct buf *sec, const struct buf *name, const char *value)
{
    if (c->n == c->cap) {
        int cap = c->cap ? c->cap * 2 : 16;
        struct entry *e = realloc(c->e, (size_t)cap * sizeof *e);
        if (!e)
            return -ENOMEM;
        c->e = e;
        c->cap = cap;
    }
    struct entry *e = &c->e[c->n];
    size_t dot = sec->n ? 1 : 0;  /* before any section git lists the bare name */
    size_t kl = sec->n + dot + name->n;
    e->key = malloc(kl + 1);
    e->value = value ? strdup(value) : NULL;
    e->used = 0;
    if (!e->key || (value && !e->value)) {
        free(e->key);
        free(e->value);
        return -ENOMEM;
    }
    if (sec->n)
        memcpy(e->key, sec->p, sec->n);
    if (dot)
        e->key[sec->n] = '.';
    memcpy(e->key + sec->n + dot, name->p, name->n);
    e->key[kl] = '\0';
    c->n++;
    return 0;
}

/* git_parse_source over a whole file: 0, -EINVAL (git would refuse the file
 * too), -ENOMEM, -EFBIG. */
static int cfg_parse(const char *data, size_t len, struct cfg *c, int *bad_line)
{
    struct parser p = {data, len, 0, 1, 0};
    struct buf sec = {0}, name = {0}, val = {0};
    int rc = 0, comment = 0;
    memset(c, 0, sizeof *c);
    if (len > GITCFG_MAX_BYTES)
        return -EFBIG;
    if (len >= 3 && memcmp(data, "\xef\xbb\xbf", 3) == 0)
        p.i = 3;
    for (;;) {
        int ch = next(&p);
        if (ch == '\n') {
            if (p.eof)
                break;
            comment = 0;
            continue;
        }
        if (comment || isspace(ch))
            continue;
        if (ch == '#' || ch == ';') {
            comment = 1;
            continue;
        }
        if (ch == '[') {
            rc = parse_header(&p, &sec);
            if (rc < 0)
                break;
            continue;  /* a key may follow on the same line */
        }
        if (!isalpha(ch)) {
            rc = -EINVAL;
            break;
        }
        /* get_value: the name, blanks, then the end of the line or '=' */
        name.n = 0;
        for (;;) {
            if (buf_put(&name, (char)tolower(ch)) < 0) {
                rc = -ENOMEM;
                goto out;
            }
            ch = next(&p);
            if (p.eof || !is_key_char(ch))
                break;
        }
        while (ch == ' ' || ch == '\t')
            ch = next(&p);
        if (ch == '\n') {
            rc = cfg_add(c, &sec, &name, NULL);  /* "key" alone: boolean true */
        } else if (ch == '=') {
            rc = parse_value(&p, &val);
            if (rc == 0)
                rc = cfg_add(c, &sec, &name, val.p);
        } else {
            rc = -EINVAL;
        }
        if (rc < 0)
            break;
    }
out:
    if (rc < 0) {
        if (bad_line)
            *bad_line = p.line;
        cfg_free(c);
    }
    free(sec.p);
    free(name.p);
    free(val.p);
    return rc;
}

/* '*' matches any run (dots included); everything else itself. */
static int key_match(const char *pat, const char *key)
{
    if (*pat == '\0')
        return *key == '\0';
    if (*pat == '*') {
        for (const char *k = key;; k++) {
            if (key_match(pat + 1, k))
                return 1;
            if (*k == '\0')
                return 0;
        }
    }
    return tolower((unsigned char)*key) == *pat && key_match(pat + 1, key + 1);
}

/* Why this entry may make git run a program; NULL if it does not. */
static const char *entry_reason(const struct entry *e)
{
    const char *v = e->value ? e->value : "";
    while (*v == ' ' || *v == '\t')
        v++;
    if (strncmp(e->key, "alias.", 6) == 0 && e->value && *v == '!')
        return "an alias that runs a shell command";
    size_t kl = strlen(e->key);
    if (strncmp(e->key, "submodule.", 10) == 0 && kl > 7 && strcmp(e->key + kl - 7, ".update") == 0 &&
        *v == '!')
        return "a submodule update that runs a command";
    for (size_t i = 0; i < sizeof runs_program / sizeof runs_program[0]; i++)
        if (key_match(runs_program[i], e->key))
            return "git runs a program or reads another file it names";
    return NULL;
}

static int same(const struct entry *a, const struct entry *b)
{
    if (strcmp(a->key, b->key) != 0)
        return 0;
    if (!a->value || !b->value)
        return a->value == b->value;
    return strcmp(a->value, b->value) == 0;
}

int lg_gitcfg_judge(const char *old, size_t old_len, const char *new_, size_t new_len, char *why,
                    int whylen)
{
    struct cfg before, after;
    int line = 0;
    if (whylen > 0)
        why[0] = '\0';
    int rc = cfg_parse(new_, new_len, &after, &line);
    if (rc < 0) {
        if (rc == -EINVAL)
            snprintf(why, (size_t)whylen, "line %d: not git config syntax", line);
        else
            snprintf(why, (size_t)whylen, "cannot judge it: %s", strerror(-rc));
        return 1;
    }
    /* The old file unparseable (or missing): nothing in the new one is the user's. */
    if (cfg_parse(old ? old : "", old ? old_len : 0, &before, NULL) < 0)
        memset(&before, 0, sizeof before);
    int refused = 0;
    for (int i = 0; i < after.n && !refused; i++) {
        struct entry *e = &after.e[i];
        int kept = 0;
        for (int k = 0; k < before.n && !kept; k++) {
            if (!before.e[k].used && same(&before.e[k], e)) {
                before.e[k].used = 1;  /* present before the session: not the agent's */
                kept = 1;
            }
        }
        const char *r = kept ? NULL : entry_reason(e);
        if (r) {
            char shown[160];
            lg_escape_shown(shown, sizeof shown, e->value ? e->value : "(true)");
            snprintf(why, (size_t)whylen, "%s=\"%s\": %s", e->key, shown, r);
            refused = 1;
        }
    }
    cfg_free(&before);
    cfg_free(&after);
    return refused;
}

int lg_gitcfg_list(const char *data, size_t len, char *out, size_t cap)
{
    struct cfg c;
    int rc = cfg_parse(data, len, &c, NULL);
    if (rc < 0)
        return rc;
    size_t o = 0;
    for (int i = 0; i < c.n && rc == 0; i++) {
        size_t kl = strlen(c.e[i].key), vl = c.e[i].value ? strlen(c.e[i].value) : 0;
        size_t need = kl + (c.e[i].value ? 1 + vl : 0) + 1;
        if (o + need > cap) {
            rc = -E2BIG;
            break;
        }
        memcpy(out + o, c.e[i].key, kl);
        o += kl;
        if (c.e[i].value) {
            out[o++] = '\n';
            memcpy(out + o, c.e[i].value, vl);
            o += vl;
        }
        out[o++] = '\0';
    }
    cfg_free(&c);
    return rc < 0 ? rc : (int)o;
}
