/* supervise_net_dest.c: what the policy says of a destination (DESIGN §2 connect row).
 *
 * The host names an address had (pinned at launch, then the DNS view), the
 * infrastructure and policy rules over address, port, name and unix path (deny
 * wins, then the first allow, then the default), the same judgement for `explain`
 * (lg_judge_unix), and the sandbox's private loopback.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <linux/sockios.h>

#include "supervise_net_int.h"

#define LG_MAXNAMES 8

/* ---- names (pinned at launch, then the DNS view) -------------------------- */

static unsigned name_hash(int family, const unsigned char *addr)
{
    unsigned h = 2166136261u ^ (unsigned)family;
    for (int i = 0; i < 16; i++)
        h = (h ^ addr[i]) * 16777619u;
    return h;
}

int lg_names_add(struct lg_sup *s, int family, const unsigned char *addr, const char *name)
{
    if (family != AF_INET && family != AF_INET6)
        return -EAFNOSUPPORT;
    size_t nl = strlen(name);
    if (nl == 0 || nl >= LG_NAME_MAX)
        return -ENAMETOOLONG;
    unsigned char a[16] = {0};
    memcpy(a, addr, family == AF_INET ? 4 : 16);
    pthread_mutex_lock(&s->names_lock);
    unsigned idx = name_hash(family, a) % LG_NAMES_CAP;
    int rc = -ENOSPC;
    for (unsigned probe = 0; probe < LG_NAMES_CAP; probe++) {
        struct lg_name *e = &s->names[(idx + probe) % LG_NAMES_CAP];
        if (e->family == 0) {
            e->family = family;
            memcpy(e->addr, a, 16);
            memcpy(e->name, name, nl + 1);
            for (char *c = e->name; *c; c++)
                if (*c >= 'A' && *c <= 'Z')
                    *c = (char)(*c + 32);
            s->names_count++;
            rc = 0;
            break;
        }
        if (e->family == family && memcmp(e->addr, a, 16) == 0 && strcasecmp(e->name, name) == 0) {
            rc = 0;
            break;
        }
    }
    pthread_mutex_unlock(&s->names_lock);
    return rc;
}

/* Copy up to max names for addr into out. */
static int names_for(struct lg_sup *s, int family, const unsigned char *addr, char out[][LG_NAME_MAX], int max)
{
    unsigned char a[16] = {0};
    memcpy(a, addr, family == AF_INET ? 4 : 16);
    int n = 0;
    pthread_mutex_lock(&s->names_lock);
    unsigned idx = name_hash(family, a) % LG_NAMES_CAP;
    for (unsigned probe = 0; probe < LG_NAMES_CAP && n < max; probe++) {
        struct lg_name *e = &s->names[(idx + probe) % LG_NAMES_CAP];
        if (e->family == 0)
            break;
        if (e->family == family && memcmp(e->addr, a, 16) == 0)
            memcpy(out[n++], e->name, LG_NAME_MAX);
    }
    pthread_mutex_unlock(&s->names_lock);
    return n;
}

/* ---- destinations ----------------------------------------------------------- */

static int prefix_match(const unsigned char *a, const unsigned char *net, int prefix)
{
    int full = prefix / 8, rem = prefix % 8;
    if (memcmp(a, net, (size_t)full) != 0)
        return 0;
    if (rem == 0)
        return 1;
    unsigned char mask = (unsigned char)(0xff << (8 - rem));
    return (a[full] & mask) == (net[full] & mask);
}

static int name_matches(const char *name, const struct lg_net_rule *r)
{
    if (!r->pattern)
        return 0;
    if (r->kind == LG_NET_HOST)
        return strcasecmp(name, r->pattern) == 0;
    /* "*.domain": any name that ends in ".domain" */
    const char *suffix = r->pattern[0] == '*' ? r->pattern + 1 : r->pattern;
    size_t nl = strlen(name), sl = strlen(suffix);
    return nl > sl && strcasecmp(name + nl - sl, suffix) == 0;
}

/* Deny wins, then the first allow, then the default.  *matched_name gets the
 * host name a name rule matched on. */
void lg_net_judge_dest(const struct lg_tables *t, struct lg_sup *s, const struct lg_dest *d, int *effect, int *rule, char *matched, size_t mlen)
{
    char names[LG_MAXNAMES][LG_NAME_MAX];
    int nn = -1;
    int allow_rule = -1;
    /* landgate's own infrastructure first: an address (or loopback range) and
     * one port, nothing else, ahead of every policy rule.  An allow makes the
     * policy's name rules work at all (the DNS view answers allowed names,
     * NXDOMAINs and records the rest); a deny keeps a sandbox away from
     * landgate's own dashboard whatever the policy's localhost rules say. */
    for (int i = 0; i < t->n_infra; i++) {
        const struct lg_net_rule *r = &t->infra[i];
        if ((d->family == AF_INET || d->family == AF_INET6) && r->family == d->family &&
            r->port == d->port && prefix_match(d->addr, r->addr, r->prefix)) {
            *effect = r->effect;
            *rule = r->rule;
            return;
        }
    }
    for (int i = 0; i < t->n_net; i++) {
        const struct lg_net_rule *r = &t->net[i];
        int hit = 0;
        const char *via = NULL;
        if (r->kind == LG_NET_UNIX) {
            hit = d->family == AF_UNIX && lg_glob_match(r->glob, d->path, strlen(d->path), 1);
        } else if (d->family == AF_INET || d->family == AF_INET6) {
            if (r->port >= 0 && r->port != d->port)
                continue;
            if (r->kind == LG_NET_ANY) {
                hit = 1;
            } else if (r->kind == LG_NET_IP) {
                hit = r->family == d->family && prefix_match(d->addr, r->addr, r->prefix);
            } else if (r->kind == LG_NET_HOST || r->kind == LG_NET_WILDCARD) {
                if (nn < 0)
                    nn = s ? names_for(s, d->family, d->addr, names, LG_MAXNAMES) : 0;
                for (int k = 0; k < nn && !hit; k++)
                    if (name_matches(names[k], r)) {
                        hit = 1;
                        via = names[k];
                    }
            }
        } else if (d->family != AF_UNIX && r->kind == LG_NET_ANY && r->port < 0) {
            /* `*` is every host; a unix socket is matched only by unix: rules */
            hit = 1;
        }
        if (!hit)
            continue;
        if (r->effect == LG_EFFECT_DENY) {
            *effect = LG_EFFECT_DENY;
            *rule = r->rule;
            if (via)
                snprintf(matched, mlen, "%s", via);
            return;
        }
        if (allow_rule < 0) {
            allow_rule = r->rule;
            if (via)
                snprintf(matched, mlen, "%s", via);
        }
    }
    if (allow_rule >= 0) {
        *effect = LG_EFFECT_ALLOW;
        *rule = allow_rule;
        return;
    }
    *effect = t->net_default_effect == LG_EFFECT_ALLOW ? LG_EFFECT_ALLOW : LG_EFFECT_DENY;
    *rule = t->net_default_rule;
}

/* Is `path` one of the quiet unix sockets (struct lg_tables.quiet_unix)? */
int lg_net_quiet_unix(const struct lg_tables *t, const char *path)
{
    for (int i = 0; i < t->n_quiet_unix; i++)
        if (t->quiet_unix[i] && strcmp(t->quiet_unix[i], path) == 0)
            return 1;
    return 0;
}

/* The same judgement for a unix socket path, without a kernel in the loop
 * (`explain` and the contract tests call it on the compiled tables). */
int lg_judge_unix(const struct lg_tables *t, const char *path, int *rule)
{
    struct lg_dest d;
    memset(&d, 0, sizeof d);
    d.family = AF_UNIX;
    if (strlen(path) >= sizeof d.path) {
        *rule = -1;
        return LG_EFFECT_DENY;  /* never judged on a shortened path */
    }
    memcpy(d.path, path, strlen(path) + 1);
    int effect = 0;
    char unused[8];
    lg_net_judge_dest(t, NULL, &d, &effect, rule, unused, sizeof unused);
    return effect;
}

/* ---- the sandbox's private loopback --------------------------------------------- */

static int is_loopback(const struct lg_dest *d)
{
    static const unsigned char v6lo[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    if (d->family == AF_INET)
        return d->addr[0] == 127;
    if (d->family == AF_INET6)
        return memcmp(d->addr, v6lo, 16) == 0;
    return 0;
}

/* Is this loopback destination the sandbox's own, private loopback?
 *
 * DESIGN §3: `localhost` rules mean the HOST's loopback; the loopback of the
 * sandbox's own network namespace (servers the agent starts, test runs) is
 * always usable and never reaches the host.  Which loopback an address
 * reaches is decided by the namespace the SOCKET belongs to (sock_net(sk),
 * fixed when the socket was created), not by the caller's current namespace
 * nor by ours: the supervisor connects the caller's own socket (or lets the
 * kernel send on it), so 127.0.0.1 is routed in that socket's namespace.
 * SIOCGSKNS (4.9) opens that namespace; it is the sandbox's private one only
 * when its device and inode are the ones the launcher recorded for the
 * sandbox's namespace (never set on the rung without a network namespace,
 * where the sandbox shares the host's).  A socket from any other namespace
 * (one passed in over SCM_RIGHTS from a host process, say) is judged by the
 * policy like the host's loopback: the fail-safe side.  The host's services
 * that the policy allows appear inside the namespace only through landgate's
 * forwarder (sandbox/net/loopback.py), which binds exactly the allowed ports. */
int lg_net_private_loopback(const struct lg_sup *s, int sock, const struct lg_dest *d)
{
    if (!s->t.private_netns || !is_loopback(d))
        return 0;
    /* landgate's infrastructure denies (a running dashboard's port) win even on
     * the private loopback: nothing listens there in the sandbox's namespace,
     * but the attempt must be refused and recorded, not merely fail. */
    for (int i = 0; i < s->t.n_infra; i++) {
        const struct lg_net_rule *r = &s->t.infra[i];
        if (r->effect == LG_EFFECT_DENY && r->family == d->family && r->port == d->port &&
            prefix_match(d->addr, r->addr, r->prefix))
            return 0;
    }
    int ns = ioctl(sock, SIOCGSKNS);
    if (ns < 0)
        return 0;  /* cannot tell: the policy decides */
    struct stat st;
    int ok = fstat(ns, &st) == 0 && (unsigned long long)st.st_dev == s->t.private_netns_dev &&
             (unsigned long long)st.st_ino == s->t.private_netns_ino;
    close(ns);
    return ok;
}
