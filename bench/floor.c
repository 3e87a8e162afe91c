/* floor.c: the physical floor of a seccomp user-notification round trip on
 * this machine: a child whose getppid() is sent to a listener, and an
 * allow-all C supervisor (RECV -> SEND CONTINUE, nothing else) with
 * SYNC_WAKE_UP set.  Prints the mean nanoseconds per supervised getppid and
 * per bare getppid:  "floor_ns bare_ns".
 *   floor [N]
 * The exec loop's floor: N x fork + exec PROG + wait, bare then with execve and
 * execveat sent to the same allow-all supervisor (what the notification alone
 * costs an exec-heavy workload, with no decision at all):  "sup_ns bare_ns"
 * per exec.
 *   floor exec N PROG
 * What notifying clone(CLONE_THREAD) would cost a threaded workload (a table of
 * thread groups instead of /proc/TID/task per exec): N x pthread_create + join,
 * bare then with CLONE_THREAD clones sent to the allow-all supervisor (clone3
 * refused with ENOSYS in both, as the launcher does):  "sup_ns bare_ns".
 *   floor thread N
 * The exec decision's kernel pieces, each timed on a freshly forked child (an
 * exec's caller is one: its first /proc lookups instantiate its /proc entries),
 * in the order the decision asks them; then what reaping such a child costs
 * over one nobody looked at (the /proc and pidfs teardown at exit).  Medians
 * over N children, ns:  "name ns" per line.
 *   floor pieces N
 */
#define _GNU_SOURCE /* O_PATH, process_vm_readv */
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../csrc/kernel_compat.h"

#ifndef SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
#define SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV (1UL << 5)
#endif
#ifndef SECCOMP_IOCTL_NOTIF_SET_FLAGS
#define SECCOMP_IOCTL_NOTIF_SET_FLAGS SECCOMP_IOW(4, __u64)
#endif
#ifndef SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP
#define SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP 1UL
#endif

static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* N x fork + exec prog + wait: mean ns per exec (-1 on failure) */
static long long exec_loop(int n, const char *prog)
{
    long long t0 = now_ns();
    for (int i = 0; i < n; i++) {
        pid_t c = fork();
        if (c < 0)
            return -1;
        if (c == 0) {
            char *a[] = {(char *)prog, NULL};
            execv(prog, a);
            _exit(127);
        }
        int st;
        if (waitpid(c, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
            return -1;
    }
    return (now_ns() - t0) / n;
}

/* ---- floor pieces N ------------------------------------------------------- */

enum {
    PC_PIDFD, PC_TASK, PC_ROOT, PC_MAPS, PC_MEM, PC_ID, PC_REAP_SEEN, PC_REAP_BARE,
    PC_TASK_MAPS_WALKS, PC_TASK_MAPS_DIR, PC_N
};
static const char *const piece_name[PC_N] = {
    "pidfd_open+GET_INFO", "stat /proc/TID/task", "open /proc/TID/root",
    "open /proc/TID/maps+PROCMAP_QUERY+close", "process_vm_readv 4 KiB", "fstat pidfd+close",
    "reap, after the lookups", "reap, nobody looked",
    "stat /proc/TID/task+open /proc/TID/maps+PROCMAP_QUERY+close",
    "open /proc/TID+fstatat task+openat maps+PROCMAP_QUERY+close",
};

/* The thread count and the maps query of one fresh child, as the exec decision
 * asks them: by two names, each walked from /proc (dir < 0), or from one fd on
 * /proc/TID (a walk of the pid's directory once).  ns, or -1. */
static long long task_and_maps(pid_t c, int by_dir, const char *page)
{
    char path[64];
    struct stat st;
    long long t = now_ns();
    int dir = AT_FDCWD;
    const char *task = path, *maps = path + 32;
    if (by_dir) {
        snprintf(path, sizeof path, "/proc/%d", c);
        dir = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (dir < 0)
            return -1;
        task = "task";
        maps = "maps";
    } else {
        snprintf(path, 32, "/proc/%d/task", c);
        snprintf(path + 32, 32, "/proc/%d/maps", c);
    }
    if (fstatat(dir, task, &st, 0) < 0)
        return -1;
    int mfd = openat(dir, maps, O_RDONLY | O_CLOEXEC);
    struct procmap_query q;
    memset(&q, 0, sizeof q);
    q.size = sizeof q;
    q.query_addr = (unsigned long long)(uintptr_t)page;
    if (mfd < 0 || ioctl(mfd, PROCMAP_QUERY, &q) < 0)
        return -1;
    close(mfd);
    if (by_dir)
        close(dir);
    return now_ns() - t;
}

static int cmp_ll(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;
    return x < y ? -1 : x > y;
}

/* A child blocked in read(2), as an exec's caller is blocked in its syscall. */
static pid_t blocked_child(int *wfd)
{
    int p[2];
    if (pipe(p) < 0)
        return -1;
    pid_t c = fork();
    if (c == 0) {
        char b;
        close(p[1]);
        (void)!read(p[0], &b, 1);
        _exit(0);
    }
    close(p[0]);
    *wfd = p[1];
    return c;
}

static long long reap(pid_t c, int wfd)
{
    long long t = now_ns();
    close(wfd);  /* the child's read returns 0: it exits */
    waitpid(c, NULL, 0);
    return now_ns() - t;
}

static int pieces(int n)
{
    long long *v = calloc((size_t)n * PC_N, sizeof *v);
    static char page[4096], local[4096];
    if (!v)
        return 1;
    for (int i = 0; i < n; i++) {
        int wfd;
        pid_t c = blocked_child(&wfd);
        if (c < 0)
            return 1;
        usleep(200);  /* let it reach its read */
        char path[64];
        struct stat st;
        long long t = now_ns();
        int pfd = (int)syscall(__NR_pidfd_open, c, PIDFD_THREAD);
        struct lg_pidfd_info info = {.mask = LG_PIDFD_INFO_PID};
        if (pfd < 0 || ioctl(pfd, LG_PIDFD_GET_INFO, &info) < 0)
            return 1;
        v[PC_PIDFD * n + i] = now_ns() - t;
        t = now_ns();
        snprintf(path, sizeof path, "/proc/%d/task", c);
        if (stat(path, &st) < 0)
            return 1;
        v[PC_TASK * n + i] = now_ns() - t;
        t = now_ns();
        snprintf(path, sizeof path, "/proc/%d/root", c);
        int rfd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (rfd < 0)
            return 1;
        v[PC_ROOT * n + i] = now_ns() - t;
        close(rfd);
        t = now_ns();
        snprintf(path, sizeof path, "/proc/%d/maps", c);
        int mfd = open(path, O_RDONLY | O_CLOEXEC);
        struct procmap_query q;
        memset(&q, 0, sizeof q);
        q.size = sizeof q;
        q.query_addr = (unsigned long long)(uintptr_t)page;
        if (mfd < 0 || ioctl(mfd, PROCMAP_QUERY, &q) < 0)
            return 1;
        close(mfd);
        v[PC_MAPS * n + i] = now_ns() - t;
        t = now_ns();
        struct iovec l = {local, sizeof local}, r = {page, sizeof page};
        if (process_vm_readv(c, &l, 1, &r, 1, 0) < 0)
            return 1;
        v[PC_MEM * n + i] = now_ns() - t;
        t = now_ns();
        if (fstat(pfd, &st) < 0)
            return 1;
        close(pfd);
        v[PC_ID * n + i] = now_ns() - t;
        v[PC_REAP_SEEN * n + i] = reap(c, wfd);
        c = blocked_child(&wfd);
        if (c < 0)
            return 1;
        usleep(200);
        v[PC_REAP_BARE * n + i] = reap(c, wfd);
        /* the same two questions, by two walks and through one fd, on fresh children
         * (alternating which goes first) */
        for (int k = 0; k < 2; k++) {
            int by_dir = (i + k) % 2;
            c = blocked_child(&wfd);
            if (c < 0)
                return 1;
            usleep(200);
            long long d = task_and_maps(c, by_dir, page);
            if (d < 0)
                return 1;
            v[(by_dir ? PC_TASK_MAPS_DIR : PC_TASK_MAPS_WALKS) * n + i] = d;
            reap(c, wfd);
        }
    }
    for (int k = 0; k < PC_N; k++) {
        qsort(v + (size_t)k * n, (size_t)n, sizeof *v, cmp_ll);
        printf("%s %lld\n", piece_name[k], v[(size_t)k * n + n / 2]);
    }
    free(v);
    return 0;
}

static void *noop(void *arg)
{
    return arg;
}

/* N x pthread_create + join: mean ns per thread (-1 on failure) */
static long long thread_loop(int n)
{
    long long t0 = now_ns();
    for (int i = 0; i < n; i++) {
        pthread_t t;
        if (pthread_create(&t, NULL, noop, NULL) != 0 || pthread_join(t, NULL) != 0)
            return -1;
    }
    return (now_ns() - t0) / n;
}

static void *serve(void *arg)
{
    int fd = *(int *)arg;
    struct seccomp_notif req;
    struct seccomp_notif_resp resp;
    for (;;) {
        memset(&req, 0, sizeof req);
        if (ioctl(fd, SECCOMP_IOCTL_NOTIF_RECV, &req) < 0) {
            if (errno == EINTR || errno == ENOENT)
                continue;
            return NULL;
        }
        memset(&resp, 0, sizeof resp);
        resp.id = req.id;
        resp.flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
        ioctl(fd, SECCOMP_IOCTL_NOTIF_SEND, &resp);
    }
}

int main(int argc, char **argv)
{
    if (argc > 2 && strcmp(argv[1], "pieces") == 0)
        return pieces(atoi(argv[2]));
    int thread_mode = argc > 2 && strcmp(argv[1], "thread") == 0;
    if (thread_mode) {
        argv++;
        argc--;
    }
    int exec_mode = argc > 3 && strcmp(argv[1], "exec") == 0;
    const char *prog = exec_mode ? argv[3] : NULL;
    if (exec_mode) {
        argv++;
        argc--;
    }
    int n = argc > 1 ? atoi(argv[1]) : 100000;
    unsigned nr1 = exec_mode ? SYS_execve : SYS_getppid;
    unsigned nr2 = exec_mode ? SYS_execveat : SYS_getppid;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
        return 1;
    pid_t pid = fork();
    if (pid == 0) {
        long long t0 = now_ns();
        long long bare;
        prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
        if (thread_mode) {
            /* clone3 -> ENOSYS for both loops: glibc then uses clone, whose flags BPF sees */
            struct sock_filter f0[] = {
                BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
                BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 435, 0, 1),
                BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
                BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
            };
            struct sock_fprog p0 = {4, f0};
            if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &p0) < 0)
                _exit(2);
            bare = thread_loop(n);
        } else if (exec_mode) {
            bare = exec_loop(n, prog);
        } else {
            for (int i = 0; i < n; i++)
                syscall(SYS_getppid);
            bare = (now_ns() - t0) / n;
        }
        struct sock_filter f[] = {
            BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
            BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, nr1, 1, 0),
            BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, nr2, 0, 1),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        };
        struct sock_fprog fprog = {5, f};
        struct sock_filter ft[] = {
            BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
            BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_clone, 0, 3),
            BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0])),
            BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, 0x00010000 /* CLONE_THREAD */, 0, 1),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        };
        if (thread_mode) {
            fprog.len = 6;
            fprog.filter = ft;
        }
        int lfd = (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER,
                               SECCOMP_FILTER_FLAG_NEW_LISTENER | SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV, &fprog);
        if (lfd < 0)
            _exit(2);
        /* hand the listener over (sendmsg is not filtered here) */
        char c = 0;
        struct iovec iov = {&c, 1};
        char cbuf[CMSG_SPACE(sizeof(int))];
        struct msghdr mh = {0};
        mh.msg_iov = &iov;
        mh.msg_iovlen = 1;
        mh.msg_control = cbuf;
        mh.msg_controllen = sizeof cbuf;
        struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(cm), &lfd, sizeof lfd);
        sendmsg(sv[1], &mh, 0);
        close(lfd);
        if (read(sv[1], &c, 1) != 1)
            _exit(3);
        long long sup;
        if (thread_mode) {
            sup = thread_loop(n);
        } else if (exec_mode) {
            sup = exec_loop(n, prog);
        } else {
            t0 = now_ns();
            for (int i = 0; i < n; i++)
                syscall(SYS_getppid);
            sup = (now_ns() - t0) / n;
        }
        long long v[2] = {sup, bare};
        if (write(sv[1], v, sizeof v) != (ssize_t)sizeof v)
            _exit(4);
        _exit(0);
    }
    char c;
    struct iovec iov = {&c, 1};
    char cbuf[CMSG_SPACE(sizeof(int))];
    struct msghdr mh = {0};
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = cbuf;
    mh.msg_controllen = sizeof cbuf;
    if (recvmsg(sv[0], &mh, 0) != 1)
        return 5;
    int lfd;
    memcpy(&lfd, CMSG_DATA(CMSG_FIRSTHDR(&mh)), sizeof lfd);
    ioctl(lfd, SECCOMP_IOCTL_NOTIF_SET_FLAGS, SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP);
    pthread_t th;
    pthread_create(&th, NULL, serve, &lfd);
    pthread_detach(th);
    if (write(sv[0], "g", 1) != 1)
        return 6;
    long long v[2];
    if (read(sv[0], v, sizeof v) != (ssize_t)sizeof v)
        return 7;
    waitpid(pid, NULL, 0);
    printf("%lld %lld\n", v[0], v[1]);
    return 0;
}
