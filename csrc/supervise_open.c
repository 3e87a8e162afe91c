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
 *     session: lg_session_root, supervise_root.c; RESOLVE_IN_ROOT), always
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
 * This file: the notification (its arguments, the path copied once) and the
 * judgement of the path as spelled, on the loop thread; then, unless the open
 * is refused or left to the kernel here, supervise_open_object.c: steps 1 and
 * 2 on the object the path reaches.  supervise_opener.c: step 3 and the answer;
 * supervise_open_init.c: the openers' set-up; supervise_identity.c: the
 * identity set; supervise_open_path.c: the caller's view of a path.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>

#include "kernel_compat.h"
#include "supervise_open.h"
#include "supervise_open_bench.h"

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
            lg_open_object(s, req, &ev, dirfd, path, flags, mode, resolve, access, 0, abs, abs_bits, seq);
            return;
        }
        ev.rule = -1;
        lg_open_object(s, req, &ev, dirfd, path, flags, mode, resolve, access, 0, abs, abs_bits, seq);
        return;
    }
    if (s->simulate) {
        ev.flags |= LG_EV_SIMULATED;
        if (rc == 0 && (flags & O_PATH)) {
            ev.result = LG_EFFECT_ALLOW;  /* as enforcement: an O_PATH open is not judged */
            ev.rule = -1;
        } else if (rc == 0) {
            lg_open_object(s, req, &ev, dirfd, path, flags, mode, resolve, access, 1, abs, abs_bits, seq);
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
