/* supervise_caller_kept.c: pidfds kept between notifications, one table keyed by pid:
 * a caller's own (for its next notification) and the ancestors the inheritance walk
 * went through, each with the identity taken when it was opened.
 *
 * Apart from supervise_caller.c (which asks who a caller is) because keeping a pidfd is
 * a claim of its own, that the kept one still names the process that holds the pid:
 * the argument for it, and the one guard every use goes through (anc_ask), sit here
 * together.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>

#include "kernel_compat.h"
#include "supervise_int.h"

/* ---- the inheritance walk's processes: a kept pidfd per pid ----------------
 *
 * The walk (supervise_exec_admit.c, lg_exec_inherited) asks each ancestor of an exec no rule
 * decides for its identity and parent: pidfd_open, PIDFD_GET_INFO, fstat and
 * close, 5.3 us per ancestor on this VM, for the same shell or make behind
 * every child.  Its pidfd is kept instead (loop thread only: no lock), in a
 * small table keyed by pid, with the identity taken when it was opened; the
 * next walk through that pid asks PIDFD_GET_INFO on the kept pidfd (0.8 us).
 *
 * Why a kept pidfd never answers for a process that reused the pid: the ioctl
 * answers only while the pidfd's process exists (a zombie too: until it is
 * reaped, its pid cannot be given to anyone), and says its pid now; an answer
 * with info.pid == pid means the pid still belongs to the process the
 * identity was taken from.  Any other answer (ESRCH once it is reaped) clears
 * the slot and a fresh pidfd is opened on the pid, which names whoever holds
 * it now.  The parent is read on every ask (a process is reparented when its
 * parent dies).  test_exec.py's pid_reuse case meets a reused pid that an
 * earlier walk went through. */
#define LG_ANC_SLOTS 64

struct lg_anc_slot {
    int pid;  /* 0: empty (then fd is not ours) */
    int fd;
    unsigned long long id;
};

static void anc_clear(struct lg_anc_slot *sl)
{
    if (sl->pid != 0)
        close(sl->fd);
    sl->pid = 0;
    sl->fd = -1;
}

void lg_caller_kept_fini(struct lg_sup *s)
{
    if (!s->anc)
        return;
    for (int i = 0; i < LG_ANC_SLOTS; i++)
        anc_clear(&s->anc[i]);
    free(s->anc);
    s->anc = NULL;
}

static struct lg_anc_slot *anc_slot(struct lg_sup *s, int pid)
{
    if (!s->anc)
        s->anc = calloc(LG_ANC_SLOTS, sizeof *s->anc);  /* pid 0: every slot empty */
    return s->anc ? &s->anc[(unsigned)pid % LG_ANC_SLOTS] : NULL;
}

/* The kept slot's answer for pid: 0 with *ppid (and *tgid), or -1 (the slot is
 * cleared).  The guard of every use of the table: a kept pidfd is answered for
 * only while the kernel says its process still holds pid. */
static int anc_ask(struct lg_anc_slot *sl, int pid, int *ppid, int *tgid)
{
    struct lg_pidfd_info info;
    memset(&info, 0, sizeof info);
    info.mask = LG_PIDFD_INFO_PID;
    if (ioctl(sl->fd, LG_PIDFD_GET_INFO, &info) == 0 && (info.mask & LG_PIDFD_INFO_PID) &&
        info.pid == (__u32)pid) {
        *ppid = (int)info.ppid;
        if (tgid)
            *tgid = (int)info.tgid;
        return 0;
    }
    anc_clear(sl);  /* gone or reaped: its pid may be someone else's now */
    return -1;
}

/* ---- the caller's pidfd: kept per process --------------------------------
 *
 * Every notification opened a pidfd on its caller (pidfd_open, then fstat for
 * the identity and close after the answer: ~8 us on this VM), also when the
 * same process asks again: a shell's child trying each $PATH entry (one
 * notification per entry), a script that execs, a process whose exec failed.
 * The caller's pidfd is now kept after the answer in the walk's table above
 * (the same pidfds: a process's pidfd is the same whether it asked or is an
 * ancestor of one who asked), with its identity, when the caller is its
 * process's leader (tid == tgid; a non-leader's thread pidfd is never kept, so
 * a slot always names a process).  The next notification from that pid asks
 * PIDFD_GET_INFO on the kept pidfd (anc_ask) before anything it says is used:
 * the answer says tgid and ppid now, and that the pidfd's process holds the pid
 * now.  Why that makes it the caller's: the caller holds its tid from before
 * the notification until it is reaped, which is after its notification is
 * gone (ID_VALID, checked afterwards, says it is not); a pid is held by one
 * process at a time, and the kept pidfd's process, alive now, has held it since
 * it was kept (a reaped process's pidfd answers ESRCH forever).  So both are
 * one process: the identity kept with the pidfd is the caller's, exactly as if
 * it had been opened now.  An exec keeps it so (the pidfd names the struct pid,
 * which stays the process's across exec, also when a non-leader thread execs
 * and takes over the leader's pid).  Anything else (ESRCH, another pid, another
 * tgid) clears the slot and a fresh pidfd is opened, as before.
 * test_exec.py's pid_reuse "self" case execs from a process that reused the pid
 * of an admitted one whose pidfd was kept: with the slot's identity served
 * without the ask, the reused pid inherited the admission and ran. */
int lg_caller_pidfd(struct lg_sup *s, int tid, struct lg_ident *o)
{
    o->kept = 0;
    if (!s->ident_pidfd)
        return -1;
    struct lg_anc_slot *sl = anc_slot(s, tid);
    int ppid, tgid;
    if (sl && sl->pid == tid && anc_ask(sl, tid, &ppid, &tgid) == 0) {
        if (tgid == tid) {
            o->kept = 1;
            o->tgid = tgid;
            o->ppid = ppid;
            o->id = sl->id;
            o->id_pending = 0;
            return sl->fd;  /* borrowed: lg_caller_done keeps it */
        }
        anc_clear(sl);  /* a leader's pid is never a non-leader's: not ours to keep */
    }
    return (int)syscall(__NR_pidfd_open, tid, PIDFD_THREAD);
}

/* After the answer: keep the caller's own pidfd for its next notification when
 * asked to (keep: the caller is expected to ask again) and it names a process's
 * leader whose identity is known; else close it.  A kept (borrowed) one stays
 * where it is. */
void lg_caller_done(struct lg_sup *s, int tid, int pidfd, struct lg_ident *o, int keep)
{
    if (pidfd < 0 || o->kept)
        return;
    struct lg_anc_slot *sl = keep && o->tgid == tid && lg_caller_id(pidfd, o) == 0
                                 ? anc_slot(s, tid)
                                 : NULL;
    if (!sl) {
        close(pidfd);
        return;
    }
    anc_clear(sl);
    sl->pid = tid;
    sl->fd = pidfd;
    sl->id = o->id;
}

int lg_proc_ident(struct lg_sup *s, int pid, int *ppid, unsigned long long *id)
{
    if (s->ident_pidfd) {
        struct lg_anc_slot *sl = anc_slot(s, pid);
        if (sl && sl->pid == pid && anc_ask(sl, pid, ppid, NULL) == 0) {
            *id = sl->id;
            return 0;
        }
        int fd = (int)syscall(__NR_pidfd_open, pid, 0);
        if (fd < 0)
            return -errno;
        int tgid;
        int rc = lg_pidfd_ident(fd, &tgid, ppid, id);
        if (rc == 0 && sl) {
            anc_clear(sl);
            sl->pid = pid;
            sl->fd = fd;
            sl->id = *id;
        } else {
            close(fd);
        }
        return rc;
    }
    int threads;
    return lg_proc_stat(pid, ppid, &threads, id);
}
