/* launch_api.h: public interface of sandbox._launch (cdef-clean, see csrc/build.py).
 *
 * The restricted child.  Python compiles everything (Landlock rules, binds,
 * the seccomp program) into one lg_spawn_spec of flat arrays; C does the
 * steps between fork and execve, where only the calling thread exists.
 *
 * Process shape (one design for root and unprivileged users):
 *
 *   landgate (python) --clone(ns flags, CLONE_VM|CLONE_VFORK|CLONE_PIDFD)--> init
 *        the clone, on its own small stack in landgate's memory while landgate's
 *        thread waits: [user ns: raise ambient caps] keep its fds, execve(init program)
 *        init (csrc/lginit.c, sandbox/_lginit): read the spec from its sealed memfd,
 *              [user ns: uid/gid map] [mount ns: private, /proc, /dev, binds]
 *              [setns(netns)] --fork--> agent; then reap and forward signals
 *        agent: pdeathsig, no_new_privs, chdir, capabilities, Landlock, seccomp (listener)
 *               -> reports its pid (SCM_CREDENTIALS) and listener fd number,
 *               -> waits for "go", closes its listener copy, execve(root command)
 *
 * No copy of landgate's Python heap is ever made (a clone of the whole process used to
 * cost a page-table copy and copy-on-write faults in landgate and in both children
 * while landgate's heap kept moving): the only code that runs in landgate's memory
 * outside landgate is the clone's few calls before its execve.  init is still
 * landgate's own child (its pid and pidfd come from the clone; landgate waits for it).
 *
 * Why the ambient capabilities: in a new user namespace the clone holds every
 * capability there, but execve by a non-root uid clears them (capabilities(7)); init
 * needs CAP_SYS_ADMIN there for its uid map and mounts.  Ambient capabilities survive
 * that execve; the agent clears them with the rest of its set before it is released.
 *
 * init stays outside Landlock and seccomp: it only reaps, forwards signals and
 * reports the agent's wait status.  With a pid namespace it is pid 1 there, so
 * when init dies (it has PR_SET_PDEATHSIG=SIGKILL on landgate) the kernel kills
 * the whole sandboxed tree.
 *
 * Protocol on the sync socket (SOCK_SEQPACKET; the parent's end has SO_PASSCRED
 * so every message carries its sender's pid translated into landgate's pid ns):
 *   agent -> PID, [RULESET(fd number)], LISTENER(fd number); on a failed step ERROR(step, errno);
 *   after go: EXEC_FAILED(errno) if execve failed;  init -> STATUS(wait status).
 * The listener fd itself moves with pidfd_getfd(2), not sendmsg: sendmsg is a
 * supervised syscall and the supervisor is not running yet.
 */
#ifndef LANDGATE_LAUNCH_API_H
#define LANDGATE_LAUNCH_API_H

/* Namespace choices (lg_spawn_spec.ns_flags). */
#define LG_NS_USER 1
#define LG_NS_MOUNT 2
#define LG_NS_PID 4
/* A new network namespace, created by the same clone3 as the user namespace and
 * so owned by it: the unprivileged egress rung (landgate, the namespace's owner,
 * configures it from outside: pasta for connectivity, nftables for egress).
 * Exclusive with netns_fd (joining a prepared namespace: the root rung). */
#define LG_NS_NET 8
/* A new network namespace that init unshares itself after its execve, with `lo`
 * brought up, before it forks the agent: the loopback-only layer of the root rung
 * (no user namespace: the namespace belongs to landgate's, as one landgate made
 * would).  Its set-up cost (~0.5 ms of pernet initialisation in the kernel, issue 19)
 * is paid by the child while landgate compiles the supervisor's tables, instead of
 * before the fork; landgate binds the DNS view's sockets there through init's pidfd
 * before the agent is released.  Exclusive with LG_NS_NET, LG_NS_USER and netns_fd. */
#define LG_NS_NET_INIT 16

/* Same layout as the kernel's struct sock_filter. */
struct lg_bpf_insn {
    unsigned short code;
    unsigned char jt;
    unsigned char jf;
    unsigned int k;
};

struct lg_spawn_spec {
    const char *path;   /* executable, already resolved against PATH */
    char **argv;        /* NULL-terminated */
    char **envp;        /* NULL-terminated */
    const char *cwd;    /* the agent's working directory */

    int ns_flags;       /* LG_NS_* */
    int map_uid;        /* user ns: the outer uid/gid mapped to itself */
    int map_gid;
    int mount_proc;     /* pid ns: mount a fresh /proc showing only the sandbox */
    int memfd_noexec;   /* pid ns: vm.memfd_noexec=2 (no executable memfds) */
    int netns_fd;       /* -1: keep landgate's network namespace */
    int stdio_fds[3];   /* the agent's stdin/stdout/stderr; -1: inherit landgate's */

    /* mount ns with a fresh /proc only: the sandbox's own /dev (a tmpfs) holding
     * just these host nodes (absolute, beneath /dev; missing ones left out), a
     * private devpts (/dev/ptmx -> pts/ptmx), /dev/shm and the fd links */
    int minimal_dev;
    const char **dev_paths;
    int n_dev_paths;

    /* mount ns only: file binds.  No masks: carve-outs and protected paths are
     * decided at access time by the supervisor (csrc/supervise_open.c). */
    const char **bind_src;    /* extra file binds (e.g. resolv.conf for the DNS view) */
    const char **bind_dst;
    int n_binds;

    /* Landlock: landlock_abi 0 means do not restrict */
    int landlock_abi;
    unsigned long long ll_handled_fs;
    unsigned long long ll_handled_net;
    unsigned long long ll_scoped;
    const char **ll_paths;
    const unsigned long long *ll_access;
    int n_ll_paths;
    const unsigned long long *ll_ports;
    const unsigned long long *ll_port_access;
    int n_ll_ports;

    /* seccomp: filter_len 0 means no filter (and no listener) */
    const struct lg_bpf_insn *filter;
    int filter_len;
    unsigned int filter_flags;

    /* The init program (csrc/lginit.c, installed as sandbox/_lginit), which the clone
     * execs at once: required (lg_spawn refuses NULL).  The rest of this spec reaches
     * it serialised (csrc/launch_wire.c). */
    const char *init_helper;
};

/* The parent's handle on a spawned sandbox. */
struct lg_child {
    int init_pid;      /* in landgate's pid ns */
    int init_pidfd;
    int sock;          /* sync socket, parent end */
    int go_fd;         /* write end of the go pipe; -1 once released */
    int agent_pid;     /* in landgate's pid ns: the process that execs the root command */
    int listener_fd;   /* the seccomp listener, in landgate; -1 without a filter */
    int ll_skipped;    /* Landlock rule paths that did not exist (or were unreachable) */
    int ruleset_fd;    /* the agent's own Landlock ruleset (for the supervisor's open check);
                        * -1 without Landlock; closed by lg_child_close */
};

/* The spec's wire form as lg_spawn hands it to the init program (in a sealed memfd):
 * its size, written to buf only if it fits in cap; -E2BIG, -EINVAL.  Public for the
 * tests that feed the init program truncated and corrupted copies of it. */
long lg_wire_encode(const struct lg_spawn_spec *spec, int landgate_pid, unsigned char *buf,
                    unsigned long cap);

/* Clone init (which forks the agent).  0 or -errno; err gets "step: message". */
int lg_spawn(const struct lg_spawn_spec *spec, struct lg_child *child, char *err, int errlen);

/* Wait until the agent is restricted and blocked before execve; take its listener. */
int lg_wait_ready(struct lg_child *child, char *err, int errlen);

/* Let the agent execve (write the go byte, close the pipe). */
int lg_release(struct lg_child *child, char *err, int errlen);

/* After init was reaped: the agent's raw wait status and execve's errno (0 if it ran).
 * Returns 1 if a STATUS message was read, 0 if not, -errno on error. */
int lg_collect(struct lg_child *child, int *raw_status, int *exec_errno);

/* Close every fd the handle still owns (not listener_fd, which the caller owns). */
void lg_child_close(struct lg_child *child);

/* SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP on a listener (6.6).  0 or -errno. */
int lg_listener_sync_wakeup(int listener_fd);

/* A new network namespace with only `lo`, brought up, made on a thread of its own (the
 * calling thread's namespace never changes; the thread ends with the call): its fd
 * (O_CLOEXEC), or -errno with the failing step in err.  The root rung's loopback-only
 * layer, made ahead of the next session (sandbox/net/spare.py) in C so that making it
 * holds no GIL while a launch runs alongside (issue 19). */
int lg_loopback_netns_new(char *err, int errlen);

#endif
