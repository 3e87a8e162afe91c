/* supervise_caller.c: which process made an exec, and is it the one we admitted?
 *
 * The exec decision needs, for its caller: the thread group (tgid), the parent
 * (ppid: the vfork check and the inheritance walk), the number of threads (one
 * other thread could rewrite what the kernel is about to copy), and an identity
 * that no later process reusing the pid shares (the admitted-process table;
 * pid reuse is an attack, so a bare pid never admits anything).
 *
 * Two ways, one chosen once per supervisor (lg_ident_init) and never mixed,
 * since the identities they give are not comparable:
 *
 *  - pidfd (6.13+, PIDFD_GET_INFO): the handler opens a pidfd on the caller
 *    before it checks that the notification is still pending, so everything
 *    asked through it is about the caller and nobody else.  tgid and ppid come
 *    from the ioctl, the identity is the pidfd's pidfs inode number (unique
 *    per struct pid since 6.9, never reused while the system runs), the
 *    thread count from the link count of /proc/TID/task (the kernel adds the
 *    thread count to 2, proc_task_getattr; checked on ourselves at start).
 *    Not faster: measured in the supervisor on fresh fork+exec callers (this
 *    2-vCPU VM), pidfd_open + GET_INFO + fstat + close + stat of task/ took
 *    22 us, the /proc/PID/stat read 22 us (a new process's first /proc
 *    lookup and a new pidfs inode cost ~10 us each).  Kept for what it
 *    closes: the identity is bound to the caller (opened before ID_VALID, where
 *    /proc/PID/stat was read after it, by a pid that could meanwhile be
 *    reused), and the pidfs inode is never reused where starttime has clock-
 *    tick granularity.
 *  - /proc/PID/stat (before 6.13, or when the check at start fails): ppid,
 *    num_threads and starttime; tgid from /proc/TID/status when needed.
 *
 * This file asks; the pidfds kept between notifications (a caller's own, its
 * ancestors') are supervise_caller_kept.c, and the session's root, which every
 * check resolves absolute names from, is supervise_root.c.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "kernel_compat.h"
#include "supervise_int.h"

/* The one reader of /proc/PID/<name> (stat, status, syscall): one read of at
 * most cap - 1 bytes (each file is printed whole by its first read), NUL-
 * terminated.  Its length (> 0), or -errno (-EIO: empty). */
ssize_t lg_proc_read(int pid, const char *name, char *buf, size_t cap)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/%s", pid, name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t n = read(fd, buf, cap - 1);
    int e = errno;
    close(fd);
    if (n <= 0)
        return n < 0 ? -e : -EIO;
    buf[n] = '\0';
    return n;
}

/* /proc/PID/stat: ppid (field 4), num_threads (20), starttime (22).
 * comm (field 2) may hold spaces and ')': parse after the last ')'. */
int lg_proc_stat(int pid, int *ppid, int *threads, unsigned long long *start)
{
    char buf[1024];
    ssize_t n = lg_proc_read(pid, "stat", buf, sizeof buf);
    if (n < 0)
        return (int)n;
    char *p = strrchr(buf, ')');
    if (!p)
        return -EIO;
    p++;
    /* p points at " S ppid ..." : field 3 is state */
    int field = 2;
    unsigned long long vals[23] = {0};
    char *save = NULL;
    for (char *tok = strtok_r(p, " ", &save); tok && field < 22; tok = strtok_r(NULL, " ", &save)) {
        field++;
        if (field >= 4)
            vals[field] = strtoull(tok, NULL, 10);
    }
    if (field < 22)
        return -EIO;
    *ppid = (int)vals[4];
    *threads = (int)vals[20];
    *start = vals[22];
    return 0;
}

/* Threads of the thread group of tid, from /proc/TID/task's link count. */
static int task_threads(int tid)
{
    char path[64];
    struct stat st;
    snprintf(path, sizeof path, "/proc/%d/task", tid);
    if (stat(path, &st) < 0)
        return -errno;
    if (st.st_nlink < 3)
        return -EIO;
    return (int)(st.st_nlink - 2);
}

/* Does /proc/self/task's link count say our thread count?  Counted by reading
 * the directory between two looks at the link count; threads may come and go
 * meanwhile (Python's), so a few tries. */
static int task_count_works(void)
{
    for (int attempt = 0; attempt < 5; attempt++) {
        int before = task_threads(getpid());
        DIR *d = opendir("/proc/self/task");
        if (!d)
            return 0;
        int n = 0;
        struct dirent *de;
        while ((de = readdir(d)) != NULL) {
            if (de->d_name[0] != '.')
                n++;
        }
        closedir(d);
        int after = task_threads(getpid());
        if (before < 0 || after < 0)
            return 0;
        if (before == after)
            return n == before;
    }
    return 0;
}

/* tgid and ppid of the task a pidfd names. */
static int pidfd_ids(int pidfd, int *tgid, int *ppid)
{
    struct lg_pidfd_info info;
    memset(&info, 0, sizeof info);
    info.mask = LG_PIDFD_INFO_PID;
    if (ioctl(pidfd, LG_PIDFD_GET_INFO, &info) < 0)
        return -errno;
    if (!(info.mask & LG_PIDFD_INFO_PID))
        return -EIO;
    *tgid = (int)info.tgid;
    *ppid = (int)info.ppid;
    return 0;
}

/* The identity of the process a pidfd names: its pidfs inode.  Bound to the
 * pidfd, not to a pid: the same answer after the process died, and never the
 * answer for a process that reused its pid. */
static int pidfd_inode(int pidfd, unsigned long long *id)
{
    struct stat st;
    if (fstat(pidfd, &st) < 0)
        return -errno;
    *id = (unsigned long long)st.st_ino;
    return 0;
}

/* pid's identity and ppid through a pidfd, which must name a process (or a
 * thread) of the pidfd path. */
int lg_pidfd_ident(int pidfd, int *tgid, int *ppid, unsigned long long *id)
{
    int rc = pidfd_ids(pidfd, tgid, ppid);
    return rc < 0 ? rc : pidfd_inode(pidfd, id);
}

void lg_ident_init(struct lg_sup *s)
{
    s->ident_pidfd = 0;
    int fd = (int)syscall(__NR_pidfd_open, getpid(), 0);
    if (fd < 0)
        return;
    int tgid, ppid;
    unsigned long long id = 0;
    int ok = lg_pidfd_ident(fd, &tgid, &ppid, &id) == 0 && tgid == getpid() && ppid == getppid();
    close(fd);
    /* Two pidfds on the same process must show the same inode, and one on
     * another process (our parent) another: else the inode is no identity
     * (an anon inode before 6.9 is shared by every pidfd). */
    if (ok) {
        int fd2 = (int)syscall(__NR_pidfd_open, getpid(), 0);
        int fd3 = (int)syscall(__NR_pidfd_open, getppid(), 0);
        struct stat a, b;
        ok = fd2 >= 0 && fd3 >= 0 && fstat(fd2, &a) == 0 && fstat(fd3, &b) == 0 &&
             (unsigned long long)a.st_ino == id && b.st_ino != a.st_ino;
        if (fd2 >= 0)
            close(fd2);
        if (fd3 >= 0)
            close(fd3);
    }
    s->ident_pidfd = ok && task_count_works();
}


int lg_caller_ident(const struct lg_sup *s, int tid, int pidfd, struct lg_ident *o)
{
    if (s->ident_pidfd && o->kept) {
        /* lg_caller_pidfd found the caller's kept pidfd and asked it: tgid, ppid
         * and the identity are filled, the caller is its process's leader */
        o->threads = -1;
        return pidfd >= 0 ? 0 : -EBADF;
    }
    if (s->ident_pidfd) {
        /* never the other way: its identities would not match the table's */
        if (pidfd < 0)
            return -EBADF;
        o->id_pending = 0;
        int rc = pidfd_ids(pidfd, &o->tgid, &o->ppid);
        if (rc < 0)
            return rc;
        if (o->tgid != tid) {
            /* a thread other than the leader: more than one thread; the
             * process's identity is its leader's */
            o->threads = 2;
            int pfd = (int)syscall(__NR_pidfd_open, o->tgid, 0);
            if (pfd < 0)
                return -errno;
            int tg2, pp2;
            rc = lg_pidfd_ident(pfd, &tg2, &pp2, &o->id);
            close(pfd);
            return rc;
        }
        /* The thread count only matters to an exec about to be allowed (may
         * another thread rewrite what the kernel will copy?): lg_caller_threads
         * asks /proc/TID/task then (~8 us on a fresh process, the first of its
         * /proc lookups), not for a denial or the ENOENT of a $PATH search.
         * Most of that is the lookup of /proc/TID itself, which the maps query
         * needs next anyway: a bench build without the count (issue 19, exec6)
         * decided 4.0 us faster, its maps query 3.3 us slower. */
        o->threads = -1;
        /* The identity only matters to the admitted-process table (and to the
         * inheritance walk of an exec no rule decides): lg_caller_id takes it,
         * on the same pidfd, when one of them needs it, which for an allowed
         * exec is after the answer (the fstat is off the caller's wait). */
        o->id_pending = 1;
        return 0;
    }
    o->id_pending = 0;
    int rc = lg_proc_stat(tid, &o->ppid, &o->threads, &o->id);
    if (rc < 0)
        return rc;
    o->tgid = tid;
    if (o->threads > 1) {
        struct lg_creds c;
        int tg = lg_read_creds(tid, &c) == 0 ? c.tgid : -1;
        if (tg > 0 && tg != tid) {
            int pp2, th2;
            o->tgid = tg;
            rc = lg_proc_stat(tg, &pp2, &th2, &o->id);
        }
    }
    return rc;
}

/* The caller's thread count, asked now if lg_caller_ident left it for later
 * (-1): the link count of /proc/TID/task.  While the notification is pending
 * the caller is blocked in it; if it is the only thread, nothing of its group
 * can run to add one, so the answer holds until the exec check answers (a
 * caller killed meanwhile is answered nothing, and a pid reused by then gets an
 * answer for an id that is no longer pending: ENOENT).  The count, or -errno
 * (the exec check then takes the verified path). */
int lg_caller_threads(int tid, struct lg_ident *o)
{
    if (o->threads < 0) {
        int th = task_threads(tid);
        if (th < 0)
            return th;
        o->threads = th;
    }
    return o->threads;
}

/* The caller's identity, when lg_caller_ident left it pending: from the pidfd
 * lg_caller_ident was given (opened before ID_VALID, so it names the caller
 * even if the caller has died and its pid been reused since).  0 or -errno. */
int lg_caller_id(int pidfd, struct lg_ident *o)
{
    if (!o->id_pending)
        return 0;
    if (pidfd < 0)
        return -EBADF;
    int rc = pidfd_inode(pidfd, &o->id);
    if (rc == 0)
        o->id_pending = 0;
    return rc;
}

/* The session's end: its root (supervise_root.c), then the kept pidfds
 * (supervise_caller_kept.c). */
void lg_ident_fini(struct lg_sup *s)
{
    lg_session_root_fini(s);
    lg_caller_kept_fini(s);
}
