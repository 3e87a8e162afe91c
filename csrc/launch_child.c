/* launch_child.c: landgate's side of the sync protocol with the child lg_spawn made
 * (launch_api.h: the process shape; launch_wire.h: the messages): waiting for it to be
 * ready (the agent's pid from SCM_CREDENTIALS, its Landlock ruleset and seccomp
 * listener taken with pidfd_getfd), releasing it, collecting its status, closing.
 *
 * Apart from launch.c because that file runs the clone that shares landgate's memory
 * (raw system calls only); everything here runs after the clone's execve, in landgate's
 * own thread, and only talks to the child.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>

#include "kernel_compat.h"
#include "launch_int.h"

/* One message and, when present, the sender's pid from SCM_CREDENTIALS. */
static int recv_msg(int sock, struct lg_msg *m, pid_t *sender, int flags)
{
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(struct ucred))];
    } cbuf;
    struct iovec iov = { .iov_base = m, .iov_len = sizeof *m };
    struct msghdr mh;
    memset(&mh, 0, sizeof mh);
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = cbuf.buf;
    mh.msg_controllen = sizeof cbuf.buf;
    ssize_t n;
    do {
        n = recvmsg(sock, &mh, flags | MSG_CMSG_CLOEXEC);
    } while (n < 0 && errno == EINTR);
    if (n < 0)
        return -errno;
    if (n == 0)
        return 0;
    if ((size_t)n != sizeof *m)
        return -EPROTO;
    *sender = -1;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS) {
            struct ucred uc;
            memcpy(&uc, CMSG_DATA(c), sizeof uc);
            *sender = uc.pid;
        }
    }
    return 1;
}

static int error_from(const struct lg_msg *m, char *err, int errlen)
{
    struct lg_msg copy = *m;
    copy.step[sizeof copy.step - 1] = '\0';
    return lg_launch_report(err, errlen, copy.step, copy.err ? copy.err : EIO);
}

/* The agent's fd number `num` as our own fd (pidfd_getfd sets O_CLOEXEC), or -errno with
 * err set (step names the failing pidfd_getfd).  Only while the agent is blocked on the
 * go pipe: its pid cannot be reused yet, so the pidfd opened on it names the agent. */
static int agent_fd(const struct lg_child *child, int num, const char *step, char *err,
                    int errlen)
{
    long pfd = syscall(__NR_pidfd_open, child->agent_pid, 0);
    if (pfd < 0)
        return lg_launch_report(err, errlen, "pidfd_open", errno);
    long fd = syscall(__NR_pidfd_getfd, (int)pfd, num, 0);
    int e = errno;
    close((int)pfd);
    if (fd < 0)
        return lg_launch_report(err, errlen, step, e);
    return (int)fd;
}

int lg_wait_ready(struct lg_child *child, char *err, int errlen)
{
    for (;;) {
        struct lg_msg m;
        pid_t sender = -1;
        int rc = recv_msg(child->sock, &m, &sender, 0);
        if (rc < 0)
            return lg_launch_report(err, errlen, "recvmsg (launcher)", -rc);
        if (rc == 0)
            return lg_launch_report(err, errlen, "launcher", ECHILD); /* died without a word */
        switch (m.kind) {
        case LG_MSG_ERROR:
            return error_from(&m, err, errlen);
        case LG_MSG_PID:
            if (sender <= 0)
                return lg_launch_report(err, errlen, "SCM_CREDENTIALS", EPROTO);
            child->agent_pid = sender;
            break;
        case LG_MSG_RULESET:
            if (child->agent_pid <= 0 || m.value < 0)
                return lg_launch_report(err, errlen, "ruleset before pid", EPROTO);
            {
                int rfd = agent_fd(child, m.value, "pidfd_getfd (Landlock ruleset)", err, errlen);
                if (rfd < 0)
                    return rfd;
                child->ruleset_fd = rfd;
            }
            break;
        case LG_MSG_LISTENER:
            child->ll_skipped = m.err;
            if (m.value < 0)
                return 0;
            if (child->agent_pid <= 0)
                return lg_launch_report(err, errlen, "listener before pid", EPROTO);
            {
                int lfd = agent_fd(child, m.value, "pidfd_getfd", err, errlen);
                if (lfd < 0)
                    return lfd;
                child->listener_fd = lfd;
            }
            return 0;
        default:
            return lg_launch_report(err, errlen, "launcher message", EPROTO);
        }
    }
}

int lg_release(struct lg_child *child, char *err, int errlen)
{
    if (child->go_fd < 0)
        return lg_launch_report(err, errlen, "release", EBADF);
    char c = 'g';
    ssize_t n;
    do {
        n = write(child->go_fd, &c, 1);
    } while (n < 0 && errno == EINTR);
    int e = n == 1 ? 0 : (n < 0 ? errno : EIO);
    close(child->go_fd);
    child->go_fd = -1;
    if (e)
        return lg_launch_report(err, errlen, "release (write go pipe)", e);
    return 0;
}

int lg_collect(struct lg_child *child, int *raw_status, int *exec_errno)
{
    int got = 0;
    *exec_errno = 0;
    for (;;) {
        struct lg_msg m;
        pid_t sender = -1;
        int rc = recv_msg(child->sock, &m, &sender, MSG_DONTWAIT);
        if (rc == -EAGAIN || rc == 0)
            return got;
        if (rc < 0)
            return rc;
        if (m.kind == LG_MSG_EXEC_FAILED)
            *exec_errno = m.err;
        else if (m.kind == LG_MSG_STATUS) {
            *raw_status = m.value;
            got = 1;
        }
    }
}

void lg_child_close(struct lg_child *child)
{
    if (child->sock >= 0)
        close(child->sock);
    if (child->go_fd >= 0)
        close(child->go_fd);
    if (child->init_pidfd >= 0)
        close(child->init_pidfd);
    if (child->ruleset_fd >= 0)
        close(child->ruleset_fd);
    child->sock = child->go_fd = child->init_pidfd = child->ruleset_fd = -1;
}

int lg_listener_sync_wakeup(int listener_fd)
{
    /* The flag is passed by value, not through a pointer (6.6). */
    if (ioctl(listener_fd, SECCOMP_IOCTL_NOTIF_SET_FLAGS, SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP) != 0)
        return -errno;
    return 0;
}
