/* supervise_int.h: internals shared by the supervise_*.c files (not part of the cdef). */
#ifndef LANDGATE_SUPERVISE_INT_H
#define LANDGATE_SUPERVISE_INT_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <linux/seccomp.h>

#include "supervise_api.h"

/* Bounds.  Everything the loop reads from a caller lands in buffers of these
 * sizes; anything larger is denied (fail closed), never truncated before a
 * decision. */
/* argv of one exec: the kernel allows strings + pointers up to a quarter of the
 * stack rlimit (2 MiB with the default 8 MiB stack), and `xargs` fills that: a
 * find | xargs cat over a source tree passes thousands of arguments.  Smaller
 * bounds here denied such ordinary commands (E2BIG, fail closed).  Beyond these
 * bounds (a raised stack limit) the exec is still denied, never truncated.  The
 * buffers are malloc'd once and only touched as far as an exec uses them. */
#define LG_CMD_MAX (2 * 1024 * 1024)  /* argv bytes of one exec */
#define LG_ARGS_MAX (256 * 1024)      /* argv entries of one exec (>= 2 MiB / 8-byte pointers) */
#define LG_DEPTH_MAX 8           /* nested `sh -c` strings judged, at most (lg_syntax.depth) */
#define LG_LINE_MAX (LG_CMD_MAX + 64)
#define LG_ADMIT_CAP 65536       /* admitted processes (pid, starttime) */
#define LG_NAMES_CAP 16384       /* (address, host name) pairs from pinning and the DNS view */
#define LG_NAME_MAX 256
#define LG_REPORTED_CAP 4096     /* distinct denials already reported on stderr */
#define LG_WORKERS_MAX 64        /* concurrent blocking connects / exec verifications */
/* Event records waiting for Python: 512 records of 1.3 KiB = 0.7 MiB at most, made
 * resident as the first lap writes them (lg_sup_new does not prefault the ring).
 * Python drains every 5 ms, 256 at a time; a burst beyond 512 waits for the drain
 * (never drops). */
#define LG_RING_CAP 512
#define LG_SEND_MAX 65536        /* datagram bytes the supervisor forwards itself */
#define LG_SEEN_CAP 4096         /* objects added to the open check's deny set at run time */
#define LG_OPENERS_MAX 8         /* opener threads (a FIFO open may block one) */

/* The last page-bounded chunk of a caller's memory read for argv strings
 * (supervise_exec_read.c read_str_cached); the loop's own, reset for each exec. */
#define LG_STRC_PAGES 16       /* pages one read may bring once the strings span pages */
struct lg_str_cache {
    unsigned long long base; /* caller address of data[0] */
    size_t n;                /* valid bytes */
    int misses;              /* reads this exec (the first stays within one page) */
    char data[LG_STRC_PAGES * 4096];
};

struct lg_words {
    const char **w;
    int *len;
    int n;
    int cap;
};

#define LG_OP_CODE(w) ((w) >> 24)
#define LG_OP_ARG(w) ((w) & 0xffffffu)

/* 1 when glob g cannot match text t because its first op is an ASCII literal
 * that t does not start with: the common miss, decided without a call. */
static inline int lg_glob_rejects(const unsigned *g, const char *t, size_t n)
{
    return LG_OP_CODE(g[0]) == 1 /* LG_OP_LIT */ && LG_OP_ARG(g[0]) < 0x80 &&
           (n == 0 || (unsigned char)t[0] != LG_OP_ARG(g[0]));
}

/* Scratch space of exec judgements (csrc/judge_exec.c): the loop thread's
 * own, or one per Python thread that explains. */
struct lg_judge {
    char *cmd;        /* argv strings, NUL-separated */
    char *line;       /* one judged command line */
    char *exe_line;   /* the same line with the executable's path first */
    char *seg;        /* dequoted shell segments, per depth */
    struct lg_words argv;
    struct lg_words segw[LG_DEPTH_MAX];
};

/* supervise_exec_obj.c: the object an exec really runs */
#define LG_SCRIPT_DEPTH 4  /* binfmt_script levels the kernel follows (BINPRM_MAX_RECURSION) */
#define LG_BINPRM_BUF 256  /* bytes of a file's head binfmt_script reads (BINPRM_BUF_SIZE) */
struct lg_exec_obj {
    struct lg_verdict v;          /* the first deny among the real and #! forms, else effect 0 */
    char shown[512];              /* the denied form, for the denial line */
    char real[4096];              /* real path of the named file */
    int linked;                   /* the walk followed a symlink */
    int scripts;                  /* #! levels followed */
    int stable;                   /* every name walked (absolute), link and script lies outside the sandbox's
                                   * writable trees: the agent cannot change the resolution;
                                   * -1 until lg_exec_obj_stable asks */
    const char *names[1 + LG_SCRIPT_DEPTH]; /* the named file and each interpreter, as spelled
                                   * (lg_exec_obj_stable walks them) */
    int n_names;
    const char *fname;            /* the name as the exec spelled it */
    unsigned long long dev, ino;  /* the image the kernel will run (the last interpreter) */
    char *expect;                 /* /proc/PID/cmdline after the exec (malloc'd) */
    size_t expect_len;
    int fd_obj;                   /* the object (O_PATH), or -1: closed by
                                   * lg_exec_obj_release once the answer is sent */
    char heads[LG_SCRIPT_DEPTH][LG_BINPRM_BUF];
    int named;                    /* real and linked came from the names kept
                                   * (lg_exec_name_hit): the walk of this name is stable */
};

struct lg_admit {
    int pid;          /* 0 = empty slot */
    int inherit;
    unsigned long long start;  /* lg_ident.id: tells a reused pid apart */
};

struct lg_name {
    int family;       /* 0 = empty slot */
    unsigned char addr[16];
    char name[LG_NAME_MAX];
};

/* The caller's credentials, from /proc/TID/status (what the supervisor takes
 * on a thread that acts for it: connects to unix sockets, the open check). */
struct lg_creds {
    int have;
    unsigned uid, gid;   /* fsuid, fsgid */
    int ngroups;
    gid_t groups[64];
    int no_groups;       /* groups not taken (lg_read_open_creds, fsuid 0 only): left as worn */
    int tgid;
    int ns_tgid, ns_tid; /* the caller's ids in its own pid namespace (NStgid/NSpid, 4.1) */
    unsigned umask;      /* 0777 mask; (unsigned)-1 when the kernel did not say */
};

/* A persistent worker pool: threads are created on demand (when every one
 * is busy, up to max) and live until lg_sup_free, so a blocking connect or
 * an open costs a wake-up, not a thread creation.  `init` runs once on each
 * new thread (the opener's Landlock restriction); a thread whose init failed
 * runs its jobs with ok = 0, and the job must then refuse (fail closed). */
struct lg_job {
    void *(*fn)(void *arg);
    void *arg;
    struct lg_job *next;
};

/* A pool thread pinned to one CPU, serving one job at a time (lg_pool_submit_here). */
#define LG_LANES_MAX 64   /* CPUs 0..63 get a lane; jobs on a higher one use the queue */
struct lg_lane {
    struct lg_pool *pool;
    pthread_t tid;
    pthread_cond_t cv;
    struct lg_job *job;   /* handed over, not yet taken */
    int cpu;
    int started;          /* its thread exists (joined at lg_pool_fini) */
    int failed;           /* its thread could not be made */
    int ready;            /* its init succeeded and it is pinned: it may take jobs */
    int busy;             /* a job handed over or running */
};

struct lg_pool {
    struct lg_sup *s;
    int (*init)(struct lg_sup *s);   /* 0 or -errno; NULL: nothing to do */
    pthread_mutex_t lock;
    pthread_cond_t cv;
    struct lg_job *head, *tail;
    int pending;      /* queued, not yet taken */
    int idle;         /* threads waiting for a job */
    int threads;
    int max;
    int stop;
    int ready;        /* lock and cv initialised */
    pthread_t tid[LG_WORKERS_MAX];
    struct lg_lane *lanes;  /* LG_LANES_MAX of them, or NULL (lg_pool_lanes) */
};

struct lg_sup {
    int listener;
    int stderr_fd;
    int event_fd;     /* readable when events wait for Python */
    int stop_fd;      /* written by lg_sup_stop */
    int simulate;
    int strict;
    int root_pid;
    int root_seen;    /* the root's first exec has been answered */
    struct lg_tables t;

    struct seccomp_notif *req;
    struct seccomp_notif_resp *resp;
    size_t req_size, resp_size;

    /* buffers of the loop thread only */
    struct lg_judge *judge;
    struct lg_str_cache strc;
    struct lg_exec_obj obj;        /* the executed object of the exec being judged */

    struct lg_admit *admit;
    int admit_count;

    pthread_mutex_t names_lock;
    struct lg_name *names;
    int names_count;

    unsigned long long *reported;  /* hashes of reported denials (loop thread and workers) */
    pthread_mutex_t report_lock;

    pthread_mutex_t ring_lock;
    pthread_cond_t ring_cv;        /* space freed / ack advanced / worker finished */
    struct lg_event *ring;
    unsigned long long head;       /* next seq to write */
    unsigned long long tail;       /* next seq Python reads */
    unsigned long long acked;      /* every seq < acked is recorded by Python */
    unsigned long long counts[LG_COUNT_MAX];
    int workers;
    int stopping;

    struct lg_pool netpool;        /* blocking connects and sends */
    struct lg_pool openpool;       /* the open check's openers (Landlock-restricted) */
    int open_ruleset;              /* our copy of the sandbox's Landlock ruleset; -1 none */
    int self_fd_dir;               /* our /proc/self/fd (O_PATH), opened once, read by every
                                    * thread (one fd table); -1 none (lg_sup_fd_path) */
    pthread_mutex_t seen_lock;
    struct lg_file_id *seen;       /* objects met under a denied name after launch */
    struct lg_pidfd_cache *pidfds; /* the open check's tid -> pidfd cache (supervise_creds.c) */
    struct lg_file_id *deny_sorted; /* t.deny_ids sorted by (dev, ino): lg_judge_object's bsearch */
    int seen_count;

    /* supervise_exec_stable.c: landgate's own root and mount namespace, and the
     * identities of the write trees' roots (lg_view_init, at the start) */
    int self_view_known;
    unsigned long long self_root_dev, self_root_ino, self_mnt_dev, self_mnt_ino;
    int ident_pidfd;               /* supervise_caller.c: processes known by pidfd (6.13+) */
    struct lg_anc_slot *anc;       /* supervise_caller_kept.c: the kept pidfds (loop thread) */
    int sess_root_set;             /* supervise_root.c: sess_root_fd is ours (loop thread) */
    int sess_root_fd;              /* the sandbox's root (O_PATH), one per session */
    int sess_root_wt;              /* supervise_exec_stable.c: is that root a write tree's
                                    * root by identity?  1, 0, or -1 not known (fstat failed) */
    /* supervise_exec_head.c (loop thread): our fd directory (-2 not yet
     * opened), and the heads of files met, by identity and version */
    int exec_fd_dir;
    struct lg_head_entry *exec_heads;
    int wt_ids_known;
    struct lg_wt_id {
        unsigned long long dev, ino;
    } *wt_ids;
    int n_wt_ids;
    struct lg_exec_names *exec_names; /* supervise_exec_names.c: names whose walk was
                                   * stable, and the watches that forget them (loop thread) */
};



/* supervise.c */
unsigned long long lg_now_ns(void);
void lg_prefault(void *p, size_t n);
void *lg_pages_new(size_t size);
void lg_pages_free(void *p, size_t size);
void lg_report_denial(struct lg_sup *s, const char *action, const char *target, int rule);
int lg_id_valid(struct lg_sup *s, unsigned long long id);
int lg_send_resp(struct lg_sup *s, unsigned long long id, long long val, int err, int cont);
const char *lg_ref(const struct lg_sup *s, int rule);
void lg_copy_target(char *dst, size_t cap, const char *src, unsigned *flags);

/* supervise_ring.c */
int lg_push_event(struct lg_sup *s, const struct lg_event *ev);
void lg_count(struct lg_sup *s, int which);

/* supervise_mem.c */
int lg_read_mem(int pid, unsigned long long addr, void *buf, size_t len);
int lg_read_str(int pid, unsigned long long addr, char *buf, size_t cap, size_t *outlen);

/* supervise_pool.c */
int lg_spawn_worker(struct lg_sup *s, void *(*fn)(void *), void *arg);
void lg_worker_done(struct lg_sup *s);
int lg_pool_init(struct lg_pool *p, struct lg_sup *s, int max, int (*init)(struct lg_sup *s));
int lg_pool_submit(struct lg_pool *p, void *(*fn)(void *), void *arg);
int lg_pool_grow(struct lg_pool *p);
int lg_pool_lanes(struct lg_pool *p);
int lg_pool_submit_here(struct lg_pool *p, void *(*fn)(void *), void *arg);
int lg_pool_thread_ok(void);
void lg_pool_fini(struct lg_pool *p);

/* supervise_creds.c */
int lg_read_creds(int tid, struct lg_creds *c);
/* The calling thread's fd `fd` as our own fd (pidfd_getfd), or -errno; works
 * before 6.9 (no PIDFD_THREAD) too.  Defined in supervise_net.c. */
int lg_caller_fd(struct lg_sup *s, unsigned long long id, int tid, int fd);
int lg_deny_ids_sort(struct lg_sup *s);
int lg_read_open_creds(struct lg_sup *s, int tid, struct lg_creds *c, int need_status);
int lg_pidfd_cache_init(struct lg_sup *s);
void lg_pidfd_cache_free(struct lg_sup *s);
int lg_become(const struct lg_creds *c);
int lg_unbecome(const struct lg_creds *c);

/* supervise_walk.c: the walk in the caller's view (fail closed when the ids won't switch back) */
struct open_how;
const char *lg_walk_split(const char *path, size_t end, char *dir, size_t cap);
int lg_walk_as(const struct lg_creds *c, int base, const char *path, const struct open_how *how,
               int *fd);

/* glob.c */
size_t lg_utf8(const unsigned char *s, size_t n, unsigned *cp);

/* judge_exec.c */
const char *lg_basename(const char *p, int len, int *outlen);
void lg_judge_words(struct lg_judge *j, const struct lg_tables *t, const char *exe,
                    struct lg_verdict *v);

/* supervise_exec.c */
void lg_handle_exec(struct lg_sup *s, const struct seccomp_notif *req, unsigned long long t0);

/* supervise_exec_racy.c */
#define LG_RANGES 64  /* memory ranges of one exec checked for sharing */
int lg_caller_racy(int tid, const unsigned long long *addr, const size_t *len, int n);
int lg_ranges_racy(int tid, const unsigned long long *addr, const size_t *len, int n,
                   int *maps_fd);
int lg_vfork_sharers_racy(int tid, int ppid);
void lg_add_range(unsigned long long *raddr, size_t *rlen, int *nr, int *overflow,
                  unsigned long long addr, size_t len);

/* supervise_caller.c: the caller of an exec as a process (lg_caller_pidfd, lg_caller_done and
 * lg_proc_ident: supervise_caller_kept.c) */
struct lg_ident {
    int tgid, ppid, threads; /* threads: -1 until lg_caller_threads asks */
    unsigned long long id;  /* tells a reused pid apart (pidfs inode, or starttime) */
    int id_pending;         /* id not taken yet: lg_caller_id takes it from the pidfd */
    int kept;               /* the pidfd is the kept one (lg_caller_pidfd): not closed */
};
ssize_t lg_proc_read(int pid, const char *name, char *buf, size_t cap);
int lg_proc_stat(int pid, int *ppid, int *threads, unsigned long long *start);
void lg_ident_init(struct lg_sup *s);
int lg_caller_pidfd(struct lg_sup *s, int tid, struct lg_ident *o);
void lg_caller_done(struct lg_sup *s, int tid, int pidfd, struct lg_ident *o, int keep);
int lg_caller_ident(const struct lg_sup *s, int tid, int pidfd, struct lg_ident *o);
int lg_caller_id(int pidfd, struct lg_ident *o);
int lg_caller_threads(int tid, struct lg_ident *o);
int lg_proc_ident(struct lg_sup *s, int pid, int *ppid, unsigned long long *id);
void lg_ident_fini(struct lg_sup *s);
int lg_pidfd_ident(int pidfd, int *tgid, int *ppid, unsigned long long *id);
/* supervise_caller_kept.c: the pidfds kept per pid (a caller's own, the walk's ancestors) */
void lg_caller_kept_fini(struct lg_sup *s);
/* supervise_root.c: the session's root (borrowed fd, or -errno) */
int lg_session_root(struct lg_sup *s, int tid, unsigned long long id);
void lg_session_root_fini(struct lg_sup *s);

/* supervise_exec_obj.c; lg_exec_obj_stable in supervise_exec_stable.c, lg_exec_expect (the
 * verified path's expected command line) in supervise_exec_verify.c */
int lg_exec_object(struct lg_sup *s, int tid, int tgid, int dirfd, const char *fname,
                   struct lg_exec_obj *o);
int lg_parse_shebang(char *head, ssize_t n, char **interp, char **arg);
void lg_exec_obj_release(struct lg_exec_obj *o);
int lg_exec_obj_stable(struct lg_sup *s, int tid, struct lg_exec_obj *o);
int lg_exec_expect(struct lg_exec_obj *o, const struct lg_words *w);

/* supervise_exec_head.c */
struct stat;
int lg_fd_path_at(int dir, int fd, char *out, size_t cap);
int lg_exec_fd_path(struct lg_sup *s, int fd, char *out, size_t cap);
ssize_t lg_read_head(struct lg_sup *s, int fd, const struct stat *st, char *head, size_t cap);
void lg_exec_head_fini(struct lg_sup *s);

/* supervise_net.c; lg_names_add in supervise_net_dest.c (supervise_net_int.h: the parts) */
void lg_handle_net(struct lg_sup *s, const struct seccomp_notif *req, unsigned long long t0);
int lg_names_add(struct lg_sup *s, int family, const unsigned char *addr, const char *name);

/* supervise_open.c */
void lg_handle_open(struct lg_sup *s, const struct seccomp_notif *req, unsigned long long t0);
int lg_open_init(struct lg_sup *s, char *err, int errlen);
int lg_rewrite_self(const char *path, int tgid, int tid, char *out, size_t cap, int *fdnum);
int lg_absolute_in_view(int tid, int dirfd, const char *path, char *out, size_t cap);
/* supervise_exec_stable.c: 1 if no name in names (absolute) can be re-resolved
 * by the agent (every link and object outside its writable trees); rootfd: the
 * session's root (O_PATH, lg_session_root), or -1 (then nothing is stable) */
int lg_exec_stable(const struct lg_sup *s, int tid, int rootfd, const char *const *names, int n);
/* The object the exec check's own walk (openat2 from the same root) found for a
 * name: its real path (as /proc/self/fd/N names it) and identity. */
struct lg_walked {
    const char *real;
    unsigned long long dev, ino;
};
/* lg_exec_stable, where last (or NULL) is what the last of names resolved to:
 * the walk takes the identity of its last component from it instead of a stat
 * when that component's canonical name is last->real */
int lg_exec_stable_obj(const struct lg_sup *s, int tid, int rootfd, const char *const *names,
                       int n, const struct lg_walked *last);
/* ... and for a plain file (no link followed, no #! line): an absolute name
 * whose object is out of the agent's reach */
int lg_exec_plain_stable(const struct lg_sup *s, int tid, int rootfd, const char *fname,
                         const struct lg_walked *obj);
void lg_view_init(struct lg_sup *s);
/* ... the session root's identity answer, taken once when the root is kept */
int lg_root_wt(const struct lg_sup *s, int rootfd);
void lg_open_fini(struct lg_sup *s);
/* supervise_identity.c: the open check's object judgement and identity set,
 * shared with supervise_fsop*.c. */
struct stat;
int lg_judge_object(struct lg_sup *s, int fd, int access, int *rule, char *real, size_t cap);
int lg_judge_object_named(struct lg_sup *s, int fd, int access, int *rule, char *real, size_t cap,
                          const char *judged, int judged_bits);
int lg_fd_path(int fd, char *out, size_t cap);
int lg_sup_fd_path(const struct lg_sup *s, int fd, char *out, size_t cap);
int lg_sup_fd_reopen(const struct lg_sup *s, int fd, int flags);
int lg_seen_add_at(struct lg_sup *s, int dirfd, const char *name, int access, int rule);
void lg_seen_forget(struct lg_sup *s, const struct stat *old);

/* supervise_fsop.c */
void lg_handle_fsop(struct lg_sup *s, const struct seccomp_notif *req, unsigned long long t0);

/* supervise_exec_stable.c: the directories a stable walk looked names up in,
 * canonical and in the caller's view, NUL-separated in buf (for the watches of
 * supervise_exec_names.c's kept names) */
#define LG_DIRS_MAX 16
struct lg_dirs {
    int n;
    int overflow;  /* more than fit: nothing is kept */
    char buf[1024];
};
/* lg_exec_stable_obj, noting in dirs (or not, NULL) every directory walked */
int lg_exec_stable_dirs(const struct lg_sup *s, int tid, int rootfd, const char *const *names,
                        int n, const struct lg_walked *last, struct lg_dirs *dirs);
/* supervise_exec_names.c: an absolute name whose walk was stable, kept with its
 * real path while no directory on that walk changes (inotify) */
int lg_exec_name_hit(struct lg_sup *s, const char *fname, const struct stat *st,
                     struct lg_exec_obj *o);
void lg_exec_name_keep(struct lg_sup *s, int tid, int rootfd, const struct lg_exec_obj *o);
int lg_exec_names_stable(struct lg_sup *s, const char *const *names, int n);

#endif
