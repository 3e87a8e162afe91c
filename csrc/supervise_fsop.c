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
 * This file: the notification (its arguments, the paths copied once, the
 * caller's credentials), the order of the steps, and the answer.
 * supervise_fsop_name.c: step 1's resolution in the caller's view;
 * supervise_fsop_judge.c: step 2's tests; supervise_fsop_do.c: step 3.
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
#include <sys/syscall.h>

#include "kernel_compat.h"
#include "supervise_int.h"

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
            int base = lg_fsop_base_fd(s, req->id, tid, d1, path1);
            rc = base < 0 ? base : lg_fsop_walk(&j->creds, base, path1, follow ? 0 : O_NOFOLLOW);
            if (base >= 0)
                close(base);
        }
        j->obj = rc >= 0 ? rc : -1;
        if (rc >= 0 && nr == SYS_truncate)
            rc = lg_fsop_fd_path(j->obj, made->real, sizeof made->real);
    } else if (two && nr != SYS_symlink && nr != SYS_symlinkat) {
        rc = lg_fsop_resolve_name(s, req->id, tid, &j->creds, d1, path1, &j->a);  /* rename source */
    }
    if (rc >= 0 && nr != SYS_truncate)
        rc = lg_fsop_resolve_name(s, req->id, tid, &j->creds, made_dirfd, made_path, made);
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
    int tree = lg_fsop_tree_op(s, j, made, &rule);
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
        denied = lg_fsop_mkdir_denied(&s->t, made, &rule);
    } else if (nr == SYS_mknod || nr == SYS_mknodat) {
        denied = lg_fsop_name_denied(&s->t, made->real, 0, &rule);
    } else {
        int xchg = lg_is_rename(nr) && (flags & RENAME_EXCHANGE);
        if (lg_is_rename(nr) && !xchg && lg_fsop_gitcfg_eligible(&s->t, made->real)) {
            j->gitcfg = 1;  /* judged on content by the opener, before anything is installed */
            lg_judge_path(&s->t, made->real, strlen(made->real), LG_ACCESS_WRITE, &rule);
        } else {
            denied = lg_fsop_name_denied(&s->t, made->real, lg_fsop_tree_like(j), &rule);
        }
        if (!denied && xchg)  /* both names are made: the source's too */
            denied = lg_fsop_name_denied(&s->t, j->a.real, 1, &rule);
        if (!denied && lg_is_rename(nr) &&
            lg_fsop_dir_contents_covered(&s->t, j->a.pfd, j->a.last, j->a.real, &rule)) {
            denied = 1;  /* its contents would leave the rules that cover them by position */
            lg_copy_target(ev.target, sizeof ev.target, j->a.real, &ev.flags);
        }
        if (!denied && xchg &&
            lg_fsop_dir_contents_covered(&s->t, j->b.pfd, j->b.last, made->real, &rule))
            denied = 1;
        if (!denied && lg_is_rename(nr))
            lg_fsop_keep_identity(s, j->a.pfd, j->a.last, j->a.real);
        if (!denied && xchg)
            lg_fsop_keep_identity(s, j->b.pfd, j->b.last, made->real);
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
