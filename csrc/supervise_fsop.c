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
 *  3. (supervise_fsop_do.c) a Landlock-restricted opener thread (supervise_open.c's pool: the
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
#include "supervise_tree.h"

#include "supervise_fsop.h"

void lg_fsop_job_free(struct fsop_job *j)
{
    if (j->a.pfd >= 0)
        close(j->a.pfd);
    if (j->b.pfd >= 0)
        close(j->b.pfd);
    if (j->obj >= 0)
        close(j->obj);
    free(j);
}

/* Record, report a denial, answer.  Denials of names are EPERM, of truncate EACCES. */
void lg_fsop_answer(struct lg_sup *s, unsigned long long id, struct lg_event *ev, long long val,
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
 * absolute path (the session's, lg_session_root: no task under the filter can
 * change it, and the operation is performed on the parent walked here, never
 * walked again), its cwd, or its dirfd.  An fd (ours to close), or -errno. */
static int base_fd(struct lg_sup *s, unsigned long long id, int tid, int dirfd, const char *path)
{
    if (path[0] == '/') {
        int root = lg_session_root(s, tid, id);
        if (root < 0)
            return root;
        int fd = fcntl(root, F_DUPFD_CLOEXEC, 3);
        return fd < 0 ? -errno : fd;
    }
    if (dirfd == AT_FDCWD) {
        char link[64];
        snprintf(link, sizeof link, "/proc/%d/cwd", tid);
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
    int rc = lg_fd_path(fd, out, cap);
    if (rc < 0)
        return rc;
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
    /* nothing there (an error): the operation itself fails with the kernel's errno */
    (void)lg_seen_add_at(s, dirfd, name, bits, rule);
}

/* Trees denied as a whole (the key directory: supervise_open_tree.c) are judged by where
 * an object lies, not by a list of their files taken at launch.  So nothing may leave
 * one under a new name: a link or rename whose source lies in a tree is refused (the
 * file would have a name the next session's tables do not deny), and no name is made in
 * one through another mount of its file system (its path would not say so).
 * 1 refused (*rule set), 0 not, -errno when it cannot be judged (refused, fail closed). */
static int tree_op(struct lg_sup *s, const struct fsop_job *j, const struct fs_name *made,
                   int *rule)
{
    const struct lg_tables *t = &s->t;
    const int any = LG_ACCESS_WRITE;  /* leaving or entering a tree writes its directory */
    if (t->n_deny_trees <= 0 || j->nr == SYS_truncate)
        return 0;  /* truncate: its object is judged by lg_judge_object, trees included */
    int rc = made->pfd >= 0 ? lg_tree_dir(t, made->pfd, NULL, any, rule) : 0;
    if (rc != 0)
        return rc;
    if (lg_is_rename(j->nr)) {
        if (lg_tree_path(t, j->a.real, any, rule))
            return 1;
        return j->a.pfd >= 0 ? lg_tree_dir(t, j->a.pfd, NULL, any, rule) : 0;
    }
    if (lg_is_link(j->nr) && j->obj >= 0) {
        struct statx st;
        char real[PATH_MAX];
        if (statx(j->obj, "", AT_EMPTY_PATH | AT_STATX_SYNC_AS_STAT, LG_TREE_STATX, &st) != 0)
            return -errno;
        rc = lg_fd_path(j->obj, real, sizeof real);
        if (rc < 0)
            return rc;
        return lg_tree_object(t, j->obj, &st, real, any, rule);
    }
    return 0;
}

/* Does the name being made stand for a tree (a directory, or a symlink that may
 * point at one)?  Only then can it put names beneath an `ancestor` row. */
static int tree_like(const struct fsop_job *j)
{
    struct stat st;
    if (j->nr == SYS_symlink || j->nr == SYS_symlinkat)
        return 1;
    int rc = lg_is_link(j->nr) ? fstat(j->obj, &st)
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
        lg_fsop_answer(s, req->id, &ev, 0, ENOMEM);
        return;
    }
    j->s = s;
    j->id = req->id;
    j->nr = nr;
    j->a.pfd = j->b.pfd = j->obj = -1;

    /* the arguments: (dirfd, path) of the source or the name, of the destination */
    int d1 = AT_FDCWD, d2 = AT_FDCWD, flags = 0;
    unsigned long long p1 = 0, p2 = 0;
    int two = lg_is_rename(nr) || lg_is_link(nr) || nr == SYS_symlink || nr == SYS_symlinkat;
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
    if (lg_is_rename(nr))
        j->arg = (unsigned)flags;
    char path1[PATH_MAX], path2[PATH_MAX];
    size_t l1 = 0, l2 = 0;
    int rc = lg_read_str(tid, p1, path1, sizeof path1, &l1);
    if (rc == 0 && two)
        rc = lg_read_str(tid, p2, path2, sizeof path2, &l2);
    int crc = rc == 0 ? lg_read_creds(tid, &j->creds) : 0;
    if (!lg_id_valid(s, req->id)) {
        lg_count(s, LG_COUNT_GONE);  /* the bytes may not be the caller's: judge nothing */
        lg_fsop_job_free(j);
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
        lg_fsop_answer(s, req->id, &ev, 0, e);
        lg_fsop_job_free(j);
        return;
    }
    if (nr == SYS_symlink || nr == SYS_symlinkat)
        memcpy(j->target, path1, l1 + 1);

    /* resolve */
    struct fs_name *made = two ? &j->b : &j->a;
    const char *made_path = two ? path2 : path1;
    int made_dirfd = two ? d2 : d1;
    if (lg_is_link(nr) || nr == SYS_truncate) {
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
        lg_fsop_job_free(j);
        return;
    }
    if (rc < 0) {
        e = -rc == EBUSY && (nr == SYS_mkdir || nr == SYS_mkdirat || nr == SYS_symlink ||
                             nr == SYS_symlinkat || lg_is_link(nr) || nr == SYS_mknod ||
                             nr == SYS_mknodat) ? EEXIST : -rc;
        lg_copy_target(ev.target, sizeof ev.target, made_path, &ev.flags);
        ev.result = LG_EFFECT_ALLOW;  /* the kernel's own answer for this path */
        lg_fsop_answer(s, req->id, &ev, 0, e == ESRCH ? EPERM : e);
        lg_fsop_job_free(j);
        return;
    }
    lg_copy_target(ev.target, sizeof ev.target, made->real, &ev.flags);
    ev.target_len = (int)strlen(ev.target);

    /* judge */
    int rule = -1, denied = 0, err = EPERM;
    int tree = tree_op(s, j, made, &rule);
    if (tree != 0) {
        ev.result = LG_EFFECT_DENY;
        ev.rule = rule;
        if (tree < 0)
            ev.flags |= LG_EV_FAILCLOSED;
        lg_fsop_answer(s, req->id, &ev, 0, EPERM);
        lg_fsop_job_free(j);
        return;
    }
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
        int xchg = lg_is_rename(nr) && (flags & RENAME_EXCHANGE);
        if (lg_is_rename(nr) && !xchg && gitcfg_eligible(&s->t, made->real)) {
            j->gitcfg = 1;  /* judged on content by the opener, before anything is installed */
            lg_judge_path(&s->t, made->real, strlen(made->real), LG_ACCESS_WRITE, &rule);
        } else {
            denied = name_denied(&s->t, made->real, tree_like(j), &rule);
        }
        if (!denied && xchg)  /* both names are made: the source's too */
            denied = name_denied(&s->t, j->a.real, 1, &rule);
        if (!denied && lg_is_rename(nr) && dir_contents_covered(&s->t, j->a.pfd, j->a.last, j->a.real, &rule)) {
            denied = 1;  /* its contents would leave the rules that cover them by position */
            lg_copy_target(ev.target, sizeof ev.target, j->a.real, &ev.flags);
        }
        if (!denied && xchg && dir_contents_covered(&s->t, j->b.pfd, j->b.last, made->real, &rule))
            denied = 1;
        if (!denied && lg_is_rename(nr))
            keep_identity(s, j->a.pfd, j->a.last, j->a.real);
        if (!denied && xchg)
            keep_identity(s, j->b.pfd, j->b.last, made->real);
        if (!denied && lg_is_link(nr)) {
            /* the object's own judgement adds a denied one to the identity set; the
             * accesses it denies follow the new name (supervise_fsop_do.c): on
             * overlayfs the link is numbered apart from the name judged here */
            char real[PATH_MAX];
            int rr = -1, rw = -1;
            int dr = lg_judge_object(s, j->obj, LG_ACCESS_READ, &rr, real, sizeof real);
            int dw = lg_judge_object(s, j->obj, LG_ACCESS_WRITE, &rw, real, sizeof real);
            if (dr < 0 || dw < 0)
                lg_count(s, LG_COUNT_ERRORS);
            j->alias_access = (dr > 0 ? LG_ACCESS_READ : 0) | (dw > 0 ? LG_ACCESS_WRITE : 0);
            j->alias_rule = dr > 0 ? rr : rw;
        }
    }
    if (denied) {
        ev.result = LG_EFFECT_DENY;
        ev.rule = rule;
        lg_fsop_answer(s, req->id, &ev, 0, err);
        lg_fsop_job_free(j);
        return;
    }
    ev.rule = j->gitcfg ? rule : -1;
    j->ev = ev;
    rc = lg_pool_submit_here(&s->openpool, lg_fsop_worker, j);  /* the caller's CPU */
    if (rc < 0) {
        ev.result = LG_EFFECT_DENY;
        ev.flags |= LG_EV_FAILCLOSED;
        lg_fsop_answer(s, req->id, &ev, 0, EAGAIN);
        lg_fsop_job_free(j);
    }
}
