/* Test-only stand-in for the launcher: install a seccomp filter that sends
 * execve/execveat/connect/sendto/sendmsg/sendmmsg (and, with --open, the open
 * family) to a user-notification listener, tell the parent the listener's fd
 * number on fd 3 (a write: not supervised), wait for a byte on fd 4, exec.
 * The parent takes the listener with pidfd_getfd.
 *
 *   spawn [--open] [--none] [--spec-allow] [--allow-chroot] [--mntns [--bind SRC DST]...]
 *         -- PROG ARG...
 *
 * As the launcher's filter, it refuses chroot, pivot_root, setns and unshare of a
 * mount or user namespace: the supervisor resolves every exec from one root.
 * --allow-chroot lets chroot through: a harness whose premise is broken on
 * purpose, for the tests that show what a caller in another root would get
 * (tests/supervise/test_session_root.py).
 *
 * --mntns: the command runs in its own mount namespace (as the launcher's
 * namespace rung does), with every mount private; --bind SRC DST then
 * bind-mounts SRC onto DST there (a tree seen under another name).
 */
#define _GNU_SOURCE /* unshare */
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
#define SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV (1UL << 5)
#endif

int main(int argc, char **argv)
{
    int open_check = 0, none = 0, spec_allow = 0, mntns = 0, allow_chroot = 0, i = 1;
    for (; i < argc && strcmp(argv[i], "--") != 0; i++) {
        if (strcmp(argv[i], "--mntns") == 0) {
            if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
                perror("spawn: mount namespace");
                return 125;
            }
            mntns = 1;
        }
        if (strcmp(argv[i], "--bind") == 0) {
            if (!mntns || i + 2 >= argc || mount(argv[i + 1], argv[i + 2], NULL, MS_BIND, NULL) < 0) {
                perror("spawn: --bind (after --mntns)");
                return 125;
            }
            i += 2;
            continue;
        }
        if (strcmp(argv[i], "--open") == 0)
            open_check = 1;
        if (strcmp(argv[i], "--allow-chroot") == 0)
            allow_chroot = 1;
        if (strcmp(argv[i], "--none") == 0)
            none = 1;  /* benchmarks: the same kind of filter, nothing supervised */
        if (strcmp(argv[i], "--spec-allow") == 0)
            spec_allow = 1;  /* benchmarks: no forced speculative-store-bypass mitigation */
    }
    if (i + 1 >= argc) {
        fprintf(stderr, "usage: spawn [--open] -- PROG ARG...\n");
        return 2;
    }
    int nrs[] = {SYS_execve, SYS_execveat, SYS_connect, SYS_sendto, SYS_sendmsg, SYS_sendmmsg,
                 SYS_open, SYS_openat, SYS_openat2, SYS_creat};
    int n = none ? 0 : open_check ? 10 : 6;
    struct sock_filter f[64];
    int k = 0;
    f[k++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch));
    f[k++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0);
    f[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS);
    f[k++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr));
    /* clone3 -> ENOSYS (libc falls back to clone), as the launcher's hardening does */
    f[k++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 435, 0, 1);
    f[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS);
    /* The supervisor's premise that no caller changes its root or mount view
     * (supervise_caller.c, the session's root): refused as the launcher's filter
     * refuses them (the tests run as root, with CAP_SYS_CHROOT and CAP_SYS_ADMIN). */
    int premise[] = {SYS_chroot, SYS_pivot_root, SYS_setns};
    for (int j = allow_chroot ? 1 : 0; j < 3; j++) {
        f[k++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)premise[j], 0, 1);
        f[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM);
    }
    /* unshare with a new mount or user namespace (the low word of its flags) */
    f[k++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_unshare, 0, 3);
    f[k++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0]));
    f[k++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, CLONE_NEWNS | CLONE_NEWUSER, 0, 1);
    f[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM);
    /* (after the unshare check the accumulator holds its flags, not the number:
     * reload it for the checks below) */
    f[k++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr));
    for (int j = 0; j < n; j++) {
        f[k++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)nrs[j], 0, 1);
        f[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF);
    }
    f[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
    struct sock_fprog prog = {(unsigned short)k, f};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
        perror("no_new_privs");
        return 125;
    }
    int lfd = (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER,
                           SECCOMP_FILTER_FLAG_NEW_LISTENER | SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV |
                               (spec_allow ? SECCOMP_FILTER_FLAG_SPEC_ALLOW : 0), &prog);
    if (lfd < 0) {
        perror("seccomp");
        return 125;
    }
    char msg[32];
    int len = snprintf(msg, sizeof msg, "%d\n", lfd);
    if (write(3, msg, (size_t)len) != len)
        return 125;
    char go;
    if (read(4, &go, 1) != 1)
        return 125;
    close(3);
    close(4);
    close(lfd);
    execv(argv[i + 1], argv + i + 1);
    fprintf(stderr, "spawn: exec %s: %s\n", argv[i + 1], strerror(errno));
    return errno == ENOENT ? 127 : 126;
}
