/* supervise_exec_head.c: what the exec check reads from a file it resolved
 * (issue 19): its real path, and its head (the #! line binfmt_script reads).
 *
 * Both are read through our own /proc/thread-self/fd, opened once on the
 * loop thread as a directory: readlinkat/openat of "N" there skip walking
 * /proc/self/fd/ for every name (measured on this 2-vCPU VM: readlink
 * 4.8 -> 3.4 us, the head's reopen 6.2 -> 5.3 us).
 *
 * The head of a file that has not changed is the head read last time: a
 * small table keyed by the file's identity and version, as fstat of the fd
 * the exec check holds says them (device, inode, size, mode, mtime, ctime;
 * never a name or a pid), saves the reopen, read and close (~7 us of the
 * ~72 us decision, bench_supervise) for every exec of a program met before.
 * Why a changed file cannot be served from it: every change of a file's
 * bytes sets its ctime to the current time, and no call sets ctime to
 * anything else (utimensat sets mtime and atime; ctime then becomes now).
 * Timestamps are coarse (a clock tick, up to 2 s on FAT), so a file changed
 * again within the same tick as the version we read could keep its ctime:
 * an entry is made only for a file whose ctime is LG_HEAD_SETTLED_NS in the
 * past (git's "racy clean" rule), so any later change gives a newer ctime,
 * another key and a fresh read.  The entry is made only when the reopened
 * file, fstat'ed after the read, still has the key's identity and version.
 * What this trusts: the host's clock is not set back by more than that
 * margin while a session runs (the agent cannot set it: CAP_SYS_TIME is
 * dropped), and the file system keeps ctime itself: only local ones are kept
 * (local_fs).  On NFS or FUSE the attributes of an O_PATH fd can be cached
 * ones (no open, so no close-to-open revalidation) while the kernel's exec
 * opens the file afresh: there every exec reads the head, as before.
 * test_exec_object.py rewrites a settled script's #! line in place between
 * two execs of one session: the second must meet the new interpreter's deny.
 *
 * The names whose walk was stable, kept with their real path under inotify watches
 * (the walks themselves saved, where this file saves the reads), are
 * supervise_exec_names.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/statfs.h>

#include "supervise_exec.h"

#define LG_HEAD_CACHE 64                      /* entries, direct-mapped by identity */
#define LG_HEAD_SETTLED_NS 3000000000LL       /* ctime this far in the past: settled */

struct lg_head_entry {
    int used;
    int n;                                    /* bytes of head held */
    struct stat key;                          /* the version they are the head of */
    char head[LG_BINPRM_BUF];
};

/* Our fd directory, opened on first use by the loop thread (whose fd table it
 * shows), or -1 when it could not be opened (then the /proc/self/fd/N names). */
static int fd_dir(struct lg_sup *s)
{
    if (s->exec_fd_dir == -2)
        s->exec_fd_dir = open("/proc/thread-self/fd", O_PATH | O_DIRECTORY | O_CLOEXEC);
    return s->exec_fd_dir;
}

/* The one reader of our fds' links: the path of our fd `fd` as the kernel names
 * it (symlinks resolved, in landgate's view; "... (deleted)" or an anon inode's
 * name where it has none), NUL-terminated.  0, or -errno (-ENAMETOOLONG when it
 * does not fit: never a shortened path).  dir: an fd directory of ours to read
 * the link "N" in (the exec check's, lg_exec_fd_path), or -1 for the name
 * /proc/self/fd/N (lg_fd_path, the open check's threads: nothing kept). */
int lg_fd_path_at(int dir, int fd, char *out, size_t cap)
{
    char name[64];
    ssize_t n;
    if (dir >= 0) {
        snprintf(name, sizeof name, "%d", fd);
        n = readlinkat(dir, name, out, cap - 1);
    } else {
        snprintf(name, sizeof name, "/proc/self/fd/%d", fd);
        n = readlink(name, out, cap - 1);
    }
    if (n < 0)
        return -errno;
    if ((size_t)n >= cap - 1)
        return -ENAMETOOLONG;
    out[n] = '\0';
    return 0;
}

/* lg_fd_path_at through the loop thread's cached fd directory (loop thread only). */
int lg_exec_fd_path(struct lg_sup *s, int fd, char *out, size_t cap)
{
    return lg_fd_path_at(fd_dir(s), fd, out, cap);
}

static int fd_reopen(struct lg_sup *s, int fd, int flags)
{
    char name[64];
    int dir = fd_dir(s);
    if (dir >= 0) {
        snprintf(name, sizeof name, "%d", fd);
        return openat(dir, name, flags);
    }
    snprintf(name, sizeof name, "/proc/self/fd/%d", fd);
    return open(name, flags);
}

/* The same file (device, inode) in the same version (size, mode, mtime, ctime). */
static int same_version(const struct stat *a, const struct stat *b)
{
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
           a->st_mode == b->st_mode && a->st_ctim.tv_sec == b->st_ctim.tv_sec &&
           a->st_ctim.tv_nsec == b->st_ctim.tv_nsec && a->st_mtim.tv_sec == b->st_mtim.tv_sec &&
           a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

static int settled(const struct stat *st)
{
    struct timespec now;
    if (clock_gettime(CLOCK_REALTIME, &now) != 0)
        return 0;
    long long c = (long long)st->st_ctim.tv_sec * 1000000000LL + st->st_ctim.tv_nsec;
    long long n = (long long)now.tv_sec * 1000000000LL + now.tv_nsec;
    return c <= n - LG_HEAD_SETTLED_NS;
}

/* A file system whose ctime the kernel keeps on this machine (no network or
 * FUSE file system, whose attributes may come from a cache or a server):
 * ext2/3/4, xfs, btrfs, tmpfs, overlayfs, f2fs, and the read-only squashfs
 * and erofs.  Anything else: the head is read on every exec. */
int lg_exec_local_fs(int fd)
{
    struct statfs sf;
    if (fstatfs(fd, &sf) != 0)
        return 0;
    switch ((unsigned long)sf.f_type) {
    case 0xEF53UL:     /* ext2/3/4 */
    case 0x58465342UL: /* xfs */
    case 0x9123683EUL: /* btrfs */
    case 0x01021994UL: /* tmpfs */
    case 0x794C7630UL: /* overlayfs */
    case 0xF2F52010UL: /* f2fs */
    case 0x73717368UL: /* squashfs */
    case 0xE0F5E1E2UL: /* erofs */
        return 1;
    default:
        return 0;
    }
}

static struct lg_head_entry *slot(struct lg_sup *s, const struct stat *st)
{
    unsigned long long h = ((unsigned long long)st->st_ino * 0x9E3779B97F4A7C15ULL) ^
                           (unsigned long long)st->st_dev;
    return &s->exec_heads[(h >> 32) % LG_HEAD_CACHE];
}

/* The head of the file fd names (st: its fstat): bytes read, 0 for a
 * non-regular file, or -errno (landgate could not read what the kernel will
 * read: the caller fails closed). */
ssize_t lg_read_head(struct lg_sup *s, int fd, const struct stat *st, char *head, size_t cap)
{
    if (!S_ISREG(st->st_mode))
        return 0;
    if (cap > LG_BINPRM_BUF)
        cap = LG_BINPRM_BUF;
    if (s->exec_heads) {
        struct lg_head_entry *e = slot(s, st);
        if (e->used && same_version(&e->key, st) && (size_t)e->n < cap) {
            memcpy(head, e->head, (size_t)e->n);
            return e->n;
        }
    }
    int rfd = fd_reopen(s, fd, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (rfd < 0)
        return -errno;
    ssize_t n = pread(rfd, head, cap - 1, 0);
    int e = errno;
    struct stat after;
    /* Kept only when the file read is the version fstat saw, settled, on a
     * local file system. */
    int keep = n >= 0 && settled(st) && fstat(rfd, &after) == 0 && same_version(&after, st) &&
               lg_exec_local_fs(rfd);
    close(rfd);
    if (n < 0)
        return -e;
    if (keep && !s->exec_heads)
        s->exec_heads = calloc(LG_HEAD_CACHE, sizeof *s->exec_heads);
    if (keep && s->exec_heads) {
        struct lg_head_entry *en = slot(s, st);
        en->used = 1;
        en->n = (int)n;
        en->key = *st;
        memcpy(en->head, head, (size_t)n);
    }
    return n;
}

void lg_exec_head_fini(struct lg_sup *s)
{
    lg_exec_names_fini(s);
    free(s->exec_heads);
    s->exec_heads = NULL;
    if (s->exec_fd_dir >= 0)
        close(s->exec_fd_dir);
    s->exec_fd_dir = -2;
}
