/* supervise_fsop_name.c: a name an fsop makes or moves, resolved in the caller's view
 * (step 1 of supervise_fsop.c's design, on the loop thread).
 *
 * The parent of the name is opened as an O_PATH fd with the caller's fsuid/fsgid
 * (openat2 from its cwd, its dirfd, or the session's root with RESOLVE_IN_ROOT for an
 * absolute path; always RESOLVE_NO_MAGICLINKS), and the real name is the parent's
 * path as the kernel names it plus the last component as spelled.  Apart from the
 * handler because this is the one part that walks the caller's paths: what it
 * returns is what is judged (supervise_fsop_judge.c) and what the opener acts on.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <linux/openat2.h>

#include "kernel_compat.h"
#include "supervise_fsop.h"

/* The directory a path starts from, in the caller's view: its root for an
 * absolute path (the session's, lg_session_root: no task under the filter can
 * change it, and the operation is performed on the parent walked here, never
 * walked again), its cwd, or its dirfd.  An fd (ours to close), or -errno. */
int lg_fsop_base_fd(struct lg_sup *s, unsigned long long id, int tid, int dirfd, const char *path)
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

/* openat2 from base with the caller's credentials: absolute paths under its root.
 * The fd, or -errno (-EPERM too when the ids would not switch back: lg_walk_as). */
int lg_fsop_walk(const struct lg_creds *c, int base, const char *path, unsigned long long flags)
{
    struct open_how how;
    memset(&how, 0, sizeof how);
    how.flags = flags | O_PATH | O_CLOEXEC;
    how.resolve = RESOLVE_NO_MAGICLINKS | (path[0] == '/' ? RESOLVE_IN_ROOT : 0);
    int fd;
    int rc = lg_walk_as(c, base, path, &how, &fd);
    return rc < 0 ? rc : fd;
}

int lg_fsop_fd_path(int fd, char *out, size_t cap)
{
    int rc = lg_fd_path(fd, out, cap);
    if (rc < 0)
        return rc;
    return out[0] == '/' ? 0 : -ENOENT;  /* "(deleted)" targets and anon inodes have no name */
}

/* Resolve the parent of `path` and name its last component.  0 or -errno
 * (the kernel's own answer for a bad path: ENOENT, ENOTDIR, EBADF, ELOOP). */
int lg_fsop_resolve_name(struct lg_sup *s, unsigned long long id, int tid, const struct lg_creds *c,
                        int dirfd, const char *path, struct fs_name *n)
{
    size_t len = strlen(path);
    if (len == 0)
        return -ENOENT;
    size_t end = len;
    while (end > 1 && path[end - 1] == '/')
        end--;  /* "dir/" names dir: the slash stays on the last component */
    char dir[PATH_MAX];
    const char *last = lg_walk_split(path, end, dir, sizeof dir);
    size_t ll = len - (size_t)(last - path), nl = end - (size_t)(last - path);
    if (nl == 0 || (nl == 1 && last[0] == '.') || (nl == 2 && last[0] == '.' && last[1] == '.'))
        return -EBUSY;  /* "/", "." or "..": no name to make or move */
    if (nl > NAME_MAX || ll > NAME_MAX + 1)
        return -ENAMETOOLONG;
    memcpy(n->last, last, ll);
    n->last[ll] = '\0';
    int base = lg_fsop_base_fd(s, id, tid, dirfd, path);
    if (base < 0)
        return base;
    n->pfd = lg_fsop_walk(c, base, dir, O_DIRECTORY);
    close(base);
    if (n->pfd < 0)
        return n->pfd;
    char parent[PATH_MAX];
    int rc = lg_fsop_fd_path(n->pfd, parent, sizeof parent);
    if (rc < 0)
        return rc;
    int w = snprintf(n->real, sizeof n->real, "%s/%.*s", strcmp(parent, "/") == 0 ? "" : parent,
                     (int)nl, last);
    return (w < 0 || (size_t)w >= sizeof n->real) ? -ENAMETOOLONG : 0;
}
