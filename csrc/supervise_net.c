/* supervise_net.c: connect / sendto / sendmsg / sendmmsg decisions (DESIGN §2 connect row).
 *
 * connect: the address is copied once, judged, and the supervisor connects a
 * duplicate of the caller's socket (lg_caller_fd: pidfd_getfd on the
 * thread's pidfd, or before 6.9 on its leader's, checked with kcmp) with its
 * own copy, returning the result as the syscall's
 * value.  The caller's memory is never read again, so swapping the address
 * after the check changes nothing.  Non-blocking sockets keep EINPROGRESS;
 * a blocking connect runs on a worker, never on the loop.  AF_UNIX paths are
 * resolved in the caller's view (the session's root, /proc/TID/cwd) and connected
 * through an O_PATH descriptor, with the caller's fsuid/fsgid/groups on the
 * connecting thread so that the kernel's permission check on the socket file
 * is the caller's, not root's.
 *
 * Datagram sends with a destination: judged from one copy.  If nothing but the
 * caller can change the destination bytes (single-threaded, unshared mm,
 * private anonymous pages) the syscall continues; otherwise the supervisor
 * sends the datagram itself from copies of the address and data (the receiver
 * then sees the supervisor's credentials on a unix socket: documented).
 * Stream sockets ignore the address (TCP only uses it with MSG_FASTOPEN,
 * which is judged and forwarded like a datagram).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/ioctl.h>
#include <linux/openat2.h>
#include <linux/sockios.h>

#include "kernel_compat.h"
#include "supervise_int.h"

#define LG_MAXNAMES 8
#define LG_CTRL_MAX 4096
#define LG_MMSG_MAX 1024  /* UIO_MAXIOV: sendmmsg sends at most this many of a batch */

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

struct dest {
    int family;                 /* AF_INET / AF_INET6 (v4-mapped folded to v4) / AF_UNIX / other */
    unsigned char addr[16];
    int port;
    char path[LG_TARGET_MAX];   /* unix: absolute path in the caller's view, or "@abstract" */
    int abstract;
    int unnamed;
    int relative;               /* unix: the name was relative to the caller's cwd */
};

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
static void judge_dest(const struct lg_tables *t, struct lg_sup *s, const struct dest *d, int *effect, int *rule, char *matched, size_t mlen)
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
static int quiet_unix(const struct lg_tables *t, const char *path)
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
    struct dest d;
    memset(&d, 0, sizeof d);
    d.family = AF_UNIX;
    if (strlen(path) >= sizeof d.path) {
        *rule = -1;
        return LG_EFFECT_DENY;  /* never judged on a shortened path */
    }
    memcpy(d.path, path, strlen(path) + 1);
    int effect = 0;
    char unused[8];
    judge_dest(t, NULL, &d, &effect, rule, unused, sizeof unused);
    return effect;
}

/* Parse a copied sockaddr.  Returns 0, or -errno the kernel would give. */
static int parse_dest(int tid, const unsigned char *sa, size_t len, struct dest *d)
{
    memset(d, 0, sizeof *d);
    if (len < sizeof(sa_family_t))
        return -EINVAL;
    sa_family_t fam;
    memcpy(&fam, sa, sizeof fam);
    d->family = fam;
    if (fam == AF_INET) {
        struct sockaddr_in in;
        if (len < sizeof in)
            return -EINVAL;
        memcpy(&in, sa, sizeof in);
        memcpy(d->addr, &in.sin_addr, 4);
        d->port = ntohs(in.sin_port);
        return 0;
    }
    if (fam == AF_INET6) {
        struct sockaddr_in6 in6;
        if (len < sizeof in6)  /* SIN6_LEN_RFC2133 (24) is also accepted by the kernel */
            if (len < 24)
                return -EINVAL;
        memset(&in6, 0, sizeof in6);
        memcpy(&in6, sa, len < sizeof in6 ? len : sizeof in6);
        d->port = ntohs(in6.sin6_port);
        static const unsigned char v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (memcmp(&in6.sin6_addr, v4mapped, 12) == 0) {
            /* ::ffff:a.b.c.d reaches a.b.c.d: judge it as IPv4 */
            d->family = AF_INET;
            memcpy(d->addr, (unsigned char *)&in6.sin6_addr + 12, 4);
        } else {
            memcpy(d->addr, &in6.sin6_addr, 16);
        }
        return 0;
    }
    if (fam == AF_UNIX) {
        size_t plen = len - offsetof(struct sockaddr_un, sun_path);
        const char *sp = (const char *)sa + offsetof(struct sockaddr_un, sun_path);
        if (len <= offsetof(struct sockaddr_un, sun_path)) {
            d->unnamed = 1;
            return 0;
        }
        if (sp[0] == '\0') {
            d->abstract = 1;
            size_t n = plen - 1 < sizeof d->path - 2 ? plen - 1 : sizeof d->path - 2;
            d->path[0] = '@';
            for (size_t i = 0; i < n; i++)
                d->path[i + 1] = sp[i + 1] ? sp[i + 1] : '@';
            d->path[n + 1] = '\0';
            return 0;
        }
        char rel[sizeof ((struct sockaddr_un *)0)->sun_path + 1];
        size_t n = strnlen(sp, plen);
        memcpy(rel, sp, n);
        rel[n] = '\0';
        if (rel[0] == '/') {
            snprintf(d->path, sizeof d->path, "%s", rel);
        } else {
            d->relative = 1;
            char link[64], cwd[LG_TARGET_MAX];
            snprintf(link, sizeof link, "/proc/%d/cwd", tid);
            ssize_t cl = readlink(link, cwd, sizeof cwd - 1);
            if (cl < 0)
                return -ENOENT;
            cwd[cl] = '\0';
            if ((size_t)snprintf(d->path, sizeof d->path, "%s/%s", cwd, rel) >= sizeof d->path)
                return -ENAMETOOLONG;
        }
        char norm[sizeof d->path];
        int nrc = lg_normalise_path(d->path, norm, sizeof norm);
        if (nrc < 0)
            return nrc;  /* never judged on a shortened path */
        memcpy(d->path, norm, strlen(norm) + 1);
        return 0;
    }
    return 0;
}

static void format_dest(const struct dest *d, char *out, size_t cap)
{
    char ip[INET6_ADDRSTRLEN];
    if (d->family == AF_INET) {
        inet_ntop(AF_INET, d->addr, ip, sizeof ip);
        snprintf(out, cap, "%s:%d", ip, d->port);
    } else if (d->family == AF_INET6) {
        inet_ntop(AF_INET6, d->addr, ip, sizeof ip);
        snprintf(out, cap, "[%s]:%d", ip, d->port);
    } else if (d->family == AF_UNIX) {
        memcpy(out, "unix:", 6);
        lg_copy_target(out + 5, cap - 5, d->unnamed ? "(unnamed)" : d->path, NULL);
    } else {
        snprintf(out, cap, "family %d", d->family);
    }
}

/* ---- a unix socket file, by the object reached --------------------------------- */

/* Judge the socket file a named unix destination reaches, not only its name:
 * opened O_PATH in the caller's view, its real path (symlinks resolved) is
 * judged too, and a socket file with more than one name (a hard link) is
 * refused, because only the name used here can be judged: a host socket (an
 * ssh-agent under /tmp) linked into an allowed directory would be reached
 * through it.  *pathfd gets the O_PATH fd (or -1 when the file is missing):
 * a supervisor-made connect or send goes through it, so that the object
 * judged is the object reached.  The name is walked from the caller's root,
 * the session's (lg_session_root, supervise_caller.c), like the open check's
 * absolute names.  Only ever tightens *effect. */
static void unix_object(struct lg_sup *s, int tid, unsigned long long id, const struct dest *d,
                        int *effect, int *rule, unsigned int *flags, char *detail, size_t dlen,
                        int *pathfd)
{
    char real[LG_TARGET_MAX];
    *pathfd = -1;
    int root = lg_session_root(s, tid, id);
    if (root < 0)
        return;  /* the caller is gone (ID_VALID fails later) or no root: as a missing file */
    struct open_how how;
    memset(&how, 0, sizeof how);
    how.flags = O_PATH | O_CLOEXEC;
    how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
    *pathfd = (int)syscall(__NR_openat2, root, d->path, &how, sizeof how);
    if (*pathfd < 0) {
        *pathfd = -1;
        return;
    }
    struct stat pst;
    if (fstat(*pathfd, &pst) == 0 && S_ISSOCK(pst.st_mode) && pst.st_nlink > 1 &&
        *effect != LG_EFFECT_DENY) {
        *effect = LG_EFFECT_DENY;
        *rule = -1;
        *flags |= LG_EV_FAILCLOSED;
        snprintf(detail, dlen, "socket file with %lu names (hard links)", (unsigned long)pst.st_nlink);
    }
    char link[64];
    snprintf(link, sizeof link, "/proc/self/fd/%d", *pathfd);
    ssize_t rl = readlink(link, real, sizeof real - 1);
    if (rl <= 0)
        return;
    real[rl] = '\0';
    if (strcmp(real, d->path) == 0)
        return;
    struct dest d2 = *d;
    snprintf(d2.path, sizeof d2.path, "%s", real);
    int eff2, rule2;
    judge_dest(&s->t, s, &d2, &eff2, &rule2, detail, dlen);
    if (eff2 == LG_EFFECT_DENY && *effect != LG_EFFECT_DENY) {
        *effect = LG_EFFECT_DENY;
        *rule = rule2;
    }
    lg_copy_target(detail, dlen, real, flags);
}

/* Can the agent change which socket file this name reaches before the kernel
 * walks it again?  Not when the name is absolute and every link and directory
 * on the way lies outside the trees it can write (supervise_exec_stable.c); a
 * relative name starts at a cwd a CLONE_FS sibling can move. */
static int unix_name_stable(struct lg_sup *s, int tid, unsigned long long id, const struct dest *d)
{
    if (d->relative)
        return 0;
    /* walked from the session's root, as the kernel's walk is from the caller's,
     * which no task under the launcher's filter can change (supervise_caller.c) */
    int root = lg_session_root(s, tid, id);
    if (root < 0)
        return 0;
    const char *names[1] = {d->path};
    return lg_exec_stable(s, tid, root, names, 1);
}

/* ---- the sandbox's private loopback --------------------------------------------- */

static int is_loopback(const struct dest *d)
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
static int private_loopback(const struct lg_sup *s, int sock, const struct dest *d)
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

#define LG_PRIVATE_LOOPBACK "the sandbox's own loopback (private network namespace)"

/* ---- acting for the caller ---------------------------------------------------- */

/* The caller's fd number `fd` as a local fd, or -errno (also used by the open
 * check).  The pidfd pins the task; ID_VALID after opening it proves the tid
 * still belongs to the caller (not a reused pid).
 *
 * 6.9+: pidfd_open(tid, PIDFD_THREAD) opens the calling thread itself.  Before
 * 6.9 that is EINVAL and pidfd_open takes only a thread-group leader, so we
 * open the caller's tgid and take `fd` from the leader's table.  That is the
 * caller's file only while the thread shares its fd table with the leader
 * (threads do, unless one unshared CLONE_FILES), so kcmp(KCMP_FILE) then
 * proves that the file we hold is the very file at `fd` in the calling
 * thread's table; a mismatch, or a kernel without kcmp, is refused (EBADF or
 * kcmp's errno), never acted on with another file.  The caller is blocked in
 * its syscall, so its tgid cannot change under us, and a leader's pid is not
 * freed while any thread of its group lives (ID_VALID checks the thread). */
int lg_caller_fd(struct lg_sup *s, unsigned long long id, int tid, int fd)
{
    int tgid = tid;
    int pidfd = (int)syscall(__NR_pidfd_open, tid, PIDFD_THREAD);
    if (pidfd < 0 && errno == EINVAL) {   /* < 6.9: no PIDFD_THREAD */
        struct lg_creds c;
        int rc = lg_read_creds(tid, &c);
        if (rc < 0)
            return rc == -ENOENT ? -ESRCH : rc;
        tgid = c.tgid;
        pidfd = (int)syscall(__NR_pidfd_open, tgid, 0);
    }
    if (pidfd < 0)
        return -errno;
    if (!lg_id_valid(s, id)) {
        close(pidfd);
        return -ESRCH;
    }
    int local = (int)syscall(__NR_pidfd_getfd, pidfd, fd, 0);
    int e = errno;
    close(pidfd);
    if (local < 0)
        return -e;
    if (tgid != tid) {
        long same = syscall(SYS_kcmp, tid, getpid(), KCMP_FILE, fd, local);
        int ke = errno;
        if (same != 0) {
            close(local);
            return same < 0 ? -ke : -EBADF;
        }
    }
    return local;
}

static int grab_fd(struct lg_sup *s, unsigned long long id, int tid, int fd, int *err)
{
    int local = lg_caller_fd(s, id, tid, fd);
    if (local < 0) {
        *err = -local;
        return -1;
    }
    return local;
}

struct net_job {
    struct lg_sup *s;
    unsigned long long id;
    int sock;                   /* our duplicate */
    int pathfd;                 /* unix: O_PATH fd of the socket file, or -1 */
    int is_send;
    int flags;
    unsigned char addr[sizeof(struct sockaddr_storage)];
    socklen_t addrlen;
    int has_addr;
    unsigned char *data;
    size_t datalen;
    unsigned char ctrl[LG_CTRL_MAX];
    size_t ctrllen;
    struct lg_creds creds;
    int dups[253];              /* our duplicates of SCM_RIGHTS fds, closed after the send */
    int ndups;
    struct lg_event ev;
};

/* Connect or send on our duplicate; returns the syscall's value or -errno. */
static long long perform(struct net_job *j)
{
    struct sockaddr_un via;
    const void *addr = j->addr;
    socklen_t alen = j->addrlen;
    if (j->pathfd >= 0) {
        memset(&via, 0, sizeof via);
        via.sun_family = AF_UNIX;
        snprintf(via.sun_path, sizeof via.sun_path, "/proc/self/fd/%d", j->pathfd);
        addr = &via;
        alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(via.sun_path) + 1);
    }
    long long r;
    int brc = lg_become(&j->creds);
    if (brc < 0) {
        lg_unbecome(&j->creds);
        return brc;  /* never connect with credentials other than the caller's */
    }
    if (!j->is_send) {
        r = connect(j->sock, addr, alen) < 0 ? -errno : 0;
    } else {
        struct iovec iov = {j->data, j->datalen};
        struct msghdr mh;
        memset(&mh, 0, sizeof mh);
        mh.msg_name = j->has_addr ? (void *)addr : NULL;
        mh.msg_namelen = j->has_addr ? alen : 0;
        mh.msg_iov = &iov;
        mh.msg_iovlen = 1;
        mh.msg_control = j->ctrllen ? j->ctrl : NULL;
        mh.msg_controllen = j->ctrllen;
        ssize_t n = sendmsg(j->sock, &mh, j->flags | MSG_NOSIGNAL);
        r = n < 0 ? -errno : n;
    }
    if (lg_unbecome(&j->creds) < 0)
        lg_count(j->s, LG_COUNT_ERRORS);
    return r;
}

static void job_free(struct net_job *j)
{
    if (j->sock >= 0)
        close(j->sock);
    if (j->pathfd >= 0)
        close(j->pathfd);
    for (int i = 0; i < j->ndups; i++)
        close(j->dups[i]);
    free(j->data);
    free(j);
}

static void *net_worker(void *arg)
{
    struct net_job *j = arg;
    struct lg_sup *s = j->s;
    long long r = perform(j);
    j->ev.t_resp_ns = lg_now_ns();
    lg_push_event(s, &j->ev);
    lg_send_resp(s, j->id, r < 0 ? 0 : r, r < 0 ? (int)-r : 0, 0);
    job_free(j);
    return NULL;
}

/* ---- the handler ------------------------------------------------------------------ */

static void answer(struct lg_sup *s, unsigned long long id, struct lg_event *ev, long long val, int err, int cont)
{
    ev->t_resp_ns = lg_now_ns();
    if (s->simulate) {
        /* Simulation records what enforcement would do, but egress the policy
         * denies stays refused (DESIGN §3): a simulated run must not leak what
         * the enforced one would keep in (nftables holds TCP/UDP back in a
         * namespace; unix sockets and the no-namespace rung have only this). */
        ev->flags |= LG_EV_SIMULATED;
        lg_push_event(s, ev);
        if (ev->result == LG_EFFECT_DENY)
            lg_send_resp(s, id, 0, err ? err : ECONNREFUSED, 0);
        else
            lg_send_resp(s, id, 0, 0, 1);
        return;
    }
    if (ev->result == LG_EFFECT_DENY && !(ev->flags & LG_EV_FAILCLOSED))
        lg_report_denial(s, "network", ev->target, ev->rule);
    lg_push_event(s, ev);
    lg_send_resp(s, id, val, err, cont);
}

/* Read the destination of a sendmsg msghdr at mptr: name pointer/len and the
 * data (iovecs), control.  Fills j (data malloc'ed). */
static int read_msghdr(int tid, unsigned long long mptr, struct net_job *j, unsigned long long *name_ptr,
                       unsigned long long *ranges, size_t *rlens, int *nr)
{
    struct msghdr mh;
    int rc = lg_read_mem(tid, mptr, &mh, sizeof mh);
    if (rc)
        return rc;
    ranges[*nr] = mptr;
    rlens[(*nr)++] = sizeof mh;
    *name_ptr = (unsigned long long)(uintptr_t)mh.msg_name;
    j->has_addr = mh.msg_name != NULL && mh.msg_namelen > 0;
    if (j->has_addr) {
        if (mh.msg_namelen > sizeof j->addr)
            return -EINVAL;
        j->addrlen = mh.msg_namelen;
        rc = lg_read_mem(tid, *name_ptr, j->addr, j->addrlen);
        if (rc)
            return rc;
        ranges[*nr] = *name_ptr;
        rlens[(*nr)++] = j->addrlen;
    }
    if (mh.msg_iovlen > 1024)
        return -EMSGSIZE;
    struct iovec iov[1024];
    size_t total = 0;
    if (mh.msg_iovlen) {
        rc = lg_read_mem(tid, (unsigned long long)(uintptr_t)mh.msg_iov, iov, mh.msg_iovlen * sizeof iov[0]);
        if (rc)
            return rc;
    }
    for (size_t i = 0; i < mh.msg_iovlen; i++)
        total += iov[i].iov_len;
    if (total > LG_SEND_MAX)
        return -EMSGSIZE;
    j->data = malloc(total ? total : 1);
    if (!j->data)
        return -ENOMEM;
    size_t pos = 0;
    for (size_t i = 0; i < mh.msg_iovlen; i++) {
        if (!iov[i].iov_len)
            continue;
        rc = lg_read_mem(tid, (unsigned long long)(uintptr_t)iov[i].iov_base, j->data + pos, iov[i].iov_len);
        if (rc)
            return rc;
        pos += iov[i].iov_len;
    }
    j->datalen = total;
    if (mh.msg_controllen) {
        if (mh.msg_controllen > LG_CTRL_MAX)
            return -ENOBUFS;
        rc = lg_read_mem(tid, (unsigned long long)(uintptr_t)mh.msg_control, j->ctrl, mh.msg_controllen);
        if (rc)
            return rc;
        j->ctrllen = mh.msg_controllen;
    }
    return 0;
}

/* SCM_RIGHTS: replace the caller's fd numbers with our duplicates of the same
 * open files; SCM_CREDENTIALS would be checked against root's: refused. */
static int translate_control(struct lg_sup *s, unsigned long long id, int tid, struct net_job *j, int *dups, int *ndups)
{
    struct msghdr mh;
    memset(&mh, 0, sizeof mh);
    mh.msg_control = j->ctrl;
    mh.msg_controllen = j->ctrllen;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
        if (c->cmsg_level != SOL_SOCKET)
            continue;
        if (c->cmsg_type == SCM_CREDENTIALS)
            return -EPERM;
        if (c->cmsg_type == SCM_RIGHTS) {
            int n = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
            int *fds = (int *)CMSG_DATA(c);
            for (int i = 0; i < n; i++) {
                if (*ndups >= 253)
                    return -ETOOMANYREFS;
                int e = 0, theirs;
                memcpy(&theirs, &fds[i], sizeof theirs);
                int mine = grab_fd(s, id, tid, theirs, &e);
                if (mine < 0)
                    return -e;
                dups[(*ndups)++] = mine;
                memcpy(&fds[i], &mine, sizeof mine);
            }
        }
    }
    return 0;
}

void lg_handle_net(struct lg_sup *s, const struct seccomp_notif *req, unsigned long long t0)
{
    int tid = (int)req->pid;
    int nr = req->data.nr;
    int fd = (int)req->data.args[0];
    struct lg_event ev;
    memset(&ev, 0, sizeof ev);
    ev.t_recv_ns = t0;
    ev.pid = tid;
    ev.tid = tid;
    ev.syscall_nr = nr;
    ev.rule = -1;
    ev.action = nr == SYS_connect ? LG_ACT_CONNECT : LG_ACT_SEND;
    lg_count(s, nr == SYS_connect ? LG_COUNT_CONNECT : LG_COUNT_SEND);

    struct net_job *j = calloc(1, sizeof *j);
    if (!j) {
        ev.result = LG_EFFECT_DENY;
        ev.flags |= LG_EV_FAILCLOSED;
        snprintf(ev.target, sizeof ev.target, "(out of memory)");
        answer(s, req->id, &ev, 0, ENOMEM, 0);
        return;
    }
    j->s = s;
    j->id = req->id;
    j->sock = -1;
    j->pathfd = -1;
    j->is_send = nr != SYS_connect;

    unsigned long long ranges[8];
    size_t rlens[8];
    int nranges = 0;
    int rc = 0;
    int flags = 0;
    int mmsg = nr == SYS_sendmmsg;

    if (nr == SYS_connect) {
        unsigned long long aptr = req->data.args[1];
        unsigned long long alen = req->data.args[2];
        if (alen > sizeof j->addr) {
            rc = -EINVAL;
        } else {
            j->addrlen = (socklen_t)alen;
            j->has_addr = 1;
            rc = aptr ? lg_read_mem(tid, aptr, j->addr, j->addrlen) : -EFAULT;
        }
    } else if (nr == SYS_sendto) {
        unsigned long long aptr = req->data.args[4];
        unsigned long long alen = req->data.args[5];
        flags = (int)req->data.args[3];
        if (aptr == 0 || alen == 0) {
            /* no destination (a register, not caller memory): nothing to judge */
            lg_send_resp(s, req->id, 0, 0, 1);
            job_free(j);
            return;
        }
        if (alen > sizeof j->addr) {
            rc = -EINVAL;
        } else {
            j->addrlen = (socklen_t)alen;
            j->has_addr = 1;
            rc = lg_read_mem(tid, aptr, j->addr, j->addrlen);
            ranges[nranges] = aptr;
            rlens[nranges++] = alen;
            size_t dlen = req->data.args[2];
            if (rc == 0 && dlen > LG_SEND_MAX)
                rc = -EMSGSIZE;
            if (rc == 0) {
                j->data = malloc(dlen ? dlen : 1);
                j->datalen = dlen;
                rc = !j->data ? -ENOMEM : dlen ? lg_read_mem(tid, req->data.args[1], j->data, dlen) : 0;
            }
        }
    } else {
        /* sendmsg, or the first message of sendmmsg (the others are judged
         * too, below, and the call is forwarded one message at a time). */
        unsigned long long name_ptr = 0;
        flags = (int)(mmsg ? req->data.args[3] : req->data.args[2]);
        rc = read_msghdr(tid, req->data.args[1], j, &name_ptr, ranges, rlens, &nranges);
        if (rc == 0 && !j->has_addr && !mmsg) {
            /* sendmsg without a destination: a datagram socket may still be
             * made to send elsewhere by a racing writer of msg_name; checked below */
        }
    }
    if (!lg_id_valid(s, req->id)) {
        lg_count(s, LG_COUNT_GONE);
        job_free(j);
        return;
    }
    if (rc) {
        ev.result = LG_EFFECT_DENY;
        ev.flags |= LG_EV_FAILCLOSED;
        snprintf(ev.target, sizeof ev.target, "(unreadable destination)");
        answer(s, req->id, &ev, 0, -rc, 0);
        job_free(j);
        return;
    }

    /* Which socket is it? */
    int err = 0;
    j->sock = grab_fd(s, req->id, tid, fd, &err);
    if (j->sock < 0) {
        if (err == ESRCH) {
            lg_count(s, LG_COUNT_GONE);
            job_free(j);
            return;
        }
        ev.result = LG_EFFECT_DENY;
        ev.flags |= LG_EV_FAILCLOSED;
        snprintf(ev.target, sizeof ev.target, "(fd %d: %s)", fd, strerror(err));
        answer(s, req->id, &ev, 0, err, 0);
        job_free(j);
        return;
    }
    int stype = 0;
    socklen_t sl = sizeof stype;
    if (getsockopt(j->sock, SOL_SOCKET, SO_TYPE, &stype, &sl) < 0) {
        int e = errno;
        ev.result = LG_EFFECT_DENY;
        snprintf(ev.target, sizeof ev.target, "(fd %d is not a socket)", fd);
        ev.flags |= LG_EV_FAILCLOSED;
        answer(s, req->id, &ev, 0, e == ENOTSOCK ? ENOTSOCK : e, 0);
        job_free(j);
        return;
    }
    if (j->is_send && (stype == SOCK_STREAM || stype == SOCK_SEQPACKET) && !(flags & MSG_FASTOPEN)) {
        /* stream sockets ignore (or refuse) a destination: nothing to judge */
        lg_send_resp(s, req->id, 0, 0, 1);
        job_free(j);
        return;
    }
    if (mmsg) {
        /* sendmmsg on a datagram socket: judge every destination the kernel
         * will send to (it takes at most UIO_MAXIOV messages of vlen: every
         * one of those is read and judged, none is left unjudged); continue
         * only when the memory is stable, else refuse a racy batch. */
        unsigned vlen = (unsigned)req->data.args[2];
        if (vlen > LG_MMSG_MAX)
            vlen = LG_MMSG_MAX;  /* the kernel's own cap: it never sends more */
        struct mmsghdr *mm = vlen ? calloc(vlen, sizeof *mm) : NULL;
        /* what another task could rewrite: the array and every msg_name */
        size_t nr_cap = (size_t)nranges + 1 + vlen;
        unsigned long long *rr = malloc(nr_cap * sizeof *rr);
        size_t *rl = malloc(nr_cap * sizeof *rl);
        int nrr = 0;
        rc = (vlen && !mm) || !rr || !rl ? -ENOMEM : 0;
        if (rc == 0) {
            for (int i = 0; i < nranges; i++) {
                rr[nrr] = ranges[i];
                rl[nrr++] = rlens[i];
            }
            if (vlen) {
                rr[nrr] = req->data.args[1];
                rl[nrr++] = vlen * sizeof mm[0];
                rc = lg_read_mem(tid, req->data.args[1], mm, vlen * sizeof mm[0]);
            }
        }
        int worst = LG_EFFECT_ALLOW, worst_rule = -1, any_dest = 0, unix_racy = 0;
        char tgt[LG_TARGET_MAX] = "";
        for (unsigned i = 0; rc == 0 && i < vlen; i++) {
            if (!mm[i].msg_hdr.msg_name || !mm[i].msg_hdr.msg_namelen)
                continue;
            unsigned char a[sizeof(struct sockaddr_storage)];
            size_t al = mm[i].msg_hdr.msg_namelen;
            if (al > sizeof a) {
                rc = -EINVAL;
                break;
            }
            rr[nrr] = (unsigned long long)(uintptr_t)mm[i].msg_hdr.msg_name;
            rl[nrr++] = al;
            rc = lg_read_mem(tid, (unsigned long long)(uintptr_t)mm[i].msg_hdr.msg_name, a, al);
            if (rc)
                break;
            struct dest d;
            rc = parse_dest(tid, a, al, &d);
            if (rc)
                break;
            int eff, rule;
            char m[LG_DETAIL_MAX] = "";
            judge_dest(&s->t, s, &d, &eff, &rule, m, sizeof m);
            if (d.family == AF_UNIX && !d.abstract && !d.unnamed) {
                /* the socket file reached, as for sendto; the kernel sends the
                 * batch itself, walking each name again: a name the agent can
                 * re-aim makes the batch racy (refused below) */
                int pfd = -1;
                unsigned int fl = 0;
                unix_object(s, tid, req->id, &d, &eff, &rule, &fl, m, sizeof m, &pfd);
                if (pfd >= 0)
                    close(pfd);
                if (!unix_name_stable(s, tid, req->id, &d))
                    unix_racy = 1;
            }
            if (private_loopback(s, j->sock, &d)) {
                eff = LG_EFFECT_ALLOW;
                rule = -1;
            }
            any_dest = 1;
            if (eff == LG_EFFECT_DENY && worst != LG_EFFECT_DENY) {
                worst = eff;
                worst_rule = rule;
                format_dest(&d, tgt, sizeof tgt);
            } else if (worst_rule < 0 && worst == LG_EFFECT_ALLOW) {
                worst_rule = rule;
                format_dest(&d, tgt, sizeof tgt);
            }
        }
        free(mm);
        if (!lg_id_valid(s, req->id)) {
            free(rr);
            free(rl);
            lg_count(s, LG_COUNT_GONE);
            job_free(j);
            return;
        }
        int racy = rc == 0 && any_dest && worst == LG_EFFECT_ALLOW &&
                   (unix_racy || lg_caller_racy(tid, rr, rl, nrr));
        free(rr);
        free(rl);
        if (rc || racy) {
            /* unreadable, or destinations another task could rewrite: refused */
            ev.result = LG_EFFECT_DENY;
            ev.flags |= LG_EV_FAILCLOSED;
            lg_copy_target(ev.target, sizeof ev.target, tgt[0] ? tgt : "(sendmmsg)", NULL);
            answer(s, req->id, &ev, 0, rc ? -rc : EPERM, 0);
            job_free(j);
            return;
        }
        if (!any_dest) {
            lg_send_resp(s, req->id, 0, 0, 1);
            job_free(j);
            return;
        }
        ev.result = worst;
        ev.rule = worst_rule;
        lg_copy_target(ev.target, sizeof ev.target, tgt, NULL);
        answer(s, req->id, &ev, 0, worst == LG_EFFECT_DENY ? ECONNREFUSED : 0, worst == LG_EFFECT_ALLOW);
        job_free(j);
        return;
    }

    struct dest d;
    memset(&d, 0, sizeof d);
    if (j->has_addr) {
        rc = parse_dest(tid, j->addr, j->addrlen, &d);
        if (rc) {
            ev.result = LG_EFFECT_DENY;
            ev.flags |= LG_EV_FAILCLOSED;
            snprintf(ev.target, sizeof ev.target, "(bad address)");
            answer(s, req->id, &ev, 0, -rc, 0);
            job_free(j);
            return;
        }
    } else {
        /* sendmsg without msg_name on a datagram socket: goes to the
         * connected peer (judged at connect) unless a racing writer fills
         * msg_name in; forwarded below when racy. */
        if (!lg_caller_racy(tid, ranges, rlens, nranges)) {
            lg_send_resp(s, req->id, 0, 0, 1);
            job_free(j);
            return;
        }
        ev.result = LG_EFFECT_ALLOW;
        snprintf(ev.target, sizeof ev.target, "(connected peer)");
        goto forward;
    }
    format_dest(&d, ev.target, sizeof ev.target);
    if (d.family == AF_UNSPEC && nr == SYS_connect) {
        /* dissolves a UDP association: no destination */
        ev.result = LG_EFFECT_ALLOW;
    } else if (d.family == AF_NETLINK) {
        ev.result = LG_EFFECT_ALLOW;  /* the kernel, not the network */
    } else if (d.family != AF_INET && d.family != AF_INET6 && d.family != AF_UNIX) {
        ev.result = LG_EFFECT_DENY;
        ev.flags |= LG_EV_FAILCLOSED;
    } else {
        int eff, rule;
        judge_dest(&s->t, s, &d, &eff, &rule, ev.detail, sizeof ev.detail);
        ev.result = eff;
        ev.rule = rule;
        if (private_loopback(s, j->sock, &d)) {
            ev.result = LG_EFFECT_ALLOW;
            ev.rule = -1;
            snprintf(ev.detail, sizeof ev.detail, "%s", LG_PRIVATE_LOOPBACK);
        }
    }
    if (d.family == AF_UNIX && !d.abstract && !d.unnamed) {
        unix_object(s, tid, req->id, &d, &ev.result, &ev.rule, &ev.flags, ev.detail,
                    sizeof ev.detail, &j->pathfd);
        lg_read_creds(tid, &j->creds);
    }
    if (ev.result == LG_EFFECT_DENY && ev.rule == s->t.net_default_rule && d.family == AF_UNIX &&
        !d.abstract && !d.unnamed && !(ev.flags & LG_EV_FAILCLOSED) && quiet_unix(&s->t, d.path)) {
        /* A lookup glibc makes on its own (nscd), refused by the default: answered
         * as a host without the service answers, with no denial line and no event,
         * so that every session is not reported for it.  The connect never happens
         * (a real nscd would resolve names outside the sandbox's DNS view). */
        lg_send_resp(s, req->id, 0, j->pathfd < 0 ? ENOENT : ECONNREFUSED, 0);
        job_free(j);
        return;
    }
    if (ev.result == LG_EFFECT_DENY || s->simulate) {
        answer(s, req->id, &ev, 0, ECONNREFUSED, 0);
        job_free(j);
        return;
    }
    if (d.family == AF_UNIX && !d.abstract && !d.unnamed && j->pathfd < 0) {
        answer(s, req->id, &ev, 0, ENOENT, 0);  /* the kernel's answer for a missing socket file */
        job_free(j);
        return;
    }
    if (d.family == AF_UNIX && d.abstract) {
        /* An abstract socket has no file for Landlock to check; Landlock ABI 6
         * scopes it instead (LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET): the sandbox
         * may reach only listeners inside its own domain.  That scoping applies
         * to connects the sandboxed task makes itself.  Made here, from outside
         * the domain, the connect would reach any listener on the host, so the
         * kernel makes it: if a racing thread changes the name after this
         * check, the new name is still confined to the sandbox's domain.
         * (Below ABI 6 there is no scoping and that race stays open.) */
        answer(s, req->id, &ev, 0, 0, 1);
        job_free(j);
        return;
    }
    if (j->is_send && !lg_caller_racy(tid, ranges, rlens, nranges) &&
        (d.family != AF_UNIX || d.unnamed || unix_name_stable(s, tid, req->id, &d))) {
        /* only the caller can change the destination bytes, and for a socket
         * file nobody can change which file the name reaches: the kernel's
         * own walk finds the object judged.  Otherwise the datagram goes
         * through our O_PATH fd of the object judged (forwarded below). */
        answer(s, req->id, &ev, 0, 0, 1);
        job_free(j);
        return;
    }

forward:
    ev.flags |= LG_EV_FORWARDED;
    j->flags = flags;
    if (j->ctrllen) {
        rc = translate_control(s, req->id, tid, j, j->dups, &j->ndups);
        if (rc) {
            ev.result = LG_EFFECT_DENY;
            ev.flags |= LG_EV_FAILCLOSED;
            answer(s, req->id, &ev, 0, -rc, 0);
            job_free(j);
            return;
        }
    }
    int fl = fcntl(j->sock, F_GETFL);
    int nonblock = fl >= 0 && (fl & O_NONBLOCK);
    if (j->is_send && (flags & MSG_DONTWAIT))
        nonblock = 1;
    if (nonblock) {
        long long r = perform(j);
        answer(s, req->id, &ev, r < 0 ? 0 : r, r < 0 ? (int)-r : 0, 0);
        job_free(j);
        return;
    }
    /* A blocking connect/send may wait for a peer: never on the loop, on a
     * persistent worker (no thread creation per connect). */
    j->ev = ev;
    j->ev.t_resp_ns = 0;
    int wrc = lg_pool_submit(&s->netpool, net_worker, j);
    if (wrc < 0) {
        ev.result = LG_EFFECT_DENY;
        ev.flags |= LG_EV_FAILCLOSED;
        answer(s, req->id, &ev, 0, EAGAIN, 0);
        job_free(j);
    }
}
