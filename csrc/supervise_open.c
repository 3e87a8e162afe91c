/* supervise_open.c: open / openat / openat2 / creat notifications.
 *
 * Simulation: every open is judged by its path (made absolute in the
 * caller's view: cwd or dirfd, lexically normalised) against the carve-out
 * deny globs, recorded, and continued: nothing is blocked.
 *
 * Enforcement (the carve-out open check, DESIGN §2), installed by the plan
 * only where no mount namespace masks the carve-outs.  The caller's syscall
 * never runs; the supervisor opens the file for it and injects the fd:
 *
 *  1. loop thread: copy the path once (a racing thread that rewrites it
 *     afterwards changes nothing: it is never read again), take the caller's
 *     credentials, tgid and umask from /proc/TID/status, and resolve the path
 *     in the caller's view to an O_PATH fd with the caller's fsuid/fsgid:
 *     openat2 relative to the caller's cwd (/proc/TID/cwd) or dirfd
 *     (pidfd_getfd), absolute paths under the caller's root (/proc/TID/root,
 *     RESOLVE_IN_ROOT), always RESOLVE_NO_MAGICLINKS: /proc/PID/root|cwd|fd/N
 *     of any process are refused with ELOOP (they would walk from another
 *     root, or reopen another process's files).  Not RESOLVE_BENEATH: ".."
 *     and absolute paths are ordinary opens; Landlock bounds the object.
 *     The caller's own /proc/self, /proc/thread-self, /dev/fd/N and
 *     /dev/std{in,out,err} spellings are rewritten to its pid (they would
 *     name landgate's otherwise); its own fd links are taken with
 *     pidfd_getfd, which is what the kernel's magic link would reopen.
 *  2. judge the object: (st_dev, st_ino) against the deny set taken at
 *     launch plus every object seen under a denied name since, and its real
 *     path (readlink of /proc/self/fd/N: symlinks resolved) against the deny
 *     globs.  A hard link, a symlink or a rename of a denied file is the same
 *     inode; a file created after launch is judged by the name it has.
 *  3. an opener thread reopens the judged object through /proc/self/fd/N
 *     (the same inode, no second path walk) with the caller's flags.  Each
 *     opener has restricted itself with the sandbox's own Landlock ruleset,
 *     has the caller's fsuid/fsgid/groups and umask (its own fs_struct:
 *     unshare(CLONE_FS)) and only the capabilities the agent keeps, so it
 *     cannot open what the kernel would refuse the caller.  O_CREAT of a
 *     missing name is judged by the parent's real path plus the name BEFORE
 *     anything is created, then created with openat2 beneath the parent
 *     (RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS: no dangling-symlink creation of
 *     another name) and judged again (a racing link(2) may have put a denied
 *     inode there; O_TRUNC is applied only after that judgement).
 *  4. SECCOMP_IOCTL_NOTIF_ADDFD with SECCOMP_ADDFD_FLAG_SEND: the fd lands
 *     in the caller (O_CLOEXEC as it asked) and is the syscall's value; or
 *     the caller gets EACCES.  Openers may block (a FIFO without a writer):
 *     they are a pool, never the loop.
 *
 * Known differences from the kernel's own open: a symlink as the last
 * component of an O_CREAT path is refused (ELOOP) instead of followed; the
 * open never acquires a controlling terminal (O_NOCTTY); openat2 with a
 * struct larger than 24 bytes is refused (E2BIG).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/capability.h>
#include <linux/magic.h>
#include <linux/openat2.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>

#include "kernel_compat.h"
#include "supervise_int.h"

/* The capabilities an opener keeps when landgate is root: the file-access
 * subset of what the agent keeps (csrc/launch.c kept_caps), plus SETUID/SETGID
 * for the per-job fsuid/fsgid/groups switch (which the agent has too). */
static const int opener_caps[] = {CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_FOWNER, CAP_FSETID, CAP_SETGID, CAP_SETUID};

/* Runs once on each opener thread, before its first job.  Every step applies
 * to this thread alone: unshare(CLONE_FS) gives it its own umask/cwd,
 * no_new_privs, capset and landlock_restrict_self (no TSYNC) are per-task. */
static int opener_init(struct lg_sup *s)
{
    if (unshare(CLONE_FS) != 0)
        return -errno;
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        return -errno;
    if (geteuid() == 0) {
        struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
        struct __user_cap_data_struct data[2];
        memset(data, 0, sizeof data);
        for (size_t i = 0; i < sizeof opener_caps / sizeof opener_caps[0]; i++) {
            data[opener_caps[i] / 32].effective |= 1U << (opener_caps[i] % 32);
            data[opener_caps[i] / 32].permitted |= 1U << (opener_caps[i] % 32);
        }
        if (syscall(SYS_capset, &hdr, data) != 0)
            return -errno;
    }
    if (s->open_ruleset >= 0 && syscall(__NR_landlock_restrict_self, s->open_ruleset, 0) != 0)
        return -errno;
    return 0;
}

struct probe {
    int rc;
    int efd;
};

static void *probe_job(void *arg)
{
    struct probe *p = arg;
    p->rc = lg_pool_thread_ok();
    uint64_t one = 1;
    if (write(p->efd, &one, sizeof one) != sizeof one)
        p->rc = p->rc ? p->rc : -EIO;
    return NULL;
}

int lg_open_init(struct lg_sup *s, char *err, int errlen)
{
    if (!(s->t.open_check || s->t.fsop_check) || s->simulate)
        return 0;  /* the openers serve the open check and supervise_fsop.c */
    if (s->t.open_ruleset_fd >= 0) {
        s->open_ruleset = fcntl(s->t.open_ruleset_fd, F_DUPFD_CLOEXEC, 3);
        if (s->open_ruleset < 0) {
            snprintf(err, (size_t)errlen, "open check: dup Landlock ruleset: %s", strerror(errno));
            return -1;
        }
    }
    s->seen = calloc(LG_SEEN_CAP, sizeof *s->seen);
    if (!s->seen) {
        snprintf(err, (size_t)errlen, "open check: %s", strerror(ENOMEM));
        return -1;
    }
    int rc = lg_pool_init(&s->openpool, s, LG_OPENERS_MAX, opener_init);
    if (rc < 0) {
        snprintf(err, (size_t)errlen, "open check: opener pool: %s", strerror(-rc));
        return -1;
    }
    /* The first opener starts now and says whether its restriction took: a
     * failure refuses the session here rather than failing every open later. */
    struct probe pr = {-EIO, eventfd(0, EFD_CLOEXEC)};
    if (pr.efd < 0) {
        snprintf(err, (size_t)errlen, "open check: eventfd: %s", strerror(errno));
        return -1;
    }
    rc = lg_pool_submit(&s->openpool, probe_job, &pr);
    uint64_t v;
    if (rc == 0 && read(pr.efd, &v, sizeof v) != sizeof v)
        rc = -errno;
    close(pr.efd);
    if (rc == 0)
        rc = pr.rc;
    if (rc < 0) {
        snprintf(err, (size_t)errlen, "open check: opener thread (unshare/no_new_privs/capset/"
                 "landlock_restrict_self): %s", strerror(-rc));
        return -1;
    }
    return 0;
}

void lg_open_fini(struct lg_sup *s)
{
    lg_pool_fini(&s->openpool);
    if (s->open_ruleset >= 0)
        close(s->open_ruleset);
    s->open_ruleset = -1;
    free(s->seen);
    s->seen = NULL;
}

/* Make path absolute in the caller's view and normalise "." and "..". */
int lg_absolute_in_view(int tid, int dirfd, const char *path, char *out, size_t cap)
{
    char base[PATH_MAX];
    if (path[0] == '/') {
        base[0] = '\0';
    } else {
        char link[64];
        if (dirfd == AT_FDCWD)
            snprintf(link, sizeof link, "/proc/%d/cwd", tid);
        else
            snprintf(link, sizeof link, "/proc/%d/fd/%d", tid, dirfd);
        ssize_t n = readlink(link, base, sizeof base - 1);
        if (n < 0)
            return -errno;
        base[n] = '\0';
    }
    char tmp[2 * PATH_MAX + 2];
    size_t bl = strlen(base), pl = strlen(path);
    if (bl + pl + 2 > sizeof tmp)
        return -ENAMETOOLONG;
    memcpy(tmp, base, bl);
    tmp[bl] = '/';
    memcpy(tmp + bl + 1, path, pl + 1);
    return lg_normalise_path(tmp, out, cap);
}

/* ---- the enforced open check ------------------------------------------------ */

/* Objects met under a denied name after launch join the deny set, so that a
 * later rename, hard link or symlink of the same inode stays denied. */
static void seen_add(struct lg_sup *s, unsigned long long dev, unsigned long long ino,
                     unsigned long long btime, int access, int rule)
{
    pthread_mutex_lock(&s->seen_lock);
    for (int i = 0; i < s->seen_count; i++) {
        if (s->seen[i].dev == dev && s->seen[i].ino == ino) {
            if (s->seen[i].btime != btime) {
                /* the inode number was freed and reused: a new object */
                s->seen[i].btime = btime;
                s->seen[i].access = access;
                s->seen[i].rule = rule;
            }
            s->seen[i].access |= access;
            pthread_mutex_unlock(&s->seen_lock);
            return;
        }
    }
    if (s->seen_count < LG_SEEN_CAP) {
        struct lg_file_id *e = &s->seen[s->seen_count++];
        e->dev = dev;
        e->ino = ino;
        e->btime = btime;
        e->access = access;
        e->rule = rule;
    } else {
        lg_count(s, LG_COUNT_ERRORS);  /* full: later renames of this object are judged by name only */
    }
    pthread_mutex_unlock(&s->seen_lock);
}

static int seen_find(struct lg_sup *s, unsigned long long dev, unsigned long long ino,
                     unsigned long long btime, int access, int *rule)
{
    int hit = 0;
    pthread_mutex_lock(&s->seen_lock);
    for (int i = 0; i < s->seen_count; i++)
        if (s->seen[i].dev == dev && s->seen[i].ino == ino && s->seen[i].btime == btime &&
            (s->seen[i].access & access)) {
            *rule = s->seen[i].rule;
            hit = 1;
            break;
        }
    pthread_mutex_unlock(&s->seen_lock);
    return hit;
}

/* Judge the object fd refers to.  1 = denied (*rule set), 0 = allowed,
 * -errno when it cannot be judged (the caller fails closed).  real gets the
 * object's path as the kernel names it. */
static int judge_object(struct lg_sup *s, int fd, int access, int *rule, char *real, size_t cap)
{
    /* statx for the birth time: the identity is (dev, ino, btime), so a reused
     * inode number is not the denied object it once was. */
    struct statx st;
    if (statx(fd, "", AT_EMPTY_PATH | AT_STATX_SYNC_AS_STAT, STATX_INO | STATX_BTIME, &st) != 0)
        return -errno;
    unsigned long long btime = (st.stx_mask & STATX_BTIME)
        ? (unsigned long long)st.stx_btime.tv_sec * 1000000000ULL + st.stx_btime.tv_nsec : 0;
    char link[64];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, real, cap - 1);
    if (n < 0)
        return -errno;
    if ((size_t)n >= cap - 1)
        return -ENAMETOOLONG;
    real[n] = '\0';
    *rule = -1;
    unsigned long long dev = makedev(st.stx_dev_major, st.stx_dev_minor), ino = st.stx_ino;
    for (int i = 0; i < s->t.n_deny_ids; i++) {
        const struct lg_file_id *id = &s->t.deny_ids[i];
        if (id->dev == dev && id->ino == ino && (id->btime == 0 || id->btime == btime) &&
            (id->access & access)) {
            *rule = id->rule;
            return 1;
        }
    }
    if (seen_find(s, dev, ino, btime, access, rule))
        return 1;
    int bits = real[0] == '/' ? lg_judge_path(&s->t, real, strlen(real), access, rule) : 0;
    if (bits) {
        /* Every access its name denies joins the identity set, each under a rule
         * that denies it (not the requested access's -1: a read of .git/config
         * records its write deny with the write rule). */
        int r = *rule;
        if (r < 0 && (bits & ~access)) {
            int other = -1;
            (void)lg_judge_path(&s->t, real, strlen(real), bits & ~access, &other);
            r = other;
        }
        seen_add(s, dev, ino, btime, bits, r);
    }
    return (bits & access) ? 1 : 0;
}

struct open_job {
    struct lg_sup *s;
    unsigned long long id;
    int obj;            /* the judged object (O_PATH, or the caller's own fd), or -1 */
    int parent;         /* O_CREAT of a missing name / O_TMPFILE: the parent directory */
    char name[NAME_MAX + 1];
    long long flags;    /* the caller's open flags */
    unsigned mode;
    int access;
    struct lg_creds creds;
    struct lg_event ev;
    int own_dir;        /* its own /proc/PID entry: that directory (O_PATH), or -1 */
    int own_fd;         /* ... and the entry opened by the loop thread, or -1 (own_proc_prepare) */
};

static void open_job_free(struct open_job *j)
{
    if (j->obj >= 0)
        close(j->obj);
    if (j->parent >= 0)
        close(j->parent);
    if (j->own_dir >= 0)
        close(j->own_dir);
    if (j->own_fd >= 0)
        close(j->own_fd);
    free(j);
}

/* Every denial goes to the trail; an allowed open only with audit.file_access:
 * all (with the open check on every rung, recording each allowed open would
 * cost every open of the sandbox an event and the trail a line per file). */
static void open_record(struct lg_sup *s, const struct lg_event *ev)
{
    if (ev->result == LG_EFFECT_DENY || s->t.file_access_all)
        lg_push_event(s, ev);
}

/* Record, report a denial (told: one stderr line; otherwise the trail entry
 * alone), answer. */
static void open_answer_as(struct lg_sup *s, unsigned long long id, struct lg_event *ev, int err,
                           int told)
{
    ev->t_resp_ns = lg_now_ns();
    ev->err = err;
    if (told && ev->result == LG_EFFECT_DENY && !(ev->flags & LG_EV_FAILCLOSED))
        lg_report_denial(s, (ev->detail[0] == 'w') ? "file_write" : "file_read", ev->target, ev->rule);
    open_record(s, ev);
    lg_send_resp(s, id, 0, err, 0);
}

static void open_answer(struct lg_sup *s, unsigned long long id, struct lg_event *ev, int err)
{
    open_answer_as(s, id, ev, err, 1);
}

/* Is a Landlock refusal of this object worth a stderr line?  Every refusal is a
 * trail entry (every file denial recorded); the line teaches the user which file
 * the agent was refused.  Directories and the kernel's pseudo-files (procfs,
 * sysfs, cgroupfs: a runtime sizing its memory) outside the grants are what runtimes and libraries probe on their own:
 * importlib listing a sys.path entry or the cwd, libselinux reading
 * /proc/filesystems.  The kernel refused the same probes silently before the open
 * check existed, and a line for each would bury the denials the program made. */
static int landlock_refusal_told(int fd)
{
    struct stat st;
    struct statfs sf;
    if (fd < 0)
        return 1;  /* a creation: the program named the new file */
    if (fstat(fd, &st) != 0 || fstatfs(fd, &sf) != 0)
        return 1;  /* cannot tell: tell */
    if (S_ISDIR(st.st_mode))
        return 0;
    return sf.f_type != PROC_SUPER_MAGIC && sf.f_type != SYSFS_MAGIC &&
           sf.f_type != CGROUP_SUPER_MAGIC && sf.f_type != CGROUP2_SUPER_MAGIC;
}

/* The opener's own open failed EACCES.  Was that the kernel's Landlock (the
 * object lies outside every grant of that access) rather than the file's
 * modes?  Runs with the caller's credentials still taken: faccessat(AT_EACCESS)
 * checks the modes with them, and Landlock does not judge access(2), so "the
 * modes allow it" means the refusal came from the sandbox's ruleset.  Returns
 * LG_ACCESS_READ / LG_ACCESS_WRITE (which access was refused) or 0 (a mode
 * refusal, the kernel's own answer, not a policy decision). */
static int landlock_refused(const struct open_job *j)
{
    if (j->obj < 0) {
        /* creating: the parent must allow adding a name */
        return faccessat(j->parent, ".", W_OK | X_OK, AT_EACCESS) == 0 ? LG_ACCESS_WRITE : 0;
    }
    char self[64];
    snprintf(self, sizeof self, "/proc/self/fd/%d", j->obj);
    int mode = ((j->access & LG_ACCESS_READ) ? R_OK : 0) | ((j->access & LG_ACCESS_WRITE) ? W_OK : 0);
    if (faccessat(AT_FDCWD, self, mode ? mode : R_OK, AT_EACCESS) != 0)
        return 0;
    if ((j->access & LG_ACCESS_WRITE) && (j->access & LG_ACCESS_READ)) {
        /* read-write: which half did Landlock refuse?  A read-only open answers. */
        int fd = open(self, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
        if (fd >= 0) {
            close(fd);
            return LG_ACCESS_WRITE;
        }
        return LG_ACCESS_READ;
    }
    return (j->access & LG_ACCESS_WRITE) ? LG_ACCESS_WRITE : LG_ACCESS_READ;
}

/* The object's path as the kernel names it, into the event's detail after
 * the access word ("read /w/.env") when it differs from the spelled target. */
static void detail_object(struct lg_event *ev, int fd, int access)
{
    char link[64], real[PATH_MAX];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = fd >= 0 ? readlink(link, real, sizeof real - 1) : -1;
    const char *w = (access & LG_ACCESS_WRITE) ? "write" : "read";
    if (n <= 0 || (size_t)n >= sizeof real - 1) {
        snprintf(ev->detail, sizeof ev->detail, "%s", w);
        return;
    }
    real[n] = '\0';
    if (strcmp(real, ev->target) == 0) {
        snprintf(ev->detail, sizeof ev->detail, "%s", w);
        return;
    }
    size_t wl = strlen(w);
    memcpy(ev->detail, w, wl);
    ev->detail[wl] = ' ';
    lg_copy_target(ev->detail + wl + 1, sizeof ev->detail - wl - 1, real, NULL);
}

/* Flags carried over when the judged object is reopened / created.  Not
 * O_CREAT/O_EXCL (handled by the resolution), not O_NOFOLLOW/O_DIRECTORY
 * (checked on the walk; they would break the /proc/self/fd reopen). */
#define LG_REOPEN_FLAGS (O_ACCMODE | O_APPEND | O_NONBLOCK | O_DSYNC | O_SYNC | O_DIRECT | O_NOATIME | O_LARGEFILE)

/* The caller's own /proc/PID entries that need ptrace access (maps, smaps,
 * environ, auxv, mem, ...): an opener cannot open them.  Landlock's ptrace
 * scoping lets a task reach only tasks in its own domain or a nested one, and
 * each opener's domain is a sibling of the agent's, never an ancestor: the
 * opener gets EACCES where the caller itself would not.  For the caller the
 * kernel never asks: __ptrace_may_access() returns 0 for the same thread group
 * before any LSM runs.  So for these objects, and only for read-only opens,
 * the loop thread (in no Landlock domain) opens the entry here with the caller's
 * fsuid/fsgid/groups (the modes are checked as for the caller), and the opener
 * hands it over only when its own open failed and its Landlock domain (the
 * sandbox's ruleset) lets it read the caller's /proc/PID directory
 * (own_proc_granted): the plan grants READ_DIR only with READ_FILE (a file_read
 * allow), and Landlock rules only add rights beneath them, so READ_DIR there
 * means READ_FILE for every entry beneath, the one asked for included.  The
 * entry is the caller's own: the path is /proc/<its pid>/... spelled without
 * "." or ".." and walked without symlinks from its root, on procfs, and the
 * filter refuses mount/fsmount/move_mount, so the caller's /proc is the procfs
 * landgate gave it (its pid namespace's, or the host's without one).  The
 * compiled decision has judged the object allowed before this runs.  Write
 * opens keep the opener's answer.  Nothing here fails the open: on any doubt
 * own_fd stays -1 and the opener's answer stands.  -1 only when the loop
 * thread could not return to its own credentials (the caller fails closed). */
static int own_proc_prepare(struct open_job *j, int tid, const char *p, long long flags)
{
    if (j->obj < 0 || (flags & O_ACCMODE) != O_RDONLY || (flags & (O_CREAT | O_TRUNC | O_PATH)) ||
        (flags & __O_TMPFILE) == __O_TMPFILE)
        return 0;
    char dir[32];
    int dl = snprintf(dir, sizeof dir, "/proc/%d", j->creds.ns_tgid);
    if (dl < 0 || (size_t)dl >= sizeof dir || strncmp(p, dir, (size_t)dl) != 0 || p[dl] != '/')
        return 0;
    const char *rest = p + dl + 1;
    for (const char *c = rest;;) {  /* every component a plain name */
        const char *e = strchr(c, '/');
        size_t l = e ? (size_t)(e - c) : strlen(c);
        if (l == 0 || (l == 1 && c[0] == '.') || (l == 2 && c[0] == '.' && c[1] == '.'))
            return 0;
        if (!e)
            break;
        c = e + 1;
    }
    char link[64];
    snprintf(link, sizeof link, "/proc/%d/root", tid);
    int root = open(link, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (root < 0)
        return 0;
    int d = -1, o = -1, fd = -1;
    if (lg_become(&j->creds) == 0) {
        struct open_how how;
        memset(&how, 0, sizeof how);
        how.flags = O_PATH | O_DIRECTORY | O_CLOEXEC;
        how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
        d = (int)syscall(__NR_openat2, root, dir, &how, sizeof how);
        if (d >= 0) {
            how.flags = O_PATH | O_CLOEXEC;
            how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
            o = (int)syscall(__NR_openat2, d, rest, &how, sizeof how);
        }
        struct statfs sf;
        struct stat a, b;
        if (o >= 0 && fstatfs(d, &sf) == 0 && sf.f_type == PROC_SUPER_MAGIC &&
            fstat(o, &a) == 0 && fstat(j->obj, &b) == 0 && a.st_dev == b.st_dev &&
            a.st_ino == b.st_ino) {
            snprintf(link, sizeof link, "/proc/self/fd/%d", o);
            fd = open(link, (int)(flags & LG_REOPEN_FLAGS) | O_CLOEXEC | O_NOCTTY);
        }
    }
    int back = lg_unbecome(&j->creds);
    if (back < 0 && fd >= 0) {
        close(fd);  /* this thread's identity is in doubt: hand nothing over */
        fd = -1;
    }
    close(root);
    if (o >= 0)
        close(o);
    if (fd >= 0) {
        j->own_dir = d;
        j->own_fd = fd;
    } else if (d >= 0) {
        close(d);
    }
    return back < 0 ? -1 : 0;  /* -1: the loop thread could not take its own identity back */
}

/* Opener thread, with the caller's credentials: may the sandbox's Landlock
 * ruleset read the caller's /proc/PID directory?  See own_proc_prepare. */
static int own_proc_granted(const struct open_job *j)
{
    char self[64];
    snprintf(self, sizeof self, "/proc/self/fd/%d", j->own_dir);
    int fd = open(self, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return 0;
    close(fd);
    return 1;
}

static void *open_worker(void *arg)
{
    struct open_job *j = arg;
    struct lg_sup *s = j->s;
    int rc = lg_pool_thread_ok();
    if (rc < 0) {
        /* This opener is not restricted: it must not open anything. */
        j->ev.result = LG_EFFECT_DENY;
        j->ev.flags |= LG_EV_FAILCLOSED;
        open_answer(s, j->id, &j->ev, EACCES);
        open_job_free(j);
        return NULL;
    }
    int fd = -1, e = 0;
    int creating = j->obj < 0;
    rc = lg_become(&j->creds);
    if (rc < 0) {
        e = -rc;
    } else {
        if (j->creds.umask != (unsigned)-1)
            umask(j->creds.umask);  /* this thread's own fs_struct (unshare(CLONE_FS)) */
        int fl = (int)(j->flags & LG_REOPEN_FLAGS) | O_CLOEXEC | O_NOCTTY;
        if (!creating && (j->flags & O_PATH)) {
            fd = fcntl(j->obj, F_DUPFD_CLOEXEC, 0);  /* an O_PATH fd was asked for: the judged one */
        } else if (!creating) {
            char self[64];
            snprintf(self, sizeof self, "/proc/self/fd/%d", j->obj);
            /* Same inode as judged; Landlock checks this open against the sandbox's rules. */
            fd = open(self, fl | (int)(j->flags & O_TRUNC));
        } else if ((j->flags & __O_TMPFILE) == __O_TMPFILE) {
            fd = openat(j->parent, ".", fl | (int)(j->flags & (__O_TMPFILE | O_EXCL)), j->mode);
        } else {
            struct open_how how;
            memset(&how, 0, sizeof how);
            how.flags = (unsigned long long)(fl | O_CREAT | (int)(j->flags & O_EXCL));
            how.mode = j->mode & 07777;
            how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
            fd = (int)syscall(__NR_openat2, j->parent, j->name, &how, sizeof how);
        }
        if (fd < 0)
            e = errno;
    }
    if (fd < 0 && e == EACCES && j->own_fd >= 0 && own_proc_granted(j)) {
        fd = j->own_fd;  /* the caller's own /proc entry: see own_proc_prepare */
        j->own_fd = -1;
        e = 0;
    }
    int refused = (fd < 0 && e == EACCES) ? landlock_refused(j) : 0;
    if (lg_unbecome(&j->creds) < 0)
        lg_count(s, LG_COUNT_ERRORS);
    if (fd < 0) {
        int rule = refused == LG_ACCESS_WRITE ? s->t.write_default_rule
                 : refused == LG_ACCESS_READ ? s->t.read_default_rule : -1;
        int told = 1;
        if (refused && rule >= 0) {
            /* Landlock refused the open the supervisor performed for the agent: a
             * denial by the policy's default, always recorded; told on stderr
             * unless it is a runtime's probe (landlock_refusal_told). */
            j->ev.result = LG_EFFECT_DENY;
            j->ev.rule = rule;
            detail_object(&j->ev, j->obj, refused);  /* a creation: the target is the name */
            told = landlock_refusal_told(j->obj);
        } else {
            j->ev.result = LG_EFFECT_ALLOW;  /* not a policy decision: the kernel's own answer */
        }
        open_answer_as(s, j->id, &j->ev, e ? e : EIO, told);
        open_job_free(j);
        return NULL;
    }
    if (creating) {
        /* A racing link(2) may have put a denied inode at this name between
         * the walk and the create: judge what was opened. */
        char real[PATH_MAX];
        int rule = -1;
        int d = judge_object(s, fd, j->access, &rule, real, sizeof real);
        if (d != 0) {
            close(fd);
            j->ev.result = LG_EFFECT_DENY;
            j->ev.rule = rule;
            if (d < 0)
                j->ev.flags |= LG_EV_FAILCLOSED;
            open_answer(s, j->id, &j->ev, EACCES);
            open_job_free(j);
            return NULL;
        }
        struct stat st;
        if ((j->flags & O_TRUNC) && (j->flags & O_ACCMODE) != O_RDONLY && fstat(fd, &st) == 0 &&
            S_ISREG(st.st_mode) && ftruncate(fd, 0) != 0) {
            e = errno;
            close(fd);
            j->ev.result = LG_EFFECT_ALLOW;
            open_answer(s, j->id, &j->ev, e);
            open_job_free(j);
            return NULL;
        }
    }
    j->ev.result = LG_EFFECT_ALLOW;
    j->ev.t_resp_ns = lg_now_ns();
    open_record(s, &j->ev);  /* recorded (file_access: all) before the caller has the fd */
    struct seccomp_notif_addfd add;
    memset(&add, 0, sizeof add);
    add.id = j->id;
    add.flags = SECCOMP_ADDFD_FLAG_SEND;  /* 5.14: install and answer in one step */
    add.srcfd = (unsigned)fd;
    add.newfd_flags = (j->flags & O_CLOEXEC) ? O_CLOEXEC : 0;
    if (ioctl(s->listener, SECCOMP_IOCTL_NOTIF_ADDFD, &add) < 0) {
        int ae = errno;
        if (ae == ENOENT)
            lg_count(s, LG_COUNT_GONE);  /* the caller died or was interrupted */
        else
            lg_send_resp(s, j->id, 0, ae, 0);  /* e.g. EMFILE: the caller is out of fds */
    }
    close(fd);
    open_job_free(j);
    return NULL;
}

/* The caller's own /proc/self, /proc/thread-self, /dev/fd, /dev/std* spellings,
 * rewritten to its tgid (resolved by us they would name landgate).  *fdnum
 * gets N when the result is one of its own fd links /proc/TGID[/task/TID]/fd/N. */
int lg_rewrite_self(const char *path, int tgid, int tid, char *out, size_t cap, int *fdnum)
{
    static const struct { const char *from; int kind; } pre[] = {
        {"/proc/self", 0}, {"/proc/thread-self", 1}, {"/dev/fd", 2},
        {"/dev/stdin", 3}, {"/dev/stdout", 4}, {"/dev/stderr", 5},
    };
    int n = -1;
    *fdnum = -1;
    for (size_t i = 0; i < sizeof pre / sizeof pre[0]; i++) {
        size_t l = strlen(pre[i].from);
        if (strncmp(path, pre[i].from, l) != 0 || (path[l] != '/' && path[l] != '\0'))
            continue;
        const char *rest = path + l;
        switch (pre[i].kind) {
        case 0: n = snprintf(out, cap, "/proc/%d%s", tgid, rest); break;
        case 1: n = snprintf(out, cap, "/proc/%d/task/%d%s", tgid, tid, rest); break;
        case 2: n = snprintf(out, cap, "/proc/%d/fd%s", tgid, rest); break;
        default: n = snprintf(out, cap, "/proc/%d/fd/%d%s", tgid, pre[i].kind - 3, rest); break;
        }
        break;
    }
    if (n < 0)
        n = snprintf(out, cap, "%s", path);
    if (n < 0 || (size_t)n >= cap)
        return -ENAMETOOLONG;
    /* one of its own fd links? */
    char head[64], head2[96];
    snprintf(head, sizeof head, "/proc/%d/fd/", tgid);
    snprintf(head2, sizeof head2, "/proc/%d/task/%d/fd/", tgid, tid);
    const char *num = NULL;
    if (strncmp(out, head, strlen(head)) == 0)
        num = out + strlen(head);
    else if (strncmp(out, head2, strlen(head2)) == 0)
        num = out + strlen(head2);
    if (num && *num) {
        char *end;
        long v = strtol(num, &end, 10);
        if ((*end == '\0' || (*end == '/' && end[1] == '\0')) && v >= 0 && v < INT_MAX && end != num)
            *fdnum = (int)v;
    }
    return 0;
}

/* Its own root link, /proc/TGID/root or /proc/TGID/task/TID/root (ids in its
 * view): a magic link that RESOLVE_NO_MAGICLINKS refuses, naming the caller's
 * root, where an absolute path is resolved anyway (/proc/TID/root with
 * RESOLVE_IN_ROOT): "/proc/self/root/w/.env" is "/w/.env", judged as such. */
static void strip_own_root(char *p, int tgid, int tid)
{
    char pre[2][96];
    snprintf(pre[0], sizeof pre[0], "/proc/%d/root", tgid);
    snprintf(pre[1], sizeof pre[1], "/proc/%d/task/%d/root", tgid, tid);
    for (int i = 0; i < 2; i++) {
        size_t l = strlen(pre[i]);
        if (strncmp(p, pre[i], l) != 0 || (p[l] != '/' && p[l] != '\0'))
            continue;
        if (p[l] == '\0')
            snprintf(p, 2, "/");
        else
            memmove(p, p + l, strlen(p + l) + 1);
        return;
    }
}

/* Loop thread: resolve, judge, hand to an opener.  Answers on every path. */
static void enforce_open(struct lg_sup *s, const struct seccomp_notif *req, struct lg_event *ev,
                         int dirfd, const char *path, long long flags, unsigned mode,
                         unsigned long long resolve, int access)
{
    int tid = (int)req->pid;
    struct open_job *j = calloc(1, sizeof *j);
    if (!j) {
        ev->result = LG_EFFECT_DENY;
        ev->flags |= LG_EV_FAILCLOSED;
        open_answer(s, req->id, ev, ENOMEM);
        return;
    }
    j->s = s;
    j->id = req->id;
    j->obj = j->parent = j->own_dir = j->own_fd = -1;
    j->flags = flags;
    j->mode = mode;
    j->access = access;
    int rc = lg_read_creds(tid, &j->creds);
    if (rc < 0 || !lg_id_valid(s, req->id)) {
        if (!lg_id_valid(s, req->id)) {
            lg_count(s, LG_COUNT_GONE);
            open_job_free(j);
            return;
        }
        goto failclosed;
    }
    ev->pid = j->creds.tgid;

    char p[PATH_MAX];
    int fdnum = -1;
    /* In its own view: in a pid namespace /proc/self is its namespace's pid,
     * resolved below in its procfs (under /proc/TID/root). */
    if (lg_rewrite_self(path, j->creds.ns_tgid, j->creds.ns_tid, p, sizeof p, &fdnum) < 0) {
        ev->result = LG_EFFECT_ALLOW;
        open_answer(s, req->id, ev, ENAMETOOLONG);
        open_job_free(j);
        return;
    }
    if (fdnum < 0)
        strip_own_root(p, j->creds.ns_tgid, j->creds.ns_tid);
    int e = 0;
    if (fdnum >= 0) {
        /* its own fd link: the open file it already holds (the magic link's target) */
        rc = lg_caller_fd(s, req->id, tid, fdnum);
        if (rc == -EBADF) {
            /* pidfd_getfd refuses O_PATH files (EBADF): the fd link itself names
             * the same object; whatever it names when we open it is what is judged. */
            char link[64];
            snprintf(link, sizeof link, "/proc/%d/fd/%d", tid, fdnum);
            rc = open(link, O_PATH | O_CLOEXEC);
            if (rc < 0)
                rc = errno == ENOENT ? -EBADF : -errno;
        }
        if (rc == -ESRCH) {
            lg_count(s, LG_COUNT_GONE);
            open_job_free(j);
            return;
        }
        if (rc < 0)
            e = rc == -EBADF ? ENOENT : -rc;  /* the kernel: no such fd link */
        j->obj = rc;
    } else {
        int base;
        int absolute = p[0] == '/';
        char link[64];
        if (absolute) {
            snprintf(link, sizeof link, "/proc/%d/root", tid);
            base = open(link, O_PATH | O_DIRECTORY | O_CLOEXEC);
        } else if (dirfd == AT_FDCWD) {
            snprintf(link, sizeof link, "/proc/%d/cwd", tid);
            base = open(link, O_PATH | O_DIRECTORY | O_CLOEXEC);
        } else {
            base = lg_caller_fd(s, req->id, tid, dirfd);
            if (base < 0) {
                errno = -base;
                base = -1;
            }
        }
        if (base < 0) {
            int be = errno;
            if (be == ESRCH || !lg_id_valid(s, req->id)) {
                lg_count(s, LG_COUNT_GONE);
                open_job_free(j);
                return;
            }
            ev->result = LG_EFFECT_ALLOW;  /* e.g. EBADF for a bad dirfd: the kernel's answer */
            open_answer(s, req->id, ev, be);
            open_job_free(j);
            return;
        }
        struct open_how how;
        memset(&how, 0, sizeof how);
        how.flags = O_PATH | O_CLOEXEC | (unsigned long long)(flags & (O_NOFOLLOW | O_DIRECTORY));
        if ((flags & O_CREAT) && (flags & O_EXCL))
            how.flags |= O_NOFOLLOW;  /* O_EXCL: an existing symlink is EEXIST, never followed */
        how.resolve = resolve | RESOLVE_NO_MAGICLINKS;
        if (absolute && !(resolve & (RESOLVE_BENEATH | RESOLVE_IN_ROOT)))
            how.resolve |= RESOLVE_IN_ROOT;  /* "/" and absolute symlinks: the caller's root */
        int tmpfile = (flags & __O_TMPFILE) == __O_TMPFILE;
        if (tmpfile)
            how.flags |= O_DIRECTORY;
        rc = lg_become(&j->creds);  /* walk with the caller's search permissions */
        int o = rc < 0 ? rc : (int)syscall(__NR_openat2, base, p, &how, sizeof how);
        e = o < 0 ? (rc < 0 ? -rc : errno) : 0;
        if (lg_unbecome(&j->creds) < 0) {
            if (o >= 0)
                close(o);
            close(base);
            goto failclosed;
        }
        if (o >= 0 && tmpfile) {
            j->parent = o;
        } else if (o >= 0) {
            struct stat st;
            if (fstat(o, &st) != 0) {
                e = errno;
                close(o);
            } else if ((flags & O_CREAT) && (flags & O_EXCL)) {
                e = EEXIST;
                close(o);
            } else if (S_ISLNK(st.st_mode) && !(flags & O_PATH)) {
                e = ELOOP;  /* O_NOFOLLOW on a symlink */
                close(o);
            } else {
                j->obj = o;
            }
        } else if (e == ENOENT && (flags & O_CREAT) && !tmpfile) {
            /* A missing name to create: resolve its parent and keep the name. */
            size_t len = strlen(p);
            while (len > 1 && p[len - 1] == '/')
                len--;  /* "dir/new/" with O_CREAT: the kernel says EISDIR below */
            int trailing = len != strlen(p);
            char *slash = memrchr(p, '/', len);
            const char *name = slash ? slash + 1 : p;
            size_t nl = len - (size_t)(name - p);
            if (trailing || nl == 0 || nl > NAME_MAX || (nl == 1 && name[0] == '.') ||
                (nl == 2 && name[0] == '.' && name[1] == '.')) {
                e = trailing ? EISDIR : (nl > NAME_MAX ? ENAMETOOLONG : EISDIR);
            } else {
                memcpy(j->name, name, nl);
                j->name[nl] = '\0';
                char dir[PATH_MAX];
                if (!slash)
                    snprintf(dir, sizeof dir, ".");
                else if (slash == p)
                    snprintf(dir, sizeof dir, "/");
                else
                    snprintf(dir, sizeof dir, "%.*s", (int)(slash - p), p);
                how.flags = O_PATH | O_DIRECTORY | O_CLOEXEC;
                rc = lg_become(&j->creds);
                o = rc < 0 ? rc : (int)syscall(__NR_openat2, base, dir, &how, sizeof how);
                e = o < 0 ? (rc < 0 ? -rc : errno) : 0;
                if (lg_unbecome(&j->creds) < 0) {
                    if (o >= 0)
                        close(o);
                    close(base);
                    goto failclosed;
                }
                j->parent = o;
            }
        }
        close(base);
    }
    if (!lg_id_valid(s, req->id)) {
        lg_count(s, LG_COUNT_GONE);
        open_job_free(j);
        return;
    }
    if (e) {
        ev->result = LG_EFFECT_ALLOW;  /* the kernel's own answer (ENOENT, ELOOP, EEXIST...) */
        open_answer(s, req->id, ev, e);
        open_job_free(j);
        return;
    }
    char real[PATH_MAX];
    int rule = -1;
    int d;
    if (j->obj >= 0) {
        d = judge_object(s, j->obj, access, &rule, real, sizeof real);
    } else {
        /* creation: judge the name it will have, before anything exists */
        char link[64], dirpath[PATH_MAX];
        snprintf(link, sizeof link, "/proc/self/fd/%d", j->parent);
        ssize_t n = readlink(link, dirpath, sizeof dirpath - 1);
        if (n < 0) {
            d = -errno;
        } else {
            dirpath[n] = '\0';
            int w = snprintf(real, sizeof real, "%s/%s", strcmp(dirpath, "/") == 0 ? "" : dirpath,
                             (flags & __O_TMPFILE) == __O_TMPFILE ? "" : j->name);
            d = (w < 0 || (size_t)w >= sizeof real) ? -ENAMETOOLONG
                : (lg_judge_path(&s->t, real, strlen(real), access, &rule) & access) ? 1 : 0;
        }
    }
    if (d != 0) {
        ev->result = LG_EFFECT_DENY;
        ev->rule = rule;
        if (d < 0)
            ev->flags |= LG_EV_FAILCLOSED;
        if (d > 0 && strcmp(real, ev->target) != 0) {  /* a link or rename: name the object too */
            const char *w = (access & LG_ACCESS_WRITE) ? "write " : "read ";
            size_t wl = strlen(w);
            memcpy(ev->detail, w, wl);
            lg_copy_target(ev->detail + wl, sizeof ev->detail - wl, real, NULL);
        }
        open_answer(s, req->id, ev, EACCES);
        open_job_free(j);
        return;
    }
    if (own_proc_prepare(j, tid, p, flags) < 0)
        goto failclosed;
    j->ev = *ev;
    rc = lg_pool_submit(&s->openpool, open_worker, j);
    if (rc < 0) {
        ev->result = LG_EFFECT_DENY;
        ev->flags |= LG_EV_FAILCLOSED;
        open_answer(s, req->id, ev, EAGAIN);
        open_job_free(j);
    }
    return;

failclosed:
    ev->result = LG_EFFECT_DENY;
    ev->flags |= LG_EV_FAILCLOSED;
    open_answer(s, req->id, ev, EACCES);
    open_job_free(j);
}

void lg_handle_open(struct lg_sup *s, const struct seccomp_notif *req, unsigned long long t0)
{
    int tid = (int)req->pid;
    int nr = req->data.nr;
    struct lg_event ev;
    memset(&ev, 0, sizeof ev);
    ev.t_recv_ns = t0;
    ev.pid = tid;
    ev.tid = tid;
    ev.action = LG_ACT_OPEN;
    ev.syscall_nr = nr;
    ev.rule = -1;
    lg_count(s, LG_COUNT_OPEN);

    int dirfd = AT_FDCWD;
    unsigned long long pptr;
    long long flags;
    unsigned mode = 0;
    unsigned long long resolve = 0;
    int how_rc = 0;
    if (nr == SYS_open) {
        pptr = req->data.args[0];
        flags = (long long)req->data.args[1];
        mode = (unsigned)req->data.args[2];
    } else if (nr == SYS_creat) {
        pptr = req->data.args[0];
        flags = O_CREAT | O_WRONLY | O_TRUNC;
        mode = (unsigned)req->data.args[1];
    } else {
        dirfd = (int)req->data.args[0];
        pptr = req->data.args[1];
        flags = (long long)req->data.args[2];
        mode = (unsigned)req->data.args[3];
        if (nr == __NR_openat2) {
            /* struct open_how {flags, mode, resolve}: exactly 24 bytes (5.6);
             * a larger struct would need its tail checked for zeros: refused. */
            unsigned long long how[3] = {0, 0, 0};
            size_t size = req->data.args[3];
            how_rc = size < sizeof how ? -EINVAL : size > sizeof how ? -E2BIG
                   : lg_read_mem(tid, req->data.args[2], how, sizeof how);
            flags = (long long)how[0];
            mode = (unsigned)how[1];
            resolve = how[2];
        } else {
            flags &= 0xffffffffLL;  /* open/openat take an int */
        }
    }
    if (!(flags & (O_CREAT | __O_TMPFILE)))
        mode = 0;
    char path[PATH_MAX];
    size_t plen = 0;
    int rc = lg_read_str(tid, pptr, path, sizeof path, &plen);
    if (rc == 0)
        rc = how_rc;
    if (!lg_id_valid(s, req->id)) {
        lg_count(s, LG_COUNT_GONE);
        return;
    }
    int access = (flags & O_ACCMODE) == O_RDONLY ? LG_ACCESS_READ : LG_ACCESS_WRITE;
    if ((flags & O_ACCMODE) == O_RDWR)
        access = LG_ACCESS_READ | LG_ACCESS_WRITE;
    if (flags & (O_CREAT | O_TRUNC))
        access |= LG_ACCESS_WRITE;
    if (flags & O_PATH)
        access = LG_ACCESS_READ;  /* no data access, but its metadata: judged as a read */
    char abs[PATH_MAX];
    if (rc == 0)
        rc = lg_absolute_in_view(tid, dirfd, path, abs, sizeof abs);
    if (rc == 0) {
        lg_copy_target(ev.target, sizeof ev.target, abs, &ev.flags);
        int rule = -1;
        ev.result = lg_judge_path(&s->t, abs, strlen(abs), access, &rule) & access
                        ? LG_EFFECT_DENY : LG_EFFECT_ALLOW;
        if (ev.result == LG_EFFECT_DENY)
            ev.rule = rule;
    } else {
        lg_copy_target(ev.target, sizeof ev.target, "(unreadable path)", &ev.flags);
        ev.result = LG_EFFECT_DENY;
        ev.flags |= LG_EV_FAILCLOSED;
    }
    snprintf(ev.detail, sizeof ev.detail, "%s", (access & LG_ACCESS_WRITE) ? "write" : "read");
    ev.target_len = (int)strlen(ev.target);
    ev.t_resp_ns = lg_now_ns();
    if (!s->simulate && s->t.open_check && s->openpool.ready) {
        if (rc == -E2BIG && plen == 0 && how_rc == 0) {
            ev.result = LG_EFFECT_ALLOW;  /* longer than PATH_MAX: the kernel's answer */
            open_answer(s, req->id, &ev, ENAMETOOLONG);
            return;
        }
        if (rc < 0) {
            ev.result = LG_EFFECT_DENY;
            ev.flags |= LG_EV_FAILCLOSED;
            open_answer(s, req->id, &ev, rc == -EFAULT || rc == -EINVAL || rc == -E2BIG ? -rc : EACCES);
            return;
        }
        if (flags & O_PATH) {
            /* openat2 (the filter leaves open/openat O_PATH to the kernel): an O_PATH
             * fd reads and writes nothing, and ADDFD cannot inject one; its reopen
             * through /proc/self/fd/N is an open judged here.  No TOCTOU matters:
             * whatever object the kernel's walk finds, no data access is granted. */
            ev.result = LG_EFFECT_ALLOW;  /* not judged: as open/openat with O_PATH */
            ev.rule = -1;
            open_record(s, &ev);
            lg_send_resp(s, req->id, 0, 0, 1);
            return;
        }
        if (ev.result == LG_EFFECT_DENY) {
            /* the spelling itself is denied (also for a name not yet created) */
            ev.err = EACCES;
            open_answer(s, req->id, &ev, EACCES);
            return;
        }
        ev.rule = -1;
        enforce_open(s, req, &ev, dirfd, path, flags, mode, resolve, access);
        return;
    }
    if (s->simulate) {
        ev.flags |= LG_EV_SIMULATED;
        lg_push_event(s, &ev);
        lg_send_resp(s, req->id, 0, 0, 1);
        return;
    }
    /* An open notified without the open check configured: refuse, loudly. */
    ev.result = LG_EFFECT_DENY;
    ev.err = EACCES;
    ev.flags |= LG_EV_FAILCLOSED;
    lg_push_event(s, &ev);
    lg_send_resp(s, req->id, 0, EACCES, 0);
}

/* For supervise_fsop.c: the same object judgement and identity set. */
int lg_judge_object(struct lg_sup *s, int fd, int access, int *rule, char *real, size_t cap)
{
    return judge_object(s, fd, access, rule, real, cap);
}

/* The object named `name` beneath dirfd (not followed) joins the identity set under
 * (dev, ino, btime), the same identity judge_object compares.  0, or -errno when it
 * cannot be looked at (nothing there: the operation itself then fails). */
int lg_seen_add_at(struct lg_sup *s, int dirfd, const char *name, int access, int rule)
{
    struct statx st;
    if (statx(dirfd, name, AT_SYMLINK_NOFOLLOW | AT_STATX_SYNC_AS_STAT, STATX_INO | STATX_BTIME,
              &st) != 0)
        return -errno;
    unsigned long long btime = (st.stx_mask & STATX_BTIME)
        ? (unsigned long long)st.stx_btime.tv_sec * 1000000000ULL + st.stx_btime.tv_nsec : 0;
    seen_add(s, makedev(st.stx_dev_major, st.stx_dev_minor), st.stx_ino, btime, access, rule);
    return 0;
}
