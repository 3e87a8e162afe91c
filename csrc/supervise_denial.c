/* supervise_denial.c: the denial line on the sandbox's stderr, once per distinct
 * denial: `landgate: denied shell_exec "curl x" (rule 4, policy.yaml:21)`, the target
 * escaped so that the agent's bytes cannot drive the terminal, and the fix a default
 * deny teaches.
 *
 * Apart from the loop (supervise.c) because it is a job of its own that every handler
 * calls (lg_report_denial) and that shares nothing with the loop but the context: the
 * escaping is what matters here, and it reads best alone.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "supervise_int.h"

/* FNV-1a over action and target: the "distinct denial" key. */
static unsigned long long denial_key(const char *action, const char *target, int rule)
{
    unsigned long long h = 1469598103934665603ULL;
    for (const char *p = action; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    h = (h ^ 0xff) * 1099511628211ULL;
    for (const char *p = target; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    h ^= (unsigned long long)(unsigned)rule;
    return h ? h : 1;
}

/* Length of the valid UTF-8 sequence at `p` (at most `n` bytes), 0 if invalid.
 * Overlong forms, surrogates and code points above U+10FFFF are invalid. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
    unsigned char c = p[0];
    size_t len;
    unsigned min;
    unsigned cp;
    if (c >= 0xc2 && c <= 0xdf) { len = 2; min = 0x80; cp = c & 0x1f; }
    else if (c >= 0xe0 && c <= 0xef) { len = 3; min = 0x800; cp = c & 0x0f; }
    else if (c >= 0xf0 && c <= 0xf4) { len = 4; min = 0x10000; cp = c & 0x07; }
    else return 0;
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

/* Copy agent-controlled `in` into `out` (capacity `cap`, NUL-terminated) so that it
 * cannot drive the terminal that reads the sandbox's stderr: C0 controls (ESC, CR,
 * LF...), DEL, C1 controls (U+0080..U+009F, which some terminals obey) and bytes that
 * are not valid UTF-8 become `\xNN`; `"` and `\` are escaped too, since the target
 * is shown between quotes.  One denial is one line.  Truncates with "..." when the
 * escaped text does not fit. */
void lg_escape_shown(char *out, size_t cap, const char *in)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)in;
    size_t n = strlen(in);
    size_t o = 0;
    if (cap < 4) {
        if (cap)
            out[0] = 0;
        return;
    }
    for (size_t i = 0; i < n;) {
        char buf[16];
        size_t blen = 0;
        size_t step = 1;
        unsigned char c = p[i];
        size_t u = c >= 0x80 ? utf8_len(p + i, n - i) : 0;
        if (c == '"' || c == '\\') {
            buf[0] = '\\';
            buf[1] = (char)c;
            blen = 2;
        } else if (c < 0x20 || c == 0x7f || (c >= 0x80 && u == 0) ||
                   (u == 2 && c == 0xc2 && p[i + 1] < 0xa0)) {
            /* a control, an invalid byte, or a C1 control encoded as U+0080..U+009F */
            size_t k = (u == 2) ? 2 : 1;
            for (size_t j = 0; j < k; j++) {
                buf[blen++] = '\\';
                buf[blen++] = 'x';
                buf[blen++] = hex[p[i + j] >> 4];
                buf[blen++] = hex[p[i + j] & 0xf];
            }
            step = k;
        } else if (u > 0) {
            memcpy(buf, p + i, u);
            blen = u;
            step = u;
        } else {
            buf[0] = (char)c;
            blen = 1;
        }
        if (o + blen + 4 > cap) {  /* room for "..." and the NUL */
            memcpy(out + o, "...", 3);
            o += 3;
            break;
        }
        memcpy(out + o, buf, blen);
        o += blen;
        i += step;
    }
    out[o] = 0;
}

/* 1 when the n bytes at p can stand verbatim between single quotes in the hint: they
 * mean themselves to the policy (no glob character; `[` `]` only in a destination's
 * `[v6]:port`), to a shell (no quote, no space) and to a terminal (no control byte). */
static int hint_safe(const char *p, size_t n, int brackets)
{
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '/' || c == '.' || c == '_' || c == '-' || c == '+' || c == '@' ||
                 c == ':' || c == ',' || c == '=' || c == '~' || c == '%' ||
                 (brackets && (c == '[' || c == ']'));
        if (!ok)
            return 0;
    }
    return 1;
}

/* The fix a default deny teaches: ` — allow with: landgate allow shell_exec 'od *'`
 * (the program, with ` *` when it had arguments), the exact path of a file, the
 * destination as recorded.  Empty when the target cannot be written as a pattern
 * that means exactly it (then the line names the rule and nothing else). */
static void denial_hint(char *out, size_t cap, const char *action, const char *target)
{
    size_t n = strlen(target);
    const char *more = "";
    int brackets = 0;
    out[0] = 0;
    if (strcmp(action, "shell_exec") == 0) {
        const char *sp = strchr(target, ' ');
        if (sp) {
            n = (size_t)(sp - target);
            more = " *";
        }
    } else if (strcmp(action, "network") == 0) {
        if (strncmp(target, "unix:", 5) == 0 && target[5] != '/')
            return; /* an abstract socket: the policy has no pattern for it */
        brackets = 1;
    }
    if (n > 200 || !hint_safe(target, n, brackets))
        return;
    snprintf(out, cap, " \xe2\x80\x94 allow with: landgate allow %s '%.*s%s'", action, (int)n,
             target, more);
}

/* Once per distinct denial: `landgate: denied shell_exec "curl x" (rule 4, policy.yaml:21)`
 * on the sandbox's stderr, before the caller sees the error; when a policy allow could
 * admit it (the block's default denied it), the line ends with the fix. */
void lg_report_denial(struct lg_sup *s, const char *action, const char *target, int rule)
{
    if (s->stderr_fd < 0)
        return;
    unsigned long long key = denial_key(action, target, rule);
    pthread_mutex_lock(&s->report_lock);
    unsigned idx = (unsigned)(key % LG_REPORTED_CAP);
    for (unsigned probe = 0; probe < LG_REPORTED_CAP; probe++) {
        unsigned k = (idx + probe) % LG_REPORTED_CAP;
        if (s->reported[k] == key) {
            pthread_mutex_unlock(&s->report_lock);
            return;  /* already said */
        }
        if (s->reported[k] == 0) {
            s->reported[k] = key;
            break;
        }
    }  /* a full set reports again: better repeated than silent */
    pthread_mutex_unlock(&s->report_lock);
    char line[LG_TARGET_MAX + 512];
    char shown[201];
    lg_escape_shown(shown, sizeof shown, target);
    char hint[300];
    hint[0] = 0;
    if (rule >= 0 && rule < s->t.n_refs && s->t.hints && s->t.hints[rule])
        denial_hint(hint, sizeof hint, action, target);
    int len;
    if (rule >= 0)
        len = snprintf(line, sizeof line, "landgate: denied %s \"%s\" (%s)%s\n", action, shown,
                       lg_ref(s, rule), hint);
    else
        len = snprintf(line, sizeof line, "landgate: denied %s \"%s\" (%s)\n", action, shown, "supervisor could not judge it");
    if (len > 0) {
        size_t w = (size_t)len < sizeof line ? (size_t)len : sizeof line - 1;
        ssize_t r = write(s->stderr_fd, line, w);
        (void)r;  /* best effort: the errno and the audit entry carry the denial too */
    }
}
