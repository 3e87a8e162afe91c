/* lginit.c: the init program (sandbox/_lginit): the sandbox's init and, forked from
 * it, the agent, from the first instruction after landgate's clone.
 *
 * lg_spawn (csrc/launch.c) clones with the namespace flags and CLONE_VM|CLONE_VFORK: the
 * clone shares landgate's memory only until it execs this program, so no copy of
 * landgate's Python heap ever exists (no page-table copy, no copy-on-write faults in
 * landgate while the sandbox sets itself up).  argv: `landgate-init MEMFD SOCK GO_RD`,
 * the spec's sealed memfd (csrc/launch_wire.c), the sync socket, the go pipe's read end.
 *
 * init (this file) deserialises the spec, does the namespace steps, forks the agent and
 * stays to reap and forward signals.  The agent (csrc/lginit_agent.c) restricts itself
 * (capabilities, Landlock, seccomp) and waits for go.  One function per step; a failing
 * step sends ERROR(step, errno) to landgate and the process _exits(125) (lg_fail).
 * Single-threaded throughout: init is this program, the agent its fork, so the steps
 * need no async-signal-safety beyond the agent's after its filter is installed (only
 * write/read/close from there).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <linux/capability.h>
#include <linux/close_range.h>
#include <linux/filter.h>
#include <linux/sched.h>

#include "kernel_compat.h"
#include "launch_api.h"
#include "launch_wire.h"
#include "lginit.h"

#define LG_STEP_MAX_DEV 256

void lg_fail(int sock, const char *step, int err)
{
    lg_send_msg(sock, LG_MSG_ERROR, err, 0, step);
    _exit(LG_EXIT_SETUP);
}

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

/* ---- init: reap and forward --------------------------------------------- */

/* The one piece of global state: a signal handler needs to know whom to forward to. */
static volatile sig_atomic_t g_agent_pid;

/* Forward what landgate (or anyone) sends to init.  A terminal-generated signal
 * (si_code SI_KERNEL) already reached the agent, which shares landgate's
 * foreground process group: forwarding it would deliver it twice. */
static void forward_signal(int sig, siginfo_t *info, void *uctx)
{
    (void)uctx;
    if (info && info->si_code == SI_KERNEL)
        return;
    pid_t pid = (pid_t)g_agent_pid;
    if (pid > 0) {
        int saved = errno;
        kill(pid, sig);
        errno = saved;
    }
}

static const int forwarded_sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGWINCH, SIGQUIT, SIGUSR1, SIGUSR2,
                                     SIGCONT };

static void install_forwarders(int sock)
{
    const int *sigs = forwarded_sigs;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = forward_signal;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof forwarded_sigs / sizeof forwarded_sigs[0]; i++)
        if (sigaction(sigs[i], &sa, NULL) != 0)
            lg_fail(sock, "sigaction (init)", errno);
    sigset_t none;
    sigemptyset(&none);
    if (sigprocmask(SIG_SETMASK, &none, NULL) != 0)
        lg_fail(sock, "sigprocmask (init)", errno);
}

static int status_to_exit(int status)
{
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return LG_EXIT_SETUP;
}

/* SIGKILL every current child of init (orphans of the agent re-parented to the
 * subreaper).  Never kill(-1): that would reach every process this user may
 * signal on the host.  Needs CONFIG_PROC_CHILDREN (/proc/<tid>/children). */
static void kill_children(void)
{
    char buf[4096];
    int fd = open("/proc/thread-self/children", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return;
    buf[n] = '\0';
    long pid = 0;
    for (const char *p = buf;; p++) {
        if (*p >= '0' && *p <= '9') {
            pid = pid * 10 + (*p - '0');
            continue;
        }
        if (pid > 0)
            kill((pid_t)pid, SIGKILL);
        pid = 0;
        if (*p == '\0')
            break;
    }
}

/* Reap until the agent exits.  With a pid namespace that is all: init's exit
 * makes the kernel kill the rest of the namespace.  Without one, init is a
 * child subreaper: orphans of the agent come back to it, and are killed one
 * generation at a time until none is left. */
static void reap(pid_t agent, int *agent_status, int kill_orphans)
{
    int agent_done = 0;
    for (;;) {
        if (agent_done)
            kill_children();
        int st = 0;
        pid_t p = waitpid(-1, &st, __WALL);
        if (p < 0) {
            if (errno == EINTR)
                continue;
            return; /* ECHILD: everyone reaped */
        }
        if (p == agent) {
            *agent_status = st;
            agent_done = 1;
            g_agent_pid = 0;
            if (!kill_orphans)
                return;
        }
    }
}

/* Every fd but the socket to landgate: the rest (the stdio fds, fds landgate leaked
 * without close-on-exec) belong to the agent, which has its copies; init holding a pipe's
 * write end would keep landgate's reader from its EOF for as long as init lives. */
static void keep_only_socket(int sock)
{
    if (sock > 3 && syscall(__NR_close_range, 3U, (unsigned int)sock - 1, 0U) != 0)
        lg_fail(sock, "close_range (init)", errno);
    if (syscall(__NR_close_range, (unsigned int)sock + 1, ~0U, 0U) != 0)
        lg_fail(sock, "close_range (init)", errno);
}

/* In a user namespace init holds every capability there (the clone raised them as
 * ambient to keep them through its execve); once the agent is forked it needs none of
 * them to reap, signal its own uid's processes and read /proc: drop them all, so the
 * process that lives as long as the session holds no privilege it does not use. */
static void drop_own_capabilities(int sock)
{
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0)
        lg_fail(sock, "prctl PR_CAP_AMBIENT_CLEAR_ALL (init)", errno);
    struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
    struct __user_cap_data_struct none[2];
    memset(none, 0, sizeof none);
    if (syscall(SYS_capset, &hdr, none) != 0)
        lg_fail(sock, "capset (init)", errno);
}

/* init: the namespace steps, the agent, then reap.  Every signal is blocked on entry
 * (see the agent's reset_signals): one sent to init before the agent exists waits for the
 * forwarders instead of being lost or ending init. */
static int init_main(const struct lg_spawn_spec *s, int sock, int go_rd, pid_t landgate)
{
    /* Set before the execve too (lg_spawn's clone); again here, as the program's own. */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0)
        lg_fail(sock, "prctl PR_SET_PDEATHSIG (init)", errno);
    /* In a new pid ns getppid() is 0 (the parent is outside); otherwise check. */
    if (!(s->ns_flags & LG_NS_PID) && getppid() != landgate)
        _exit(LG_EXIT_SETUP);
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
    int kill_orphans = !(s->ns_flags & LG_NS_PID);
    if (kill_orphans && prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0)
        lg_fail(sock, "prctl PR_SET_CHILD_SUBREAPER", errno);
    pid_t self = getpid();
    /* A plain fork: this program is single-threaded, and small (no heap to copy). */
    pid_t agent = fork();
    if (agent < 0)
        lg_fail(sock, "fork agent", errno);
    if (agent == 0)
        lg_agent_main(s, sock, go_rd, self); /* does not return */
    g_agent_pid = agent;
    keep_only_socket(sock);
    if (s->ns_flags & LG_NS_USER)
        drop_own_capabilities(sock);
    install_forwarders(sock); /* unblocks: what arrived meanwhile is forwarded now */
    int status = LG_EXIT_SETUP << 8;
    reap(agent, &status, kill_orphans);
    lg_send_msg(sock, LG_MSG_STATUS, 0, status, "status");
    return status_to_exit(status);
}

static int parse_int(const char *t, int *out)
{
    long v = 0;
    if (!t || !*t)
        return -1;
    for (; *t; t++) {
        if (*t < '0' || *t > '9' || v > 0x7fffffff / 10)
            return -1;
        v = v * 10 + (*t - '0');
    }
    *out = (int)v;
    return 0;
}

/* argv: MEMFD SOCK GO_RD (see the top of this file). */
int main(int argc, char **argv)
{
    int memfd = -1, sock = -1, go_rd = -1;
    if (argc != 4 || parse_int(argv[1], &memfd) != 0 || parse_int(argv[2], &sock) != 0 ||
        parse_int(argv[3], &go_rd) != 0)
        return LG_EXIT_SETUP; /* not started by lg_spawn: there is no socket to tell */
    struct lg_spawn_spec spec;
    memset(&spec, 0, sizeof spec);
    int landgate = 0;
    const char *step = "spec";
    int rc = lg_wire_decode_fd(memfd, &spec, &landgate, &step);
    if (rc < 0)
        lg_fail(sock, step, -rc);
    if (close(memfd) != 0)
        lg_fail(sock, "close spec memfd", errno);
    return init_main(&spec, sock, go_rd, (pid_t)landgate);
}
