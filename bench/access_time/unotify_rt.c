/* unotify_rt.c: what an open costs when seccomp decides which opens go to a supervisor.
 *
 *   unotify_rt MODE [-s] [-c CPU] [-C CPU] -- openloop DIR PASSES r|w
 *
 * The child installs one filter on open/openat/openat2/creat and execs the
 * workload (openloop), so only the timed opens meet the filter's verdict:
 *   allow      the filter runs and allows everything (cost of the BPF program)
 *   flags      open/openat go to the supervisor only when their flags ask to
 *              write or create (O_WRONLY|O_RDWR|O_CREAT|O_TRUNC|O_APPEND);
 *              creat always; openat2 always (its flags are in a struct the
 *              filter cannot read).  Read-only opens never leave the kernel.
 *   continue   every open goes to the supervisor, which answers CONTINUE
 *              (observe-only floor)
 *   addfd      every open goes to the supervisor, which reads the path from
 *              the caller's memory, opens it itself, judges the object
 *              (fstat + readlink of /proc/self/fd/N), injects the fd with
 *              SECCOMP_IOCTL_NOTIF_ADDFD (SEND) -- the enforced floor, without
 *              landgate's credential switch and Landlock reopen.
 *   -s         SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP on the listener (6.6)
 * Prints the workload's JSON line, then {"notifications": N}.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <sched.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef SECCOMP_IOCTL_NOTIF_SET_FLAGS
#define SECCOMP_IOCTL_NOTIF_SET_FLAGS SECCOMP_IOW(4, __u64)
#endif
#ifndef SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP
#define SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP 1UL
#endif
#ifndef SECCOMP_ADDFD_FLAG_SEND
#define SECCOMP_ADDFD_FLAG_SEND (1UL << 1)
#endif

#define WRITE_BITS (O_WRONLY | O_RDWR | O_CREAT | O_TRUNC | O_APPEND)

static void die(const char *what)
{
    fprintf(stderr, "unotify_rt: %s: %s\n", what, strerror(errno));
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

#define LD_NR BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr))
#define LD_ARG_LO(n) BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[n]))
#define RET(v) BPF_STMT(BPF_RET | BPF_K, (v))

static int install(const char *mode)
{
    int notif = strcmp(mode, "allow") != 0;
    int by_flags = strcmp(mode, "flags") == 0;
    unsigned verdict = notif ? SECCOMP_RET_USER_NOTIF : SECCOMP_RET_ALLOW;
    /* open(path, flags): flags in args[1]; openat(dfd, path, flags): args[2].
     * The flags are an int: the low 32 bits of the argument are all we test. */
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
        RET(SECCOMP_RET_KILL_PROCESS),
        LD_NR,
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_openat, 4, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_open, 6, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_creat, 9, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_openat2, 8, 0),
        RET(SECCOMP_RET_ALLOW),
        /* openat */
        LD_ARG_LO(2),
        BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, WRITE_BITS, 5, 0),
        BPF_JUMP(BPF_JMP | BPF_JA, by_flags ? 3 : 4, 0, 0), /* decided when built */
        /* open */
        LD_ARG_LO(1),
        BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, WRITE_BITS, 2, 0),
        BPF_JUMP(BPF_JMP | BPF_JA, by_flags ? 0 : 1, 0, 0),
        RET(SECCOMP_RET_ALLOW), /* flags mode: a read-only open stays in the kernel */
        RET(verdict),
    };
    struct sock_fprog prog = {.len = sizeof f / sizeof f[0], .filter = f};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        die("no_new_privs");
    int fd = syscall(__NR_seccomp, SECCOMP_SET_MODE_FILTER,
                     notif ? SECCOMP_FILTER_FLAG_NEW_LISTENER : 0, &prog);
    if (fd < 0)
        die("seccomp");
    return notif ? fd : -1;
}

static int send_fd(int sock, int fd)
{
    char c = 0;
    struct iovec iov = {.iov_base = &c, .iov_len = 1};
    char ctl[CMSG_SPACE(sizeof(int))] = {0};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof ctl};
    struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cm), &fd, sizeof fd);
    return sendmsg(sock, &msg, 0) == 1 ? 0 : -1;
}

static int recv_fd(int sock)
{
    char c;
    struct iovec iov = {.iov_base = &c, .iov_len = 1};
    char ctl[CMSG_SPACE(sizeof(int))];
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof ctl};
    if (recvmsg(sock, &msg, 0) != 1)
        return -1;
    struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
    int fd;
    memcpy(&fd, CMSG_DATA(cm), sizeof fd);
    return fd;
}

/* One open done by the supervisor on the caller's behalf; returns the fd for
 * ADDFD or -errno.  Absolute paths only (openloop passes absolute paths when
 * given an absolute DIR); anything else is answered with CONTINUE by the caller. */
static int supervised_open(const struct seccomp_notif *req, char *path, size_t cap)
{
    int memfd;
    char mem[64];
    unsigned long ptr = req->data.nr == __NR_open ? req->data.args[0] : req->data.args[1];
    int flags = (int)(req->data.nr == __NR_open ? req->data.args[1] : req->data.args[2]);
    snprintf(mem, sizeof mem, "/proc/%d/mem", req->pid);
    memfd = open(mem, O_RDONLY | O_CLOEXEC);
    if (memfd < 0)
        return -errno;
    ssize_t n = pread(memfd, path, cap - 1, (off_t)ptr);
    close(memfd);
    if (n <= 0)
        return -EFAULT;
    path[n] = '\0';
    if (strnlen(path, cap - 1) == cap - 1)
        return -ENAMETOOLONG;
    if (path[0] != '/')
        return -ENOTSUP;
    int fd = open(path, (flags & ~O_CLOEXEC) | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    struct stat st;
    char link[64], real[PATH_MAX];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    if (fstat(fd, &st) != 0 || readlink(link, real, sizeof real - 1) < 0) {
        close(fd);
        return -EACCES; /* fail closed */
    }
    return fd;
}

struct sup {
    int fd, addfd;
    long count;
};

static void *serve(void *arg)
{
    struct sup *s = arg;
    static char path[PATH_MAX + 1];
    for (;;) {
        struct seccomp_notif req;
        struct seccomp_notif_resp resp;
        memset(&req, 0, sizeof req);
        if (ioctl(s->fd, SECCOMP_IOCTL_NOTIF_RECV, &req) != 0) {
            if (errno == EINTR || errno == ENOENT)
                continue;
            return NULL; /* listener gone: the child exited */
        }
        s->count++;
        memset(&resp, 0, sizeof resp);
        resp.id = req.id;
        int nr = req.data.nr;
        if (s->addfd && (nr == __NR_openat || nr == __NR_open)) {
            int fd = supervised_open(&req, path, sizeof path);
            if (fd >= 0) {
                struct seccomp_notif_addfd a = {.id = req.id, .flags = SECCOMP_ADDFD_FLAG_SEND,
                                                .srcfd = (unsigned)fd, .newfd = 0, .newfd_flags = 0};
                ioctl(s->fd, SECCOMP_IOCTL_NOTIF_ADDFD, &a); /* the caller's return value */
                close(fd);
                continue;
            }
            if (fd != -ENOTSUP) {
                resp.error = fd;
                ioctl(s->fd, SECCOMP_IOCTL_NOTIF_SEND, &resp);
                continue;
            }
        }
        resp.flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
        ioctl(s->fd, SECCOMP_IOCTL_NOTIF_SEND, &resp);
    }
}

int main(int argc, char **argv)
{
    int sync_wake = 0, lcpu = -1, ccpu = -1, opt;
    if (argc < 2) {
        fprintf(stderr, "usage: unotify_rt allow|flags|continue|addfd [-s] [-c CPU] [-C CPU] -- CMD...\n");
        return 2;
    }
    const char *mode = argv[1];
    optind = 2;
    while ((opt = getopt(argc, argv, "+sc:C:")) != -1) {
        if (opt == 's')
            sync_wake = 1;
        else if (opt == 'c')
            lcpu = atoi(optarg);
        else if (opt == 'C')
            ccpu = atoi(optarg);
        else
            return 2;
    }
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        die("socketpair");
    pid_t child = fork();
    if (child < 0)
        die("fork");
    if (child == 0) {
        if (ccpu >= 0)
            pin(ccpu);
        int lfd = install(mode);
        if (lfd >= 0 && (send_fd(sv[1], lfd) != 0 || close(lfd) != 0))
            die("send listener");
        if (close(sv[1]) != 0)
            die("close");
        execvp(argv[optind], argv + optind);
        die(argv[optind]);
    }
    close(sv[1]);
    struct sup s = {.fd = -1, .addfd = strcmp(mode, "addfd") == 0};
    pthread_t th;
    if (strcmp(mode, "allow") != 0) {
        s.fd = recv_fd(sv[0]);
        if (s.fd < 0)
            die("receive listener");
        if (sync_wake && ioctl(s.fd, SECCOMP_IOCTL_NOTIF_SET_FLAGS, SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP) != 0)
            die("SECCOMP_IOCTL_NOTIF_SET_FLAGS");
        if (lcpu >= 0)
            pin(lcpu);
        if (pthread_create(&th, NULL, serve, &s) != 0)
            die("pthread_create");
    }
    int status;
    if (waitpid(child, &status, 0) < 0)
        die("waitpid");
    printf("{\"notifications\": %ld}\n", s.count);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
