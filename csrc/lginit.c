/* lginit.c: the init program (sandbox/_lginit): the sandbox's init and, forked from
 * it, the agent, from the first instruction after landgate's clone.
 *
 * lg_spawn (csrc/launch.c) clones with the namespace flags and CLONE_VM|CLONE_VFORK: the
 * clone shares landgate's memory only until it execs this program, so no copy of
 * landgate's Python heap ever exists (no page-table copy, no copy-on-write faults in
 * landgate while the sandbox sets itself up).  argv: `landgate-init MEMFD SOCK GO_RD`,
 * the spec's sealed memfd (csrc/launch_wire.c), the sync socket, the go pipe's read end.
 *
 * init deserialises the spec, does the namespace steps, forks the agent and stays to
 * reap and forward signals.  The agent restricts itself (Landlock, seccomp) and waits
 * for go.  One function per step; a failing step sends ERROR(step, errno) to landgate
 * and the process _exits(125).  Single-threaded throughout: init is this program, the
 * agent its fork, so the steps need no async-signal-safety beyond the agent's after
 * its filter is installed (only write/read/close from there).
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

#define LG_STEP_MAX_DEV 256

/* Landlock rights that apply to a non-directory (the kernel rejects the rest
 * with EINVAL on a path-beneath rule for a file). */
#define LG_LL_FILE_RIGHTS (LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE | \
                           LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_TRUNCATE | \
                           LANDLOCK_ACCESS_FS_IOCTL_DEV)

static void fail(int sock, const char *step, int err)
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
        fail(sock, "write /proc/self/setgroups", -rc);
    id_map_line(line, sizeof line, (unsigned int)uid);
    if ((rc = write_file("/proc/self/uid_map", line)) < 0)
        fail(sock, "write /proc/self/uid_map", -rc);
    id_map_line(line, sizeof line, (unsigned int)gid);
    if ((rc = write_file("/proc/self/gid_map", line)) < 0)
        fail(sock, "write /proc/self/gid_map", -rc);
}

/* Mount events must not propagate back to the host's namespace. */
static void make_mounts_private(int sock)
{
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
        fail(sock, "mount / private", errno);
}

/* A fresh procfs for the new pid namespace: /proc shows only the sandbox. */
static void mount_proc(int sock)
{
    if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) != 0)
        fail(sock, "mount /proc", errno);
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
    fail(sock, step, err);  /* does not return */
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
        fail(sock, "write /proc/sys/vm/memfd_noexec", -rc);
}

static void bind_file(int sock, const char *src, const char *dst)
{
    if (mount(src, dst, NULL, MS_BIND, NULL) != 0)
        fail(sock, "bind mount", errno);
}

static void enter_netns(int sock, int fd)
{
    if (setns(fd, CLONE_NEWNET) != 0)
        fail(sock, "setns network namespace", errno);
    if (close(fd) != 0)
        fail(sock, "close network namespace fd", errno);
}

/* ---- the agent's steps -------------------------------------------------- */

static void reset_signals(int sock)
{
    sigset_t none;
    sigemptyset(&none);
    /* init's mask blocks every signal (lg_spawn blocks them all around its clone, and
     * the mask survives execve); execve would keep it, so clear it here. */
    if (sigprocmask(SIG_SETMASK, &none, NULL) != 0)
        fail(sock, "sigprocmask", errno);
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; sig++) {
        if (sig == SIGKILL || sig == SIGSTOP)
            continue;
        /* EINVAL for the signal numbers glibc reserves: nothing to reset. */
        if (sigaction(sig, &dfl, NULL) != 0 && errno != EINVAL)
            fail(sock, "sigaction", errno);
    }
}

static void die_with_parent(int sock, pid_t expected_parent)
{
    if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0)
        fail(sock, "prctl PR_SET_PDEATHSIG", errno);
    /* The parent may have died before the prctl: then we were reparented. */
    if (getppid() != expected_parent)
        _exit(LG_EXIT_SETUP);
}

/* Every fd beyond stdio becomes close-on-exec, so the agent inherits only
 * 0, 1, 2 (5.11: CLOSE_RANGE_CLOEXEC). */
static void cloexec_fds(int sock)
{
    if (syscall(__NR_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC) != 0)
        fail(sock, "close_range", errno);
}

static void no_new_privs(int sock)
{
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        fail(sock, "prctl PR_SET_NO_NEW_PRIVS", errno);
}

/* ---- capabilities --------------------------------------------------------
 * When landgate runs as root the agent would otherwise be real root with every
 * capability: CAP_SYS_BOOT (reboot), CAP_SYS_TIME, CAP_SYS_RAWIO (iopl/ioperm),
 * CAP_NET_RAW (raw sockets that never call connect), CAP_MKNOD (a device node
 * for the host's disk), CAP_SYS_ADMIN (a long tail of namespaced and global
 * knobs the hardening filter cannot enumerate).  The agent keeps only what
 * ordinary file and process work as root needs (the same spirit as bubblewrap
 * dropping everything and container runtimes' short default list).
 *
 * For uid 0, execve() gives the new image permitted = inheritable | bounding
 * (root's file capabilities count as full), so dropping the bounding set and
 * clearing inheritable and ambient is what makes the drop survive the exec.
 * In an unprivileged user namespace the same calls succeed against the
 * namespace's capabilities, which the exec of a non-root uid drops anyway. */
static const int kept_caps[] = {
    CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_FOWNER, CAP_FSETID, /* file ownership and modes */
    CAP_KILL,                                           /* Landlock scopes signals to the sandbox */
    CAP_SETGID, CAP_SETUID,                             /* tools that drop to a user (apt's _apt) */
    CAP_NET_BIND_SERVICE,                               /* test servers on low ports */
};

static int cap_is_kept(int cap)
{
    for (size_t i = 0; i < sizeof kept_caps / sizeof kept_caps[0]; i++)
        if (kept_caps[i] == cap)
            return 1;
    return 0;
}

static void drop_capabilities(int sock)
{
    /* 64 is beyond any kernel's CAP_LAST_CAP; the first EINVAL marks the end. */
    for (int cap = 0; cap < 64; cap++) {
        if (cap_is_kept(cap))
            continue;
        if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0) {
            if (errno == EINVAL)
                break;
            fail(sock, "prctl PR_CAPBSET_DROP", errno);
        }
    }
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0)
        fail(sock, "prctl PR_CAP_AMBIENT_CLEAR_ALL", errno);

    struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
    struct __user_cap_data_struct data[2];
    memset(data, 0, sizeof data);
    if (syscall(SYS_capget, &hdr, data) != 0)
        fail(sock, "capget", errno);
    __u32 keep[2] = { 0, 0 };
    for (size_t i = 0; i < sizeof kept_caps / sizeof kept_caps[0]; i++)
        keep[kept_caps[i] / 32] |= 1U << (kept_caps[i] % 32);
    for (int i = 0; i < 2; i++) {
        data[i].effective &= keep[i];
        data[i].permitted &= keep[i];
        data[i].inheritable = 0;
    }
    if (syscall(SYS_capset, &hdr, data) != 0)
        fail(sock, "capset", errno);
}

static int add_path_rule(int ruleset, const char *path, __u64 access, __u64 handled, int *skipped,
                         const char **step)
{
    int fd = open(path, O_PATH | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT || errno == EACCES || errno == ENOTDIR) {
            (*skipped)++;
            return 0;
        }
        *step = "open Landlock rule path";
        return -errno;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        *step = "fstat Landlock rule path";
        return -e;
    }
    access &= handled;
    if (!S_ISDIR(st.st_mode))
        access &= LG_LL_FILE_RIGHTS;
    int rc = 0;
    if (access) {
        struct landlock_path_beneath_attr pb = { .allowed_access = access, .parent_fd = fd };
        if (syscall(__NR_landlock_add_rule, ruleset, LANDLOCK_RULE_PATH_BENEATH, &pb, 0) != 0) {
            rc = -errno;
            *step = "landlock_add_rule";
        }
    }
    if (close(fd) != 0 && rc == 0) {
        rc = -errno;
        *step = "close Landlock rule path";
    }
    return rc;
}

/* Landlock restricts the calling thread (and what it execs): that is why this
 * runs here, in the single-threaded child, never in landgate.
 *
 * Returns the ruleset fd, kept open (O_CLOEXEC) until the go byte: the parent
 * takes a copy with pidfd_getfd for the supervisor's open check, whose opener
 * threads restrict themselves with this very ruleset.  Built here, in the
 * agent, its rules name the agent's objects (the baseline's /proc/self is the
 * agent's /proc/<pid>); a ruleset built again in landgate would grant
 * landgate's own /proc/<pid> instead. */
static int restrict_landlock(int sock, const struct lg_spawn_spec *s, int *skipped)
{
    struct lg_landlock_ruleset_attr attr = {
        .handled_access_fs = s->ll_handled_fs,
        .handled_access_net = s->landlock_abi >= 4 ? s->ll_handled_net : 0,
        .scoped = s->landlock_abi >= 6 ? s->ll_scoped : 0,
    };
    size_t size = s->landlock_abi >= 6 ? LG_RULESET_ATTR_SIZE_V6
                : s->landlock_abi >= 4 ? LG_RULESET_ATTR_SIZE_V4 : LG_RULESET_ATTR_SIZE_V1;
    long rs = syscall(__NR_landlock_create_ruleset, &attr, size, 0);
    if (rs < 0)
        fail(sock, "landlock_create_ruleset", errno);
    const char *step = "landlock_add_rule";
    for (int i = 0; i < s->n_ll_paths; i++) {
        int rc = add_path_rule((int)rs, s->ll_paths[i], s->ll_access[i], s->ll_handled_fs, skipped, &step);
        if (rc < 0)
            fail(sock, step, -rc);
    }
    for (int i = 0; i < s->n_ll_ports && attr.handled_access_net; i++) {
        struct lg_landlock_net_port_attr np = {
            .allowed_access = s->ll_port_access[i] & attr.handled_access_net,
            .port = s->ll_ports[i],
        };
        if (syscall(__NR_landlock_add_rule, rs, LG_LANDLOCK_RULE_NET_PORT, &np, 0) != 0)
            fail(sock, "landlock_add_rule (net port)", errno);
    }
    /* ABI 7: the domain logs its denials after the execve too (the agent is a new exec;
     * the default logs only the restricting exec's), read back by sandbox.supervise.kaudit. */
    __u32 log = s->landlock_abi >= 7 ? LANDLOCK_RESTRICT_SELF_LOG_NEW_EXEC_ON : 0;
    if (syscall(__NR_landlock_restrict_self, rs, log) != 0)
        fail(sock, "landlock_restrict_self", errno);
    return (int)rs;
}

/* Returns the listener fd (NEW_LISTENER), or -1 if the spec asks for none. */
static int install_filter(int sock, const struct lg_spawn_spec *s)
{
    if (s->filter_len <= 0)
        return -1;
    struct sock_fprog prog = {
        .len = (unsigned short)s->filter_len,
        /* struct lg_bpf_insn has struct sock_filter's layout (checked below). */
        .filter = (struct sock_filter *)(void *)s->filter,
    };
    long fd = syscall(__NR_seccomp, SECCOMP_SET_MODE_FILTER, s->filter_flags, &prog);
    if (fd < 0)
        fail(sock, "seccomp(SECCOMP_SET_MODE_FILTER)", errno);
    return (s->filter_flags & SECCOMP_FILTER_FLAG_NEW_LISTENER) ? (int)fd : -1;
}

_Static_assert(sizeof(struct lg_bpf_insn) == sizeof(struct sock_filter), "bpf insn layout");

static void wait_for_go(int go_rd)
{
    char c;
    ssize_t n;
    do {
        n = read(go_rd, &c, 1);
    } while (n < 0 && errno == EINTR);
    if (n != 1)
        _exit(LG_EXIT_SETUP); /* landgate gave up (or died): never exec */
}

/* The API's captured output and input: dup2 the given fds onto 0, 1, 2 before
 * every other fd becomes close-on-exec.  An fd that already is 0/1/2 stays. */
static void redirect_stdio(int sock, const struct lg_spawn_spec *s)
{
    for (int i = 0; i < 3; i++) {
        int fd = s->stdio_fds[i];
        if (fd < 0 || fd == i)
            continue;
        if (dup2(fd, i) < 0)
            fail(sock, "dup2 (stdio)", errno);
    }
}

static void agent_main(const struct lg_spawn_spec *s, int sock, int go_rd, pid_t init_pid)
{
    reset_signals(sock);
    die_with_parent(sock, init_pid);
    /* The parent's end has SO_PASSCRED: this message carries our pid as landgate sees it. */
    lg_send_msg(sock, LG_MSG_PID, 0, 0, "pid");
    if (chdir(s->cwd) != 0)
        fail(sock, "chdir", errno);
    redirect_stdio(sock, s);
    cloexec_fds(sock);
    no_new_privs(sock);
    drop_capabilities(sock);
    int skipped = 0;
    int ruleset = -1;
    if (s->landlock_abi > 0)
        ruleset = restrict_landlock(sock, s, &skipped);
    int listener = install_filter(sock, s);
    /* From here on open/sendmsg/execve... may be supervised: only write/read/close. */
    if (ruleset >= 0)
        lg_send_msg(sock, LG_MSG_RULESET, 0, ruleset, "ruleset");
    lg_send_msg(sock, LG_MSG_LISTENER, skipped, listener, "listener");
    wait_for_go(go_rd);
    if (listener >= 0 && close(listener) != 0)
        _exit(LG_EXIT_SETUP);
    if (ruleset >= 0 && close(ruleset) != 0)
        _exit(LG_EXIT_SETUP);
    execve(s->path, s->argv, s->envp);
    int err = errno;
    lg_send_msg(sock, LG_MSG_EXEC_FAILED, err, 0, "execve");
    _exit(err == ENOENT || err == ENOTDIR ? LG_EXIT_NOT_FOUND : LG_EXIT_CANNOT_EXEC);
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
            fail(sock, "sigaction (init)", errno);
    sigset_t none;
    sigemptyset(&none);
    if (sigprocmask(SIG_SETMASK, &none, NULL) != 0)
        fail(sock, "sigprocmask (init)", errno);
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
        fail(sock, "close_range (init)", errno);
    if (syscall(__NR_close_range, (unsigned int)sock + 1, ~0U, 0U) != 0)
        fail(sock, "close_range (init)", errno);
}

/* init: the namespace steps, the agent, then reap.  Every signal is blocked on entry
 * (see reset_signals): one sent to init before the agent exists waits for the
 * forwarders instead of being lost or ending init. */
static int init_main(const struct lg_spawn_spec *s, int sock, int go_rd, pid_t landgate)
{
    /* Set before the execve too (lg_spawn's clone); again here, as the program's own. */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0)
        fail(sock, "prctl PR_SET_PDEATHSIG (init)", errno);
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
    int kill_orphans = !(s->ns_flags & LG_NS_PID);
    if (kill_orphans && prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0)
        fail(sock, "prctl PR_SET_CHILD_SUBREAPER", errno);
    pid_t self = getpid();
    /* A plain fork: this program is single-threaded, and small (no heap to copy). */
    pid_t agent = fork();
    if (agent < 0)
        fail(sock, "fork agent", errno);
    if (agent == 0)
        agent_main(s, sock, go_rd, self); /* does not return */
    g_agent_pid = agent;
    keep_only_socket(sock);
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
        fail(sock, step, -rc);
    if (close(memfd) != 0)
        fail(sock, "close spec memfd", errno);
    return init_main(&spec, sock, go_rd, (pid_t)landgate);
}
