/* supervise_open_object.c: the object an open reaches, on the loop thread (steps 1 and 2
 * of the open check; the whole design is in supervise_open.c's header).
 *
 * supervise_open.c decodes the notification and judges the path as spelled; this
 * file takes over once the open is to be enforced or simulated on its object:
 * the caller's credentials, the walk in the caller's view (its root, cwd or dirfd,
 * with its fsuid/fsgid; for O_CREAT of a missing name, the parent and the name),
 * the judgement of the object reached (or of the name a creation will make), and
 * the job handed to an opener (supervise_opener.c).  The split follows that seam:
 * the name is judged there, the object here, and this is the part that walks.
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

#include "kernel_compat.h"
#include "supervise_open.h"
#include "supervise_open_bench.h"
#include "supervise_tree.h"

/* Loop thread: resolve, judge, hand to an opener.  Answers on every path.
 * ev->result DENY on entry: the name as spelled is denied; the object it reaches
 * is only resolved so that it joins the identity set (lg_judge_object records an
 * object whose real path a rule denies): a hard link to it under another name,
 * made before the session, is then denied too.  The answer is EACCES whatever the
 * resolution finds.
 * simulate: the same resolution and judgement (the name as spelled, then the object
 * it reaches: a hard link of a denied file is a denial in simulation as it is in
 * enforcement), recorded as simulated, and the kernel carries the open out. */
void lg_open_object(struct lg_sup *s, const struct seccomp_notif *req, struct lg_event *ev,
                    int dirfd, const char *path, long long flags, unsigned mode,
                    unsigned long long resolve, int access, int simulate, const char *abs,
                    int abs_bits, int seq)
{
    int tid = (int)req->pid;
    int learn = simulate || ev->result == LG_EFFECT_DENY;
    struct open_job *j = calloc(1, sizeof *j);
    if (!j) {
        if (simulate) {
            lg_push_event(s, ev);  /* the name's judgement: the object could not be */
            lg_send_resp(s, req->id, 0, 0, 1);
            return;
        }
        if (!learn)
            ev->flags |= LG_EV_FAILCLOSED;
        ev->result = LG_EFFECT_DENY;
        lg_open_answer(s, req->id, ev, learn ? EACCES : ENOMEM);
        return;
    }
    j->s = s;
    j->id = req->id;
    j->obj = j->parent = j->own_dir = j->own_fd = -1;
    j->bench_seq = seq;
    j->flags = flags;
    j->mode = mode;
    j->access = access;
    /* /proc/TID/status only when this open needs what it alone says: the umask to
     * create, the caller's own pid-namespace ids for its /proc/self, /dev/fd
     * spellings (lg_rewrite_self, lg_strip_own_root, lg_own_proc_prepare). */
    int need_status = (flags & (O_CREAT | __O_TMPFILE)) || strncmp(path, "/proc", 5) == 0 ||
                      strncmp(path, "/dev/", 5) == 0;
    int rc = lg_read_open_creds(s, tid, &j->creds, need_status);
    /* An absolute path's walk starts at the caller's root, which is the
     * session's: no task under the launcher's filter can change its root or
     * its mounts (supervise_root.c).  Even were one to, the walk would only
     * start elsewhere: the object it reaches is the object judged below and
     * the one handed over (never walked again), opened under the sandbox's
     * Landlock domain.  Borrowed: never closed here. */
    int root = -1;
    if (rc == 0 && path[0] == '/') {
        root = lg_session_root(s, tid, req->id);
        if (root < 0)
            rc = root;
    }
    if (rc < 0 || !lg_id_valid(s, req->id)) {
        if (!lg_id_valid(s, req->id)) {
            lg_count(s, LG_COUNT_GONE);
            lg_open_job_free(j);
            return;
        }
        if (learn)
            goto learned;  /* refused by its name: not fail-closed, only not learnt */
        goto failclosed;
    }
    ev->pid = j->creds.tgid;
    LG_OPEN_MARK(seq, LG_OP_CREDS);

    char p[PATH_MAX];
    int fdnum = -1;
    /* In its own view: in a pid namespace /proc/self is its namespace's pid,
     * resolved below in its procfs (under /proc/TID/root). */
    if (lg_rewrite_self(path, j->creds.ns_tgid, j->creds.ns_tid, p, sizeof p, &fdnum) < 0) {
        if (learn)
            goto learned;
        ev->result = LG_EFFECT_ALLOW;
        lg_open_answer(s, req->id, ev, ENAMETOOLONG);
        lg_open_job_free(j);
        return;
    }
    if (fdnum < 0)
        lg_strip_own_root(p, j->creds.ns_tgid, j->creds.ns_tid);
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
            lg_open_job_free(j);
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
            base = root;  /* the session's (p is absolute exactly when path is): borrowed */
            if (base < 0)
                errno = EIO;
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
                lg_open_job_free(j);
                return;
            }
            if (learn)
                goto learned;
            ev->result = LG_EFFECT_ALLOW;  /* e.g. EBADF for a bad dirfd: the kernel's answer */
            lg_open_answer(s, req->id, ev, be);
            lg_open_job_free(j);
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
        int o;  /* walked with the caller's search permissions */
        if (lg_walk_as(&j->creds, base, p, &how, &o) < 0) {
            if (!absolute)
                close(base);
            goto failclosed;  /* its ids would not switch back: lg_walk_as says why */
        }
        e = o < 0 ? -o : 0;
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
            char dir[PATH_MAX];
            const char *name = lg_walk_split(p, len, dir, sizeof dir);
            size_t nl = len - (size_t)(name - p);
            if (trailing || nl == 0 || nl > NAME_MAX || (nl == 1 && name[0] == '.') ||
                (nl == 2 && name[0] == '.' && name[1] == '.')) {
                e = trailing ? EISDIR : (nl > NAME_MAX ? ENAMETOOLONG : EISDIR);
            } else {
                memcpy(j->name, name, nl);
                j->name[nl] = '\0';
                how.flags = O_PATH | O_DIRECTORY | O_CLOEXEC;
                if (lg_walk_as(&j->creds, base, dir, &how, &o) < 0) {
                    if (!absolute)
                        close(base);
                    goto failclosed;
                }
                e = o < 0 ? -o : 0;
                j->parent = o >= 0 ? o : -1;
            }
        }
        if (!absolute)
            close(base);
    }
    if (!lg_id_valid(s, req->id)) {
        lg_count(s, LG_COUNT_GONE);
        lg_open_job_free(j);
        return;
    }
    LG_OPEN_MARK(seq, LG_OP_RESOLVE);
learned:
    if (learn) {
        char seen[PATH_MAX];
        int r = -1, od = 0;
        if (j->obj >= 0) {
            od = lg_judge_object_named(s, j->obj, access, &r, seen, sizeof seen, abs, abs_bits);
            if (od < 0)
                lg_count(s, LG_COUNT_ERRORS);  /* not learnt: this name is refused all the same */
        }
        if (simulate) {
            if (ev->result != LG_EFFECT_DENY && od > 0) {
                ev->result = LG_EFFECT_DENY;  /* the object is denied: enforcement's answer */
                ev->rule = r;
                if (strcmp(seen, ev->target) != 0) {
                    const char *w = (access & LG_ACCESS_WRITE) ? "write " : "read ";
                    size_t wl = strlen(w);
                    memcpy(ev->detail, w, wl);
                    lg_copy_target(ev->detail + wl, sizeof ev->detail - wl, seen, NULL);
                }
            }
            lg_push_event(s, ev);
            lg_send_resp(s, req->id, 0, 0, 1);  /* simulation blocks nothing */
            lg_open_job_free(j);
            return;
        }
        lg_open_answer(s, req->id, ev, EACCES);
        lg_open_job_free(j);
        return;
    }
    if (e) {
        ev->result = LG_EFFECT_ALLOW;  /* the kernel's own answer (ENOENT, ELOOP, EEXIST...) */
        lg_open_answer(s, req->id, ev, e);
        lg_open_job_free(j);
        return;
    }
    char real[PATH_MAX];
    int rule = -1;
    int d;
    if (j->obj >= 0) {
        d = lg_judge_object_named(s, j->obj, access, &rule, real, sizeof real, abs, abs_bits);
    } else {
        /* creation: judge the name it will have, before anything exists */
        char dirpath[PATH_MAX];
        d = lg_fd_path(j->parent, dirpath, sizeof dirpath);
        if (d == 0) {
            int w = snprintf(real, sizeof real, "%s/%s", strcmp(dirpath, "/") == 0 ? "" : dirpath,
                             (flags & __O_TMPFILE) == __O_TMPFILE ? "" : j->name);
            d = (w < 0 || (size_t)w >= sizeof real) ? -ENAMETOOLONG
                : (lg_judge_path(&s->t, real, strlen(real), access, &rule) & access) ? 1 : 0;
        }
        if (d == 0 && s->t.n_deny_trees > 0) {
            /* The parent's identity too (a tree reached through another mount, whose path
             * no rule names): decided here, before the opener creates anything, so a
             * refused creation leaves no empty file behind.  The opener's judgement of
             * the created object stays, for a name raced in by link(2). */
            int tr = -1;
            d = lg_tree_dir(&s->t, j->parent, dirpath, access, &tr);
            if (d > 0)
                rule = tr;
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
        lg_open_answer(s, req->id, ev, EACCES);
        lg_open_job_free(j);
        return;
    }
    LG_OPEN_MARK(seq, LG_OP_JUDGE);
    if (lg_own_proc_prepare(j, p, flags) < 0)
        goto failclosed;
    j->ev = *ev;
    LG_OPEN_MARK(seq, LG_OP_SUBMIT);
    rc = lg_pool_submit_here(&s->openpool, lg_open_worker, j);
    if (rc < 0) {
        ev->result = LG_EFFECT_DENY;
        ev->flags |= LG_EV_FAILCLOSED;
        lg_open_answer(s, req->id, ev, EAGAIN);
        lg_open_job_free(j);
    }
    return;

failclosed:
    ev->result = LG_EFFECT_DENY;
    ev->flags |= LG_EV_FAILCLOSED;
    lg_open_answer(s, req->id, ev, EACCES);
    lg_open_job_free(j);
}

