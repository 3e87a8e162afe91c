/* supervise_root.c: the sandbox's root, opened once per session and kept; every check
 * resolves absolute names from it (the premise that makes that right is below).
 *
 * Apart from supervise_caller.c because it is not about the caller: it is one fd for the
 * whole session, and the argument that any caller's root is every caller's root is the
 * part the exec, open, unix-socket and file-operation checks all rest on.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include "supervise_int.h"

/* ---- the sandbox's root: one per session ----------------------------------
 *
 * An exec's absolute names are resolved from the caller's root (RESOLVE_IN_ROOT)
 * and walked from it again by the stable check; so are the open check's, a
 * unix socket's and a file operation's (supervise_open.c, supervise_net.c,
 * supervise_fsop.c).  Opening /proc/TID/root for each cost a /proc lookup of a
 * process that is often new (and its teardown at exit).  It is opened once
 * instead, at the first notification that needs it, and used for every later
 * one, on the launcher filter's premise that no task under it
 * can change its root or its mounts: chroot, pivot_root, setns, the mount
 * family (mount, umount2, open_tree, move_mount, fsopen, fsmount, fspick,
 * mount_setattr) and CLONE_NEW* in clone and unshare are refused
 * (sandbox/plan/seccomp_table.py; clone3 is refused, so clone's flags are
 * always seen).  Every task the filter notifies descends from the one it was
 * installed in and inherits its root, which nothing under the filter can move,
 * so any caller's root is every caller's root.  (fs_struct is shared only by
 * CLONE_FS siblings, which are under the same filter.)  Where the kernel walks
 * the name again after the answer (an exec, a datagram sent by CONTINUE) the
 * premise is load-bearing: tests/supervise/test_exec_root.py and
 * test_session_root.py attack it (a caller that could chroot would run a
 * program, or reach a socket, the supervisor never judged).  Where the
 * supervisor acts on the object it walked (the open check's fd, a connect or a
 * forwarded send through its O_PATH fd, a file operation on its parent fd) a
 * wrong root could only hand over another object, judged all the same. */

/* The session's root for a caller whose notification id is pending: the one
 * kept, or, before any is, /proc/TID/root opened now and kept only when the
 * notification is still pending afterwards (so it is a sandboxed task's root,
 * never that of a process that reused tid).  Borrowed: never closed by the
 * caller.  The fd, or -errno (-ESRCH: the caller is gone).  The one place a
 * root is opened and kept: the exec check (supervise_exec.c), the open check,
 * the unix-socket connect path and the file operations all ask here. */
int lg_session_root(struct lg_sup *s, int tid, unsigned long long id)
{
    if (s->sess_root_set)
        return s->sess_root_fd;
    char link[64];
    snprintf(link, sizeof link, "/proc/%d/root", tid);
    int fd = open(link, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? -ESRCH : -errno;
    if (!lg_id_valid(s, id)) {
        close(fd);
        return -ESRCH;
    }
    s->sess_root_fd = fd;
    s->sess_root_set = 1;
    /* Asked of every stable walk (supervise_exec_stable.c), answered once: an
     * open fd's inode never changes, and neither do the write trees' identities
     * (taken at the start). */
    s->sess_root_wt = lg_root_wt(s, fd);
    return fd;
}

void lg_session_root_fini(struct lg_sup *s)
{
    if (s->sess_root_set)
        close(s->sess_root_fd);
    s->sess_root_set = 0;
}
