/* lginit.c: the init program (sandbox/_lginit): the sandbox's init and, forked from
 * it, the agent, from the first instruction after landgate's clone.
 *
 * lg_spawn (csrc/launch.c) clones with the namespace flags and CLONE_VM|CLONE_VFORK: the
 * clone shares landgate's memory only until it execs this program, so no copy of
 * landgate's Python heap ever exists (no page-table copy, no copy-on-write faults in
 * landgate while the sandbox sets itself up).  argv: `landgate-init MEMFD SOCK GO_RD`,
 * the spec's sealed memfd (csrc/launch_wire.c), the sync socket, the go pipe's read end.
 *
 * init (this file) deserialises the spec, does the namespace steps (csrc/lginit_ns.c),
 * forks the agent and stays to reap and forward signals.  The agent (csrc/lginit_agent.c) restricts itself
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

void lg_fail(int sock, const char *step, int err)
{
    lg_send_msg(sock, LG_MSG_ERROR, err, 0, step);
    _exit(LG_EXIT_SETUP);
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
    lg_init_ns_steps(s, sock);  /* csrc/lginit_ns.c */
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
