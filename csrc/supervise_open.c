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
 *     fsuid/fsgid and tgid (PIDFD_GET_INFO on a pidfd kept per thread; its
 *     groups, umask and pid-namespace ids from /proc/TID/status only when this
 *     open needs them: supervise_creds.c), and resolve the path in the
 *     caller's view to an O_PATH fd with the caller's fsuid/fsgid: openat2
 *     relative to the caller's cwd (/proc/TID/cwd) or dirfd (pidfd_getfd),
 *     absolute paths under the caller's root (the session's, opened once per
 *     session: lg_session_root, supervise_caller.c; RESOLVE_IN_ROOT), always
 *     RESOLVE_NO_MAGICLINKS: /proc/PID/root|cwd|fd/N
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
 *     wears the caller's fsuid/fsgid/groups (switching only what differs from
 *     the job before) and umask (its own fs_struct:
 *     unshare(CLONE_FS)) and only the capabilities the agent keeps, so it
 *     cannot open what the kernel would refuse the caller.  O_CREAT of a
 *     missing name is judged by the parent's real path plus the name, and by
 *     the parent's identity against the trees denied whole (supervise_tree.h),
 *     BEFORE anything is created, then created with openat2 beneath the parent
 *     (RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS: no dangling-symlink creation of
 *     another name) and judged again (a racing link(2) may have put a denied
 *     inode there; O_TRUNC is applied only after that judgement).
 *  4. SECCOMP_IOCTL_NOTIF_ADDFD with SECCOMP_ADDFD_FLAG_SEND: the fd lands
 *     in the caller (O_CLOEXEC as it asked) and is the syscall's value; or
 *     the caller gets EACCES.  Openers may block (a FIFO without a writer):
 *     they are a pool, never the loop.  The loop hands each job to the opener
 *     pinned to the CPU it runs on (a lane, supervise_pool.c), so the open stays
 *     on the caller's CPU; a busy or missing lane sends it to the shared queue.
 *
 * Known differences from the kernel's own open: a symlink as the last
 * component of an O_CREAT path is refused (ELOOP) instead of followed; the
 * open never acquires a controlling terminal (O_NOCTTY); openat2 with a
 * struct larger than 24 bytes is refused (E2BIG).
 *
 * Why two opens (the O_PATH walk, then the reopen) even for a read: the object
 * is judged before anything opens it.  Opening a FIFO or a device node for
 * reading acts on its own (a FIFO's blocked writer is released and then sees
 * the pipe closed; a watchdog or tape device acts on open and close), and no
 * open flag asks the kernel to refuse those types, so a denied one would
 * already have acted when it was judged.  The reopen costs ~4.5 us of the
 * ~50 us an open check takes on the 2-CPU VM.
 *
 * This file: the notification, the resolution and the judgement on the loop
 * thread.  supervise_opener.c: step 3 and the answer; supervise_identity.c:
 * the identity set; supervise_open_path.c: the caller's view of a path.
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
static void enforce_open(struct lg_sup *s, const struct seccomp_notif *req, struct lg_event *ev,
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
     * its mounts (supervise_caller.c).  Even were one to, the walk would only
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
        rc = lg_become(&j->creds);  /* walk with the caller's search permissions */
        int o = rc < 0 ? rc : (int)syscall(__NR_openat2, base, p, &how, sizeof how);
        e = o < 0 ? (rc < 0 ? -rc : errno) : 0;
        if (lg_unbecome(&j->creds) < 0) {
            if (o >= 0)
                close(o);
            if (!absolute)
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
                    if (!absolute)
                        close(base);
                    goto failclosed;
                }
                j->parent = o;
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
    int seq = LG_OPEN_BEGIN();
    int rc = lg_read_str(tid, pptr, path, sizeof path, &plen);
    if (rc == 0)
        rc = how_rc;
    if (!lg_id_valid(s, req->id)) {
        lg_count(s, LG_COUNT_GONE);
        return;
    }
    LG_OPEN_MARK(seq, LG_OP_READ);
    int access = (flags & O_ACCMODE) == O_RDONLY ? LG_ACCESS_READ : LG_ACCESS_WRITE;
    if ((flags & O_ACCMODE) == O_RDWR)
        access = LG_ACCESS_READ | LG_ACCESS_WRITE;
    if (flags & (O_CREAT | O_TRUNC))
        access |= LG_ACCESS_WRITE;
    if (flags & O_PATH)
        access = LG_ACCESS_READ;  /* no data access, but its metadata: judged as a read */
    char abs[PATH_MAX];
    int abs_bits = -1;  /* what the spelling denies (lg_judge_path), once judged */
    if (rc == 0)
        rc = lg_absolute_in_view(tid, dirfd, path, abs, sizeof abs);
    if (rc == 0) {
        lg_copy_target(ev.target, sizeof ev.target, abs, &ev.flags);
        int rule = -1;
        abs_bits = lg_judge_path(&s->t, abs, strlen(abs), access, &rule);
        ev.result = abs_bits & access ? LG_EFFECT_DENY : LG_EFFECT_ALLOW;
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
    LG_OPEN_MARK(seq, LG_OP_SPELL);
    if (!s->simulate && s->t.open_check && s->openpool.ready) {
        if (rc == -E2BIG && plen == 0 && how_rc == 0) {
            ev.result = LG_EFFECT_ALLOW;  /* longer than PATH_MAX: the kernel's answer */
            lg_open_answer(s, req->id, &ev, ENAMETOOLONG);
            return;
        }
        if (rc < 0) {
            ev.result = LG_EFFECT_DENY;
            ev.flags |= LG_EV_FAILCLOSED;
            lg_open_answer(s, req->id, &ev, rc == -EFAULT || rc == -EINVAL || rc == -E2BIG ? -rc : EACCES);
            return;
        }
        if (flags & O_PATH) {
            /* openat2 (the filter leaves open/openat O_PATH to the kernel): an O_PATH
             * fd reads and writes nothing, and ADDFD cannot inject one; its reopen
             * through /proc/self/fd/N is an open judged here.  No TOCTOU matters:
             * whatever object the kernel's walk finds, no data access is granted. */
            ev.result = LG_EFFECT_ALLOW;  /* not judged: as open/openat with O_PATH */
            ev.rule = -1;
            lg_open_record(s, &ev);
            lg_send_resp(s, req->id, 0, 0, 1);
            return;
        }
        if (ev.result == LG_EFFECT_DENY) {
            /* the spelling itself is denied (also for a name not yet created):
             * EACCES, after the object it names joins the identity set */
            ev.err = EACCES;
            enforce_open(s, req, &ev, dirfd, path, flags, mode, resolve, access, 0, abs, abs_bits, seq);
            return;
        }
        ev.rule = -1;
        enforce_open(s, req, &ev, dirfd, path, flags, mode, resolve, access, 0, abs, abs_bits, seq);
        return;
    }
    if (s->simulate) {
        ev.flags |= LG_EV_SIMULATED;
        if (rc == 0 && (flags & O_PATH)) {
            ev.result = LG_EFFECT_ALLOW;  /* as enforcement: an O_PATH open is not judged */
            ev.rule = -1;
        } else if (rc == 0) {
            enforce_open(s, req, &ev, dirfd, path, flags, mode, resolve, access, 1, abs, abs_bits, seq);
            return;
        }
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
