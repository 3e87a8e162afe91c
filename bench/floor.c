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
 */
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

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
        if (exec_mode) {
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
        prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
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
        if (exec_mode) {
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
