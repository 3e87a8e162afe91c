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
 * The JSON writers are render_json.h's, the float spelling render_double.c's, the
 * digests render_digest.c's; this file lays out one record's line and the batch.
 */
#include <stdint.h>
#include <string.h>

#include "render_digest.h"
#include "render_json.h"
#include "supervise_api.h"

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

    struct lg_sha256 sh;
    lg_sha256_init(&sh);
    lg_sha256_update(&sh, (const unsigned char *)start, (size_t)(gap - start));
    lg_sha256_update(&sh, (const unsigned char *)after, (size_t)(o->p - after));
    lg_sha256_final(&sh, digest);
    unsigned char tag[16];
    lg_entry_tag(tag0, digest, tag);
    memcpy(gap, ",\"hash\":\"", 9);
    put_hex(gap + 9, digest, 32);
    put_hex(gap + 73, tag, 16);
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
    lg_tag_base(tag0, r->key, r->key_len);
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
        put_hex(link, digest, 32);
    }
    *used = (size_t)(o.p - out);
    return done;
}
