/* kernel_compat.h: kernel constants newer than the C library headers.
 *
 * The build machines ship Linux 6.1 UAPI headers while they run 6.18, so every
 * constant introduced after 6.1 is defined here, once, with the kernel version
 * that introduced it.  Values are the kernel's UAPI values; they never change
 * once released.  Include this after the system headers.
 */
#ifndef LANDGATE_KERNEL_COMPAT_H
#define LANDGATE_KERNEL_COMPAT_H

#include <stdint.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <linux/types.h>
#include <linux/landlock.h>
#include <linux/seccomp.h>

/* ---- Landlock -------------------------------------------------------- */

/* ABI 3 (6.2): truncate(2), ftruncate on files opened for write, O_TRUNC. */
#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
#define LANDLOCK_ACCESS_FS_TRUNCATE (1ULL << 14)
#endif
/* ABI 5 (6.10): ioctl(2) on character and block devices. */
#ifndef LANDLOCK_ACCESS_FS_IOCTL_DEV
#define LANDLOCK_ACCESS_FS_IOCTL_DEV (1ULL << 15)
#endif
/* ABI 4 (6.7): TCP bind/connect port rules. */
#ifndef LANDLOCK_ACCESS_NET_BIND_TCP
#define LANDLOCK_ACCESS_NET_BIND_TCP (1ULL << 0)
#define LANDLOCK_ACCESS_NET_CONNECT_TCP (1ULL << 1)
#endif
#define LG_LANDLOCK_RULE_NET_PORT 2
/* ABI 6 (6.12): scoping of abstract unix sockets and signals to the domain. */
#ifndef LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET
#define LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET (1ULL << 0)
#define LANDLOCK_SCOPE_SIGNAL (1ULL << 1)
#endif
/* ABI 7 (6.15): audit logging flags for landlock_restrict_self(2). */
#ifndef LANDLOCK_RESTRICT_SELF_LOG_SAME_EXEC_OFF
#define LANDLOCK_RESTRICT_SELF_LOG_SAME_EXEC_OFF (1U << 0)
#define LANDLOCK_RESTRICT_SELF_LOG_NEW_EXEC_ON (1U << 1)
#define LANDLOCK_RESTRICT_SELF_LOG_SUBDOMAINS_OFF (1U << 2)
#endif

/* The ruleset attribute grew with the ABI (handled_access_net in 6.7, scoped
 * in 6.12).  The kernel accepts a shorter struct from older callers, so we
 * pass the size matching the ABI we actually use. */
struct lg_landlock_ruleset_attr {
    __u64 handled_access_fs;
    __u64 handled_access_net; /* ABI >= 4 */
    __u64 scoped;             /* ABI >= 6 */
};
#define LG_RULESET_ATTR_SIZE_V1 8
#define LG_RULESET_ATTR_SIZE_V4 16
#define LG_RULESET_ATTR_SIZE_V6 24

struct lg_landlock_net_port_attr {
    __u64 allowed_access;
    __u64 port;
};

#ifndef __NR_landlock_create_ruleset
#define __NR_landlock_create_ruleset 444
#define __NR_landlock_add_rule 445
#define __NR_landlock_restrict_self 446
#endif

/* ---- seccomp ---------------------------------------------------------- */

/* 5.19: once a notification is received, the caller's wait is killable only,
 * so a signal cannot make the syscall restart behind the supervisor's back. */
#ifndef SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
#define SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV (1UL << 5)
#endif
/* 6.6: SECCOMP_IOCTL_NOTIF_SET_FLAGS with SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP
 * (passed by value) wakes the supervisor on the caller's CPU: measured 4.5 us
 * per round trip instead of 40-55 us on these machines. */
#ifndef SECCOMP_IOCTL_NOTIF_SET_FLAGS
#define SECCOMP_IOCTL_NOTIF_SET_FLAGS SECCOMP_IOW(4, __u64)
#endif
#ifndef SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP
#define SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP (1UL << 0)
#endif
#ifndef SECCOMP_ADDFD_FLAG_SEND
#define SECCOMP_ADDFD_FLAG_SEND (1UL << 1) /* 5.14 */
#endif

/* ---- pidfd ------------------------------------------------------------ */

/* 6.9: pidfd_open(tid, PIDFD_THREAD) opens a thread; on 6.18 a plain
 * pidfd_open on a non-leader tid fails with ENOENT. */
#ifndef PIDFD_THREAD
#define PIDFD_THREAD O_EXCL
#endif
#ifndef __NR_pidfd_open
#define __NR_pidfd_open 434
#endif
#ifndef __NR_pidfd_getfd
#define __NR_pidfd_getfd 438
#endif
#ifndef __NR_pidfd_send_signal
#define __NR_pidfd_send_signal 424
#endif
/* 6.13: PIDFD_GET_INFO, a pidfd's pid, tgid and ppid (and credentials) in one
 * ioctl.  The struct's first version (PIDFD_INFO_SIZE_VER0, 64 bytes): the
 * ioctl's size field says which one we pass, and every kernel since 6.13
 * takes this one.  Our own names: newer uapi headers define the real ones. */
struct lg_pidfd_info {
    __u64 mask;
    __u64 cgroupid;
    __u32 pid, tgid, ppid, ruid, rgid, euid, egid, suid, sgid, fsuid, fsgid;
    __s32 exit_code;
};
#define LG_PIDFD_INFO_PID (1ULL << 0)
#define LG_PIDFD_GET_INFO _IOWR(0xFF, 11, struct lg_pidfd_info)

/* ---- x86_64 syscall numbers after 6.1 (for the hardening filter) -------- */
#ifndef __NR_memfd_secret
#define __NR_memfd_secret 447
#endif
#ifndef __NR_cachestat
#define __NR_cachestat 451 /* 6.5 */
#endif
#ifndef __NR_fchmodat2
#define __NR_fchmodat2 452 /* 6.6 */
#endif
#ifndef __NR_map_shadow_stack
#define __NR_map_shadow_stack 453 /* 6.6 */
#endif
#ifndef __NR_statmount
#define __NR_statmount 457 /* 6.8 */
#define __NR_listmount 458 /* 6.8 */
#endif
#ifndef __NR_mseal
#define __NR_mseal 462 /* 6.10 */
#endif
#ifndef __NR_open_tree_attr
#define __NR_open_tree_attr 467 /* 6.15 */
#endif

/* ---- procfs ----------------------------------------------------------- */

/* 6.11: PROCMAP_QUERY ioctl on /proc/PID/maps: the VMA covering an address,
 * with its flags and backing inode, without parsing the text file.  The
 * supervisor uses it to tell whether exec strings live in memory that another
 * process could change (shared or file-backed pages). */
#ifndef PROCMAP_QUERY
struct procmap_query {
    __u64 size;
    __u64 query_flags;
    __u64 query_addr;
    __u64 vma_start;
    __u64 vma_end;
    __u64 vma_flags;
    __u64 vma_page_size;
    __u64 vma_offset;
    __u64 inode;
    __u32 dev_major;
    __u32 dev_minor;
    __u32 vma_name_size;
    __u32 build_id_size;
    __u64 vma_name_addr;
    __u64 build_id_addr;
};
#define PROCMAP_QUERY _IOWR('f', 17, struct procmap_query)
#define PROCMAP_QUERY_VMA_SHARED 0x08
#endif

/* 5.6: openat2(2) and its RESOLVE_* flags (headers of 6.1 have them; kept for older). */
#ifndef __NR_openat2
#define __NR_openat2 437
#endif
/* kcmp(2) KCMP_VM: do two tasks share one mm (3.5); KCMP_FILE: is fd A of
 * one task the same open file as fd B of another. */
#ifndef KCMP_FILE
#define KCMP_FILE 0
#endif
#ifndef KCMP_VM
#define KCMP_VM 1
#endif

/* x32 syscalls on x86_64 have this bit set; the hardening filter kills them
 * because a filter written for the x86_64 numbers would otherwise not see them. */
#define LG_X32_SYSCALL_BIT 0x40000000U

#endif /* LANDGATE_KERNEL_COMPAT_H */
