/* gitcfg_parse.c: git's config syntax to a list of entries, for gitcfg.c's judge.
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
 *
 * Apart from gitcfg.c because it is the larger half and holds no policy: it says
 * what a file's entries are (lg_gitcfg_parse, and lg_gitcfg_list for the tests that
 * compare it with git's own reading); gitcfg.c decides what may be installed.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "gitcfg_parse.h"
#include "supervise_int.h"

#define GITCFG_MAX_BYTES (4 * 1024 * 1024)

void lg_gitcfg_free(struct gitcfg *c)
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

static int cfg_add(struct gitcfg *c, const struct buf *sec, const struct buf *name, const char *value)
{
    if (c->n == c->cap) {
        int cap = c->cap ? c->cap * 2 : 16;
        struct gitcfg_entry *e = realloc(c->e, (size_t)cap * sizeof *e);
        if (!e)
            return -ENOMEM;
        c->e = e;
        c->cap = cap;
    }
    struct gitcfg_entry *e = &c->e[c->n];
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
int lg_gitcfg_parse(const char *data, size_t len, struct gitcfg *c, int *bad_line)
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
        lg_gitcfg_free(c);
    }
    free(sec.p);
    free(name.p);
    free(val.p);
    return rc;
}

int lg_gitcfg_list(const char *data, size_t len, char *out, size_t cap)
{
    struct gitcfg c;
    int rc = lg_gitcfg_parse(data, len, &c, NULL);
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
    lg_gitcfg_free(&c);
    return rc < 0 ? rc : (int)o;
}
