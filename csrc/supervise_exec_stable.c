/* supervise_exec_stable.c: can the agent change what an exec path resolves to?
 *
 * An exec whose path follows a symlink, or names a #! script, is verified at
 * PTRACE_EVENT_EXEC (supervise_exec.c) because the agent could swap the link
 * or rewrite the script between the check and the kernel's own walk.  It can
 * only do that where it can write: Landlock write rights beneath the trees in
 * t->write_trees (compiled by sandbox/session/child.py from the plan).  A
 * link whose directory, and a final file (with its directory), that lie
 * outside every one of them cannot be changed by the agent, so the resolution
 * judged is the one the kernel makes: the fast path is safe (merged-/usr
 * /bin/true, /bin/sh -> dash, a script under /usr/bin).
 *
 * The walk is done here component by component with readlink, each symlink's
 * directory checked before its target is followed, so links in the middle of
 * a chain (/usr/bin/x -> /tmp/y -> /usr/bin/true) are seen too.  Anything
 * unusual is "not stable" (the verified path, never a wrong fast path): an
 * unknown write table, a caller in another root or mount namespace (the
 * table's paths are in landgate's view), a relative name (a CLONE_FS sibling
 * can change the cwd meanwhile), /proc and /dev/fd names (magic links), an
 * error, too many links.
 *
 * A plain file (no link on the way, no #! line) is no different: the kernel
 * walks its name again after the answer.  Found by attack tests (issue 13c):
 * a relative name is walked from a working directory that a CLONE_FS sibling
 * (another process, so the caller stays single-threaded) can change between
 * the two walks, and a regular file in a writable tree can be replaced by a
 * symlink to a denied program (rename(2) over it).  lg_exec_plain_stable says
 * when neither can happen.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "supervise_int.h"

#define LG_LINK_HOPS 40  /* the kernel's MAXSYMLINKS */

/* Is path (canonical, absolute) at or beneath a tree the sandbox can write? */
static int writable(const struct lg_tables *t, const char *path)
{
    size_t pl = strlen(path);
    for (int i = 0; i < t->n_write_trees; i++) {
        const char *w = t->write_trees[i];
        size_t wl = strlen(w);
        if (wl == 1 && w[0] == '/')
            return 1;
        if (pl >= wl && memcmp(path, w, wl) == 0 && (path[wl] == '\0' || path[wl] == '/'))
            return 1;
    }
    return 0;
}

/* The canonical name of an existing directory or file (no symlink in it is
 * followed last: callers pass names whose components are not links). */
static int canonical(const char *path, char *out, size_t cap)
{
    int fd = open(path, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -1;
    char link[64];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, out, cap - 1);
    close(fd);
    if (n < 0 || (size_t)n >= cap - 1)
        return -1;
    out[n] = '\0';
    return 0;
}

/* 1 if no component on the way to path's object sits in a directory the
 * sandbox can write (such a name could become a link, or a link could be
 * re-aimed), and the object itself is out of its reach; 0 otherwise or when
 * unsure.  Each link's target is followed from where the link sits, so links
 * in the middle of a chain are checked too. */
static int chain_stable(const struct lg_tables *t, const char *path)
{
    char cur[PATH_MAX], next[PATH_MAX], pre[PATH_MAX], parent[PATH_MAX], tgt[PATH_MAX];
    if (path[0] != '/' || strlen(path) >= sizeof cur)
        return 0;
    strcpy(cur, path);
    if (writable(t, "/"))
        return 0;
    for (int hop = 0; hop <= LG_LINK_HOPS; hop++) {
        if (strncmp(cur, "/proc", 5) == 0 || strncmp(cur, "/dev/fd", 7) == 0)
            return 0;  /* magic links: resolved per process, not by these names */
        strcpy(parent, "/");  /* the walk starts at the root, checked above */
        size_t len = strlen(cur);
        int followed = 0;
        for (size_t i = 1; i <= len && !followed; i++) {
            if ((i < len && cur[i] != '/') || cur[i - 1] == '/')
                continue;  /* not the end of a component, or an empty one ("//") */
            /* cur[0..i) names a component of `parent` (canonical, not writable) */
            memcpy(pre, cur, i);
            pre[i] = '\0';
            ssize_t n = readlink(pre, tgt, sizeof tgt - 1);
            if (n >= 0) {
                tgt[n] = '\0';
                int w;
                if (tgt[0] == '/')
                    w = snprintf(next, sizeof next, "%s%s", tgt, cur + i);
                else
                    w = snprintf(next, sizeof next, "%s/%s%s", parent, tgt, cur + i);
                if (w < 0 || (size_t)w >= sizeof next)
                    return 0;
                strcpy(cur, next);
                followed = 1;
                continue;
            }
            if (errno != EINVAL)
                return 0;  /* missing, no access: unsure */
            /* not a link: a directory on the way, or the object itself; either
             * way the agent must not be able to write in it (or to it) */
            if (canonical(pre, parent, sizeof parent) < 0 || writable(t, parent))
                return 0;
            if (i == len)
                return 1;
        }
        if (!followed)
            return 0;  /* cannot happen: the last component returns above */
    }
    return 0;  /* too many links: the kernel gives ELOOP; be safe */
}

/* Does tid see the file system as landgate does (same root, same mounts)? */
static int same_view(int tid)
{
    char link[64];
    struct stat a, b;
    snprintf(link, sizeof link, "/proc/%d/root", tid);
    if (stat(link, &a) < 0 || stat("/", &b) < 0 || a.st_dev != b.st_dev || a.st_ino != b.st_ino)
        return 0;
    snprintf(link, sizeof link, "/proc/%d/ns/mnt", tid);
    if (stat(link, &a) < 0 || stat("/proc/self/ns/mnt", &b) < 0 || a.st_dev != b.st_dev ||
        a.st_ino != b.st_ino)
        return 0;
    return 1;
}

int lg_exec_stable(const struct lg_tables *t, int tid, const char *const *names, int n)
{
    if (!t->write_known || !same_view(tid))
        return 0;
    for (int i = 0; i < n; i++) {
        if (!chain_stable(t, names[i]))
            return 0;
    }
    return 1;
}

/* A plain file's exec (no symlink followed, no #! line): stable when it is named
 * by an absolute path (a relative name is walked from a cwd that a CLONE_FS
 * sibling can change; execveat's dirfd sits in an fd table a CLONE_FILES
 * sibling can change) and the object, with every directory above it, lies
 * outside the trees the sandbox can write (else the name can be renamed over).
 * `real` is the object's canonical path, equal to `fname` for a plain file.
 * The table's paths are landgate's view: a caller in another root or mount
 * namespace is "not stable", as for links. */
int lg_exec_plain_stable(const struct lg_tables *t, int tid, const char *fname, const char *real)
{
    if (!t->write_known || fname[0] != '/' || real[0] != '/' || !same_view(tid))
        return 0;
    if (strncmp(real, "/proc", 5) == 0 || strncmp(real, "/dev/fd", 7) == 0)
        return 0;
    return !writable(t, real);
}
