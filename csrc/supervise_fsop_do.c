/* supervise_fsop_do.c: the name-changing syscalls performed on an opener thread (see
 * supervise_fsop.c for the whole design): as the caller (its fsuid/fsgid/groups and
 * umask, the sandbox's Landlock ruleset), on the parent fds judged on the loop thread;
 * a git config rename installs a copy of exactly the bytes csrc/gitcfg.c judged.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "supervise_fsop.h"

/* Read a whole regular file (at most GITCFG_READ_MAX bytes) at (dirfd, name).
 * *out is malloc'd; ENOENT when it does not exist. */
static int read_small(int dirfd, const char *name, char **out, size_t *len, mode_t *mode)
{
    *out = NULL;
    *len = 0;
    int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st) != 0)
        rc = -errno;
    else if (!S_ISREG(st.st_mode))
        rc = -EINVAL;
    else if (st.st_size > GITCFG_READ_MAX)
        rc = -EFBIG;
    char *buf = rc == 0 ? malloc((size_t)st.st_size + 1) : NULL;
    if (rc == 0 && !buf)
        rc = -ENOMEM;
    size_t got = 0;
    while (rc == 0) {
        ssize_t r = read(fd, buf + got, (size_t)st.st_size + 1 - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            rc = -errno;
        else if (r == 0)
            break;
        else if ((got += (size_t)r) > (size_t)st.st_size)
            rc = -EFBIG;  /* grew while we read: judge nothing half-read */
    }
    close(fd);
    if (rc < 0) {
        free(buf);
        return rc;
    }
    if (mode)
        *mode = st.st_mode & 07777;
    *out = buf;
    *len = got;
    return 0;
}

/* The git config rename on the opener: judge the bytes, install a copy of exactly
 * those bytes, remove the source name.  0, an errno, or -1 (refused: why set). */
static int gitcfg_rename(struct fsop_job *j, char *why, size_t whylen)
{
    char *neu = NULL, *old = NULL;
    size_t nl = 0, ol = 0;
    mode_t mode = 0644;
    int rc = read_small(j->a.pfd, j->a.last, &neu, &nl, &mode);
    if (rc < 0)
        return -rc;
    rc = read_small(j->b.pfd, j->b.last, &old, &ol, NULL);
    if (rc < 0 && rc != -ENOENT) {
        free(neu);
        snprintf(why, whylen, "the existing file cannot be read: %s", strerror(-rc));
        return -1;
    }
    if (lg_gitcfg_judge(old, ol, neu, nl, why, (int)whylen) != 0) {
        free(neu);
        free(old);
        return -1;
    }
    free(old);
    char tmp[NAME_MAX + 1];
    size_t bl = strcspn(j->b.last, "/");
    snprintf(tmp, sizeof tmp, ".%.*s.landgate-%d", (int)(bl > 200 ? 200 : bl), j->b.last, (int)gettid());
    int fd = openat(j->b.pfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
    int e = fd < 0 ? errno : 0;
    for (size_t off = 0; fd >= 0 && off < nl && !e;) {
        ssize_t w = write(fd, neu + off, nl - off);
        if (w < 0 && errno != EINTR)
            e = errno;
        else if (w > 0)
            off += (size_t)w;
    }
    free(neu);
    if (fd >= 0 && close(fd) != 0 && !e)
        e = errno;
    if (!e && renameat(j->b.pfd, tmp, j->b.pfd, j->b.last) != 0)
        e = errno;
    if (e) {
        if (fd >= 0)
            unlinkat(j->b.pfd, tmp, 0);
        return e;
    }
    if (unlinkat(j->a.pfd, j->a.last, 0) != 0 && errno != ENOENT)
        return errno;  /* installed; the lock file stays behind */
    return 0;
}

/* On an opener thread: perform the judged operation as the caller. */
void *lg_fsop_worker(void *arg)
{
    struct fsop_job *j = arg;
    struct lg_sup *s = j->s;
    if (lg_pool_thread_ok() < 0) {
        j->ev.result = LG_EFFECT_DENY;  /* this opener is not restricted: it must not act */
        j->ev.flags |= LG_EV_FAILCLOSED;
        lg_fsop_answer(s, j->id, &j->ev, 0, EPERM);
        lg_fsop_job_free(j);
        return NULL;
    }
    int e = 0;
    char why[LG_DETAIL_MAX];
    why[0] = '\0';
    int rc = lg_become(&j->creds);
    if (rc < 0) {
        e = -rc;
    } else {
        if (j->creds.umask != (unsigned)-1)
            umask(j->creds.umask);  /* this thread's own fs_struct (unshare(CLONE_FS)) */
        int nr = j->nr;
        struct stat replaced;
        int had = lg_is_rename(nr) && !(j->arg & RENAME_EXCHANGE) &&
                  fstatat(j->b.pfd, j->b.last, &replaced, AT_SYMLINK_NOFOLLOW) == 0;
        if (j->gitcfg) {
            rc = gitcfg_rename(j, why, sizeof why);
            e = rc < 0 ? 0 : rc;
        } else if (lg_is_rename(nr)) {
            rc = (int)syscall(SYS_renameat2, j->a.pfd, j->a.last, j->b.pfd, j->b.last,
                              (unsigned)j->arg);
        } else if (lg_is_link(nr)) {
            char self[64];
            snprintf(self, sizeof self, "/proc/self/fd/%d", j->obj);
            rc = linkat(AT_FDCWD, self, j->b.pfd, j->b.last, AT_SYMLINK_FOLLOW);
            /* A denied object's new name is denied too.  Overlayfs copies a lower
             * file up for the link and numbers the new name by the upper inode (and
             * birth time): the identity judged before the link does not cover it. */
            if (rc == 0 && j->alias_access &&
                lg_seen_add_at(s, j->b.pfd, j->b.last, j->alias_access, j->alias_rule) < 0)
                lg_count(s, LG_COUNT_ERRORS);
        } else if (nr == SYS_symlink || nr == SYS_symlinkat) {
            rc = symlinkat(j->target, j->b.pfd, j->b.last);
        } else if (nr == SYS_mkdir || nr == SYS_mkdirat) {
            rc = mkdirat(j->a.pfd, j->a.last, (mode_t)j->arg & 07777);
        } else if (nr == SYS_mknod || nr == SYS_mknodat) {
            rc = mknodat(j->a.pfd, j->a.last, (mode_t)j->arg, (dev_t)j->dev);
        } else {  /* truncate: the judged object, reopened for writing */
            struct stat st;
            rc = fstat(j->obj, &st);
            if (rc == 0 && !S_ISREG(st.st_mode)) {
                errno = S_ISDIR(st.st_mode) ? EISDIR : EINVAL;
                rc = -1;
            }
            if (rc == 0) {
                char self[64];
                snprintf(self, sizeof self, "/proc/self/fd/%d", j->obj);
                int fd = open(self, O_WRONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
                rc = fd < 0 ? -1 : ftruncate(fd, (off_t)j->arg);
                if (fd >= 0) {
                    int ce = errno;
                    close(fd);
                    errno = ce;
                }
            }
        }
        if (!j->gitcfg && rc != 0)
            e = errno ? errno : EIO;
        if (had && rc == 0)
            lg_seen_forget(s, &replaced);
    }
    if (lg_unbecome(&j->creds) < 0)
        lg_count(s, LG_COUNT_ERRORS);
    if (j->gitcfg && rc < 0 && why[0]) {
        /* refused on content: the line names the key, the trail keeps it in detail */
        j->ev.result = LG_EFFECT_DENY;
        snprintf(j->ev.detail, sizeof j->ev.detail, "write git config %s", why);
        if (s->stderr_fd >= 0) {
            char shown[201], line[LG_DETAIL_MAX + 512];
            lg_escape_shown(shown, sizeof shown, j->ev.target);
            int n = snprintf(line, sizeof line, "landgate: denied file_write \"%s\" (%s; %s)\n",
                             shown, why, lg_ref(s, j->ev.rule));
            if (n > 0 && write(s->stderr_fd, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1) < 0)
                lg_count(s, LG_COUNT_ERRORS);  /* the errno and the trail carry it too */
        }
        j->ev.t_resp_ns = lg_now_ns();
        j->ev.err = EPERM;
        lg_push_event(s, &j->ev);
        lg_send_resp(s, j->id, 0, EPERM, 0);
        lg_fsop_job_free(j);
        return NULL;
    }
    j->ev.result = LG_EFFECT_ALLOW;  /* an error here is the kernel's own answer */
    lg_fsop_answer(s, j->id, &j->ev, 0, e);
    lg_fsop_job_free(j);
    return NULL;
}
