/* lginit_agent.c: the agent's steps, in the init program (sandbox/_lginit).
 *
 * init forks the agent once its namespaces are set up; the agent restricts itself
 * (capabilities, Landlock, seccomp with the supervisor's listener), reports to
 * landgate and waits for go before its execve of the root command.  A failing step is
 * ERROR(step, errno) to landgate and exit 125 (lg_fail).  After the filter is
 * installed only write/read/close: everything else may be supervised, and the
 * supervisor is not running yet.
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

/* Landlock rights that apply to a non-directory (the kernel rejects the rest
 * with EINVAL on a path-beneath rule for a file). */
#define LG_LL_FILE_RIGHTS (LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE | \
                           LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_TRUNCATE | \
                           LANDLOCK_ACCESS_FS_IOCTL_DEV)

/* ---- the agent's steps -------------------------------------------------- */

static void reset_signals(int sock)
{
    sigset_t none;
    sigemptyset(&none);
    /* init's mask blocks every signal (lg_spawn blocks them all around its clone, and
     * the mask survives execve); execve would keep it, so clear it here. */
    if (sigprocmask(SIG_SETMASK, &none, NULL) != 0)
        lg_fail(sock, "sigprocmask", errno);
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; sig++) {
        if (sig == SIGKILL || sig == SIGSTOP)
            continue;
        /* EINVAL for the signal numbers glibc reserves: nothing to reset. */
        if (sigaction(sig, &dfl, NULL) != 0 && errno != EINVAL)
            lg_fail(sock, "sigaction", errno);
    }
}

static void die_with_parent(int sock, pid_t expected_parent)
{
    if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0)
        lg_fail(sock, "prctl PR_SET_PDEATHSIG", errno);
    /* The parent may have died before the prctl: then we were reparented. */
    if (getppid() != expected_parent)
        _exit(LG_EXIT_SETUP);
}

/* Every fd beyond stdio becomes close-on-exec, so the agent inherits only
 * 0, 1, 2 (5.11: CLOSE_RANGE_CLOEXEC). */
static void cloexec_fds(int sock)
{
    if (syscall(__NR_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC) != 0)
        lg_fail(sock, "close_range", errno);
}

static void no_new_privs(int sock)
{
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        lg_fail(sock, "prctl PR_SET_NO_NEW_PRIVS", errno);
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
            lg_fail(sock, "prctl PR_CAPBSET_DROP", errno);
        }
    }
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0)
        lg_fail(sock, "prctl PR_CAP_AMBIENT_CLEAR_ALL", errno);

    struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
    struct __user_cap_data_struct data[2];
    memset(data, 0, sizeof data);
    if (syscall(SYS_capget, &hdr, data) != 0)
        lg_fail(sock, "capget", errno);
    __u32 keep[2] = { 0, 0 };
    for (size_t i = 0; i < sizeof kept_caps / sizeof kept_caps[0]; i++)
        keep[kept_caps[i] / 32] |= 1U << (kept_caps[i] % 32);
    for (int i = 0; i < 2; i++) {
        data[i].effective &= keep[i];
        data[i].permitted &= keep[i];
        data[i].inheritable = 0;
    }
    if (syscall(SYS_capset, &hdr, data) != 0)
        lg_fail(sock, "capset", errno);
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
        lg_fail(sock, "landlock_create_ruleset", errno);
    const char *step = "landlock_add_rule";
    for (int i = 0; i < s->n_ll_paths; i++) {
        int rc = add_path_rule((int)rs, s->ll_paths[i], s->ll_access[i], s->ll_handled_fs, skipped, &step);
        if (rc < 0)
            lg_fail(sock, step, -rc);
    }
    for (int i = 0; i < s->n_ll_ports && attr.handled_access_net; i++) {
        struct lg_landlock_net_port_attr np = {
            .allowed_access = s->ll_port_access[i] & attr.handled_access_net,
            .port = s->ll_ports[i],
        };
        if (syscall(__NR_landlock_add_rule, rs, LG_LANDLOCK_RULE_NET_PORT, &np, 0) != 0)
            lg_fail(sock, "landlock_add_rule (net port)", errno);
    }
    /* ABI 7: the domain logs its denials after the execve too (the agent is a new exec;
     * the default logs only the restricting exec's), read back by sandbox.supervise.kaudit. */
    __u32 log = s->landlock_abi >= 7 ? LANDLOCK_RESTRICT_SELF_LOG_NEW_EXEC_ON : 0;
    if (syscall(__NR_landlock_restrict_self, rs, log) != 0)
        lg_fail(sock, "landlock_restrict_self", errno);
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
        lg_fail(sock, "seccomp(SECCOMP_SET_MODE_FILTER)", errno);
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
            lg_fail(sock, "dup2 (stdio)", errno);
    }
}

void lg_agent_main(const struct lg_spawn_spec *s, int sock, int go_rd, pid_t init_pid)
{
    reset_signals(sock);
    die_with_parent(sock, init_pid);
    /* The parent's end has SO_PASSCRED: this message carries our pid as landgate sees it. */
    lg_send_msg(sock, LG_MSG_PID, 0, 0, "pid");
    if (chdir(s->cwd) != 0)
        lg_fail(sock, "chdir", errno);
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
