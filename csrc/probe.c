/* probe.c: read-only kernel feature probes.
 *
 * Probes that would change the caller (installing a seccomp filter,
 * unsharing a namespace) run in a forked child that reports its result
 * through its exit status, so `landgate doctor` leaves the caller untouched.
 */
#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <grp.h>
#include <linux/filter.h>

#include "kernel_compat.h"
#include "probe_api.h"

int lg_probe_landlock_abi(void)
{
    long abi = syscall(__NR_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
    if (abi < 0)
        return -errno;
    return (int)abi;
}

int lg_probe_seccomp_action(unsigned int action)
{
    if (syscall(__NR_seccomp, SECCOMP_GET_ACTION_AVAIL, 0, &action) != 0)
        return -errno;
    return 0;
}

int lg_probe_seccomp_filter_flag(unsigned long flag)
{
    /* With a NULL program the kernel validates the flags first: an unknown
     * flag gives EINVAL, a known one gets as far as copying the program and
     * fails with EFAULT.  Nothing is installed either way. */
    if (syscall(__NR_seccomp, SECCOMP_SET_MODE_FILTER, flag, NULL) == 0)
        return 1; /* cannot happen: NULL program */
    if (errno == EFAULT)
        return 1;
    if (errno == EINVAL)
        return 0;
    return -errno;
}

/* Runs `fn` in a child; the child's exit code is the probe's -errno (0 = ok). */
static int run_in_child(int (*fn)(void *), void *arg)
{
    pid_t pid = fork();
    if (pid < 0)
        return -errno;
    if (pid == 0) {
        int rc = fn(arg);
        _exit(rc < 0 ? (-rc & 0xff) : 0);
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR)
            return -errno;
    }
    if (WIFEXITED(status))
        return -WEXITSTATUS(status);
    return -ECHILD;
}

static int sync_wakeup_child(void *unused)
{
    (void)unused;
    /* A filter that notifies only on a syscall number nobody calls. */
    struct sock_filter insns[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0x3fff, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = { .len = sizeof(insns) / sizeof(insns[0]), .filter = insns };
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        return -errno;
    long fd = syscall(__NR_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog);
    if (fd < 0)
        return -errno;
    /* The flag is passed by value, not through a pointer. */
    if (ioctl((int)fd, SECCOMP_IOCTL_NOTIF_SET_FLAGS, SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP) != 0)
        return -errno;
    return 0;
}

int lg_probe_notif_sync_wakeup(void)
{
    return run_in_child(sync_wakeup_child, NULL);
}

int lg_probe_pidfd_thread(void)
{
    /* Unknown pidfd_open flags are EINVAL: PIDFD_THREAD is one before 6.9. */
    long fd = syscall(__NR_pidfd_open, getpid(), PIDFD_THREAD);
    if (fd >= 0) {
        close((int)fd);
        return 1;
    }
    return errno == EINVAL ? 0 : -errno;
}

int lg_probe_kcmp_file(void)
{
    /* Two descriptors of one open file compare equal (0); a kernel without
     * CONFIG_KCMP says ENOSYS. */
    int a = dup(STDERR_FILENO);
    if (a < 0)
        return -errno;
    int b = dup(a);
    if (b < 0) {
        int e = errno;
        close(a);
        return -e;
    }
    long same = syscall(SYS_kcmp, getpid(), getpid(), KCMP_FILE, a, b);
    int e = errno;
    close(a);
    close(b);
    if (same < 0)
        return -e;
    return same == 0 ? 0 : -EIO;
}

struct unshare_args {
    int flags;
    int uid;
};

static int unshare_child(void *p)
{
    const struct unshare_args *a = p;
    if (a->uid >= 0) {
        if (setgroups(0, NULL) != 0 && errno != EPERM)
            return -errno;
        if (setgid((gid_t)a->uid) != 0 || setuid((uid_t)a->uid) != 0)
            return -errno;
    }
    if (unshare(a->flags) != 0)
        return -errno;
    return 0;
}

int lg_probe_unshare(int flags, int uid)
{
    struct unshare_args a = { .flags = flags, .uid = uid };
    return run_in_child(unshare_child, &a);
}

/* Not probes: the network layer's namespace calls (see probe_api.h).  glibc's wrappers;
 * errno is read before anything else can change it. */
int lg_ns_setns(int fd, int nstype)
{
    if (setns(fd, nstype) != 0)
        return -errno;
    return 0;
}

int lg_ns_unshare(int flags)
{
    if (unshare(flags) != 0)
        return -errno;
    return 0;
}

int lg_ns_umount_detach(const char *path)
{
    if (path == NULL)
        return -EINVAL;
    if (umount2(path, MNT_DETACH) != 0)
        return -errno;
    return 0;
}
