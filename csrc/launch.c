/* launch.c: landgate's side of the restricted child (see launch_api.h for the process
 * shape; the child's own steps are csrc/lginit.c, the init program).
 *
 * lg_spawn writes the spec into a sealed memfd and clones with the namespace flags and
 * CLONE_VM|CLONE_VFORK on a small stack of its own.  That clone shares landgate's memory
 * until its execve of the init program, while the calling thread is suspended, so
 * it runs only raw system calls (no malloc, no stdio, no locks: other Python threads
 * keep running in the same memory), and every signal is blocked around it so that no
 * handler of landgate's runs on its stack.  No copy of landgate's heap is ever made:
 * there is no page table to copy and no copy-on-write fault afterwards, in landgate or
 * the child.  Nothing here calls exit() in the parent.
 *
 * This file makes the child (the memfd, the clone, the loopback namespace made ahead);
 * the conversation with it afterwards, over the sync socket, is launch_child.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <linux/capability.h>
#include <linux/close_range.h>

#include "kernel_compat.h"
#include "launch_api.h"
#include "launch_int.h"

/* 6.3: a memfd that can never be made executable. */
#ifndef MFD_NOEXEC_SEAL
#define MFD_NOEXEC_SEAL 0x0008U
#endif

/* The clone's stack: it runs a handful of system calls before its execve. */
#define LG_CLONE_STACK (64 * 1024)

/* ---- the spec's memfd ------------------------------------------------------ */

/* The encoded spec in a memfd sealed against writes and size changes (the init
 * program refuses an unsealed one).  Returns the fd (O_CLOEXEC) or -errno. */
static int spec_memfd(const struct lg_spawn_spec *spec, const char **step)
{
    long size = lg_wire_encode(spec, (int)getpid(), NULL, 0);
    if (size < 0) {
        *step = "encode spec";
        return (int)size;
    }
    unsigned char *buf = malloc((size_t)size);
    if (!buf) {
        *step = "encode spec";
        return -ENOMEM;
    }
    if (lg_wire_encode(spec, (int)getpid(), buf, (unsigned long)size) != size) {
        free(buf);
        *step = "encode spec";
        return -EIO;
    }
    unsigned int flags = MFD_CLOEXEC | MFD_ALLOW_SEALING;
    int fd = (int)syscall(__NR_memfd_create, "landgate-spec", flags | MFD_NOEXEC_SEAL);
    if (fd < 0 && errno == EINVAL) /* before 6.3 */
        fd = (int)syscall(__NR_memfd_create, "landgate-spec", flags);
    if (fd < 0) {
        int e = errno;
        free(buf);
        *step = "memfd_create (spec)";
        return -e;
    }
    long done = 0;
    while (done < size) {
        ssize_t n = write(fd, buf + done, (size_t)(size - done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            int e = n < 0 ? errno : EIO;
            free(buf);
            close(fd);
            *step = "write spec memfd";
            return -e;
        }
        done += n;
    }
    free(buf);
    if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) != 0) {
        int e = errno;
        close(fd);
        *step = "seal spec memfd";
        return -e;
    }
    return fd;
}

/* ---- the clone, until its execve ------------------------------------------- */

struct lg_clone_args {
    const char *init;  /* the init program */
    char *argv[5];
    int sock;          /* the child's end of the sync socket, for ERROR */
    int keep[7];       /* fds that cross the execve */
    const char *keep_step[7]; /* each one's ERROR step: which fd it is */
    int n_keep;
    int raise_caps;
};

static void clone_fail(int sock, const char *step, int err)
{
    lg_send_msg(sock, LG_MSG_ERROR, err, 0, step);
    _exit(LG_EXIT_SETUP);
}

/* In a new user namespace the clone holds every capability there, but the execve of a
 * program by a non-root uid (the outer uid, mapped to itself, or still unmapped here)
 * clears them all (capabilities(7)), and init needs them for its uid map and mounts.
 * Ambient capabilities survive that execve: raise every permitted one.  The agent
 * clears the ambient set again (drop_capabilities in lginit.c) before it is released. */
static void raise_ambient(int sock)
{
    struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
    struct __user_cap_data_struct data[2];
    memset(data, 0, sizeof data);
    if (syscall(SYS_capget, &hdr, data) != 0)
        clone_fail(sock, "capget (init)", errno);
    for (int i = 0; i < 2; i++)
        data[i].inheritable = data[i].permitted; /* ambient needs permitted and inheritable */
    if (syscall(SYS_capset, &hdr, data) != 0)
        clone_fail(sock, "capset (init)", errno);
    for (int cap = 0; cap < 64; cap++) {
        if (!(data[cap / 32].permitted & (1U << (cap % 32))))
            continue;
        if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) != 0)
            clone_fail(sock, "prctl PR_CAP_AMBIENT_RAISE (init)", errno);
    }
}

static int exec_init(void *p)
{
    const struct lg_clone_args *a = p;
    /* Before the execve (which keeps it): landgate's thread is suspended until then. */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0)
        clone_fail(a->sock, "prctl PR_SET_PDEATHSIG (init)", errno);
    if (a->raise_caps)
        raise_ambient(a->sock);
    /* This fd table is the clone's own copy: only what init and the agent need crosses
     * the execve, whatever landgate left without close-on-exec. */
    if (syscall(__NR_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC) != 0)
        clone_fail(a->sock, "close_range (init)", errno);
    for (int i = 0; i < a->n_keep; i++)
        if (fcntl(a->keep[i], F_SETFD, 0) != 0)
            clone_fail(a->sock, a->keep_step[i], errno);
    char *const envp[] = { NULL };
    execve(a->init, a->argv, envp);
    clone_fail(a->sock, "exec init program", errno);
    return LG_EXIT_SETUP;
}

/* ---- parent side --------------------------------------------------------- */

static void keep_fd(struct lg_clone_args *a, int fd, const char *step)
{
    a->keep[a->n_keep] = fd;
    a->keep_step[a->n_keep] = step;
    a->n_keep++;
}

static void close_all(const int *fds, int n)
{
    for (int i = 0; i < n; i++)
        if (fds[i] >= 0)
            close(fds[i]);
}

int lg_spawn(const struct lg_spawn_spec *spec, struct lg_child *child, char *err, int errlen)
{
    memset(child, 0, sizeof *child);
    child->init_pidfd = child->sock = child->go_fd = child->listener_fd = child->ruleset_fd = -1;
    child->agent_pid = -1;
    if (!spec->init_helper)
        return lg_launch_report(err, errlen, "spawn: no init program", EINVAL);
    int flags = CLONE_VM | CLONE_VFORK | CLONE_PIDFD | SIGCHLD;
    if (spec->ns_flags & LG_NS_USER) flags |= CLONE_NEWUSER;
    if (spec->ns_flags & LG_NS_MOUNT) flags |= CLONE_NEWNS;
    if (spec->ns_flags & LG_NS_PID) flags |= CLONE_NEWPID;
    if (spec->ns_flags & LG_NS_NET) {
        /* Created after the user namespace in the same clone (copy_namespaces runs
         * after the new creds), so the user namespace owns it and the agent, non-root
         * with its bounding set dropped, holds no CAP_NET_ADMIN over it.  Joining a
         * prepared namespace as well makes no sense. */
        if (spec->netns_fd >= 0)
            return lg_launch_report(err, errlen, "LG_NS_NET with netns_fd", EINVAL);
        flags |= CLONE_NEWNET;
    }
    if ((spec->ns_flags & LG_NS_NET_INIT) &&
        (spec->netns_fd >= 0 || (spec->ns_flags & (LG_NS_NET | LG_NS_USER))))
        return lg_launch_report(err, errlen, "LG_NS_NET_INIT with another network namespace or a user "
                                   "namespace", EINVAL);
    /* sv[0], go[1]: landgate's; sv[1], go[0], memfd: the child's (closed here after). */
    int fds[5] = { -1, -1, -1, -1, -1 };
    int *sv = fds, *go = fds + 2;
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
        return lg_launch_report(err, errlen, "socketpair", errno);
    int one = 1;
    if (setsockopt(sv[0], SOL_SOCKET, SO_PASSCRED, &one, sizeof one) != 0) {
        int e = errno;
        close_all(fds, 5);
        return lg_launch_report(err, errlen, "setsockopt SO_PASSCRED", e);
    }
    if (pipe2(go, O_CLOEXEC) != 0) {
        int e = errno;
        close_all(fds, 5);
        return lg_launch_report(err, errlen, "pipe2", e);
    }
    const char *step = "spec";
    fds[4] = spec_memfd(spec, &step);
    if (fds[4] < 0) {
        int e = -fds[4];
        fds[4] = -1;
        close_all(fds, 5);
        return lg_launch_report(err, errlen, step, e);
    }
    struct lg_clone_args a;
    memset(&a, 0, sizeof a);
    char a_memfd[16], a_sock[16], a_go[16];
    snprintf(a_memfd, sizeof a_memfd, "%d", fds[4]);
    snprintf(a_sock, sizeof a_sock, "%d", sv[1]);
    snprintf(a_go, sizeof a_go, "%d", go[0]);
    a.init = spec->init_helper;
    a.argv[0] = (char *)"landgate-init";
    a.argv[1] = a_memfd;
    a.argv[2] = a_sock;
    a.argv[3] = a_go;
    a.argv[4] = NULL;
    a.sock = sv[1];
    static const char *const stdio_step[3] = { "fcntl (stdin fd for the agent)",
                                                "fcntl (stdout fd for the agent)",
                                                "fcntl (stderr fd for the agent)" };
    keep_fd(&a, fds[4], "fcntl (spec memfd)");
    keep_fd(&a, sv[1], "fcntl (sync socket)");
    keep_fd(&a, go[0], "fcntl (go pipe)");
    if (spec->netns_fd >= 0)
        keep_fd(&a, spec->netns_fd, "fcntl (network namespace fd)");
    for (int i = 0; i < 3; i++)
        if (spec->stdio_fds[i] >= 0)
            keep_fd(&a, spec->stdio_fds[i], stdio_step[i]);
    a.raise_caps = (spec->ns_flags & LG_NS_USER) != 0;

    /* The stack, with a guard page below it (it grows down). */
    long page = sysconf(_SC_PAGESIZE);
    size_t len = LG_CLONE_STACK + (size_t)page;
    char *stack = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK,
                       -1, 0);
    if (stack == MAP_FAILED) {
        int e = errno;
        close_all(fds, 5);
        return lg_launch_report(err, errlen, "mmap (clone stack)", e);
    }
    if (mprotect(stack, (size_t)page, PROT_NONE) != 0) {
        int e = errno;
        munmap(stack, len);
        close_all(fds, 5);
        return lg_launch_report(err, errlen, "mprotect (clone stack guard)", e);
    }
    /* Every signal blocked in this thread across the clone: the clone inherits the mask
     * and keeps it through its execve (init unblocks once its forwarders are in place),
     * so no handler of landgate's ever runs on the clone's stack in shared memory. */
    sigset_t all, old;
    sigfillset(&all);
    int mrc = pthread_sigmask(SIG_SETMASK, &all, &old);
    if (mrc != 0) {
        munmap(stack, len);
        close_all(fds, 5);
        return lg_launch_report(err, errlen, "pthread_sigmask", mrc);
    }
    int pidfd = -1;
    int pid = clone(exec_init, stack + len, flags, &a, &pidfd);
    int clone_errno = errno;
    mrc = pthread_sigmask(SIG_SETMASK, &old, NULL);
    /* The clone has exec'd or exited: the stack is free either way (CLONE_VFORK). */
    munmap(stack, len);
    int child_fds[3] = { sv[1], go[0], fds[4] };
    if (pid < 0) {
        close_all(fds, 5);
        return lg_launch_report(err, errlen, "clone", clone_errno);
    }
    child->init_pid = pid;
    child->init_pidfd = pidfd;
    child->sock = sv[0];
    child->go_fd = go[1];
    int rc = 0;
    for (int i = 0; i < 3; i++)
        if (close(child_fds[i]) != 0 && rc == 0)
            rc = lg_launch_report(err, errlen, "close the child's fds (parent)", errno);
    if (mrc != 0 && rc == 0)
        rc = lg_launch_report(err, errlen, "pthread_sigmask (restore)", mrc);
    return rc;
}

/* ---- a loopback-only network namespace, made ahead ------------------------ */

struct lo_netns {
    int fd;            /* the namespace's fd, or -errno */
    const char *step;  /* the failing step */
};

/* On its own thread: unshare changes only this thread's namespace, and the thread
 * ends here, so no thread of landgate's is ever left in it.  The same steps as init's
 * (lg_wire_loopback_netns, csrc/launch_wire.c). */
static void *lo_netns_main(void *arg)
{
    struct lo_netns *r = arg;
    int rc = lg_wire_loopback_netns(&r->step);
    if (rc < 0) {
        r->fd = rc;
        return NULL;
    }
    r->fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (r->fd < 0) {
        r->fd = -errno;
        r->step = "open /proc/thread-self/ns/net";
    }
    return NULL;
}

int lg_loopback_netns_new(char *err, int errlen)
{
    struct lo_netns r = { -EIO, "loopback namespace" };
    pthread_t th;
    int rc = pthread_create(&th, NULL, lo_netns_main, &r);
    if (rc != 0)
        return lg_launch_report(err, errlen, "pthread_create (loopback namespace)", rc);
    rc = pthread_join(th, NULL);
    if (rc != 0)
        return lg_launch_report(err, errlen, "pthread_join (loopback namespace)", rc);
    if (r.fd < 0)
        return lg_launch_report(err, errlen, r.step, -r.fd);
    return r.fd;
}
