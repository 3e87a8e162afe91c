/* lginit_ns.c: init's namespace steps (the init program, csrc/lginit.c): the user
 * namespace's id maps, the mounts (private propagation, a fresh /proc, the sandbox's own
 * /dev, the bind mounts), memfd_noexec, and the network namespace.
 *
 * Apart from lginit.c because these steps build the sandbox's world once, before the
 * agent is forked, while lginit.c is init's life around them (main, the fork, reaping
 * and forwarding signals for the whole session).  Same rules: one function per step,
 * a failing one sends ERROR(step, errno) and _exits (lg_fail), single-threaded.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "kernel_compat.h"
#include "launch_api.h"
#include "launch_wire.h"
#include "lginit.h"

#define LG_STEP_MAX_DEV 256

/* ---- small async-signal-safe helpers ------------------------------------ */

static int write_file(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    size_t len = strlen(text);
    ssize_t n = write(fd, text, len);
    int err = n < 0 ? errno : 0;
    if (close(fd) != 0 && err == 0)
        err = errno;
    if (err)
        return -err;
    return (size_t)n == len ? 0 : -EIO;
}

/* "<id> <id> 1\n" without snprintf (not async-signal-safe). */
static void id_map_line(char *buf, size_t n, unsigned int id)
{
    char digits[16];
    int nd = 0;
    do {
        digits[nd++] = (char)('0' + id % 10);
        id /= 10;
    } while (id && nd < (int)sizeof digits);
    size_t pos = 0;
    for (int rep = 0; rep < 2; rep++) {
        for (int i = nd - 1; i >= 0 && pos + 1 < n; i--)
            buf[pos++] = digits[i];
        if (pos + 1 < n)
            buf[pos++] = ' ';
    }
    if (pos + 3 < n) {
        buf[pos++] = '1';
        buf[pos++] = '\n';
    }
    buf[pos] = '\0';
}

/* ---- init's steps ------------------------------------------------------- */

/* An unprivileged process may map exactly its own uid/gid into a user namespace
 * it created, after denying setgroups(2) (user_namespaces(7)). */
static void map_ids(int sock, int uid, int gid)
{
    char line[48];
    int rc = write_file("/proc/self/setgroups", "deny");
    if (rc < 0 && rc != -ENOENT)
        lg_fail(sock, "write /proc/self/setgroups", -rc);
    id_map_line(line, sizeof line, (unsigned int)uid);
    if ((rc = write_file("/proc/self/uid_map", line)) < 0)
        lg_fail(sock, "write /proc/self/uid_map", -rc);
    id_map_line(line, sizeof line, (unsigned int)gid);
    if ((rc = write_file("/proc/self/gid_map", line)) < 0)
        lg_fail(sock, "write /proc/self/gid_map", -rc);
}

/* Mount events must not propagate back to the host's namespace. */
static void make_mounts_private(int sock)
{
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
        lg_fail(sock, "mount / private", errno);
}

/* A fresh procfs for the new pid namespace: /proc shows only the sandbox. */
static void mount_proc(int sock)
{
    if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) != 0)
        lg_fail(sock, "mount /proc", errno);
}

/* The sandbox's own /dev (issue 13): a tmpfs over /dev holding only the nodes
 * in s->dev_paths (bound from the host's: null, zero, full, random, urandom,
 * tty, and any device the policy names), a private devpts instance for new
 * pseudo-terminals (/dev/ptmx -> pts/ptmx; the agent's own terminal stays
 * reachable through its fds and /dev/tty), a private /dev/shm and the fd
 * links.  Everything else of the host's /dev (kvm, userfaultfd, block
 * devices, mem, the other users' ptys) does not exist in the sandbox.
 *
 * The host's nodes are opened (O_PATH) before the tmpfs hides them and bound
 * from /proc/self/fd/N (a fresh procfs of this pid namespace is mounted
 * first).  A node the host lacks is left out (the plan named what it wanted;
 * a program sees ENOENT, as on the host).  Runs in init, single-threaded. */

static void dev_fail(int sock, const char *what, const char *path, int err)
{
    char step[LG_STEP_MAX_DEV];
    snprintf(step, sizeof step, "minimal /dev: %s %s", what, path);
    lg_fail(sock, step, err);  /* does not return */
}

/* mkdir -p for the parents of path (beneath /dev, on the new tmpfs). */
static void dev_parents(int sock, const char *path)
{
    char buf[LG_STEP_MAX_DEV];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        dev_fail(sock, "path too long", path, ENAMETOOLONG);
    for (char *p = buf + 5; (p = strchr(p, '/')) != NULL; p++) {
        *p = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST)
            dev_fail(sock, "mkdir", buf, errno);
        *p = '/';
    }
}

static void minimal_dev(int sock, const struct lg_spawn_spec *s)
{
    int fds[LG_DEV_MAX];
    int isdir[LG_DEV_MAX];
    int n = s->n_dev_paths;
    if (n > LG_DEV_MAX)
        dev_fail(sock, "too many device paths", "", E2BIG);
    for (int i = 0; i < n; i++) {
        const char *p = s->dev_paths[i];
        if (strncmp(p, "/dev/", 5) != 0)
            dev_fail(sock, "not beneath /dev:", p, EINVAL);
        fds[i] = open(p, O_PATH | O_CLOEXEC);
        if (fds[i] < 0 && errno != ENOENT)
            dev_fail(sock, "open", p, errno);
        struct stat st;
        isdir[i] = fds[i] >= 0 && fstat(fds[i], &st) == 0 && S_ISDIR(st.st_mode);
    }
    /* nodev: nothing created on it is a device; the bound nodes are mounts of
     * their own, with the host /dev's flags */
    if (mount("tmpfs", "/dev", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0755,size=1m") != 0)
        dev_fail(sock, "mount tmpfs on", "/dev", errno);
    for (int i = 0; i < n; i++) {
        const char *p = s->dev_paths[i];
        if (fds[i] < 0)
            continue;
        dev_parents(sock, p);
        if (isdir[i]) {
            if (mkdir(p, 0755) != 0 && errno != EEXIST)
                dev_fail(sock, "mkdir", p, errno);
        } else {
            int t = open(p, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
            if (t < 0)
                dev_fail(sock, "create", p, errno);
            close(t);
        }
        char src[64];
        snprintf(src, sizeof src, "/proc/self/fd/%d", fds[i]);
        if (mount(src, p, NULL, MS_BIND | (isdir[i] ? MS_REC : 0), NULL) != 0)
            dev_fail(sock, "bind", p, errno);
        close(fds[i]);
    }
    if (mkdir("/dev/pts", 0755) != 0 && errno != EEXIST)
        dev_fail(sock, "mkdir", "/dev/pts", errno);
    if (mount("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
              "newinstance,ptmxmode=0666,mode=0620") != 0)
        dev_fail(sock, "mount devpts on", "/dev/pts", errno);
    if (symlink("pts/ptmx", "/dev/ptmx") != 0)
        dev_fail(sock, "symlink", "/dev/ptmx", errno);
    if (mkdir("/dev/shm", 01777) != 0 && errno != EEXIST)
        dev_fail(sock, "mkdir", "/dev/shm", errno);
    if (mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777") != 0)
        dev_fail(sock, "mount tmpfs on", "/dev/shm", errno);
    static const char *const links[][2] = {
        {"/proc/self/fd", "/dev/fd"},
        {"/proc/self/fd/0", "/dev/stdin"},
        {"/proc/self/fd/1", "/dev/stdout"},
        {"/proc/self/fd/2", "/dev/stderr"},
    };
    for (size_t i = 0; i < sizeof links / sizeof links[0]; i++)
        if (symlink(links[i][0], links[i][1]) != 0)
            dev_fail(sock, "symlink", links[i][1], errno);
}

/* 6.3: vm.memfd_noexec is per pid namespace; 2 makes every memfd non-executable
 * (MFD_EXEC refused), which closes execve("/proc/self/fd/N") of a memfd, a path
 * Landlock cannot see (memfds live on an internal, SB_NOUSER mount). */
static void set_memfd_noexec(int sock)
{
    int rc = write_file("/proc/sys/vm/memfd_noexec", "2");
    if (rc < 0)
        lg_fail(sock, "write /proc/sys/vm/memfd_noexec", -rc);
}

static void bind_file(int sock, const char *src, const char *dst)
{
    if (mount(src, dst, NULL, MS_BIND, NULL) != 0)
        lg_fail(sock, "bind mount", errno);
}

static void enter_netns(int sock, int fd)
{
    if (setns(fd, CLONE_NEWNET) != 0)
        lg_fail(sock, "setns network namespace", errno);
    if (close(fd) != 0)
        lg_fail(sock, "close network namespace fd", errno);
}

/* LG_NS_NET_INIT: a network namespace of init's own, with only `lo`, brought up (its
 * 127.0.0.1 and ::1 appear with it).  Done by init, after its execve, so the kernel's
 * pernet set-up runs while landgate compiles the supervisor's tables; landgate joins
 * it through init's pidfd to bind the DNS view before the agent is released. */
static void new_loopback_netns(int sock)
{
    const char *step = "loopback namespace";
    int rc = lg_wire_loopback_netns(&step);
    if (rc < 0)
        lg_fail(sock, step, -rc);
}

/* The namespace steps, in order, each failing loudly (lg_fail): the ids, the mounts
 * (private, /proc, /dev, the binds), memfd_noexec, the network namespace. */
void lg_init_ns_steps(const struct lg_spawn_spec *s, int sock)
{
    if (s->ns_flags & LG_NS_USER)
        map_ids(sock, s->map_uid, s->map_gid);
    if (s->ns_flags & LG_NS_MOUNT) {
        make_mounts_private(sock);
        if ((s->ns_flags & LG_NS_PID) && s->mount_proc)
            mount_proc(sock);
        if (s->minimal_dev)
            minimal_dev(sock, s);
        for (int i = 0; i < s->n_binds; i++)
            bind_file(sock, s->bind_src[i], s->bind_dst[i]);
    }
    if ((s->ns_flags & LG_NS_PID) && s->memfd_noexec)
        set_memfd_noexec(sock);
    if (s->netns_fd >= 0)
        enter_netns(sock, s->netns_fd);
    else if (s->ns_flags & LG_NS_NET_INIT)
        new_loopback_netns(sock);
}
