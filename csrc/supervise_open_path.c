/* supervise_open_path.c: a path as the caller sees it.  The supervisor
 * resolves paths for the caller, so its own /proc/self, /dev/fd/N and root
 * spellings must name the caller's, never landgate's.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "supervise_open.h"

/* The path of our own fd `fd` as the kernel names it (readlink of
 * /proc/self/fd/N: symlinks resolved, in landgate's view; "... (deleted)" or
 * an anon inode's name where it has none).  0, or -errno (-ENAMETOOLONG when it
 * does not fit: never a shortened path).  The one reader of that link for the
 * open check and supervise_fsop.c. */
int lg_fd_path(int fd, char *out, size_t cap)
{
    return lg_fd_path_at(-1, fd, out, cap);
}

/* lg_fd_path through the session's /proc/self/fd, kept open (s->self_fd_dir):
 * "N" beneath it instead of the four components of /proc/self/fd/N, ~1.1 us less
 * per look-up (bench: readlink 3.0 -> 1.9 us).  The same link of the same fd
 * table, so the same answer: /proc/self was this process when it was opened, and
 * the fd is close-on-exec (a forked child never reads it). */
int lg_sup_fd_path(const struct lg_sup *s, int fd, char *out, size_t cap)
{
    return lg_fd_path_at(s->self_fd_dir, fd, out, cap);
}

/* open(2) of our fd N's magic link /proc/self/fd/N, through the same directory:
 * the same reopen of the same object (the file's own open checks, Landlock's
 * among them, judge it; the walk to the link is procfs, which no check of ours
 * or Landlock's concerns).  The new fd, or -1 with errno. */
int lg_sup_fd_reopen(const struct lg_sup *s, int fd, int flags)
{
    char name[64];
    if (s->self_fd_dir >= 0) {
        snprintf(name, sizeof name, "%d", fd);
        return openat(s->self_fd_dir, name, flags);
    }
    snprintf(name, sizeof name, "/proc/self/fd/%d", fd);
    return open(name, flags);
}

/* Make path absolute in the caller's view and normalise "." and "..". */
int lg_absolute_in_view(int tid, int dirfd, const char *path, char *out, size_t cap)
{
    char base[PATH_MAX];
    if (path[0] == '/') {
        base[0] = '\0';
    } else {
        char link[64];
        if (dirfd == AT_FDCWD)
            snprintf(link, sizeof link, "/proc/%d/cwd", tid);
        else
            snprintf(link, sizeof link, "/proc/%d/fd/%d", tid, dirfd);
        ssize_t n = readlink(link, base, sizeof base - 1);
        if (n < 0)
            return -errno;
        base[n] = '\0';
    }
    char tmp[2 * PATH_MAX + 2];
    size_t bl = strlen(base), pl = strlen(path);
    if (bl + pl + 2 > sizeof tmp)
        return -ENAMETOOLONG;
    memcpy(tmp, base, bl);
    tmp[bl] = '/';
    memcpy(tmp + bl + 1, path, pl + 1);
    return lg_normalise_path(tmp, out, cap);
}

/* The caller's own /proc/self, /proc/thread-self, /dev/fd, /dev/std* spellings,
 * rewritten to its tgid (resolved by us they would name landgate).  *fdnum
 * gets N when the result is one of its own fd links /proc/TGID[/task/TID]/fd/N. */
int lg_rewrite_self(const char *path, int tgid, int tid, char *out, size_t cap, int *fdnum)
{
    static const struct { const char *from; int kind; } pre[] = {
        {"/proc/self", 0}, {"/proc/thread-self", 1}, {"/dev/fd", 2},
        {"/dev/stdin", 3}, {"/dev/stdout", 4}, {"/dev/stderr", 5},
    };
    int n = -1;
    *fdnum = -1;
    for (size_t i = 0; i < sizeof pre / sizeof pre[0]; i++) {
        size_t l = strlen(pre[i].from);
        if (strncmp(path, pre[i].from, l) != 0 || (path[l] != '/' && path[l] != '\0'))
            continue;
        const char *rest = path + l;
        switch (pre[i].kind) {
        case 0: n = snprintf(out, cap, "/proc/%d%s", tgid, rest); break;
        case 1: n = snprintf(out, cap, "/proc/%d/task/%d%s", tgid, tid, rest); break;
        case 2: n = snprintf(out, cap, "/proc/%d/fd%s", tgid, rest); break;
        default: n = snprintf(out, cap, "/proc/%d/fd/%d%s", tgid, pre[i].kind - 3, rest); break;
        }
        break;
    }
    if (n < 0)
        n = snprintf(out, cap, "%s", path);
    if (n < 0 || (size_t)n >= cap)
        return -ENAMETOOLONG;
    /* one of its own fd links? */
    char head[64], head2[96];
    snprintf(head, sizeof head, "/proc/%d/fd/", tgid);
    snprintf(head2, sizeof head2, "/proc/%d/task/%d/fd/", tgid, tid);
    const char *num = NULL;
    if (strncmp(out, head, strlen(head)) == 0)
        num = out + strlen(head);
    else if (strncmp(out, head2, strlen(head2)) == 0)
        num = out + strlen(head2);
    if (num && *num) {
        char *end;
        long v = strtol(num, &end, 10);
        if ((*end == '\0' || (*end == '/' && end[1] == '\0')) && v >= 0 && v < INT_MAX && end != num)
            *fdnum = (int)v;
    }
    return 0;
}

/* Its own root link, /proc/TGID/root or /proc/TGID/task/TID/root (ids in its
 * view): a magic link that RESOLVE_NO_MAGICLINKS refuses, naming the caller's
 * root, where an absolute path is resolved anyway (/proc/TID/root with
 * RESOLVE_IN_ROOT): "/proc/self/root/w/.env" is "/w/.env", judged as such. */
void lg_strip_own_root(char *p, int tgid, int tid)
{
    char pre[2][96];
    snprintf(pre[0], sizeof pre[0], "/proc/%d/root", tgid);
    snprintf(pre[1], sizeof pre[1], "/proc/%d/task/%d/root", tgid, tid);
    for (int i = 0; i < 2; i++) {
        size_t l = strlen(pre[i]);
        if (strncmp(p, pre[i], l) != 0 || (p[l] != '/' && p[l] != '\0'))
            continue;
        if (p[l] == '\0')
            snprintf(p, 2, "/");
        else
            memmove(p, p + l, strlen(p + l) + 1);
        return;
    }
}

