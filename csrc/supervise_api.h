/* supervise_api.h: public interface of sandbox._supervise (cdef-clean, see csrc/build.py).
 *
 * The seccomp user-notification decision loop.  Python compiles the policy
 * once into the flat tables below (sandbox/supervise/tables.py), creates a
 * context over a listener fd, runs lg_sup_run() on a thread (the GIL is
 * released by cffi for the call) and drains fixed-size event records.
 * Python keeps every pointer it hands in here alive until lg_sup_free().
 */
#ifndef LANDGATE_SUPERVISE_API_H
#define LANDGATE_SUPERVISE_API_H

#define LG_SUPERVISE_API_VERSION 1

#define LG_EFFECT_ALLOW 1
#define LG_EFFECT_DENY 2

/* actions in events */
#define LG_ACT_EXEC 1
#define LG_ACT_CONNECT 2
#define LG_ACT_SEND 3
#define LG_ACT_OPEN 4

/* lg_event.flags */
#define LG_EV_SIMULATED 1      /* simulate mode: result is what enforce would have done */
#define LG_EV_ROOT 2           /* the launched root command */
#define LG_EV_INHERITED 4      /* allowed because an ancestor was admitted */
#define LG_EV_EXEC_RACE 8      /* the image that ran differed from the one judged: killed */
#define LG_EV_VERIFIED 16      /* racy exec: the new image was verified before it ran */
#define LG_EV_TRUNCATED 32     /* target did not fit the record (the decision saw all of it) */
#define LG_EV_FAILCLOSED 64    /* denied because the supervisor could not read or judge */
#define LG_EV_SHELL 128        /* a shell -c string was judged segment by segment */
#define LG_EV_WRAPPER 256      /* a wrapper (env, nice, ...) was unwrapped */
#define LG_EV_FORWARDED 512    /* connect/send performed by the supervisor on a duplicate */
#define LG_EV_MISSING 1024     /* denied exec of a file that does not exist: ENOENT kept */
#define LG_EV_EXECUTED 2048    /* exec denied by the program really run (symlink target, #! interpreter) */

/* network rule kinds */
#define LG_NET_ANY 1
#define LG_NET_IP 2            /* addr/prefix, v4 or v6 (localhost compiles to two of these) */
#define LG_NET_HOST 3          /* exact host name in pattern */
#define LG_NET_WILDCARD 4      /* pattern "*.domain": any name ending in ".domain" */
#define LG_NET_UNIX 5          /* path glob in pattern ("@name" for abstract sockets) */

/* file access bits for the open check */
#define LG_ACCESS_READ 1
#define LG_ACCESS_WRITE 2

/* lg_sup_new flags */
#define LG_SUP_SIMULATE 1
#define LG_SUP_STRICT 2        /* an allowed action waits until Python acked its event */
#define LG_SUP_NO_SYNC_WAKE 4  /* benchmarks only: do not set SYNC_WAKE_UP */

#define LG_TARGET_MAX 1024
#define LG_DETAIL_MAX 256
#define LG_ERR_MAX 256

/* counters (lg_sup_counts) */
#define LG_COUNT_NOTIFS 0
#define LG_COUNT_ALLOW 1
#define LG_COUNT_DENY 2
#define LG_COUNT_EXEC 3
#define LG_COUNT_CONNECT 4
#define LG_COUNT_SEND 5
#define LG_COUNT_OPEN 6
#define LG_COUNT_SLOWPATH 7
#define LG_COUNT_EXEC_RACE 8
#define LG_COUNT_GONE 9        /* caller vanished before the answer (ENOENT on SEND / ID_VALID) */
#define LG_COUNT_ERRORS 10
#define LG_COUNT_RING_WAITS 11
#define LG_COUNT_WORKERS 12
#define LG_COUNT_MAX 13

struct lg_event {
    unsigned long long seq;
    unsigned long long t_recv_ns;  /* CLOCK_REALTIME, when the notification was received */
    unsigned long long t_resp_ns;  /* when the answer was sent */
    int pid;                       /* thread group id (as seen by the supervisor) */
    int tid;
    int action;                    /* LG_ACT_* */
    int result;                    /* LG_EFFECT_* */
    int rule;                      /* index into lg_tables.refs; -1 = none */
    int err;                       /* errno the syscall returned (0 = allowed) */
    unsigned int flags;            /* LG_EV_* */
    int syscall_nr;
    int argc;                      /* exec: target holds argc NUL-separated argv strings */
    int target_len;                /* bytes used in target (exec: with the NULs) */
    char target[1024];             /* LG_TARGET_MAX: argv / destination / path */
    char detail[256];              /* LG_DETAIL_MAX: resolved exe / matched host name */
};

/* Glob programs.  Python compiles every glob of a policy (command lines, path
 * and unix-socket globs, wrapper and shell names) into an array of unsigned
 * words, one op each: op = word >> 24, argument = word & 0xffffff, ended by
 * LG_OP_END.  csrc/glob.c runs them; nothing in C parses a glob. */
#define LG_OP_END 0
#define LG_OP_LIT 1            /* one character: argument = its code point */
#define LG_OP_ONE 2            /* '?': any one character (not '/' in a path) */
#define LG_OP_STAR 3           /* '*': any run (not crossing '/' in a path) */
#define LG_OP_CLASS 4          /* [...]: argument = ranges | LG_CLASS_NEG; 2 words per range */
#define LG_OP_ANY 5            /* paths: any run, '/' included */
#define LG_OP_SUBDIRS 6        /* paths: nothing, or '/' and any run (the directory and beneath) */
#define LG_OP_PARENTS 7        /* paths: nothing, or any run ending in '/' (at any depth) */
#define LG_CLASS_NEG 8388608   /* 0x800000: a negated class ('/' never matches one in a path) */
#define LG_CLASS_COUNT 8388607

struct lg_exec_rule {
    const unsigned *glob;          /* command-line glob program */
    int effect;
    int inherit;                   /* allow admits descendants */
    int by_path;                   /* the pattern names the program by path: matched
                                    * against the line with the executable's path first */
    int rule;                      /* index into refs */
};

/* A program that runs another one named among its arguments (env, nice, ...). */
struct lg_wrapper {
    const unsigned *name;          /* glob over the basename ("env", "ld-*.so*") */
    const unsigned *const *arg_opts; /* options that take the next word as their value */
    int n_arg_opts;
    const unsigned *const *stop_opts; /* options that hide the command (env -S): not unwrapped */
    int n_stop_opts;
    int options;                   /* 0: no options, the next word is the command (busybox) */
    int assignments;               /* NAME=VALUE words may precede the command (env) */
    int operands;                  /* words that precede the command (timeout's DURATION) */
};

/* How command lines are taken apart: all data, compiled by sandbox/policy/compiled.py. */
struct lg_syntax {
    const struct lg_wrapper *wrappers;
    int n_wrappers;
    const unsigned *const *shells;   /* shells whose -c STRING is judged command by command */
    int n_shells;
    const unsigned *const *shell_arg_opts; /* shell options that take a value (-o, +O) */
    int n_shell_arg_opts;
    const unsigned *const *keywords; /* words skipped at the start of a simple command */
    int n_keywords;
    const unsigned *const *compound; /* words that start a construct not judged (for, case) */
    int n_compound;
    int depth;                     /* nested -c strings judged (at most LG_DEPTH_MAX) */
};

struct lg_net_rule {
    int kind;                      /* LG_NET_* */
    int effect;
    int family;                    /* AF_INET / AF_INET6 for LG_NET_IP */
    int prefix;                    /* prefix length for LG_NET_IP */
    int port;                      /* -1 = any port */
    unsigned char addr[16];
    const char *pattern;           /* host or "*.domain" */
    const unsigned *glob;          /* LG_NET_UNIX: path glob program ("@name" for abstract) */
    int rule;
};

/* A program a shell_exec deny rule names, by identity (sandbox/supervise/programs.py):
 * an exec of another name for the same file (a hard link) is judged under path too. */
struct lg_program_id {
    unsigned long long dev;
    unsigned long long ino;
    const char *path;              /* the program's canonical path */
};

struct lg_file_id {
    unsigned long long dev;        /* st_dev as the kernel reports it */
    unsigned long long ino;
    int access;                    /* LG_ACCESS_* it is denied for */
    int rule;
    unsigned long long btime;      /* birth time (ns) when known, else 0: an inode number
                                    * freed by an unlink or rename and reused by a new
                                    * file is another object */
};

/* A directory denied with everything beneath it (landgate's key directory and its
 * subdirectories: sandbox/supervise/tables.py), judged by where an object lies rather
 * than by listing the files at launch (csrc/supervise_open_tree.c). */
struct lg_tree_id {
    unsigned long long dev;        /* the directory's st_dev and inode */
    unsigned long long ino;
    unsigned long long mnt_id;     /* the mount its real path is on (/proc/self/fdinfo) */
    const char *path;              /* its real path */
    int access;                    /* LG_ACCESS_* denied beneath it */
    int rule;
};

/* Path rules of file_read (then file_write), in the evaluator's order.  The
 * open check and `explain` both judge with lg_judge_path. */
struct lg_path_rule {
    const unsigned *glob;          /* path glob program */
    int access;                    /* LG_ACCESS_* of its action */
    int effect;                    /* LG_EFFECT_DENY; LG_EFFECT_ALLOW rows are exact allows */
    int overridable;               /* a protected path's deny that an exact allow overrides */
    const char *exact;             /* allow rows: the glob-free path they name */
    int exact_dir;                 /* ... a directory (and what is beneath it) */
    int rule;
    const unsigned *base;          /* protected deny rows covering part of a directory's
                                    * entries: that directory's glob (NULL: glob itself) */
};

/* Rows for the name-changing syscalls (csrc/supervise_fsop.c), compiled by
 * sandbox/supervise/tables.py from the deny rules. */
#define LG_FSOP_ANCESTOR 1     /* a directory denied paths lie beneath: no rename, link or
                                * symlink makes this name, and no directory here is renamed */
#define LG_FSOP_GITCFG 2       /* a git config file: a rename onto it is judged on content */

struct lg_fsop_rule {
    const unsigned *glob;          /* path glob program */
    int kind;                      /* LG_FSOP_* */
    int rule;                      /* index into refs: the deny rule it comes from */
};

/* What an exec judgement concluded. */
struct lg_verdict {
    int effect;                    /* LG_EFFECT_*, 0 = undecided (inheritance, then default) */
    int rule;                      /* deciding rule, -1 = none */
    int inherit;                   /* an allow admits descendants */
    unsigned int flags;            /* LG_EV_* */
};

struct lg_tables {
    const struct lg_exec_rule *exec;
    int n_exec;
    int exec_default_effect;
    int exec_default_rule;
    const struct lg_syntax *syntax;
    const struct lg_net_rule *net;
    int n_net;
    int net_default_effect;
    int net_default_rule;
    const struct lg_file_id *deny_ids;
    int n_deny_ids;
    const struct lg_path_rule *paths;
    int n_paths;
    const struct lg_net_rule *infra; /* landgate's own services: LG_NET_IP rows with a port,
                                      * judged BEFORE the policy's rules with their own effect:
                                      * the DNS view allowed (a policy CIDR deny cannot cut the
                                      * sandbox off its resolver), a `landgate ui` dashboard
                                      * denied (a localhost:* allow cannot reach it) */
    int n_infra;
    const char *const *refs;       /* "rule 4, policy.yaml:21" */
    int n_refs;
    /* Per rule (n_refs entries, or NULL): 1 when a policy allow rule could admit what the
     * rule denied (a block's default deny), so the denial line teaches the fix
     * (`landgate allow ACTION PATTERN`); 0 for an explicit deny (deny wins over any allow),
     * a protected path or landgate's key directory: no hint that cannot work. */
    const unsigned char *hints;
    int open_check;                /* enforce the carve-out open check (opens are notified) */
    int open_ruleset_fd;           /* Landlock ruleset the opener thread restricts itself with; -1 none */
    int open_uid;                  /* credentials the opener thread takes; -1 = keep */
    int open_gid;
    /* The rule an open refused by the kernel (Landlock) on an opener is recorded
     * under: the file_read / file_write block's default ("default deny of
     * file_read"), -1 none.  The supervisor performed that open: its refusal is
     * a denial the agent got, recorded like the supervisor's own. */
    int read_default_rule;
    int write_default_rule;
    int file_access_all;           /* audit.file_access: all: record every open decided too */
    /* Trees the sandbox can write (Landlock write rights beneath them), in
     * landgate's own view.  A symlink or #! script outside all of them cannot
     * be swapped by the agent between the exec check and the kernel's walk,
     * so its exec may take the fast path.  write_known 0: not known (no
     * Landlock, simulation): every symlink and script takes the verified path. */
    const char *const *write_trees;
    int n_write_trees;
    int write_known;
    /* Unix socket paths whose connect, when the policy refuses it by its default
     * (no rule names it), is answered as a host without that service answers:
     * ENOENT when the socket file is absent, ECONNREFUSED when it exists, with no
     * denial line and no event (glibc's nscd probe: sandbox.policy.baseline). */
    const char *const *quiet_unix;
    int n_quiet_unix;
    /* The sandbox's own network namespace (device and inode of its nsfs
     * file), when it has one: a loopback destination on a socket of that
     * namespace is its private loopback, always allowed (DESIGN §3).
     * private_netns 0: none (the sandbox shares landgate's namespace). */
    const struct lg_program_id *deny_programs;
    int n_deny_programs;
    int private_netns;
    unsigned long long private_netns_dev;
    unsigned long long private_netns_ino;
    /* The name-changing syscalls (rename*, link*, symlink*, mkdir*, mknod*, truncate) are
     * notified and performed by the supervisor (csrc/supervise_fsop.c); needs
     * open_ruleset_fd like the open check. */
    int fsop_check;
    const struct lg_fsop_rule *fsop;
    int n_fsop;
    /* Trees denied as a whole (struct lg_tree_id); their files are not in deny_ids. */
    const struct lg_tree_id *deny_trees;
    int n_deny_trees;
};

struct lg_sup;

int lg_supervise_api_version(void);

/* Create a context.  Takes no ownership of listener_fd (the caller closes it
 * after lg_sup_free).  On failure returns NULL and writes a message to err. */
struct lg_sup *lg_sup_new(int listener_fd, const struct lg_tables *tables, int root_pid,
                          int flags, int stderr_fd, char *err, int errlen);
/* lg_sup_new on a thread of its own (supervise_pool.c): returns at once, while the
 * context is made (its buffers, the first opener thread and that thread's Landlock
 * restriction: ~0.3-0.4 ms) alongside the caller's own work and without Python's GIL
 * (issue 19).  lg_sup_new_wait joins it and returns lg_sup_new's result; every begun
 * making is waited for exactly once.  NULL with a message in err when the thread could
 * not be made (nothing was begun). */
struct lg_sup_pending;
struct lg_sup_pending *lg_sup_new_begin(int listener_fd, const struct lg_tables *tables,
                                        int root_pid, int flags, int stderr_fd, char *err,
                                        int errlen);
struct lg_sup *lg_sup_new_wait(struct lg_sup_pending *pending, char *err, int errlen);
/* The fd that becomes readable when events are waiting (an eventfd). */
int lg_sup_event_fd(struct lg_sup *sup);
/* Run the loop until the last supervised task is gone (POLLHUP) or lg_sup_stop.
 * Returns 0, or -errno with a message in err. */
int lg_sup_run(struct lg_sup *sup, char *err, int errlen);
/* Thread-safe: ask the loop to end (pending notifications are failed closed by the kernel). */
int lg_sup_stop(struct lg_sup *sup);
/* Copy up to max waiting events into out; returns how many (0 when none). */
int lg_sup_drain(struct lg_sup *sup, struct lg_event *out, int max);
/* Python has recorded every event up to seq (strict durability). */
int lg_sup_ack(struct lg_sup *sup, unsigned long long seq);
/* Thread-safe: the DNS view says addr (4 or 16 bytes) stands for name. */
int lg_sup_add_name(struct lg_sup *sup, int family, const unsigned char *addr, const char *name);
/* Copy counters (LG_COUNT_*) into out; returns how many. */
int lg_sup_counts(struct lg_sup *sup, unsigned long long *out, int n);
/* Workers still running (blocking connects, exec verifications). */
int lg_sup_busy(struct lg_sup *sup);
void lg_sup_free(struct lg_sup *sup);

/* The decisions themselves, also called by `explain` and simulation
 * (sandbox/policy/compiled.py) over the same compiled tables. */
int lg_glob_match(const unsigned *glob, const char *text, size_t len, int path);
/* Path programs run within the matcher's bound up to this many words (END included);
 * the tables refuse a longer one (a policy error naming its rule). */
int lg_glob_path_limit(void);
/* A program's words up to and including its END op, at most cap. */
int lg_glob_words(const unsigned *glob, int cap);
struct lg_judge;
/* Scratch buffers of one exec judgement (one per thread that judges). */
struct lg_judge *lg_judge_new(void);
void lg_judge_free(struct lg_judge *j);
/* Judge an exec: argv_nul is the argv strings NUL-terminated back to back,
 * exe the executed file (NULL: argv[0]).  0, or -E2BIG (the caller fails closed). */
int lg_judge_exec(struct lg_judge *j, const struct lg_tables *t, const char *argv_nul,
                  int argv_len, const char *exe, struct lg_verdict *v);
/* The exec rules whose glob matches one form: indices into t->exec (at most max). */
int lg_exec_hits(const struct lg_tables *t, const char *line, size_t len, const char *exe_line,
                 size_t exe_len, int *hits, int max);
/* Judge a path for access: returns the access bits some deny rule denies it
 * for; *rule gets the first rule that denies `access` (-1 if none). */
int lg_judge_path(const struct lg_tables *t, const char *path, size_t len, int access, int *rule);
/* The rows of `access` whose glob matches path: indices into t->paths (at most max). */
int lg_path_hits(const struct lg_tables *t, const char *path, size_t len, int access, int *hits,
                 int max);
/* Lexically normalise an absolute path ("." and "//" dropped, ".." takes one
 * component away, never above "/"): 0, or -ENAMETOOLONG if it does not fit cap.
 * The supervisor's and `explain`'s one normaliser. */
int lg_normalise_path(const char *in, char *out, size_t cap);
/* Judge a connect to a unix socket path ("@name" abstract): LG_EFFECT_*, *rule. */
int lg_judge_unix(const struct lg_tables *t, const char *path, int *rule);

/* git config content judge (csrc/gitcfg.c; the parser and lg_gitcfg_list in
 * csrc/gitcfg_parse.c): 1 if `new_` adds or changes an entry that
 * makes git run a program (core.pager, alias.x=!cmd, filter.*...) or cannot be parsed,
 * with the reason in why; 0 if it may be installed.  Entries `old` already had may stay. */
int lg_gitcfg_judge(const char *old, size_t old_len, const char *new_, size_t new_len, char *why,
                    int whylen);
/* The entries as `git config --list --null` prints them ("key\nvalue\0" or "key\0"):
 * bytes written, or -EINVAL (not git config syntax), -E2BIG (out too small). */
int lg_gitcfg_list(const char *data, size_t len, char *out, size_t cap);

/* The denial line's rendering of an agent-controlled target (controls, invalid
 * UTF-8 and quotes escaped; "..." when cut), exposed for its tests. */
void lg_escape_shown(char *out, size_t cap, const char *in);

/* audit_fence.c: a Landlock denial of a short-lived child of landgate's, whose audit
 * record follows every record queued before (see there).  Returns the child's pid (it
 * has exited, unreaped) or -errno.  Reap it with lg_audit_fence_reap: its exit status
 * (0: the denial was made) or -errno. */
int lg_audit_fence(void);
int lg_audit_fence_reap(int pid);

/* render_event.c: drained records rendered straight into sealed audit trail lines,
 * byte for byte what sandbox/audit's Python path writes (its contract test compares
 * them).  Per rule, the fields that depend only on the rule, as JSON text. */
struct lg_render_rule {
    const char *open_action;       /* an open's "action" under this rule (JSON), or NULL */
    int open_code;                 /* its LG_RENDER_* action code */
    const char *origin;            /* "origin"'s value (JSON) */
    const char *refs;              /* "rule":..,"rule_index":..,"rule_source":.. members;
                                      NULL: not filled yet (see lg_render_events) */
};
struct lg_render {
    const unsigned char *key;      /* the trail key (1..32 bytes) for the entry tags */
    int key_len;
    const char *session;           /* "session"'s value (JSON) */
    const char *mode;              /* "mode"'s value (JSON) */
    const struct lg_render_rule *rules;
    int nrules;
    const struct lg_render_rule *none; /* a record with no rule (or one out of range) */
};
/* action codes written per record, code = action << 1 | denied */
#define LG_RENDER_SHELL_EXEC 0
#define LG_RENDER_NETWORK 1
#define LG_RENDER_UNKNOWN 2
#define LG_RENDER_FILE_READ 3
#define LG_RENDER_FILE_WRITE 4
/* Render evs[0..n) as decision lines chained from `prev` (64 hex digits), the first
 * with seq + 1, into out (cap bytes): returns how many records were rendered (all,
 * or fewer when the rest might not fit), with the bytes used in *used, each raw
 * digest in digests (32 bytes per record) and each action code in codes; it stops
 * before a record whose rule is not filled yet, with that rule's index in *missing
 * (else -1).  -1 when a record cannot be rendered here (a clock outside [1e9, 1e16)
 * seconds, or a bad key): the caller takes its Python path for the batch. */
int lg_render_events(const struct lg_render *r, const struct lg_event *evs, int n,
                     unsigned long long seq, const char *prev, char *out, size_t cap,
                     size_t *used, unsigned char *digests, unsigned char *codes, int *missing);
/* Python's repr of d into out (40 bytes) for d == 0 or 1e9 <= d < 1e16: its length,
 * or -1 for any other value.  Exposed for its tests. */
int lg_render_double(double d, char *out);
/* SHA-256 of p[0..n) as the renderer computes it (with the CPU's SHA extensions when it
 * has them, unless `portable`): 1 if they were used.  Exposed for its tests. */
int lg_render_sha256(const unsigned char *p, size_t n, unsigned char *out, int portable);

#endif
