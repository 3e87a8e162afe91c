/* supervise_walk.c: one walk in the caller's view, shared by the open check
 * (supervise_open_object.c: the object an open reaches, or the parent of a name it creates)
 * and the fsop check (supervise_fsop_name.c: the parent of a name made or moved, the object
 * linked or truncated).
 *
 * Apart because the two checks walked the same way in three copies, and the part that
 * matters, the fail-closed unwinding of the credential switch, must not drift between
 * them: one copy, checked once.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <linux/openat2.h>
#include <sys/syscall.h>

#include "kernel_compat.h"
#include "supervise_int.h"

/* The directory part of path[0, end) into dir (".", "/" or the text before the last
 * slash) and where its last component starts (inside path).  end: the caller's choice
 * of trailing slashes (the fsop check keeps them on the last component, the open check
 * refuses them first).  dir has room for PATH_MAX; the caller's path is shorter (it was
 * read into a PATH_MAX buffer), so the copy is never cut. */
const char *lg_walk_split(const char *path, size_t end, char *dir, size_t cap)
{
    const char *slash = memrchr(path, '/', end);
    if (!slash)
        snprintf(dir, cap, ".");
    else if (slash == path)
        snprintf(dir, cap, "/");
    else
        snprintf(dir, cap, "%.*s", (int)(slash - path), path);
    return slash ? slash + 1 : path;
}

/* openat2(base, path, how) wearing the caller's fsuid, fsgid and groups (lg_become), so
 * the walk meets the caller's search permissions, not landgate's.
 *
 * *fd: the fd (ours to close), or -errno: the walk's own answer (ENOENT, ELOOP, EXDEV...,
 * or lg_become's refusal, then nothing was walked) for the caller to relay.
 * Returns 0, or -EPERM when the thread could not get landgate's own ids back: then no fd
 * is left open (*fd is -EPERM) and the caller must fail closed.
 *
 * Why fail closed: a thread that could not switch back wears some of the caller's ids,
 * and a caller can provoke the failure (setgroups allocates: ENOMEM).  Carrying on would
 * judge and hand to an opener an object reached while the thread's identity is unknown,
 * and do landgate's own next steps on this thread (its /proc reads, its own opens) with
 * ids nobody chose: a failure to unwind must turn into a refusal, never into an open. */
int lg_walk_as(const struct lg_creds *c, int base, const char *path, const struct open_how *how,
               int *fd)
{
    int rc = lg_become(c);
    int o = rc < 0 ? rc : (int)syscall(__NR_openat2, base, path, how, sizeof *how);
    int e = o < 0 ? (rc < 0 ? -rc : errno) : 0;  /* read before lg_unbecome's syscalls */
    if (lg_unbecome(c) < 0) {
        if (o >= 0)
            close(o);  /* reached under ids we cannot vouch for: never acted on */
        *fd = -EPERM;
        return -EPERM;
    }
    *fd = o < 0 ? -e : o;
    return 0;
}
