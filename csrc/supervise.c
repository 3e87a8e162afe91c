/* supervise.c: the seccomp user-notification decision loop (DESIGN §2, §4).
 *
 * One context (struct lg_sup) per supervised session holds everything the
 * loop mutates; there is no other mutable global state.  The loop thread is
 * the only reader of the listener.  Workers (blocking connects, verification
 * of racy execs) answer the notification they were handed and nothing else.
 *
 * This file: the context, the loop, answering the kernel.  Beside it, one concern
 * per file, each saying its job at its top (csrc/build.py lists them by concern):
 *   supervise_denial.c the denial line on the sandbox's stderr (escaped, with its fix)
 *   supervise_ring.c, supervise_pool.c, supervise_mem.c  the event ring and counters,
 *                      worker threads, reading a caller's memory
 *   supervise_creds.c, supervise_walk.c, supervise_root.c  the caller's credentials,
 *                      a walk wearing them, the session's root
 *   supervise_exec.c, supervise_net.c, supervise_open.c, supervise_fsop.c  the
 *                      handlers (supervise_exec.h etc.: each handler's parts)
 *   judge_exec.c, judge_shell.c, judge_path.c, glob.c  the decisions over the
 *                      compiled tables (shared with `explain`, sandbox/policy/compiled.py)
 *   supervise_bench.c  where a decision's time goes, compiled in only for the
 *                      benches' --phases (-DLG_BENCH_PHASES, supervise_bench.h)
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

#include "kernel_compat.h"
#include "supervise_bench.h"
#include "supervise_int.h"
#include "supervise_open_bench.h"

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
