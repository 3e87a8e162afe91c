/* supervise_open_ownproc.c: the caller's own /proc/PID entries that need ptrace
 * access (maps, environ, mem, ...), which an opener in the sandbox's Landlock domain
 * cannot open for it (the design is in supervise_open.c's header).
 *
 * Two halves of one exception: lg_own_proc_prepare runs on the loop thread (in no
 * Landlock domain) and opens the entry with the caller's credentials; the opener
 * (supervise_opener.c) hands it over only when its own open failed and
 * lg_own_proc_granted says the sandbox's ruleset lets it read that directory.
 * Apart from the opener because it is a narrow exception with its own argument
 * (below), read in one place.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <linux/magic.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>

#include "kernel_compat.h"
#include "supervise_open.h"

/* The caller's own /proc/PID entries that need ptrace access (maps, smaps,
 * environ, auxv, mem, ...): an opener cannot open them.  Landlock's ptrace
 * scoping lets a task reach only tasks in its own domain or a nested one, and
 * each opener's domain is a sibling of the agent's, never an ancestor: the
 * opener gets EACCES where the caller itself would not.  For the caller the
 * kernel never asks: __ptrace_may_access() returns 0 for the same thread group
 * before any LSM runs.  So for these objects, and only for read-only opens,
 * the loop thread (in no Landlock domain) opens the entry here with the caller's
 * fsuid/fsgid/groups (the modes are checked as for the caller), and the opener
 * hands it over only when its own open failed and its Landlock domain (the
 * sandbox's ruleset) lets it read the caller's /proc/PID directory
 * (lg_own_proc_granted): the plan grants READ_DIR only with READ_FILE (a file_read
 * allow), and Landlock rules only add rights beneath them, so READ_DIR there
 * means READ_FILE for every entry beneath, the one asked for included.  The
 * entry is the caller's own: the path is /proc/<its pid>/... spelled without
 * "." or ".." and walked without symlinks from its root, on procfs, and the
 * filter refuses mount/fsmount/move_mount, so the caller's /proc is the procfs
 * landgate gave it (its pid namespace's, or the host's without one).  The
 * compiled decision has judged the object allowed before this runs.  Write
 * opens keep the opener's answer.  Nothing here fails the open: on any doubt
 * own_fd stays -1 and the opener's answer stands.  -1 only when the loop
 * thread could not return to its own credentials (the caller fails closed). */
int lg_own_proc_prepare(struct open_job *j, const char *p, long long flags)
{
    if (j->obj < 0 || (flags & O_ACCMODE) != O_RDONLY || (flags & (O_CREAT | O_TRUNC | O_PATH)) ||
        (flags & __O_TMPFILE) == __O_TMPFILE)
        return 0;
    char dir[32];
    int dl = snprintf(dir, sizeof dir, "/proc/%d", j->creds.ns_tgid);
    if (dl < 0 || (size_t)dl >= sizeof dir || strncmp(p, dir, (size_t)dl) != 0 || p[dl] != '/')
        return 0;
    const char *rest = p + dl + 1;
    for (const char *c = rest;;) {  /* every component a plain name */
        const char *e = strchr(c, '/');
        size_t l = e ? (size_t)(e - c) : strlen(c);
        if (l == 0 || (l == 1 && c[0] == '.') || (l == 2 && c[0] == '.' && c[1] == '.'))
            return 0;
        if (!e)
            break;
        c = e + 1;
    }
    /* the caller's root: the session's (lg_session_root), kept since this
     * absolute path's walk; borrowed, never closed here */
    char link[64];
    int root = j->s->sess_root_set ? j->s->sess_root_fd : -1;
    if (root < 0)
        return 0;
    int d = -1, o = -1, fd = -1;
    if (lg_become(&j->creds) == 0) {
        struct open_how how;
        memset(&how, 0, sizeof how);
        how.flags = O_PATH | O_DIRECTORY | O_CLOEXEC;
        how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
        d = (int)syscall(__NR_openat2, root, dir, &how, sizeof how);
        if (d >= 0) {
            how.flags = O_PATH | O_CLOEXEC;
            how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
            o = (int)syscall(__NR_openat2, d, rest, &how, sizeof how);
        }
        struct statfs sf;
        struct stat a, b;
        if (o >= 0 && fstatfs(d, &sf) == 0 && sf.f_type == PROC_SUPER_MAGIC &&
            fstat(o, &a) == 0 && fstat(j->obj, &b) == 0 && a.st_dev == b.st_dev &&
            a.st_ino == b.st_ino) {
            snprintf(link, sizeof link, "/proc/self/fd/%d", o);
            fd = open(link, (int)(flags & LG_REOPEN_FLAGS) | O_CLOEXEC | O_NOCTTY);
        }
    }
    int back = lg_unbecome(&j->creds);
    if (back < 0 && fd >= 0) {
        close(fd);  /* this thread's identity is in doubt: hand nothing over */
        fd = -1;
    }
    if (o >= 0)
        close(o);
    if (fd >= 0) {
        j->own_dir = d;
        j->own_fd = fd;
    } else if (d >= 0) {
        close(d);
    }
    return back < 0 ? -1 : 0;  /* -1: the loop thread could not take its own identity back */
}

/* Opener thread, with the caller's credentials: may the sandbox's Landlock
 * ruleset read the caller's /proc/PID directory?  See lg_own_proc_prepare. */
int lg_own_proc_granted(const struct open_job *j)
{
    char self[64];
    snprintf(self, sizeof self, "/proc/self/fd/%d", j->own_dir);
    int fd = open(self, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return 0;
    close(fd);
    return 1;
}
