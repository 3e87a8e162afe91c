/* supervise_opener.c: the open check's opener threads (see supervise_open.c
 * for the whole design).  An opener performs the open the loop thread judged:
 * restricted by the sandbox's own Landlock ruleset, with the caller's
 * fsuid/fsgid/groups and umask and only the capabilities the agent keeps, so
 * it can open nothing the kernel would refuse the caller.  Openers may block
 * (a FIFO without a writer): they are a pool, never the loop thread.
 *
 * This file: each job's open, the judgement of what a creation made, the
 * ADDFD hand-over, and the answer (recorded, a denial reported).  The pool's
 * set-up is supervise_open_init.c; the caller's own /proc entries,
 * supervise_open_ownproc.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/magic.h>
#include <linux/openat2.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>

#include "kernel_compat.h"
#include "supervise_open.h"
#include "supervise_open_bench.h"


void lg_open_job_free(struct open_job *j)
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
void lg_open_record(struct lg_sup *s, const struct lg_event *ev)
{
    if (ev->result == LG_EFFECT_DENY || s->t.file_access_all)
        lg_push_event(s, ev);
}

/* Record, report a denial (told: one stderr line; otherwise the trail entry
 * alone), answer. */
void lg_open_answer_as(struct lg_sup *s, unsigned long long id, struct lg_event *ev, int err,
                           int told)
{
    ev->t_resp_ns = lg_now_ns();
    ev->err = err;
    if (told && ev->result == LG_EFFECT_DENY && !(ev->flags & LG_EV_FAILCLOSED))
        lg_report_denial(s, (ev->detail[0] == 'w') ? "file_write" : "file_read", ev->target, ev->rule);
    lg_open_record(s, ev);
    lg_send_resp(s, id, 0, err, 0);
}

void lg_open_answer(struct lg_sup *s, unsigned long long id, struct lg_event *ev, int err)
{
    lg_open_answer_as(s, id, ev, err, 1);
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
    char real[PATH_MAX];
    const char *w = (access & LG_ACCESS_WRITE) ? "write" : "read";
    if (fd < 0 || lg_fd_path(fd, real, sizeof real) < 0 || real[0] == '\0') {
        snprintf(ev->detail, sizeof ev->detail, "%s", w);
        return;
    }
    if (strcmp(real, ev->target) == 0) {
        snprintf(ev->detail, sizeof ev->detail, "%s", w);
        return;
    }
    size_t wl = strlen(w);
    memcpy(ev->detail, w, wl);
    ev->detail[wl] = ' ';
    lg_copy_target(ev->detail + wl + 1, sizeof ev->detail - wl - 1, real, NULL);
}

void *lg_open_worker(void *arg)
{
    struct open_job *j = arg;
    struct lg_sup *s = j->s;
    int seq = j->bench_seq;
    LG_OPEN_MARK(seq, LG_OP_PICKUP);
    int rc = lg_pool_thread_ok();
    if (rc < 0) {
        /* This opener is not restricted: it must not open anything. */
        j->ev.result = LG_EFFECT_DENY;
        j->ev.flags |= LG_EV_FAILCLOSED;
        lg_open_answer(s, j->id, &j->ev, EACCES);
        lg_open_job_free(j);
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
            /* Same inode as judged; Landlock checks this open against the sandbox's rules. */
            fd = lg_sup_fd_reopen(s, j->obj, fl | (int)(j->flags & O_TRUNC));
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
    LG_OPEN_MARK(seq, LG_OP_REOPEN);
    if (fd < 0 && e == EACCES && j->own_fd >= 0 && lg_own_proc_granted(j)) {
        fd = j->own_fd;  /* the caller's own /proc entry: see lg_own_proc_prepare */
        j->own_fd = -1;
        e = 0;
    }
    int refused = (fd < 0 && e == EACCES) ? landlock_refused(j) : 0;
    /* No lg_unbecome: the opener keeps wearing the caller's ids into its next
     * job, whose lg_become switches only what differs (the same caller: nothing).
     * Wearing them is less than landgate's own identity, inside the same
     * Landlock domain, and every job here and in supervise_fsop_do.c starts
     * with lg_become. */
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
        lg_open_answer_as(s, j->id, &j->ev, e ? e : EIO, told);
        lg_open_job_free(j);
        return NULL;
    }
    if (creating) {
        /* A racing link(2) may have put a denied inode at this name between
         * the walk and the create: judge what was opened. */
        char real[PATH_MAX];
        int rule = -1;
        int d = lg_judge_object(s, fd, j->access, &rule, real, sizeof real);
        if (d != 0) {
            close(fd);
            j->ev.result = LG_EFFECT_DENY;
            j->ev.rule = rule;
            if (d < 0)
                j->ev.flags |= LG_EV_FAILCLOSED;
            lg_open_answer(s, j->id, &j->ev, EACCES);
            lg_open_job_free(j);
            return NULL;
        }
        struct stat st;
        if ((j->flags & O_TRUNC) && (j->flags & O_ACCMODE) != O_RDONLY && fstat(fd, &st) == 0 &&
            S_ISREG(st.st_mode) && ftruncate(fd, 0) != 0) {
            e = errno;
            close(fd);
            j->ev.result = LG_EFFECT_ALLOW;
            lg_open_answer(s, j->id, &j->ev, e);
            lg_open_job_free(j);
            return NULL;
        }
    }
    j->ev.result = LG_EFFECT_ALLOW;
    j->ev.t_resp_ns = lg_now_ns();
    lg_open_record(s, &j->ev);  /* recorded (file_access: all) before the caller has the fd */
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
    LG_OPEN_MARK(seq, LG_OP_ADDFD);
    close(fd);
    lg_open_job_free(j);
    LG_OPEN_MARK(seq, LG_OP_DONE);
    return NULL;
}

