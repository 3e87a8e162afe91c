/* supervise_fsop.c: the syscalls that create or change names, performed by the supervisor.
 *
 * Protected paths (shell start-up files, ~/.config/git/, autostart, systemd
 * user units, .git/hooks/, .git/config, the policy, the audit and key
 * directories) and the policy's file_write denies inside a writable grant
 * are decided when a name is made, on the real resulting name (DESIGN §2,
 * "Carve-outs and protected paths").  The filter sends rename, renameat,
 * renameat2, link, linkat, symlink, symlinkat, mkdir, mkdirat, mknod,
 * mknodat and truncate here (opens that create are supervise_open.c's).
 * unlink and rmdir never come: removing is not persisting.
 *
 *  1. loop thread: copy each path once, take the caller's credentials, and
 *     open the PARENT of each name in the caller's view as an O_PATH fd with
 *     the caller's fsuid/fsgid (openat2 from its cwd, its dirfd, or its root
 *     with RESOLVE_IN_ROOT for absolute paths; always RESOLVE_NO_MAGICLINKS).
 *     The real name is the parent's path as the kernel names it plus the last
 *     component: symlinks in the directories are resolved, the last
 *     component is the name the operation makes.
 *  2. judge with the one compiled decision (lg_judge_path, file_write):
 *     - a name a file_write deny covers, or one of the `ancestor` globs (a
 *       directory protected paths lie beneath: renaming a prepared `hooks`
 *       tree to `.git`, or a symlink `~/.config -> /tmp/x`), is not made:
 *       EPERM (EACCES for truncate, as for an open);
 *     - mkdir of a directory that a directory rule covers together with all
 *       it will contain (`.git/hooks`, `~/.config/autostart`) is allowed:
 *       an empty directory runs nothing and each name made in it is judged
 *       (git init makes .git/hooks); mkdir inside one is refused;
 *     - a rename onto a git config file (the `gitcfg` globs) that only
 *       protected-path rules deny is judged on the content (gitcfg.c): git
 *       writes CONFIG.lock and renames it over CONFIG;
 *     - the source of a rename or link that a deny rule covers joins the
 *       identity set (dev+ino) before it gets its new name, so the open
 *       check still denies it under the allowed name.
 *  3. a Landlock-restricted opener thread (supervise_open.c's pool: the
 *     sandbox's own ruleset, the caller's fsuid/fsgid/groups and umask)
 *     performs the operation on (parent fd, last component) and the caller
 *     gets the kernel's result.  Never CONTINUE: the kernel would read and
 *     walk the paths again, after the check.  A git config is installed
 *     from the very bytes judged (a copy), never by renaming the lock file
 *     the agent may still be writing.
 *
 * Known differences from the kernel's own calls: a path through a caller's
 * /proc/self/fd/N directory is refused (ELOOP: RESOLVE_NO_MAGICLINKS);
 * renameat2(RENAME_WHITEOUT) is refused (EPERM: overlayfs's, not a
 * program's); a git config installed after judgement is a new inode.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "kernel_compat.h"
#include "supervise_int.h"

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE 1
#endif
#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE 2
#endif

#define GITCFG_READ_MAX (4 * 1024 * 1024)

/* One name the operation makes or moves, resolved in the caller's view. */
struct fs_name {
    int pfd;                  /* its parent directory (O_PATH), or -1 */
    char last[NAME_MAX + 2];  /* the last component as the caller spelled it */
    char real[PATH_MAX];      /* the parent's real path + "/" + last, no trailing '/' */
};

struct fsop_job {
    struct lg_sup *s;
    unsigned long long id;
    int nr;
    struct lg_creds creds;
    struct fs_name a;         /* rename/link: the source; else the name made */
    struct fs_name b;         /* rename/link/symlink: the destination */
    int obj;                  /* link / truncate: the object itself (O_PATH); -1 */
    unsigned long long arg;   /* mode / length / rename flags */
    unsigned long long dev;   /* mknod */
    int gitcfg;               /* rename judged on content */
    char target[PATH_MAX];    /* symlink: what it points to */
    struct lg_event ev;
};

static void job_free(struct fsop_job *j)
{
    if (j->a.pfd >= 0)
        close(j->a.pfd);
    if (j->b.pfd >= 0)
        close(j->b.pfd);
    if (j->obj >= 0)
        close(j->obj);
    free(j);
}

static int is_rename(int nr)
{
    return nr == SYS_rename || nr == SYS_renameat || nr == SYS_renameat2;
}

static int is_link(int nr)
{
    return nr == SYS_link || nr == SYS_linkat;
}

/* Record, report a denial, answer.  Denials of names are EPERM, of truncate EACCES. */
static void fsop_answer(struct lg_sup *s, unsigned long long id, struct lg_event *ev, long long val,
                        int err)
{
    ev->t_resp_ns = lg_now_ns();
    ev->err = err;
    if (ev->result == LG_EFFECT_DENY && !(ev->flags & LG_EV_FAILCLOSED))
        lg_report_denial(s, "file_write", ev->target, ev->rule);
    lg_push_event(s, ev);
    lg_send_resp(s, id, val, err, 0);
}

/* The directory a path starts from, in the caller's view: its root for an
 * absolute path, its cwd, or its dirfd.  An fd, or -errno. */
static int base_fd(struct lg_sup *s, unsigned long long id, int tid, int dirfd, const char *path)
{
    char link[64];
    if (path[0] == '/' || dirfd == AT_FDCWD) {
        snprintf(link, sizeof link, "/proc/%d/%s", tid, path[0] == '/' ? "root" : "cwd");
        int fd = open(link, O_PATH | O_DIRECTORY | O_CLOEXEC);
        return fd < 0 ? -errno : fd;
    }
    return lg_caller_fd(s, id, tid, dirfd);
}

/* openat2 from base with the caller's credentials: absolute paths under its root. */
static int walk(const struct lg_creds *c, int base, const char *path, unsigned long long flags)
{
    struct open_how how;
    memset(&how, 0, sizeof how);
    how.flags = flags | O_PATH | O_CLOEXEC;
    how.resolve = RESOLVE_NO_MAGICLINKS | (path[0] == '/' ? RESOLVE_IN_ROOT : 0);
    int rc = lg_become(c);
    int fd = rc < 0 ? rc : (int)syscall(__NR_openat2, base, path, &how, sizeof how);
    int e = fd < 0 ? (rc < 0 ? -rc : errno) : 0;
    if (lg_unbecome(c) < 0) {
        if (fd >= 0)
            close(fd);
        return -EPERM;  /* the loop thread could not get its own credentials back */
    }
    return fd < 0 ? -e : fd;
}

static int fd_path(int fd, char *out, size_t cap)
{
    char link[64];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, out, cap - 1);
    if (n < 0)
        return -errno;
    if ((size_t)n >= cap - 1)
        return -ENAMETOOLONG;
    out[n] = '\0';
    return out[0] == '/' ? 0 : -ENOENT;  /* "(deleted)" targets and anon inodes have no name */
}

/* Resolve the parent of `path` and name its last component.  0 or -errno
 * (the kernel's own answer for a bad path: ENOENT, ENOTDIR, EBADF, ELOOP). */
static int resolve_name(struct lg_sup *s, unsigned long long id, int tid, const struct lg_creds *c,
                        int dirfd, const char *path, struct fs_name *n)
{
    size_t len = strlen(path);
    if (len == 0)
        return -ENOENT;
    size_t end = len;
    while (end > 1 && path[end - 1] == '/')
        end--;  /* "dir/" names dir: the slash stays on the last component */
    const char *slash = memrchr(path, '/', end);
    const char *last = slash ? slash + 1 : path;
    size_t ll = len - (size_t)(last - path), nl = end - (size_t)(last - path);
    if (nl == 0 || (nl == 1 && last[0] == '.') || (nl == 2 && last[0] == '.' && last[1] == '.'))
        return -EBUSY;  /* "/", "." or "..": no name to make or move */
    if (nl > NAME_MAX || ll > NAME_MAX + 1)
        return -ENAMETOOLONG;
    memcpy(n->last, last, ll);
    n->last[ll] = '\0';
    char dir[PATH_MAX];
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if (slash == path)
        snprintf(dir, sizeof dir, "/");
    else
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    int base = base_fd(s, id, tid, dirfd, path);
    if (base < 0)
        return base;
    n->pfd = walk(c, base, dir, O_DIRECTORY);
    close(base);
    if (n->pfd < 0)
        return n->pfd;
    char parent[PATH_MAX];
    int rc = fd_path(n->pfd, parent, sizeof parent);
    if (rc < 0)
        return rc;
    int w = snprintf(n->real, sizeof n->real, "%s/%.*s", strcmp(parent, "/") == 0 ? "" : parent,
                     (int)nl, last);
    return (w < 0 || (size_t)w >= sizeof n->real) ? -ENAMETOOLONG : 0;
}

/* Which fsop rows of `kind` match path: the first one's rule index, or -2. */
static int fsop_match(const struct lg_tables *t, int kind, const char *path)
{
    for (int i = 0; i < t->n_fsop; i++)
        if (t->fsop[i].kind == kind && lg_glob_match(t->fsop[i].glob, path, strlen(path), 1))
            return t->fsop[i].rule;
    return -2;
}

/* May a name be made here?  0 = yes; else 1 with *rule set (the deny rule or
 * the protected path beneath it). */
static int name_denied(const struct lg_tables *t, const char *real, int ancestors, int *rule)
{
    if (lg_judge_path(t, real, strlen(real), LG_ACCESS_WRITE, rule) & LG_ACCESS_WRITE)
        return 1;
    int r = ancestors ? fsop_match(t, LG_FSOP_ANCESTOR, real) : -2;
    if (r != -2) {
        *rule = r;
        return 1;
    }
    return 0;
}

/* mkdir: a directory that a rule covers together with everything beneath it
 * may be made empty (what is made in it is judged by name); inside a
 * denied directory, or one a plain-name rule denies, it may not. */
static int mkdir_denied(const struct lg_tables *t, const struct fs_name *n, int *rule)
{
    if (!name_denied(t, n->real, 0, rule))
        return 0;
    char probe[PATH_MAX + 16];
    int tmp;
    size_t rl = strlen(n->real);
    const char *cut = strrchr(n->real, '/');
    size_t pl = cut ? (size_t)(cut - n->real) : 0;
    snprintf(probe, sizeof probe, "%.*s", (int)(pl ? pl : 1), n->real);
    if (lg_judge_path(t, probe, strlen(probe), LG_ACCESS_WRITE, &tmp) & LG_ACCESS_WRITE)
        return 1;  /* the parent is denied: this is inside a protected tree */
    snprintf(probe, sizeof probe, "%.*s/.landgate-probe", (int)rl, n->real);
    return (lg_judge_path(t, probe, strlen(probe), LG_ACCESS_WRITE, &tmp) & LG_ACCESS_WRITE) ? 0 : 1;
}

/* A rename onto a git config file that nothing but protected-path rules
 * denies: judged on its content. */
static int gitcfg_eligible(const struct lg_tables *t, const char *real)
{
    if (fsop_match(t, LG_FSOP_GITCFG, real) == -2)
        return 0;
    int hits[64];
    int n = lg_path_hits(t, real, strlen(real), LG_ACCESS_WRITE, hits, 64);
    if (n >= 64)
        return 0;
    for (int i = 0; i < n; i++) {
        const struct lg_path_rule *r = &t->paths[hits[i]];
        if (r->effect == LG_EFFECT_DENY && !r->overridable)
            return 0;  /* the policy's own deny (or the key directory): no content exception */
    }
    return 1;
}

/* A directory being renamed whose contents a rule covers because of where
 * they are (`./secrets/`, `~/.ssh/`, an ancestor of `.git/hooks`): after the
 * rename no rule would.  1 with *rule set. */
static int dir_contents_covered(const struct lg_tables *t, int dirfd, const char *name,
                                const char *real, int *rule)
{
    struct stat st;
    if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISDIR(st.st_mode))
        return 0;  /* not a directory (or nothing there: the kernel answers) */
    char probe[PATH_MAX + 32];
    snprintf(probe, sizeof probe, "%s/.landgate-probe", real);
    if (lg_judge_path(t, probe, strlen(probe), LG_ACCESS_READ | LG_ACCESS_WRITE, rule))
        return 1;
    int r = fsop_match(t, LG_FSOP_ANCESTOR, real);
    if (r == -2)
        return 0;
    *rule = r;
    return 1;
}

/* The source of a rename or link keeps its identity: a denied object joins the
 * deny set by dev+ino before it gets a name no rule covers. */
static void keep_identity(struct lg_sup *s, int dirfd, const char *name, const char *real)
{
    int rule = -1;
    int bits = lg_judge_path(&s->t, real, strlen(real), LG_ACCESS_READ | LG_ACCESS_WRITE, &rule);
    if (!bits)
        return;
    struct stat st;
    if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
        return;  /* nothing there: the operation itself fails with the kernel's errno */
    lg_seen_add(s, st.st_dev, st.st_ino, bits, rule);
}

/* A rename over an existing name frees that inode when it was its last link:
 * the identity set must not keep it, or the next file that gets the same
 * inode number would be denied as if it were the old one. */
static void seen_forget(struct lg_sup *s, const struct stat *old)
{
    if (!s->seen || old->st_nlink != 1 || S_ISDIR(old->st_mode))
        return;
    pthread_mutex_lock(&s->seen_lock);
    for (int i = 0; i < s->seen_count; i++) {
        if (s->seen[i].dev == (unsigned long long)old->st_dev &&
            s->seen[i].ino == (unsigned long long)old->st_ino) {
            s->seen[i] = s->seen[--s->seen_count];
            break;
        }
    }
    pthread_mutex_unlock(&s->seen_lock);
}

/* Read a whole regular file (at most GITCFG_READ_MAX bytes) at (dirfd, name).
 * *out is malloc'd; ENOENT when it does not exist. */
static int read_small(int dirfd, const char *name, char **out, size_t *len, mode_t *mode)
{
    *out = NULL;
    *len = 0;
    int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st) != 0)
        rc = -errno;
    else if (!S_ISREG(st.st_mode))
        rc = -EINVAL;
    else if (st.st_size > GITCFG_READ_MAX)
        rc = -EFBIG;
    char *buf = rc == 0 ? malloc((size_t)st.st_size + 1) : NULL;
    if (rc == 0 && !buf)
        rc = -ENOMEM;
    size_t got = 0;
    while (rc == 0) {
        ssize_t r = read(fd, buf + got, (size_t)st.st_size + 1 - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            rc = -errno;
        else if (r == 0)
            break;
        else if ((got += (size_t)r) > (size_t)st.st_size)
            rc = -EFBIG;  /* grew while we read: judge nothing half-read */
    }
    close(fd);
    if (rc < 0) {
        free(buf);
        return rc;
    }
    if (mode)
        *mode = st.st_mode & 07777;
    *out = buf;
    *len = got;
    return 0;
}

/* The git config rename on the opener: judge the bytes, install a copy of exactly
 * those bytes, remove the source name.  0, an errno, or -1 (refused: why set). */
static int gitcfg_rename(struct fsop_job *j, char *why, size_t whylen)
{
    char *neu = NULL, *old = NULL;
    size_t nl = 0, ol = 0;
    mode_t mode = 0644;
    int rc = read_small(j->a.pfd, j->a.last, &neu, &nl, &mode);
    if (rc < 0)
        return -rc;
    rc = read_small(j->b.pfd, j->b.last, &old, &ol, NULL);
    if (rc < 0 && rc != -ENOENT) {
        free(neu);
        snprintf(why, whylen, "the existing file cannot be read: %s", strerror(-rc));
        return -1;
    }
    if (lg_gitcfg_judge(old, ol, neu, nl, why, (int)whylen) != 0) {
        free(neu);
        free(old);
        return -1;
    }
    free(old);
    char tmp[NAME_MAX + 1];
    size_t bl = strcspn(j->b.last, "/");
    snprintf(tmp, sizeof tmp, ".%.*s.landgate-%d", (int)(bl > 200 ? 200 : bl), j->b.last, (int)gettid());
    int fd = openat(j->b.pfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
    int e = fd < 0 ? errno : 0;
    for (size_t off = 0; fd >= 0 && off < nl && !e;) {
        ssize_t w = write(fd, neu + off, nl - off);
        if (w < 0 && errno != EINTR)
            e = errno;
        else if (w > 0)
            off += (size_t)w;
    }
    free(neu);
    if (fd >= 0 && close(fd) != 0 && !e)
        e = errno;
    if (!e && renameat(j->b.pfd, tmp, j->b.pfd, j->b.last) != 0)
        e = errno;
    if (e) {
        if (fd >= 0)
            unlinkat(j->b.pfd, tmp, 0);
        return e;
    }
    if (unlinkat(j->a.pfd, j->a.last, 0) != 0 && errno != ENOENT)
        return errno;  /* installed; the lock file stays behind */
    return 0;
}

/* On an opener thread: perform the judged operation as the caller. */
static void *fsop_worker(void *arg)
{
    struct fsop_job *j = arg;
    struct lg_sup *s = j->s;
    if (lg_pool_thread_ok() < 0) {
        j->ev.result = LG_EFFECT_DENY;  /* this opener is not restricted: it must not act */
        j->ev.flags |= LG_EV_FAILCLOSED;
        fsop_answer(s, j->id, &j->ev, 0, EPERM);
        job_free(j);
        return NULL;
    }
    int e = 0;
    char why[LG_DETAIL_MAX];
    why[0] = '\0';
    int rc = lg_become(&j->creds);
    if (rc < 0) {
        e = -rc;
    } else {
        if (j->creds.umask != (unsigned)-1)
            umask(j->creds.umask);  /* this thread's own fs_struct (unshare(CLONE_FS)) */
        int nr = j->nr;
        struct stat replaced;
        int had = is_rename(nr) && !(j->arg & RENAME_EXCHANGE) &&
                  fstatat(j->b.pfd, j->b.last, &replaced, AT_SYMLINK_NOFOLLOW) == 0;
        if (j->gitcfg) {
            rc = gitcfg_rename(j, why, sizeof why);
            e = rc < 0 ? 0 : rc;
        } else if (is_rename(nr)) {
            rc = (int)syscall(SYS_renameat2, j->a.pfd, j->a.last, j->b.pfd, j->b.last,
                              (unsigned)j->arg);
        } else if (is_link(nr)) {
            char self[64];
            snprintf(self, sizeof self, "/proc/self/fd/%d", j->obj);
            rc = linkat(AT_FDCWD, self, j->b.pfd, j->b.last, AT_SYMLINK_FOLLOW);
        } else if (nr == SYS_symlink || nr == SYS_symlinkat) {
            rc = symlinkat(j->target, j->b.pfd, j->b.last);
        } else if (nr == SYS_mkdir || nr == SYS_mkdirat) {
            rc = mkdirat(j->a.pfd, j->a.last, (mode_t)j->arg & 07777);
        } else if (nr == SYS_mknod || nr == SYS_mknodat) {
            rc = mknodat(j->a.pfd, j->a.last, (mode_t)j->arg, (dev_t)j->dev);
        } else {  /* truncate: the judged object, reopened for writing */
            struct stat st;
            rc = fstat(j->obj, &st);
            if (rc == 0 && !S_ISREG(st.st_mode)) {
                errno = S_ISDIR(st.st_mode) ? EISDIR : EINVAL;
                rc = -1;
            }
            if (rc == 0) {
                char self[64];
                snprintf(self, sizeof self, "/proc/self/fd/%d", j->obj);
                int fd = open(self, O_WRONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
                rc = fd < 0 ? -1 : ftruncate(fd, (off_t)j->arg);
                if (fd >= 0) {
                    int ce = errno;
                    close(fd);
                    errno = ce;
                }
            }
        }
        if (!j->gitcfg && rc != 0)
            e = errno ? errno : EIO;
        if (had && rc == 0)
            seen_forget(s, &replaced);
    }
    if (lg_unbecome(&j->creds) < 0)
        lg_count(s, LG_COUNT_ERRORS);
    if (j->gitcfg && rc < 0 && why[0]) {
        /* refused on content: the line names the key, the trail keeps it in detail */
        j->ev.result = LG_EFFECT_DENY;
        snprintf(j->ev.detail, sizeof j->ev.detail, "write git config %s", why);
        if (s->stderr_fd >= 0) {
            char shown[201], line[LG_DETAIL_MAX + 512];
            lg_escape_shown(shown, sizeof shown, j->ev.target);
            int n = snprintf(line, sizeof line, "landgate: denied file_write \"%s\" (%s; %s)\n",
                             shown, why, lg_ref(s, j->ev.rule));
            if (n > 0 && write(s->stderr_fd, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1) < 0)
                lg_count(s, LG_COUNT_ERRORS);  /* the errno and the trail carry it too */
        }
        j->ev.t_resp_ns = lg_now_ns();
        j->ev.err = EPERM;
        lg_push_event(s, &j->ev);
        lg_send_resp(s, j->id, 0, EPERM, 0);
        job_free(j);
        return NULL;
    }
    j->ev.result = LG_EFFECT_ALLOW;  /* an error here is the kernel's own answer */
    fsop_answer(s, j->id, &j->ev, 0, e);
    job_free(j);
    return NULL;
}

/* Does the name being made stand for a tree (a directory, or a symlink that may
 * point at one)?  Only then can it put names beneath an `ancestor` row. */
static int tree_like(const struct fsop_job *j)
{
    struct stat st;
    if (j->nr == SYS_symlink || j->nr == SYS_symlinkat)
        return 1;
    int rc = is_link(j->nr) ? fstat(j->obj, &st)
                            : fstatat(j->a.pfd, j->a.last, &st, AT_SYMLINK_NOFOLLOW);
    if (rc != 0)
        return 1;  /* cannot tell: judge it as a tree */
    return S_ISDIR(st.st_mode) || S_ISLNK(st.st_mode);
}

static const char *op_name(int nr)
{
    switch (nr) {
    case SYS_rename: case SYS_renameat: case SYS_renameat2: return "rename";
    case SYS_link: case SYS_linkat: return "link";
    case SYS_symlink: case SYS_symlinkat: return "symlink";
    case SYS_mkdir: case SYS_mkdirat: return "mkdir";
    case SYS_mknod: case SYS_mknodat: return "mknod";
    default: return "truncate";
    }
}

static int i32(unsigned long long v)
{
    return (int)(unsigned)v;
}

/* Loop thread: read, resolve, judge; hand the operation to an opener. */
void lg_handle_fsop(struct lg_sup *s, const struct seccomp_notif *req, unsigned long long t0)
{
    int tid = (int)req->pid, nr = req->data.nr;
    const unsigned long long *a = req->data.args;
    struct fsop_job *j = calloc(1, sizeof *j);
    struct lg_event ev;
    memset(&ev, 0, sizeof ev);
    ev.t_recv_ns = t0;
    ev.pid = ev.tid = tid;
    ev.action = LG_ACT_OPEN;
    ev.syscall_nr = nr;
    ev.rule = -1;
    snprintf(ev.detail, sizeof ev.detail, "write %s", op_name(nr));
    lg_count(s, LG_COUNT_OPEN);
    if (s->simulate || !s->t.fsop_check || !s->openpool.ready) {
        /* not installed for simulation; notified without the openers: refuse, loudly */
        free(j);
        lg_copy_target(ev.target, sizeof ev.target, "(not judged)", &ev.flags);
        ev.result = s->simulate ? LG_EFFECT_ALLOW : LG_EFFECT_DENY;
        ev.flags |= s->simulate ? LG_EV_SIMULATED : LG_EV_FAILCLOSED;
        ev.t_resp_ns = lg_now_ns();
        ev.err = s->simulate ? 0 : EPERM;
        lg_push_event(s, &ev);
        lg_send_resp(s, req->id, 0, ev.err, s->simulate);
        return;
    }
    if (!j) {
        ev.result = LG_EFFECT_DENY;
        ev.flags |= LG_EV_FAILCLOSED;
        fsop_answer(s, req->id, &ev, 0, ENOMEM);
        return;
    }
    j->s = s;
    j->id = req->id;
    j->nr = nr;
    j->a.pfd = j->b.pfd = j->obj = -1;

    /* the arguments: (dirfd, path) of the source or the name, of the destination */
    int d1 = AT_FDCWD, d2 = AT_FDCWD, flags = 0;
    unsigned long long p1 = 0, p2 = 0;
    int two = is_rename(nr) || is_link(nr) || nr == SYS_symlink || nr == SYS_symlinkat;
    switch (nr) {
    case SYS_rename: case SYS_link: case SYS_symlink: p1 = a[0]; p2 = a[1]; break;
    case SYS_renameat: case SYS_renameat2: case SYS_linkat:
        d1 = i32(a[0]); p1 = a[1]; d2 = i32(a[2]); p2 = a[3];
        flags = nr == SYS_renameat ? 0 : i32(a[4]);
        break;
    case SYS_symlinkat: p1 = a[0]; d2 = i32(a[1]); p2 = a[2]; break;
    case SYS_mkdir: p1 = a[0]; j->arg = a[1]; break;
    case SYS_mkdirat: d1 = i32(a[0]); p1 = a[1]; j->arg = a[2]; break;
    case SYS_mknod: p1 = a[0]; j->arg = (unsigned)a[1]; j->dev = a[2]; break;
    case SYS_mknodat: d1 = i32(a[0]); p1 = a[1]; j->arg = (unsigned)a[2]; j->dev = a[3]; break;
    default: p1 = a[0]; j->arg = a[1]; break;  /* truncate */
    }
    if (is_rename(nr))
        j->arg = (unsigned)flags;
    char path1[PATH_MAX], path2[PATH_MAX];
    size_t l1 = 0, l2 = 0;
    int rc = lg_read_str(tid, p1, path1, sizeof path1, &l1);
    if (rc == 0 && two)
        rc = lg_read_str(tid, p2, path2, sizeof path2, &l2);
    int crc = rc == 0 ? lg_read_creds(tid, &j->creds) : 0;
    if (!lg_id_valid(s, req->id)) {
        lg_count(s, LG_COUNT_GONE);  /* the bytes may not be the caller's: judge nothing */
        job_free(j);
        return;
    }
    ev.pid = j->creds.tgid ? j->creds.tgid : tid;
    int e = rc == -E2BIG ? ENAMETOOLONG : rc < 0 ? -rc : crc < 0 ? EPERM : 0;
    if (!e && nr == SYS_renameat2 && (flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE)))
        e = EPERM;  /* RENAME_WHITEOUT: overlayfs's, not a program's */
    if (!e && nr == SYS_linkat && (flags & ~(AT_SYMLINK_FOLLOW | AT_EMPTY_PATH)))
        e = EINVAL;
    if (e) {
        lg_copy_target(ev.target, sizeof ev.target, rc < 0 ? "(unreadable path)" : path1, &ev.flags);
        ev.result = crc < 0 ? LG_EFFECT_DENY : LG_EFFECT_ALLOW;  /* a bad argument: the kernel's answer */
        if (crc < 0)
            ev.flags |= LG_EV_FAILCLOSED;
        fsop_answer(s, req->id, &ev, 0, e);
        job_free(j);
        return;
    }
    if (nr == SYS_symlink || nr == SYS_symlinkat)
        memcpy(j->target, path1, l1 + 1);

    /* resolve */
    struct fs_name *made = two ? &j->b : &j->a;
    const char *made_path = two ? path2 : path1;
    int made_dirfd = two ? d2 : d1;
    if (is_link(nr) || nr == SYS_truncate) {
        /* the object itself: followed as the kernel would (linkat: AT_SYMLINK_FOLLOW) */
        int follow = nr == SYS_truncate || (nr == SYS_linkat && (flags & AT_SYMLINK_FOLLOW));
        char own[PATH_MAX];
        int fdnum = -1;
        if (path1[0] != '\0' &&
            lg_rewrite_self(path1, j->creds.tgid ? j->creds.tgid : tid, tid, own, sizeof own, &fdnum) < 0)
            fdnum = -1;
        if (nr == SYS_linkat && (flags & AT_EMPTY_PATH) && path1[0] == '\0') {
            rc = lg_caller_fd(s, req->id, tid, d1);
        } else if (follow && fdnum >= 0) {
            /* its own /proc/self/fd/N (how an O_TMPFILE file is linked): the open file it holds */
            rc = lg_caller_fd(s, req->id, tid, fdnum);
            if (rc == -EBADF)
                rc = -ENOENT;
        } else if (path1[0] == '\0') {
            rc = -ENOENT;
        } else {
            int base = base_fd(s, req->id, tid, d1, path1);
            rc = base < 0 ? base : walk(&j->creds, base, path1, follow ? 0 : O_NOFOLLOW);
            if (base >= 0)
                close(base);
        }
        j->obj = rc >= 0 ? rc : -1;
        if (rc >= 0 && nr == SYS_truncate)
            rc = fd_path(j->obj, made->real, sizeof made->real);
    } else if (two && nr != SYS_symlink && nr != SYS_symlinkat) {
        rc = resolve_name(s, req->id, tid, &j->creds, d1, path1, &j->a);  /* rename source */
    }
    if (rc >= 0 && nr != SYS_truncate)
        rc = resolve_name(s, req->id, tid, &j->creds, made_dirfd, made_path, made);
    if (!lg_id_valid(s, req->id)) {
        lg_count(s, LG_COUNT_GONE);
        job_free(j);
        return;
    }
    if (rc < 0) {
        e = -rc == EBUSY && (nr == SYS_mkdir || nr == SYS_mkdirat || nr == SYS_symlink ||
                             nr == SYS_symlinkat || is_link(nr) || nr == SYS_mknod ||
                             nr == SYS_mknodat) ? EEXIST : -rc;
        lg_copy_target(ev.target, sizeof ev.target, made_path, &ev.flags);
        ev.result = LG_EFFECT_ALLOW;  /* the kernel's own answer for this path */
        fsop_answer(s, req->id, &ev, 0, e == ESRCH ? EPERM : e);
        job_free(j);
        return;
    }
    lg_copy_target(ev.target, sizeof ev.target, made->real, &ev.flags);
    ev.target_len = (int)strlen(ev.target);

    /* judge */
    int rule = -1, denied = 0, err = EPERM;
    if (nr == SYS_truncate) {
        rc = lg_judge_object(s, j->obj, LG_ACCESS_WRITE, &rule, made->real, sizeof made->real);
        lg_copy_target(ev.target, sizeof ev.target, made->real, &ev.flags);
        denied = rc != 0;
        err = EACCES;  /* as an open for writing would be refused */
        if (rc < 0)
            ev.flags |= LG_EV_FAILCLOSED;
    } else if (nr == SYS_mkdir || nr == SYS_mkdirat) {
        denied = mkdir_denied(&s->t, made, &rule);
    } else if (nr == SYS_mknod || nr == SYS_mknodat) {
        denied = name_denied(&s->t, made->real, 0, &rule);
    } else {
        int xchg = is_rename(nr) && (flags & RENAME_EXCHANGE);
        if (is_rename(nr) && !xchg && gitcfg_eligible(&s->t, made->real)) {
            j->gitcfg = 1;  /* judged on content by the opener, before anything is installed */
            lg_judge_path(&s->t, made->real, strlen(made->real), LG_ACCESS_WRITE, &rule);
        } else {
            denied = name_denied(&s->t, made->real, tree_like(j), &rule);
        }
        if (!denied && xchg)  /* both names are made: the source's too */
            denied = name_denied(&s->t, j->a.real, 1, &rule);
        if (!denied && is_rename(nr) && dir_contents_covered(&s->t, j->a.pfd, j->a.last, j->a.real, &rule)) {
            denied = 1;  /* its contents would leave the rules that cover them by position */
            lg_copy_target(ev.target, sizeof ev.target, j->a.real, &ev.flags);
        }
        if (!denied && xchg && dir_contents_covered(&s->t, j->b.pfd, j->b.last, made->real, &rule))
            denied = 1;
        if (!denied && is_rename(nr))
            keep_identity(s, j->a.pfd, j->a.last, j->a.real);
        if (!denied && xchg)
            keep_identity(s, j->b.pfd, j->b.last, made->real);
        if (!denied && is_link(nr)) {
            /* the object's own judgement adds a denied one to the identity set */
            char real[PATH_MAX];
            int r2 = -1;
            if (lg_judge_object(s, j->obj, LG_ACCESS_READ | LG_ACCESS_WRITE, &r2, real, sizeof real) < 0)
                lg_count(s, LG_COUNT_ERRORS);
        }
    }
    if (denied) {
        ev.result = LG_EFFECT_DENY;
        ev.rule = rule;
        fsop_answer(s, req->id, &ev, 0, err);
        job_free(j);
        return;
    }
    ev.rule = j->gitcfg ? rule : -1;
    j->ev = ev;
    rc = lg_pool_submit(&s->openpool, fsop_worker, j);
    if (rc < 0) {
        ev.result = LG_EFFECT_DENY;
        ev.flags |= LG_EV_FAILCLOSED;
        fsop_answer(s, req->id, &ev, 0, EAGAIN);
        job_free(j);
    }
}
