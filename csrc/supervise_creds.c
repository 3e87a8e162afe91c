/* supervise_creds.c: the caller's credentials, taken per thread by the
 * supervisor when it acts for the caller (unix connects, the open check) */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/types.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>

#include "kernel_compat.h"
#include "supervise_int.h"

/* fsuid, fsgid, groups, tgid and umask from one read of /proc/TID/status. */
/* The last whitespace-separated field of the line starting at p, or NULL. */
static char *last_field(char *p)
{
    char *end = strchr(p, '\n');
    if (!end)
        end = p + strlen(p);
    while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    char *q = end;
    while (q > p && q[-1] != ' ' && q[-1] != '\t')
        q--;
    return q < end ? q : NULL;
}

int lg_read_creds(int tid, struct lg_creds *c)
{
    char buf[4096];
    memset(c, 0, sizeof *c);
    c->umask = (unsigned)-1;
    ssize_t n = lg_proc_read(tid, "status", buf, sizeof buf);
    if (n < 0)
        return (int)n;
    unsigned r, ef, sv, fs;
    char *u = strstr(buf, "\nUid:"), *g = strstr(buf, "\nGid:"), *gr = strstr(buf, "\nGroups:");
    char *tg = strstr(buf, "\nTgid:"), *um = strncmp(buf, "Umask:", 6) == 0 ? buf - 1 : strstr(buf, "\nUmask:");
    if (!u || !g || sscanf(u + 5, "%u %u %u %u", &r, &ef, &sv, &fs) != 4)
        return -EIO;
    c->uid = fs;
    if (sscanf(g + 5, "%u %u %u %u", &r, &ef, &sv, &fs) != 4)
        return -EIO;
    c->gid = fs;
    if (!tg || sscanf(tg + 6, "%d", &c->tgid) != 1)
        return -EIO;
    /* NStgid / NSpid list the ids from the reader's pid namespace inwards: the
     * last one is what the caller calls itself (its /proc/self, in its procfs). */
    c->ns_tgid = c->tgid;
    c->ns_tid = tid;
    char *nt = strstr(buf, "\nNStgid:"), *np = strstr(buf, "\nNSpid:");
    if (nt && np && (nt = last_field(nt + 8)) && (np = last_field(np + 7)) &&
        (sscanf(nt, "%d", &c->ns_tgid) != 1 || sscanf(np, "%d", &c->ns_tid) != 1))
        return -EIO;
    unsigned mask;
    if (um && sscanf(um + 7, "%o", &mask) == 1)  /* 4.7 */
        c->umask = mask & 0777;
    c->ngroups = 0;
    if (gr) {
        char *q = gr + 8;
        while (*q && *q != '\n' && c->ngroups < 64) {
            char *end;
            unsigned long v = strtoul(q, &end, 10);
            if (end == q)
                break;
            c->groups[c->ngroups++] = (gid_t)v;
            q = end;
            while (*q == ' ' || *q == '\t')
                q++;
        }
    }
    c->have = 1;
    return 0;
}

/* ---- the open check's credentials without /proc/TID/status ------------------
 *
 * Reading /proc/TID/status makes the kernel print the whole file (memory
 * counters under the mmap lock, signal masks, capabilities, cpu lists): 10.6 us
 * measured, the largest single cost of an open check.  PIDFD_GET_INFO (6.13)
 * answers fsuid/fsgid/tgid from a pidfd in 0.9 us.  It does not say the
 * supplementary groups, the umask or the ids in the caller's own pid namespace,
 * so /proc/TID/status is still read when one of those matters for this open
 * (lg_read_open_creds' need_status).  The pidfd is kept per thread id
 * (pidfd_open costs 4 us): see pidfd_for for why a kept pidfd cannot name
 * another task than the one that sent the notification. */

/* struct lg_pidfd_info, LG_PIDFD_GET_INFO: kernel_compat.h */
#define LG_PIDFD_INFO_CREDS (1ULL << 1)

#define LG_PIDFD_SLOTS 64

/* One thread the open check met: its pidfd.  (Its root is the session's:
 * lg_session_root, supervise_root.c.) */
struct lg_pidfd_slot {
    int tid;
    int fd; /* pidfd_open(tid, PIDFD_THREAD), or -1 */
};

struct lg_pidfd_cache {
    int usable;  /* 1 works, 0 not on this kernel (fall back to /proc/TID/status), -1 untried */
    struct lg_pidfd_slot slot[LG_PIDFD_SLOTS];
};

int lg_pidfd_cache_init(struct lg_sup *s)
{
    struct lg_pidfd_cache *c = calloc(1, sizeof *c);
    if (!c)
        return -ENOMEM;
    c->usable = -1;
    for (int i = 0; i < LG_PIDFD_SLOTS; i++)
        c->slot[i].fd = -1;
    s->pidfds = c;
    return 0;
}

static void slot_clear(struct lg_pidfd_slot *sl)
{
    if (sl->fd >= 0)
        close(sl->fd);
    sl->fd = -1;
}

void lg_pidfd_cache_free(struct lg_sup *s)
{
    if (!s->pidfds)
        return;
    for (int i = 0; i < LG_PIDFD_SLOTS; i++)
        slot_clear(&s->pidfds->slot[i]);
    free(s->pidfds);
    s->pidfds = NULL;
}

/* PIDFD_GET_INFO for thread `tid`, through its kept pidfd (loop thread only:
 * the cache has no lock).  The slot, or NULL with *err (-ENOTTY/-EINVAL: not
 * on this kernel).
 *
 * Why a kept pidfd names the notifying thread and never a task that reused its
 * number: the ioctl answers only while the pidfd's task exists (ESRCH once it
 * is reaped, which is also when its number can go to a new task), and says
 * that task's id now (info.pid, in our pid namespace).  info.pid == tid means
 * the pidfd's task held `tid` at the ioctl; the notifying thread holds `tid`
 * from RECV until its notification is answered, and the caller checks
 * SECCOMP_IOCTL_NOTIF_ID_VALID after this; two live tasks never share an id.
 * A stale or mismatching slot is cleared and a fresh pidfd
 * opened. */
static struct lg_pidfd_slot *pidfd_info_for(struct lg_pidfd_cache *c, int tid,
                                            struct lg_pidfd_info *info, int *err)
{
    struct lg_pidfd_slot *sl = &c->slot[(unsigned)tid % LG_PIDFD_SLOTS];
    for (int fresh = 0; fresh < 2; fresh++) {
        if (sl->fd < 0 || sl->tid != tid) {
            slot_clear(sl);
            sl->fd = (int)syscall(__NR_pidfd_open, tid, PIDFD_THREAD);  /* 6.9 */
            if (sl->fd < 0) {
                *err = -errno;
                return NULL;
            }
            sl->tid = tid;
        }
        memset(info, 0, sizeof *info);
        info->mask = LG_PIDFD_INFO_PID | LG_PIDFD_INFO_CREDS;
        int rc = ioctl(sl->fd, LG_PIDFD_GET_INFO, info);
        int e = errno;
        if (rc == 0 && (info->mask & (LG_PIDFD_INFO_PID | LG_PIDFD_INFO_CREDS)) ==
                           (LG_PIDFD_INFO_PID | LG_PIDFD_INFO_CREDS) &&
            info->pid == (__u32)tid)
            return sl;
        slot_clear(sl);  /* gone, reused, or no such ioctl: never kept */
        if (rc < 0 && (e == ENOTTY || e == EINVAL)) {
            *err = -e;
            return NULL;
        }
        if (rc == 0)
            e = ESRCH;  /* answered for another task: the thread we kept is gone */
        if (fresh) {
            *err = -e;
            return NULL;
        }
    }
    *err = -ESRCH;
    return NULL;
}

/* The caller's credentials for the open check.  need_status: the open needs
 * what only /proc/TID/status says (the umask to create, the ids in the caller's
 * pid namespace for its /proc/self spellings).  Otherwise fsuid/fsgid/tgid
 * come from the pidfd, and the groups too only matter, and are read from
 * /proc/TID/status, when landgate is root and the caller's fsuid is not 0: an
 * fsuid of 0 gives the thread that wears it CAP_DAC_OVERRIDE (the openers keep
 * it, see opener_caps), so no permission check it meets looks at the
 * supplementary groups, and no groups are taken (c->no_groups; lg_become
 * leaves the worn ones).  Without root lg_become switches nothing.
 *
 * The caller's root is not asked here: it is the session's (lg_session_root).
 *
 * Falls back to /proc/TID/status where PIDFD_GET_INFO or PIDFD_THREAD is
 * missing (before 6.13).  0 or -errno (-ESRCH: gone). */
int lg_read_open_creds(struct lg_sup *s, int tid, struct lg_creds *c, int need_status)
{
    struct lg_pidfd_cache *pc = s->pidfds;
    struct lg_pidfd_slot *sl = NULL;
    struct lg_pidfd_info info;
    int rc = 0;
    if (pc && pc->usable != 0) {
        sl = pidfd_info_for(pc, tid, &info, &rc);
        if (!sl && (rc == -ENOTTY || rc == -EINVAL))
            pc->usable = 0;  /* this kernel has no PIDFD_GET_INFO / PIDFD_THREAD: not asked again */
        else if (!sl)
            return rc == -ENOENT ? -ESRCH : rc;
        else
            pc->usable = 1;
    }
    if (!sl || need_status || (info.fsuid != 0 && geteuid() == 0)) {
        rc = lg_read_creds(tid, c);  /* groups, umask or pid-namespace ids: only it says them */
        if (rc < 0)
            return rc;
    } else {
        memset(c, 0, sizeof *c);
        c->uid = info.fsuid;
        c->gid = info.fsgid;
        c->tgid = (int)info.tgid;
        c->ns_tgid = c->tgid;
        c->ns_tid = tid;
        c->umask = (unsigned)-1;
        c->ngroups = 0;
        c->no_groups = 1;
        c->have = 1;
    }
    return 0;
}

/* Per-thread credential switch (raw syscalls: glibc's wrappers would apply
 * them to every thread).  A non-zero fsuid drops the filesystem capabilities
 * from the effective set, so path permission checks are the caller's.
 * Only root switches: without CAP_SETUID/CAP_SETGID (and under no_new_privs)
 * the sandbox cannot hold other credentials than landgate's own.
 *
 * Each id is switched only when the thread does not wear it already: a switch
 * is a new struct cred (prepare_creds/commit_creds, ~1.7 us each, and the
 * groups ~2 us), and an opener serves the same caller open after open.  What
 * the thread wears is asked from the kernel every time (setfsuid(-1),
 * setfsgid(-1) and getgroups only read it), never remembered: a glibc set*id()
 * elsewhere in the process changes every thread's ids behind our back.
 * 0, or -errno (then the caller must not act). */
static int wear_groups(int n, const gid_t *groups)
{
    gid_t cur[65];
    int have = (int)syscall(SYS_getgroups, 65, cur);
    if (have == n && (n == 0 || memcmp(cur, groups, (size_t)n * sizeof *groups) == 0))
        return 0;
    if (syscall(SYS_setgroups, n, groups) != 0)
        return -errno;
    return 0;
}

static int wear_ids(unsigned uid, unsigned gid)
{
    if ((unsigned)syscall(SYS_setfsgid, -1) != gid) {
        syscall(SYS_setfsgid, gid);  /* returns the previous value: checked below */
        if ((unsigned)syscall(SYS_setfsgid, -1) != gid)
            return -EPERM;
    }
    if ((unsigned)syscall(SYS_setfsuid, -1) != uid) {
        syscall(SYS_setfsuid, uid);
        if ((unsigned)syscall(SYS_setfsuid, -1) != uid)
            return -EPERM;
    }
    return 0;
}

int lg_become(const struct lg_creds *c)
{
    if (!c->have || geteuid() != 0)
        return 0;
    if (c->no_groups && c->uid != 0)
        return -EPERM;  /* groups matter and were not taken: never guess them */
    if (!c->no_groups) {
        int rc = wear_groups(c->ngroups, c->groups);
        if (rc < 0)
            return rc;
    }
    return wear_ids(c->uid, c->gid);
}

/* Back to landgate's own filesystem ids (0) and no supplementary groups. */
int lg_unbecome(const struct lg_creds *c)
{
    if (!c->have || geteuid() != 0)
        return 0;
    int rc = wear_ids(0, 0);
    if (rc < 0)
        return rc;
    return wear_groups(0, NULL);
}
