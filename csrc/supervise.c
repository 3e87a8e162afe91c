/* supervise.c: the seccomp user-notification decision loop (DESIGN §2, §4).
 *
 * One context (struct lg_sup) per supervised session holds everything the
 * loop mutates; there is no other mutable global state.  The loop thread is
 * the only reader of the listener.  Workers (blocking connects, verification
 * of racy execs) answer the notification they were handed and nothing else.
 *
 * This file: the context, the loop, answering the kernel, the denial line.
 * One concern per file beside it:
 *   supervise_ring.c   the event ring Python drains, the counters
 *   supervise_pool.c   worker threads and pools
 *   supervise_mem.c    reading a caller's memory, normalising paths
 *   supervise_creds.c  acting with the caller's credentials
 *   supervise_exec.c, supervise_net.c, supervise_open.c  the handlers
 *   supervise_exec_obj.c, supervise_exec_stable.c, supervise_exec_racy.c,
 *   supervise_caller.c  what an exec runs, whether the agent can change it,
 *                      whether its bytes can change, who its caller is
 *   supervise_exec_head.c  a resolved file's real path and #! head (kept
 *                      per file version)
 *   judge_exec.c, judge_path.c, glob.c  the decisions over the compiled tables
 *                      (shared with `explain`, see sandbox/policy/compiled.py)
 *   supervise_bench.h  where an exec decision's time goes, compiled in only for
 *                      bench/exec_ab.py --phases (-DLG_BENCH_PHASES)
 *
 * Python side: sandbox/supervise/supervisor.py.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <linux/audit.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/uio.h>

#include "kernel_compat.h"
#include "supervise_bench.h"
#include "supervise_int.h"
#include "supervise_open_bench.h"

#ifdef LG_BENCH_PHASES
/* bench only (supervise_bench.h): the loop thread's phase times, per notification */
#define LG_PH_SAMPLES 8192
static unsigned ph_cur[LG_PH_N], ph_samp[LG_PH_N][LG_PH_SAMPLES];
static unsigned long long ph_last, ph_n;
static unsigned long long ph_poll_ns, ph_recv_ns;  /* this notification's (open pieces) */

void lg_bench_phase_marks(unsigned long long *poll_ns, unsigned long long *recv_ns)
{
    *poll_ns = ph_poll_ns;
    *recv_ns = ph_recv_ns;
}

static unsigned long long mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (unsigned long long)ts.tv_sec * 1000000000ULL + (unsigned long long)ts.tv_nsec;
}

static void ph_flush(void)
{
    if (ph_n > 0 && ph_n <= LG_PH_SAMPLES)
        for (int k = 0; k < LG_PH_N; k++)
            ph_samp[k][ph_n - 1] = ph_cur[k];
    memset(ph_cur, 0, sizeof ph_cur);
}

void lg_bench_phase_start(void)
{
    ph_flush();
    ph_last = mono_ns();
    ph_poll_ns = ph_last;
    ph_n++;
}

void lg_bench_phase(int k)
{
    unsigned long long t = mono_ns();
    ph_cur[k] += (unsigned)(t - ph_last);
    ph_last = t;
    if (k == LG_PH_WAKE)
        ph_recv_ns = t;
}

static int cmp_u(const void *a, const void *b)
{
    unsigned x = *(const unsigned *)a, y = *(const unsigned *)b;
    return x < y ? -1 : x > y;
}

void lg_bench_phases_dump(void)
{
    static const char *const names[LG_PH_N] = {
        "wake", "read", "pidfd", "valid", "ident", "judge", "resolve",
        "spell", "head", "stable", "threads", "vfork", "maps", "answer", "after"};
    const char *path = getenv("LG_BENCH_PHASES_OUT");
    ph_flush();
    size_t n = ph_n < LG_PH_SAMPLES ? (size_t)ph_n : LG_PH_SAMPLES;
    FILE *f = path && n > 0 ? fopen(path, "a") : NULL;
    if (f) {
        struct timespec cpu;
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu);
        fprintf(f, "{\"n\": %zu, \"loop_cpu_per\": %.2f", n,
                ((double)cpu.tv_sec * 1e9 + (double)cpu.tv_nsec) / (double)n / 1000.0);
        for (int k = 0; k < LG_PH_N; k++) {
            qsort(ph_samp[k], n, sizeof ph_samp[k][0], cmp_u);
            fprintf(f, ", \"%s\": %.2f", names[k], ph_samp[k][n / 2] / 1000.0);
        }
        fprintf(f, "}\n");
        fclose(f);
    }
    ph_n = 0;
}
#endif

static void set_err(char *err, int errlen, const char *what, int e)
{
    if (err && errlen > 0)
        snprintf(err, (size_t)errlen, "%s: %s", what, strerror(e));
}

int lg_supervise_api_version(void)
{
    return LG_SUPERVISE_API_VERSION;
}

unsigned long long lg_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (unsigned long long)ts.tv_sec * 1000000000ULL + (unsigned long long)ts.tv_nsec;
}

const char *lg_ref(const struct lg_sup *s, int rule)
{
    if (rule >= 0 && rule < s->t.n_refs && s->t.refs[rule])
        return s->t.refs[rule];
    return "no rule";
}

void lg_copy_target(char *dst, size_t cap, const char *src, unsigned *flags)
{
    size_t n = strlen(src);
    if (n >= cap) {
        n = cap - 1;
        if (flags)
            *flags |= LG_EV_TRUNCATED;
    }
    memcpy(dst, src, n);
    dst[n] = '\0';
}

/* Touch every page of a fresh (calloc'd, so mmap'd and not yet faulted in)
 * table.  The ring and the admit table are written at a new place on almost
 * every decision; left lazy, each of those writes is a page fault (1-3 us
 * measured) inside the decision, while the caller waits. */
void lg_prefault(void *p, size_t n)
{
    volatile char *c = p;
    for (size_t i = 0; i < n; i += 4096)
        c[i] = 0;
}

/* A large zeroed table of the supervisor's: fresh anonymous pages, resident
 * only once written (issue 19: a session holds what it uses).  Not calloc:
 * glibc serves a size under its dynamic mmap threshold from the heap, and that
 * threshold rises to the largest block the process ever freed (up to 32 MiB:
 * any Python buffer of a few MiB will do); calloc then clears reused heap
 * memory, faulting all of it in (the judge's word arrays, measured: +2.4 MiB
 * resident at every supervisor start, none of it used by a session that runs
 * no long command line).  NULL on failure; free with lg_pages_free. */
void *lg_pages_new(size_t size)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

void lg_pages_free(void *p, size_t size)
{
    if (p)
        munmap(p, size);
}

/* ---- answering the kernel ------------------------------------------------- */

/* 1 if the notification is still pending (the caller has not died or been
 * interrupted out of it): what we read from its memory belonged to it. */
int lg_id_valid(struct lg_sup *s, unsigned long long id)
{
    __u64 v = id;
    return ioctl(s->listener, SECCOMP_IOCTL_NOTIF_ID_VALID, &v) == 0;
}

/* Send one answer.  Each caller (loop or worker) uses its own response
 * struct.  ENOENT means the caller is gone: counted, not an error. */
int lg_send_resp(struct lg_sup *s, unsigned long long id, long long val, int err, int cont)
{
    struct seccomp_notif_resp resp;
    memset(&resp, 0, sizeof resp);
    resp.id = id;
    resp.val = cont ? 0 : val;
    resp.error = cont ? 0 : (err ? -err : 0);
    resp.flags = cont ? SECCOMP_USER_NOTIF_FLAG_CONTINUE : 0;
    if (ioctl(s->listener, SECCOMP_IOCTL_NOTIF_SEND, &resp) < 0) {
        int e = errno;
        lg_count(s, e == ENOENT ? LG_COUNT_GONE : LG_COUNT_ERRORS);
        return -e;
    }
    return 0;
}

/* FNV-1a over action and target: the "distinct denial" key. */
static unsigned long long denial_key(const char *action, const char *target, int rule)
{
    unsigned long long h = 1469598103934665603ULL;
    for (const char *p = action; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    h = (h ^ 0xff) * 1099511628211ULL;
    for (const char *p = target; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    h ^= (unsigned long long)(unsigned)rule;
    return h ? h : 1;
}

/* Length of the valid UTF-8 sequence at `p` (at most `n` bytes), 0 if invalid.
 * Overlong forms, surrogates and code points above U+10FFFF are invalid. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
    unsigned char c = p[0];
    size_t len;
    unsigned min;
    unsigned cp;
    if (c >= 0xc2 && c <= 0xdf) { len = 2; min = 0x80; cp = c & 0x1f; }
    else if (c >= 0xe0 && c <= 0xef) { len = 3; min = 0x800; cp = c & 0x0f; }
    else if (c >= 0xf0 && c <= 0xf4) { len = 4; min = 0x10000; cp = c & 0x07; }
    else return 0;
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

/* Copy agent-controlled `in` into `out` (capacity `cap`, NUL-terminated) so that it
 * cannot drive the terminal that reads the sandbox's stderr: C0 controls (ESC, CR,
 * LF...), DEL, C1 controls (U+0080..U+009F, which some terminals obey) and bytes that
 * are not valid UTF-8 become `\xNN`; `"` and `\` are escaped too, since the target
 * is shown between quotes.  One denial is one line.  Truncates with "..." when the
 * escaped text does not fit. */
void lg_escape_shown(char *out, size_t cap, const char *in)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)in;
    size_t n = strlen(in);
    size_t o = 0;
    if (cap < 4) {
        if (cap)
            out[0] = 0;
        return;
    }
    for (size_t i = 0; i < n;) {
        char buf[16];
        size_t blen = 0;
        size_t step = 1;
        unsigned char c = p[i];
        size_t u = c >= 0x80 ? utf8_len(p + i, n - i) : 0;
        if (c == '"' || c == '\\') {
            buf[0] = '\\';
            buf[1] = (char)c;
            blen = 2;
        } else if (c < 0x20 || c == 0x7f || (c >= 0x80 && u == 0) ||
                   (u == 2 && c == 0xc2 && p[i + 1] < 0xa0)) {
            /* a control, an invalid byte, or a C1 control encoded as U+0080..U+009F */
            size_t k = (u == 2) ? 2 : 1;
            for (size_t j = 0; j < k; j++) {
                buf[blen++] = '\\';
                buf[blen++] = 'x';
                buf[blen++] = hex[p[i + j] >> 4];
                buf[blen++] = hex[p[i + j] & 0xf];
            }
            step = k;
        } else if (u > 0) {
            memcpy(buf, p + i, u);
            blen = u;
            step = u;
        } else {
            buf[0] = (char)c;
            blen = 1;
        }
        if (o + blen + 4 > cap) {  /* room for "..." and the NUL */
            memcpy(out + o, "...", 3);
            o += 3;
            break;
        }
        memcpy(out + o, buf, blen);
        o += blen;
        i += step;
    }
    out[o] = 0;
}

/* 1 when the n bytes at p can stand verbatim between single quotes in the hint: they
 * mean themselves to the policy (no glob character; `[` `]` only in a destination's
 * `[v6]:port`), to a shell (no quote, no space) and to a terminal (no control byte). */
static int hint_safe(const char *p, size_t n, int brackets)
{
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '/' || c == '.' || c == '_' || c == '-' || c == '+' || c == '@' ||
                 c == ':' || c == ',' || c == '=' || c == '~' || c == '%' ||
                 (brackets && (c == '[' || c == ']'));
        if (!ok)
            return 0;
    }
    return 1;
}

/* The fix a default deny teaches: ` — allow with: landgate allow shell_exec 'od *'`
 * (the program, with ` *` when it had arguments), the exact path of a file, the
 * destination as recorded.  Empty when the target cannot be written as a pattern
 * that means exactly it (then the line names the rule and nothing else). */
static void denial_hint(char *out, size_t cap, const char *action, const char *target)
{
    size_t n = strlen(target);
    const char *more = "";
    int brackets = 0;
    out[0] = 0;
    if (strcmp(action, "shell_exec") == 0) {
        const char *sp = strchr(target, ' ');
        if (sp) {
            n = (size_t)(sp - target);
            more = " *";
        }
    } else if (strcmp(action, "network") == 0) {
        if (strncmp(target, "unix:", 5) == 0 && target[5] != '/')
            return; /* an abstract socket: the policy has no pattern for it */
        brackets = 1;
    }
    if (n > 200 || !hint_safe(target, n, brackets))
        return;
    snprintf(out, cap, " \xe2\x80\x94 allow with: landgate allow %s '%.*s%s'", action, (int)n,
             target, more);
}

/* Once per distinct denial: `landgate: denied shell_exec "curl x" (rule 4, policy.yaml:21)`
 * on the sandbox's stderr, before the caller sees the error; when a policy allow could
 * admit it (the block's default denied it), the line ends with the fix. */
void lg_report_denial(struct lg_sup *s, const char *action, const char *target, int rule)
{
    if (s->stderr_fd < 0)
        return;
    unsigned long long key = denial_key(action, target, rule);
    pthread_mutex_lock(&s->report_lock);
    unsigned idx = (unsigned)(key % LG_REPORTED_CAP);
    for (unsigned probe = 0; probe < LG_REPORTED_CAP; probe++) {
        unsigned k = (idx + probe) % LG_REPORTED_CAP;
        if (s->reported[k] == key) {
            pthread_mutex_unlock(&s->report_lock);
            return;  /* already said */
        }
        if (s->reported[k] == 0) {
            s->reported[k] = key;
            break;
        }
    }  /* a full set reports again: better repeated than silent */
    pthread_mutex_unlock(&s->report_lock);
    char line[LG_TARGET_MAX + 512];
    char shown[201];
    lg_escape_shown(shown, sizeof shown, target);
    char hint[300];
    hint[0] = 0;
    if (rule >= 0 && rule < s->t.n_refs && s->t.hints && s->t.hints[rule])
        denial_hint(hint, sizeof hint, action, target);
    int len;
    if (rule >= 0)
        len = snprintf(line, sizeof line, "landgate: denied %s \"%s\" (%s)%s\n", action, shown,
                       lg_ref(s, rule), hint);
    else
        len = snprintf(line, sizeof line, "landgate: denied %s \"%s\" (%s)\n", action, shown, "supervisor could not judge it");
    if (len > 0) {
        size_t w = (size_t)len < sizeof line ? (size_t)len : sizeof line - 1;
        ssize_t r = write(s->stderr_fd, line, w);
        (void)r;  /* best effort: the errno and the audit entry carry the denial too */
    }
}

/* ---- context -------------------------------------------------------------- */

void lg_sup_free(struct lg_sup *s)
{
    if (!s)
        return;
    lg_pool_fini(&s->netpool);
    lg_open_fini(s);
    lg_exec_head_fini(s);
    lg_ident_fini(s);
    if (s->event_fd >= 0)
        close(s->event_fd);
    if (s->stop_fd >= 0)
        close(s->stop_fd);
    free(s->req);
    free(s->resp);
    lg_judge_free(s->judge);
    free(s->admit);
    lg_pages_free(s->names, LG_NAMES_CAP * sizeof *s->names);
    free(s->reported);
    lg_pages_free(s->ring, LG_RING_CAP * sizeof *s->ring);
    free(s->wt_ids);
    pthread_mutex_destroy(&s->seen_lock);
    pthread_mutex_destroy(&s->names_lock);
    pthread_mutex_destroy(&s->report_lock);
    pthread_mutex_destroy(&s->ring_lock);
    pthread_cond_destroy(&s->ring_cv);
    free(s);
}

struct lg_sup *lg_sup_new(int listener_fd, const struct lg_tables *tables, int root_pid,
                          int flags, int stderr_fd, char *err, int errlen)
{
    struct lg_sup *s = calloc(1, sizeof *s);
    if (!s) {
        set_err(err, errlen, "supervisor context", ENOMEM);
        return NULL;
    }
    s->listener = listener_fd;
    s->stderr_fd = stderr_fd;
    s->event_fd = -1;
    s->open_ruleset = -1;
    s->self_fd_dir = -1;
    s->exec_fd_dir = -2;
    pthread_mutex_init(&s->seen_lock, NULL);
    s->stop_fd = -1;
    s->simulate = (flags & LG_SUP_SIMULATE) != 0;
    s->strict = (flags & LG_SUP_STRICT) != 0;
    s->root_pid = root_pid;
    s->t = *tables;
    lg_view_init(s);
    lg_ident_init(s);
    pthread_mutex_init(&s->names_lock, NULL);
    pthread_mutex_init(&s->report_lock, NULL);
    pthread_mutex_init(&s->ring_lock, NULL);
    pthread_cond_init(&s->ring_cv, NULL);

    struct seccomp_notif_sizes sizes;
    if (syscall(SYS_seccomp, SECCOMP_GET_NOTIF_SIZES, 0, &sizes) < 0) {
        set_err(err, errlen, "seccomp(SECCOMP_GET_NOTIF_SIZES)", errno);
        goto fail;
    }
    s->req_size = sizes.seccomp_notif > sizeof(struct seccomp_notif) ? sizes.seccomp_notif : sizeof(struct seccomp_notif);
    s->resp_size = sizes.seccomp_notif_resp > sizeof(struct seccomp_notif_resp) ? sizes.seccomp_notif_resp : sizeof(struct seccomp_notif_resp);
    s->req = calloc(1, s->req_size);
    s->resp = calloc(1, s->resp_size);
    s->judge = lg_judge_new();
    s->admit = calloc(LG_ADMIT_CAP, sizeof *s->admit);
    s->names = lg_pages_new(LG_NAMES_CAP * sizeof *s->names);
    s->reported = calloc(LG_REPORTED_CAP, sizeof *s->reported);
    s->ring = lg_pages_new(LG_RING_CAP * sizeof *s->ring);
    if (!s->req || !s->resp || !s->judge || !s->admit || !s->names ||
        !s->reported || !s->ring) {
        set_err(err, errlen, "supervisor buffers", ENOMEM);
        goto fail;
    }
    /* Not prefaulted (issue 19: a session holds what it uses): calloc'd tables this
     * large are fresh mmap'd zero pages, resident only once written.  The ring fills
     * in order, so only its first lap faults (one page per 3 records); the admit
     * table takes one fault per page a new pid hashes to (256 pages at most).  Each
     * such fault is 1-3 us inside that one decision, paid once; prefaulted, both were
     * 1.7 MiB resident in every session, most of it never written in a short one. */
    s->event_fd = eventfd(0, EFD_CLOEXEC);
    s->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (s->event_fd < 0 || s->stop_fd < 0) {
        set_err(err, errlen, "eventfd", errno);
        goto fail;
    }
    if (listener_fd >= 0 && !(flags & LG_SUP_NO_SYNC_WAKE)) {
        /* 6.6: wake the supervisor on the caller's CPU (flag passed by value).
         * Not fatal where missing: decisions stay correct, only slower. */
        if (ioctl(listener_fd, SECCOMP_IOCTL_NOTIF_SET_FLAGS, SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP) < 0 &&
            errno != EINVAL && errno != ENOTTY) {
            set_err(err, errlen, "ioctl(SECCOMP_IOCTL_NOTIF_SET_FLAGS)", errno);
            goto fail;
        }
    }
    int rc = lg_pool_init(&s->netpool, s, LG_WORKERS_MAX, NULL);
    if (rc < 0) {
        set_err(err, errlen, "worker pool", -rc);
        goto fail;
    }
    if (lg_open_init(s, err, errlen) < 0)
        goto fail;
    return s;
fail:
    lg_sup_free(s);
    return NULL;
}

int lg_sup_event_fd(struct lg_sup *s)
{
    return s->event_fd;
}

int lg_sup_stop(struct lg_sup *s)
{
    uint64_t one = 1;
    pthread_mutex_lock(&s->ring_lock);
    s->stopping = 1;
    pthread_cond_broadcast(&s->ring_cv);
    pthread_mutex_unlock(&s->ring_lock);
    if (write(s->stop_fd, &one, sizeof one) < 0)
        return -errno;
    return 0;
}

int lg_sup_add_name(struct lg_sup *s, int family, const unsigned char *addr, const char *name)
{
    return lg_names_add(s, family, addr, name);
}

/* A notification for a syscall the filter should not have sent: fail closed. */
static void handle_unknown(struct lg_sup *s, const struct seccomp_notif *req, unsigned long long t0)
{
    struct lg_event ev;
    memset(&ev, 0, sizeof ev);
    ev.t_recv_ns = t0;
    ev.pid = (int)req->pid;
    ev.tid = (int)req->pid;
    ev.action = 0;
    ev.result = s->simulate ? LG_EFFECT_ALLOW : LG_EFFECT_DENY;
    ev.rule = -1;
    ev.err = s->simulate ? 0 : EPERM;
    ev.flags = LG_EV_FAILCLOSED | (s->simulate ? LG_EV_SIMULATED : 0);
    ev.syscall_nr = req->data.nr;
    snprintf(ev.target, sizeof ev.target, "syscall %d arch 0x%x", req->data.nr, req->data.arch);
    ev.t_resp_ns = lg_now_ns();
    lg_push_event(s, &ev);
    lg_send_resp(s, req->id, 0, EPERM, s->simulate);
}

/* The decision loop.
 *
 * Guarantees (each handler keeps them; read them before changing one):
 *  - Fail closed: a notification is answered with an error unless a rule
 *    allowed it; anything the loop cannot read, parse or fit in its bounds is
 *    denied.  If this process dies the listener closes and the kernel fails
 *    every pending and future supervised syscall with ENOSYS.
 *  - No reply before the decision: the answer is sent only after the
 *    decision and its event record exist (in strict durability: after Python
 *    acknowledged an allowed record).
 *  - No read after ID_VALID fails: every read of a caller's memory is
 *    followed by SECCOMP_IOCTL_NOTIF_ID_VALID before its bytes are trusted;
 *    if the id is no longer valid the pid may already belong to someone else
 *    and the handler stops.
 *  - Race-free effects: connect and datagram sends with a destination are
 *    performed by the supervisor on a duplicate of the socket with its own
 *    copy of the address (no CONTINUE on a user pointer it judged); racy execs
 *    are verified at PTRACE_EVENT_EXEC before the new image runs.
 *  - The loop never blocks on a caller: blocking work goes to a worker.
 *  - It ends on POLLHUP (the last supervised task is gone), not on ENOENT
 *    (which only means one caller died before we received it).
 */
int lg_sup_run(struct lg_sup *s, char *err, int errlen)
{
    struct pollfd pfd[2] = {{s->listener, POLLIN, 0}, {s->stop_fd, POLLIN, 0}};
    int rc = 0;
#ifdef LG_BENCH_PHASES
    prctl(PR_SET_NAME, "lg-supervise");  /* bench only: perf can tell this thread apart */
#endif
    for (;;) {
        int n = poll(pfd, 2, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            set_err(err, errlen, "poll(listener)", errno);
            rc = -errno;
            break;
        }
        if (pfd[1].revents & POLLIN)
            break;
        if (pfd[0].revents & POLLIN) {
            LG_PHASE_START();
            memset(s->req, 0, s->req_size);
            if (ioctl(s->listener, SECCOMP_IOCTL_NOTIF_RECV, s->req) < 0) {
                int e = errno;
                if (e == EINTR || e == ENOENT)  /* ENOENT: the caller died before we got it */
                    continue;
                set_err(err, errlen, "ioctl(SECCOMP_IOCTL_NOTIF_RECV)", e);
                rc = -e;
                break;
            }
            unsigned long long t0 = lg_now_ns();
            LG_PHASE(LG_PH_WAKE);
            const struct seccomp_notif *req = s->req;
            if (req->data.arch != AUDIT_ARCH_X86_64) {
                handle_unknown(s, req, t0);
                continue;
            }
            switch (req->data.nr) {
            case SYS_execve:
            case SYS_execveat:
                lg_handle_exec(s, req, t0);
                break;
            case SYS_connect:
            case SYS_sendto:
            case SYS_sendmsg:
            case SYS_sendmmsg:
                lg_handle_net(s, req, t0);
                break;
            case SYS_open:
            case SYS_openat:
            case SYS_creat:
            case __NR_openat2:
                lg_handle_open(s, req, t0);
                break;
            case SYS_rename:
            case SYS_renameat:
            case SYS_renameat2:
            case SYS_link:
            case SYS_linkat:
            case SYS_symlink:
            case SYS_symlinkat:
            case SYS_mkdir:
            case SYS_mkdirat:
            case SYS_mknod:
            case SYS_mknodat:
            case SYS_truncate:
                lg_handle_fsop(s, req, t0);
                break;
            default:
                handle_unknown(s, req, t0);
            }
            continue;
        }
        if (pfd[0].revents & (POLLHUP | POLLERR | POLLNVAL))
            break;  /* no task is left that can ever notify us */
    }
    LG_PHASES_DUMP();
    LG_OPEN_DUMP();
    /* Workers own their notifications: wait for them before returning. */
    pthread_mutex_lock(&s->ring_lock);
    while (s->workers > 0)
        pthread_cond_wait(&s->ring_cv, &s->ring_lock);
    pthread_mutex_unlock(&s->ring_lock);
    return rc;
}
