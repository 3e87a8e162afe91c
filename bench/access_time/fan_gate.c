/* fan_gate.c: prototype of the root rung's access-time file gate (issue 12).
 *
 * A fanotify permission listener on the sandbox's OWN mount of a workspace:
 *
 *   fan_gate [options] -- CMD [ARGS...]
 *     -w DIR     workspace; bind-mounted onto itself inside a private mount
 *                namespace and marked there with FAN_MARK_MOUNT
 *     -g GLOB    deny glob matched (fnmatch, flags 0: '*' crosses '/') against
 *                the real path of the opened object (repeatable)
 *     -d PATH    deny object: its (st_dev, st_ino) is taken at launch, so a
 *                hard link under any name is refused (repeatable)
 *     -m MODE    mount (default) | fs | none (same namespace and bind, no group)
 *     -k         cache allows: an inode ignore mark (FAN_MARK_IGNORE, without
 *                SURV_MODIFY: a write to the file drops it) after each allow
 *     -c CPU     pin the listener;  -C CPU  pin the command
 *     -s FILE    append one JSON line of counters when the command exits
 *   fan_gate -P  probe: print one JSON object of what this kernel accepts
 *
 * Why FAN_MARK_MOUNT and not FAN_MARK_FILESYSTEM: the bind mount made inside
 * the sandbox's mount namespace is a vfsmount of its own, so a mount mark
 * there sees the sandbox's opens only; the host's opens of the same files go
 * through the host's mount and never wait for this listener.  A filesystem
 * mark covers the superblock: on a machine whose only filesystem is "/" that
 * gates every open of every process on the host.
 *
 * Decision per FAN_OPEN_PERM event (the kernel hands us an fd of the exact
 * object being opened; no path is re-walked, so nothing can be swapped):
 *   1. fstat(fd): (st_dev, st_ino) in the deny set  -> FAN_DENY
 *   2. readlink(/proc/self/fd/N) (the listener shares the sandbox's mount
 *      namespace, so this is the path the sandbox sees) matches a deny glob
 *      -> FAN_DENY, and the inode joins the deny set (a hard link made later
 *      under an innocent name is the same inode)
 *   3. else FAN_ALLOW (and with -k an ignore mark on that inode).
 * FAN_DENY makes the open fail with EPERM: the kernel accepts a custom errno
 * (FAN_DENY_ERRNO) only from FAN_CLASS_PRE_CONTENT groups and only EIO, EPERM,
 * EBUSY, ETXTBSY, EAGAIN, ENOSPC, EDQUOT -- never EACCES (6.14+).  -P shows it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fanotify.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Newer than the 6.1 UAPI headers on the build machines (values from 6.18). */
#ifndef FAN_PRE_ACCESS
#define FAN_PRE_ACCESS 0x00100000 /* 6.14 */
#endif
#ifndef FAN_RENAME
#define FAN_RENAME 0x10000000 /* 5.17, notification only */
#endif
#ifndef FAN_INFO
#define FAN_INFO 0x20 /* 6.3 */
#endif
#ifndef FAN_MARK_IGNORE
#define FAN_MARK_IGNORE 0x00000400 /* 6.0 */
#endif
#ifndef FAN_MARK_EVICTABLE
#define FAN_MARK_EVICTABLE 0x00000200 /* 5.19 */
#endif
#ifndef FAN_REPORT_FD_ERROR
#define FAN_REPORT_FD_ERROR 0x00002000 /* 6.13 */
#endif
#define LG_FAN_ERRNO_SHIFT 24 /* FAN_DENY_ERRNO(e): FAN_DENY | (e & 0xff) << 24, 6.14 */
#define LG_FAN_DENY_ERRNO(e) (FAN_DENY | ((((uint32_t)(e)) & 0xff) << LG_FAN_ERRNO_SHIFT))

#define MAX_GLOBS 32
#define MAX_DENY 4096

static const char *globs[MAX_GLOBS];
static int nglobs;
static struct {
    dev_t dev;
    ino_t ino;
} deny[MAX_DENY];
static int ndeny;
static int fan = -1;
static int cache_allows;

static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void die(const char *what)
{
    fprintf(stderr, "fan_gate: %s: %s\n", what, strerror(errno));
    exit(111);
}

static void pin(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof set, &set) != 0)
        die("sched_setaffinity");
}

static int in_deny_set(dev_t dev, ino_t ino)
{
    for (int i = 0; i < ndeny; i++)
        if (deny[i].dev == dev && deny[i].ino == ino)
            return 1;
    return 0;
}

static void add_deny(dev_t dev, ino_t ino)
{
    if (in_deny_set(dev, ino))
        return;
    if (ndeny == MAX_DENY) {
        /* A full table must not turn into an allow: refuse to go on. */
        fprintf(stderr, "fan_gate: deny table full\n");
        exit(111);
    }
    deny[ndeny].dev = dev;
    deny[ndeny].ino = ino;
    ndeny++;
}

/* 1 = deny, 0 = allow; the reason goes to *why. */
static int judge(int fd, const char **why)
{
    struct stat st;
    char link[64], path[PATH_MAX];
    if (fstat(fd, &st) != 0) {
        *why = "fstat failed";
        return 1; /* fail closed */
    }
    if (in_deny_set(st.st_dev, st.st_ino)) {
        *why = "inode";
        return 1;
    }
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof path - 1);
    if (n < 0) {
        *why = "readlink failed";
        return 1;
    }
    path[n] = '\0';
    for (int i = 0; i < nglobs; i++)
        if (fnmatch(globs[i], path, 0) == 0) {
            add_deny(st.st_dev, st.st_ino);
            *why = "name";
            return 1;
        }
    *why = NULL;
    return 0;
}

struct counters {
    long events, denied, cached, overflow;
    long long busy_ns;
};

static void serve(pid_t child, int *status, struct counters *c, int verbose)
{
    char buf[8192] __attribute__((aligned(__alignof__(struct fanotify_event_metadata))));
    /* The child's pidfd wakes the poll when it exits (no polling interval to add). */
    int pidfd = (int)syscall(SYS_pidfd_open, child, 0);
    if (pidfd < 0)
        die("pidfd_open");
    struct pollfd pfd[2] = {{.fd = fan, .events = POLLIN}, {.fd = pidfd, .events = POLLIN}};
    for (;;) {
        int r = poll(pfd, 2, -1);
        if (r < 0 && errno != EINTR)
            die("poll");
        if (r <= 0)
            continue;
        if (pfd[1].revents && !(pfd[0].revents & POLLIN)) {
            if (waitpid(child, status, 0) != child)
                die("waitpid");
            close(pidfd);
            return;
        }
        ssize_t len = read(fan, buf, sizeof buf);
        if (len < 0) {
            if (errno == EAGAIN || errno == EINTR)
                continue;
            die("read fanotify");
        }
        long long t0 = now_ns();
        struct fanotify_event_metadata *m = (void *)buf;
        for (; FAN_EVENT_OK(m, len); m = FAN_EVENT_NEXT(m, len)) {
            if (m->mask & FAN_Q_OVERFLOW) {
                c->overflow++;
                continue;
            }
            if (m->fd < 0)
                continue;
            c->events++;
            const char *why = NULL;
            int d = judge(m->fd, &why);
            struct fanotify_response resp = {.fd = m->fd, .response = d ? FAN_DENY : FAN_ALLOW};
            if (write(fan, &resp, sizeof resp) != sizeof resp)
                die("write fanotify response");
            if (d) {
                c->denied++;
                if (verbose) {
                    char link[64], path[PATH_MAX];
                    snprintf(link, sizeof link, "/proc/self/fd/%d", m->fd);
                    ssize_t n = readlink(link, path, sizeof path - 1);
                    path[n < 0 ? 0 : n] = '\0';
                    fprintf(stderr, "fan_gate: denied open \"%s\" (%s) pid %d\n", path, why, m->pid);
                }
            } else if (cache_allows) {
                /* Cleared by the next FAN_MODIFY of the inode (no SURV_MODIFY). */
                if (fanotify_mark(fan, FAN_MARK_ADD | FAN_MARK_IGNORE | FAN_MARK_EVICTABLE,
                                  FAN_OPEN_PERM, m->fd, NULL) == 0)
                    c->cached++;
            }
            close(m->fd);
        }
        c->busy_ns += now_ns() - t0;
    }
}

/* ---- probe --------------------------------------------------------------- */

static const char *err_name(int e)
{
    return e == 0 ? "ok" : strerrorname_np(e);
}

static int try_init(unsigned flags)
{
    int fd = fanotify_init(flags | FAN_CLOEXEC, O_RDONLY | O_LARGEFILE);
    int e = fd < 0 ? errno : 0;
    if (fd >= 0)
        close(fd);
    return e;
}

static int try_mark(unsigned iflags, unsigned mflags, uint64_t mask, const char *path)
{
    int fd = fanotify_init(iflags | FAN_CLOEXEC, O_RDONLY | O_LARGEFILE);
    if (fd < 0)
        return errno;
    int e = fanotify_mark(fd, FAN_MARK_ADD | mflags, mask, AT_FDCWD, path) ? errno : 0;
    close(fd);
    return e;
}

/* Open `file` in a child while a listener answers `response`; returns the
 * child's errno (0 = opened), or -(errno of write(response)). */
static int try_response(unsigned iflags, uint64_t mask, uint32_t response, const char *dir,
                        const char *file)
{
    int fd = fanotify_init(iflags | FAN_CLOEXEC, O_RDONLY | O_LARGEFILE);
    if (fd < 0)
        return 1000 + errno;
    if (fanotify_mark(fd, FAN_MARK_ADD | FAN_MARK_MOUNT, mask, AT_FDCWD, dir) != 0) {
        int e = errno;
        close(fd);
        return 1000 + e;
    }
    int pipefd[2];
    if (pipe(pipefd) != 0)
        die("pipe");
    pid_t p = fork();
    if (p == 0) {
        int f = open(file, O_RDONLY);
        int e = f < 0 ? errno : 0;
        if (f >= 0 && (mask & FAN_PRE_ACCESS)) {
            char b[4];
            e = read(f, b, sizeof b) < 0 ? errno : 0;
        }
        if (write(pipefd[1], &e, sizeof e) != sizeof e)
            _exit(1);
        _exit(0);
    }
    close(pipefd[1]);
    int result = -1, werr = 0;
    for (int answered = 0; !answered;) {
        char buf[4096] __attribute__((aligned(8)));
        ssize_t len = read(fd, buf, sizeof buf);
        if (len <= 0)
            break;
        struct fanotify_event_metadata *m = (void *)buf;
        for (; FAN_EVENT_OK(m, len); m = FAN_EVENT_NEXT(m, len)) {
            struct fanotify_response r = {.fd = m->fd, .response = response};
            if (write(fd, &r, sizeof r) != sizeof r) {
                werr = errno;
                r.response = FAN_DENY; /* the invalid answer was not taken */
                if (write(fd, &r, sizeof r) != sizeof r)
                    die("write fallback response");
            }
            close(m->fd);
            answered = 1;
        }
    }
    if (read(pipefd[0], &result, sizeof result) != sizeof result)
        result = -1;
    close(pipefd[0]);
    waitpid(p, NULL, 0);
    close(fd);
    return werr ? -werr : result;
}

static void print_resp(const char *key, int r, int last)
{
    if (r >= 1000)
        printf("\"%s\": \"setup %s\"%s", key, err_name(r - 1000), last ? "" : ", ");
    else if (r < 0)
        printf("\"%s\": \"response refused %s\"%s", key, err_name(-r), last ? "" : ", ");
    else
        printf("\"%s\": \"open -> %s\"%s", key, err_name(r), last ? "" : ", ");
}

static int probe(void)
{
    char dir[] = "/tmp/fan_gate_probe.XXXXXX";
    if (!mkdtemp(dir))
        die("mkdtemp");
    char file[PATH_MAX];
    snprintf(file, sizeof file, "%s/f", dir);
    int f = open(file, O_WRONLY | O_CREAT, 0644);
    if (f < 0 || write(f, "x", 1) != 1)
        die("probe file");
    close(f);
    if (unshare(CLONE_NEWNS) != 0)
        die("unshare");
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
        die("make / private");
    if (mount(dir, dir, NULL, MS_BIND, NULL) != 0)
        die("bind");
    printf("{");
    printf("\"init_class_content\": \"%s\", ", err_name(try_init(FAN_CLASS_CONTENT)));
    printf("\"init_class_pre_content\": \"%s\", ", err_name(try_init(FAN_CLASS_PRE_CONTENT)));
    printf("\"init_content_report_fid\": \"%s\", ", err_name(try_init(FAN_CLASS_CONTENT | FAN_REPORT_FID)));
    printf("\"init_pre_content_report_fid\": \"%s\", ",
           err_name(try_init(FAN_CLASS_PRE_CONTENT | FAN_REPORT_FID)));
    printf("\"init_content_fd_error\": \"%s\", ",
           err_name(try_init(FAN_CLASS_CONTENT | FAN_REPORT_FD_ERROR)));
    printf("\"init_enable_audit\": \"%s\", ", err_name(try_init(FAN_CLASS_CONTENT | FAN_ENABLE_AUDIT)));
    printf("\"mark_mount_open_perm\": \"%s\", ",
           err_name(try_mark(FAN_CLASS_CONTENT, FAN_MARK_MOUNT, FAN_OPEN_PERM, dir)));
    printf("\"mark_mount_open_exec_perm\": \"%s\", ",
           err_name(try_mark(FAN_CLASS_CONTENT, FAN_MARK_MOUNT, FAN_OPEN_EXEC_PERM, dir)));
    printf("\"mark_mount_access_perm\": \"%s\", ",
           err_name(try_mark(FAN_CLASS_CONTENT, FAN_MARK_MOUNT, FAN_ACCESS_PERM, dir)));
    printf("\"mark_fs_open_perm\": \"%s\", ",
           err_name(try_mark(FAN_CLASS_CONTENT, FAN_MARK_FILESYSTEM, FAN_OPEN_PERM, dir)));
    printf("\"mark_mount_pre_access\": \"%s\", ",
           err_name(try_mark(FAN_CLASS_PRE_CONTENT, FAN_MARK_MOUNT, FAN_PRE_ACCESS, dir)));
    printf("\"mark_fs_pre_access\": \"%s\", ",
           err_name(try_mark(FAN_CLASS_PRE_CONTENT, FAN_MARK_FILESYSTEM, FAN_PRE_ACCESS, dir)));
    printf("\"mark_content_rename\": \"%s\", ",
           err_name(try_mark(FAN_CLASS_CONTENT, FAN_MARK_MOUNT, FAN_RENAME, dir)));
    printf("\"mark_notif_dfid_rename_fs\": \"%s\", ",
           err_name(try_mark(FAN_CLASS_NOTIF | FAN_REPORT_DFID_NAME | FAN_REPORT_FID | FAN_REPORT_TARGET_FID,
                             FAN_MARK_FILESYSTEM, FAN_RENAME, dir)));
    printf("\"mark_notif_dfid_create_mount\": \"%s\", ",
           err_name(try_mark(FAN_CLASS_NOTIF | FAN_REPORT_DFID_NAME, FAN_MARK_MOUNT, FAN_CREATE, dir)));
    print_resp("deny_content", try_response(FAN_CLASS_CONTENT, FAN_OPEN_PERM, FAN_DENY, dir, file), 0);
    print_resp("deny_errno_eacces_content",
               try_response(FAN_CLASS_CONTENT, FAN_OPEN_PERM, LG_FAN_DENY_ERRNO(EACCES), dir, file), 0);
    print_resp("deny_errno_eacces_pre_content",
               try_response(FAN_CLASS_PRE_CONTENT, FAN_OPEN_PERM, LG_FAN_DENY_ERRNO(EACCES), dir, file), 0);
    print_resp("deny_errno_eperm_pre_content",
               try_response(FAN_CLASS_PRE_CONTENT, FAN_OPEN_PERM, LG_FAN_DENY_ERRNO(EPERM), dir, file), 0);
    print_resp("deny_errno_eio_pre_content",
               try_response(FAN_CLASS_PRE_CONTENT, FAN_OPEN_PERM, LG_FAN_DENY_ERRNO(EIO), dir, file), 0);
    print_resp("pre_access_deny_read",
               try_response(FAN_CLASS_PRE_CONTENT, FAN_PRE_ACCESS, FAN_DENY, dir, file), 0);
    print_resp("deny_with_audit_flag_no_enable_audit",
               try_response(FAN_CLASS_CONTENT, FAN_OPEN_PERM, FAN_DENY | FAN_AUDIT, dir, file), 1);
    printf("}\n");
    umount2(dir, MNT_DETACH);
    unlink(file);
    rmdir(dir);
    return 0;
}

/* ---- main ---------------------------------------------------------------- */

int main(int argc, char **argv)
{
    const char *ws = NULL, *mode = "mount", *stats = NULL;
    int lcpu = -1, ccpu = -1, verbose = 1, opt;
    while ((opt = getopt(argc, argv, "+w:g:d:m:kc:C:s:qP")) != -1) {
        switch (opt) {
        case 'w':
            ws = optarg;
            break;
        case 'g':
            if (nglobs == MAX_GLOBS) {
                fprintf(stderr, "fan_gate: too many globs\n");
                return 2;
            }
            globs[nglobs++] = optarg;
            break;
        case 'd': {
            struct stat st;
            if (stat(optarg, &st) != 0)
                die(optarg);
            add_deny(st.st_dev, st.st_ino);
            break;
        }
        case 'm':
            mode = optarg;
            break;
        case 'k':
            cache_allows = 1;
            break;
        case 'c':
            lcpu = atoi(optarg);
            break;
        case 'C':
            ccpu = atoi(optarg);
            break;
        case 's':
            stats = optarg;
            break;
        case 'q':
            verbose = 0;
            break;
        case 'P':
            return probe();
        default:
            return 2;
        }
    }
    if (!ws || optind >= argc) {
        fprintf(stderr, "usage: fan_gate -w DIR [-g GLOB] [-d PATH] [-m mount|fs|none] [-k] -- CMD...\n");
        return 2;
    }
    /* The sandbox's own mount of the workspace: a private namespace, so the
     * bind (and the mark on it) never reaches the host's mount table. */
    if (unshare(CLONE_NEWNS) != 0)
        die("unshare(CLONE_NEWNS)");
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
        die("mount(/, MS_REC|MS_PRIVATE)");
    if (mount(ws, ws, NULL, MS_BIND | MS_REC, NULL) != 0)
        die("bind mount of the workspace");
    if (strcmp(mode, "none") != 0) {
        /* O_NONBLOCK: the listener's own fd of a FIFO must not wait for a writer. */
        fan = fanotify_init(FAN_CLASS_CONTENT | FAN_CLOEXEC | FAN_UNLIMITED_QUEUE | FAN_NONBLOCK,
                            O_RDONLY | O_LARGEFILE | O_NONBLOCK | O_CLOEXEC);
        if (fan < 0)
            die("fanotify_init(FAN_CLASS_CONTENT)");
        unsigned where = strcmp(mode, "fs") == 0 ? FAN_MARK_FILESYSTEM : FAN_MARK_MOUNT;
        if (fanotify_mark(fan, FAN_MARK_ADD | where, FAN_OPEN_PERM, AT_FDCWD, ws) != 0)
            die("fanotify_mark");
    }
    long long t0 = now_ns();
    pid_t child = fork();
    if (child < 0)
        die("fork");
    if (child == 0) {
        if (ccpu >= 0)
            pin(ccpu);
        if (fan >= 0)
            close(fan);
        execvp(argv[optind], argv + optind);
        die(argv[optind]);
    }
    if (lcpu >= 0)
        pin(lcpu);
    struct counters c = {0};
    int status = 0;
    if (fan >= 0)
        serve(child, &status, &c, verbose);
    else if (waitpid(child, &status, 0) < 0)
        die("waitpid");
    long long wall = now_ns() - t0;
    if (stats) {
        FILE *f = fopen(stats, "a");
        if (!f)
            die(stats);
        fprintf(f,
                "{\"mode\": \"%s\", \"wall_ns\": %lld, \"events\": %ld, \"denied\": %ld, \"cached\": %ld, "
                "\"overflow\": %ld, \"listener_busy_ns\": %lld}\n",
                mode, wall, c.events, c.denied, c.cached, c.overflow, c.busy_ns);
        fclose(f);
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
