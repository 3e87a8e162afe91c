/* probe_api.h: kernel feature probes for `landgate doctor` and the planner.
 * cdef-clean (see csrc/build.py).  Every probe returns >= 0 on success and
 * -errno on failure; none of them changes the calling process (the lg_ns_* calls below
 * are not probes: they do what they name, to the calling thread). */
#ifndef LANDGATE_PROBE_API_H
#define LANDGATE_PROBE_API_H

/* Landlock ABI version (1..N), or -errno (-ENOSYS: not built, -EOPNOTSUPP: disabled at boot). */
int lg_probe_landlock_abi(void);

/* 0 if the seccomp return action (e.g. SECCOMP_RET_USER_NOTIF) is available, else -errno. */
int lg_probe_seccomp_action(unsigned int action);

/* 1 if seccomp(SECCOMP_SET_MODE_FILTER) accepts this filter flag, 0 if not, -errno on error. */
int lg_probe_seccomp_filter_flag(unsigned long flag);

/* 0 if a user-notification listener accepts SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP, else -errno.
 * Runs in a short-lived child because installing a filter cannot be undone. */
int lg_probe_notif_sync_wakeup(void);

/* 1 if pidfd_open accepts PIDFD_THREAD (6.9: a pidfd for one thread), 0 if not, -errno on error.
 * Without it the supervisor takes a calling thread's fds through its leader's pidfd + kcmp. */
int lg_probe_pidfd_thread(void);

/* 0 if kcmp(KCMP_FILE) compares two open files (CONFIG_KCMP), else -errno. */
int lg_probe_kcmp_file(void);

/* 0 if a child (as `uid`, or unchanged when uid < 0) can unshare(flags), else -errno. */
int lg_probe_unshare(int flags, int uid);

/* Namespace calls for the network layer (sandbox/net/netns.py), which Python 3.11's os
 * module lacks (os.setns/os.unshare are 3.12): ctypes cost the run path ~1-2 ms of imports.
 * Each acts on the calling thread (setns/unshare of CLONE_NEWNET) or the mount table, and
 * returns 0 or -errno. */
int lg_ns_setns(int fd, int nstype);
int lg_ns_unshare(int flags);
/* umount2(path, MNT_DETACH). */
int lg_ns_umount_detach(const char *path);

/* Constants the Python side needs, with the value this build uses. */
#define LG_SECCOMP_RET_USER_NOTIF 0x7fc00000
#define LG_SECCOMP_RET_ERRNO 0x00050000
#define LG_SECCOMP_RET_KILL_PROCESS 0x80000000
#define LG_SECCOMP_FILTER_FLAG_NEW_LISTENER 8
#define LG_SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV 32
#define LG_CLONE_NEWNET 0x40000000

#endif
