/* supervise_exec.c: execve/execveat decisions (DESIGN §2 exec row, §3 commands).
 *
 * Fast path (the common case): the caller is single-threaded, does not share
 * its mm with its parent (vfork), and the filename, the argv array and every
 * argv string lie in private anonymous memory.  Then nothing but the caller
 * itself can change those bytes, and the caller is blocked in the syscall:
 * what we read is what the kernel will copy.  We answer CONTINUE.
 *
 * Slow path (racy): another task could rewrite the strings between our read
 * and the kernel's copy (measured: 143 of 300 races won against a naive
 * check).  A worker seizes the caller with PTRACE_O_TRACEEXEC, lets the exec
 * proceed, and at PTRACE_EVENT_EXEC, before the new image executes a single
 * instruction, compares /proc/PID/cmdline with the argv we judged and
 * /proc/PID/exe with the file we judged (for a #! script: its interpreter,
 * and the script path in cmdline).  A mismatch is killed with SIGKILL and
 * recorded as exec-race.  Assumptions this rests on (launcher's filter):
 * clone() with CLONE_VM but without CLONE_THREAD or CLONE_VFORK, and clone3,
 * are refused, so an mm is shared only by a thread group and a vfork parent;
 * ptrace/process_vm_writev are refused and other processes' /proc/PID/mem is
 * outside the Landlock grants.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>

#include "kernel_compat.h"
#include "supervise_bench.h"
#include "supervise_int.h"

#ifndef PTRACE_EVENT_STOP
#define PTRACE_EVENT_STOP 128
#endif

#define LG_FNAME_MAX 4096

/* ---- admitted processes ---------------------------------------------------- */

/* The first slot of pid's probe: the 256 pids of an aligned block share one 4 KiB
 * page of the table (16-byte entries), and the blocks are spread over the table's
 * pages (a multiplicative hash of the block number).  The table's pages stay zero
 * pages until written (issue 19: a session holds what it uses), and a session's
 * processes mostly have nearby pids: with every pid hashed on its own, each new
 * admission wrote a fresh page, a page fault of ~4.5 us in the bookkeeping after
 * almost every exec of a 200-exec session (median, bench/exec_ab.py --phases); now
 * a page or two per 256 pids. */
_Static_assert(sizeof(struct lg_admit) * 256 == 4096, "256 admissions per page");
_Static_assert(LG_ADMIT_CAP % 256 == 0, "the admission table is whole pages");

static unsigned admit_slot(int pid)
{
    unsigned p = (unsigned)pid;
    unsigned pages = LG_ADMIT_CAP / 256;
    unsigned block = ((p >> 8) * 2654435761u) % pages;
    return (block * 256 + (p & 255u)) % LG_ADMIT_CAP;
}

static struct lg_admit *admit_find(struct lg_sup *s, int pid)
{
    unsigned idx = admit_slot(pid);
    for (unsigned probe = 0; probe < LG_ADMIT_CAP; probe++) {
        struct lg_admit *a = &s->admit[(idx + probe) % LG_ADMIT_CAP];
        if (a->pid == pid || a->pid == 0)
            return a;
    }
    return NULL;
}

/* Drop entries whose process is gone (or whose pid was reused), then rehash. */
static void admit_purge(struct lg_sup *s)
{
    struct lg_admit *old = s->admit;
    struct lg_admit *fresh = calloc(LG_ADMIT_CAP, sizeof *fresh);
    if (!fresh)
        return;
    lg_prefault(fresh, LG_ADMIT_CAP * sizeof *fresh);
    s->admit = fresh;
    s->admit_count = 0;
    for (unsigned i = 0; i < LG_ADMIT_CAP; i++) {
        if (old[i].pid == 0)
            continue;
        int ppid;
        unsigned long long st;
        if (lg_proc_ident(s, old[i].pid, &ppid, &st) < 0 || st != old[i].start)
            continue;
        struct lg_admit *a = admit_find(s, old[i].pid);
        if (a) {
            *a = old[i];
            s->admit_count++;
        }
    }
    free(old);
}

static void admit(struct lg_sup *s, int pid, unsigned long long start, int inherit)
{
    if (s->admit_count >= LG_ADMIT_CAP * 3 / 4)
        admit_purge(s);
    struct lg_admit *a = admit_find(s, pid);
    if (!a)
        return;  /* full of live processes: descendants fall to their own rules (fail closed) */
    if (a->pid == 0)
        s->admit_count++;
    a->pid = pid;
    a->start = start;
    a->inherit = inherit;
}

/* Is pid (with its start time) admitted?  Returns 1 admitted with inherit,
 * 0 admitted without inherit, -1 not admitted. */
static int admitted(struct lg_sup *s, int pid, unsigned long long start)
{
    struct lg_admit *a = admit_find(s, pid);
    if (!a || a->pid != pid || a->start != start)
        return -1;
    return a->inherit ? 1 : 0;
}

/* Inheritance (DESIGN §3): the nearest admitted process among the caller and
 * its ancestors decides; one admitted with inherit lets the exec run. */
static int inherited(struct lg_sup *s, int pid, int ppid, unsigned long long start)
{
    int r = admitted(s, pid, start);
    if (r >= 0)
        return r;
    int cur = ppid;
    for (int depth = 0; depth < 64 && cur > 1; depth++) {
        int pp;
        unsigned long long st;
        if (lg_proc_ident(s, cur, &pp, &st) < 0)
            return 0;
        r = admitted(s, cur, st);
        if (r >= 0)
            return r;
        cur = pp;
    }
    return 0;
}

/* ---- slow path: verify the new image at PTRACE_EVENT_EXEC ----------------- */

struct exec_job {
    struct lg_sup *s;
    unsigned long long id;
    int tid;
    unsigned long long dev, ino;  /* the image judged (lg_exec_object) */
    char *expect;             /* its /proc/PID/cmdline, as judged */
    size_t expect_len;
    struct lg_event ev;       /* prefilled allow event */
};

/* What /proc/PID/exe and /proc/PID/cmdline must be after the exec. */
struct expect {
    dev_t dev;
    ino_t ino;
    char *cmdline;
    size_t len;
};

static int verify_image(int pid, const struct expect *x)
{
    char path[64];
    struct stat st;
    snprintf(path, sizeof path, "/proc/%d/exe", pid);
    if (stat(path, &st) < 0 || st.st_dev != x->dev || st.st_ino != x->ino)
        return 0;
    snprintf(path, sizeof path, "/proc/%d/cmdline", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    size_t cap = x->len + 2, pos = 0;
    char *buf = malloc(cap);
    if (!buf) {
        close(fd);
        return 0;
    }
    for (;;) {
        ssize_t n = read(fd, buf + pos, cap - pos);
        if (n <= 0)
            break;
        pos += (size_t)n;
        if (pos == cap)
            break;  /* longer than expected: mismatch */
    }
    close(fd);
    int ok = pos == x->len && memcmp(buf, x->cmdline, x->len) == 0;
    free(buf);
    return ok;
}

static void *exec_worker(void *arg)
{
    struct exec_job *j = arg;
    struct lg_sup *s = j->s;
    /* What runs must be what lg_exec_object judged: the file (or the last
     * interpreter) it resolved, with the command line it judged. */
    struct expect x = {(dev_t)j->dev, (ino_t)j->ino, j->expect, j->expect_len};
    int have = j->expect != NULL;
    /* Seize before the exec can happen: the caller is blocked in the
     * notification (killable only, WAIT_KILLABLE_RECV), so it cannot run.
     * PTRACE_O_EXITKILL: once answered CONTINUE the exec is committed, and
     * only this worker can verify it; if the worker dies with the supervisor
     * the kernel kills the caller instead of detaching it, so an unverified
     * image never runs and nothing stays stopped (test_robustness.py holds an
     * exec here and SIGKILLs the supervisor; without the flag the image ran). */
    if (ptrace(PTRACE_SEIZE, j->tid, 0, (void *)(long)(PTRACE_O_TRACEEXEC | PTRACE_O_EXITKILL)) < 0) {
        int e = errno;
        j->ev.result = LG_EFFECT_DENY;
        j->ev.err = EACCES;
        j->ev.flags |= LG_EV_FAILCLOSED;
        snprintf(j->ev.detail, sizeof j->ev.detail, "ptrace(PTRACE_SEIZE): %s", strerror(e));
        j->ev.t_resp_ns = lg_now_ns();
        lg_push_event(s, &j->ev);
        lg_send_resp(s, j->id, 0, EACCES, 0);
        goto out;
    }
    /* Makes the caller stop on its way back to user space if the exec fails,
     * so that this worker always gets a stop and never waits forever. */
    ptrace(PTRACE_INTERRUPT, j->tid, 0, 0);
    if (lg_send_resp(s, j->id, 0, 0, 1) < 0) {
        ptrace(PTRACE_DETACH, j->tid, 0, 0);
        goto out;
    }
    int pushed = 0;
    for (;;) {
        int st;
        pid_t w = waitpid(-1, &st, __WALL | __WNOTHREAD);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (WIFEXITED(st) || WIFSIGNALED(st)) {
            if (!pushed) {
                j->ev.t_resp_ns = lg_now_ns();
                lg_push_event(s, &j->ev);
            }
            break;
        }
        if (!WIFSTOPPED(st))
            continue;
        int event = (unsigned)st >> 16;
        if (event == PTRACE_EVENT_EXEC && !pushed) {
            int ok = have && verify_image(w, &x);
            j->ev.t_resp_ns = lg_now_ns();
            if (!ok) {
                j->ev.result = LG_EFFECT_DENY;
                j->ev.err = EACCES;
                j->ev.flags |= LG_EV_EXEC_RACE;
                lg_count(s, LG_COUNT_EXEC_RACE);
                kill(w, SIGKILL);  /* the image that ran is not the one judged */
                lg_push_event(s, &j->ev);
                pushed = 1;
                ptrace(PTRACE_CONT, w, 0, 0);
                continue;  /* collect its death, then we are done */
            }
            lg_push_event(s, &j->ev);
            pushed = 1;
            ptrace(PTRACE_DETACH, w, 0, 0);
            break;
        }
        if (pushed && j->ev.result == LG_EFFECT_DENY) {
            ptrace(PTRACE_CONT, w, 0, 0);
            continue;
        }
        /* The exec failed (EVENT_STOP from our INTERRUPT) or a signal stop:
         * nothing new runs; let it go, re-injecting a signal it was to get. */
        int sig = event == 0 ? WSTOPSIG(st) : 0;
        if (!pushed) {
            j->ev.t_resp_ns = lg_now_ns();
            lg_push_event(s, &j->ev);
            pushed = 1;
        }
        ptrace(PTRACE_DETACH, w, 0, (void *)(long)sig);
        break;
    }
out:
    free(j->expect);
    free(j);
    lg_worker_done(s);
    return NULL;
}

/* ---- the handler ------------------------------------------------------------ */

/* argv strings usually sit back to back in one buffer ("a\0b\0c\0"): reading
 * each with its own process_vm_readv of up to a page made a 7,000-argument xargs
 * exec cost ~3 ms (one syscall and a page copy per argument).  This keeps the
 * last chunk read from the caller and serves the next string from it when it
 * starts there; anything else goes through lg_read_str.  A chunk ends at a page
 * end; once an exec's strings have needed a second chunk (they span pages) the
 * next ones take up to LG_STRC_PAGES pages in one call, each page its own
 * remote element: the kernel stops at the first unmapped one and says how many
 * bytes it copied, so nothing is read that a page-by-page read would not have.
 * The bytes are the caller's memory as read once, exactly as before. */
static int read_str_cached(int pid, struct lg_str_cache *c, unsigned long long addr, char *buf,
                           size_t cap, size_t *outlen)
{
    if (!(c->n > 0 && addr >= c->base && addr < c->base + c->n)) {
        size_t page_left = 4096 - (size_t)(addr & 4095);
        struct iovec remote[LG_STRC_PAGES];
        int pages = c->misses > 0 ? LG_STRC_PAGES : 1;
        size_t total = 0;
        for (int i = 0; i < pages; i++) {
            size_t len = i == 0 ? page_left : 4096;
            remote[i].iov_base = (void *)(uintptr_t)(addr + total);
            remote[i].iov_len = len;
            total += len;
        }
        struct iovec local = {c->data, total};
        c->misses++;
        ssize_t n = process_vm_readv(pid, &local, 1, remote, (unsigned long)pages, 0);
        if (n <= 0) {
            c->n = 0;
            return n < 0 ? -errno : -EFAULT;
        }
        c->base = addr;
        c->n = (size_t)n;
    }
    size_t off = (size_t)(addr - c->base);
    size_t avail = c->n - off;
    const char *nul = memchr(c->data + off, '\0', avail);
    if (nul) {
        size_t l = (size_t)(nul - (c->data + off));
        if (l + 1 > cap)
            return -E2BIG;
        memcpy(buf, c->data + off, l + 1);
        *outlen = l;
        return 0;
    }
    /* The string runs past the cached chunk: the page-by-page reader takes it. */
    c->n = 0;
    return lg_read_str(pid, addr, buf, cap, outlen);
}

static void finish(struct lg_sup *s, unsigned long long id, struct lg_event *ev, const char *shown)
{
    ev->t_resp_ns = lg_now_ns();
    if (s->simulate) {
        ev->flags |= LG_EV_SIMULATED;
        lg_push_event(s, ev);
        lg_send_resp(s, id, 0, 0, 1);
        return;
    }
    if (ev->result == LG_EFFECT_DENY && !(ev->flags & LG_EV_MISSING))
        lg_report_denial(s, "shell_exec", shown, ev->rule);
    lg_push_event(s, ev);
    lg_send_resp(s, id, 0, ev->err, ev->result == LG_EFFECT_ALLOW);
}

/* What the decision leaves for after its answer (lg_handle_exec): nothing in it
 * changes the answer, and the caller no longer waits for it. */
struct exec_after {
    int pidfd;            /* the caller's, or -1 */
    struct lg_ident who;  /* the caller, when have_stat */
    int have_stat;
    int admit;            /* record the caller as admitted (an allowed exec) */
    int pid, inherit;
    int maps_fd;          /* lg_ranges_racy's, or -1 */
    int again;            /* answered the kernel's ENOENT: the caller tries its next name */
};

static void decide(struct lg_sup *s, const struct seccomp_notif *req, unsigned long long t0,
                   struct exec_after *after)
{
    int tid = (int)req->pid;
    int is_at = req->data.nr == SYS_execveat;
    unsigned long long fptr = is_at ? req->data.args[1] : req->data.args[0];
    unsigned long long aptr = is_at ? req->data.args[2] : req->data.args[1];
    int dirfd = is_at ? (int)req->data.args[0] : AT_FDCWD;
    int atflags = is_at ? (int)req->data.args[4] : 0;
    char fname[LG_FNAME_MAX];
    char line[LG_TARGET_MAX];
    size_t flen = 0;
    /* remote addresses and lengths of what the kernel will copy */
    unsigned long long raddr[LG_RANGES];
    size_t rlen[LG_RANGES];
    int nr = 0;
    int ranges_overflow = 0;

    struct lg_event ev;
    memset(&ev, 0, sizeof ev);
    ev.t_recv_ns = t0;
    ev.pid = tid;
    ev.tid = tid;
    ev.action = LG_ACT_EXEC;
    ev.syscall_nr = req->data.nr;
    ev.rule = -1;
    lg_count(s, LG_COUNT_EXEC);

    /* One process_vm_readv for the filename's page chunk (into the string
     * cache: argv[0] is often the same string, or on the same page) and the
     * argv array's first page chunk; anything it did not bring is read below
     * as before.  The kernel copies whole remote iovecs or stops: n says which. */
    unsigned long long ptrs[64];
    size_t first_cnt = 0;
    s->strc.n = 0;
    s->strc.misses = 0;
    {
        size_t fleft = 4096 - (size_t)(fptr & 4095);
        size_t aleft = 4096 - (size_t)(aptr & 4095);
        size_t acnt = aleft / 8 < 64 ? aleft / 8 : 64;
        if (acnt == 0)
            acnt = 1;
        struct iovec local[2] = {{s->strc.data, fleft}, {ptrs, acnt * 8}};
        struct iovec remote[2] = {{(void *)(uintptr_t)fptr, fleft},
                                  {(void *)(uintptr_t)aptr, acnt * 8}};
        ssize_t got = process_vm_readv(tid, local, 1 + (aptr != 0), remote, 1 + (aptr != 0), 0);
        if (got >= (ssize_t)fleft) {
            s->strc.base = fptr;
            s->strc.n = fleft;
        }
        if (aptr != 0 && got == (ssize_t)(fleft + acnt * 8))
            first_cnt = acnt;
    }
    int rc = read_str_cached(tid, &s->strc, fptr, fname, sizeof fname, &flen);
    int argc = 0;
    size_t pos = 0;
    int fail = rc;
    if (rc == 0)
        lg_add_range(raddr, rlen, &nr, &ranges_overflow, fptr, flen + 1);
    /* argv: pointers until NULL, read without crossing a page in one call */
    unsigned long long p = aptr;
    while (fail == 0 && aptr != 0) {
        size_t page_left = 4096 - (size_t)(p & 4095);
        size_t cnt = page_left / 8 < 64 ? page_left / 8 : 64;
        if (cnt == 0)
            cnt = 1;
        if (p == aptr && first_cnt == cnt)
            first_cnt = 0;  /* the first chunk came with the filename */
        else
            fail = lg_read_mem(tid, p, ptrs, cnt * 8);
        if (fail)
            break;
        lg_add_range(raddr, rlen, &nr, &ranges_overflow, p, cnt * 8);
        size_t k;
        for (k = 0; k < cnt; k++) {
            if (ptrs[k] == 0)
                break;
            if (argc >= s->judge->argv.cap) {
                fail = -E2BIG;
                break;
            }
            size_t l = 0;
            fail = read_str_cached(tid, &s->strc, ptrs[k], s->judge->cmd + pos, LG_CMD_MAX - pos, &l);
            if (fail)
                break;
            s->judge->argv.w[argc] = s->judge->cmd + pos;
            s->judge->argv.len[argc] = (int)l;
            argc++;
            lg_add_range(raddr, rlen, &nr, &ranges_overflow, ptrs[k], l + 1);
            pos += l + 1;
        }
        if (fail || k < cnt)
            break;
        p += cnt * 8;
    }
    s->judge->argv.n = argc;
    LG_PHASE(LG_PH_READ);
    /* The caller's pidfd, opened (or its kept one asked) before the check
     * below: what is asked through it afterwards is about the caller
     * (supervise_caller.c). */
    after->pidfd = lg_caller_pidfd(s, tid, &after->who);
    LG_PHASE(LG_PH_PIDFD);
    /* Nothing read above is trusted unless the notification is still ours. */
    if (!lg_id_valid(s, req->id)) {
        lg_count(s, LG_COUNT_GONE);
        return;
    }
    /* The session's root (supervise_caller.c), taken at the first notification
     * that needs one; lg_exec_object resolves absolute names from it.  When it
     * cannot be had, absolute names fail closed there. */
    (void)lg_session_root(s, tid, req->id);
    LG_PHASE(LG_PH_VALID);
    struct lg_ident *who = &after->who;
    int have_stat = lg_caller_ident(s, tid, after->pidfd, who) == 0;
    after->have_stat = have_stat;
    if (who->kept)
        after->pidfd = -1;  /* borrowed, and everything it tells is in who now */
    LG_PHASE(LG_PH_IDENT);
    if (fail) {
        /* unreadable (the kernel would say EFAULT) or beyond our bounds: fail closed */
        ev.result = LG_EFFECT_DENY;
        ev.err = fail == -E2BIG ? E2BIG : EFAULT;
        ev.flags |= LG_EV_FAILCLOSED;
        lg_copy_target(ev.target, sizeof ev.target, rc == 0 ? fname : "(unreadable)", &ev.flags);
        ev.target_len = (int)strlen(ev.target);
        ev.argc = 1;
        finish(s, req->id, &ev, ev.target);
        return;
    }
    fname[flen] = '\0';

    /* the target: argv NUL-separated (Python joins it, argv[0] as its
     * basename, for display); line: the joined form for the stderr report */
    {
        size_t tp = 0, lp = 0;
        for (int i = 0; i < argc; i++) {
            int l = s->judge->argv.len[i];
            const char *w = s->judge->argv.w[i];
            size_t room = sizeof ev.target - tp;
            if ((size_t)l + 1 > room) {
                ev.flags |= LG_EV_TRUNCATED;
                break;
            }
            memcpy(ev.target + tp, w, (size_t)l);
            tp += (size_t)l;
            ev.target[tp++] = '\0';
            ev.argc = i + 1;
            int bl = l;
            const char *b = i == 0 ? lg_basename(w, l, &bl) : w;
            if (lp + (size_t)bl + 2 < sizeof line) {
                if (i > 0)
                    line[lp++] = ' ';
                memcpy(line + lp, b, (size_t)bl);
                lp += (size_t)bl;
            }
        }
        line[lp] = '\0';
        ev.target_len = (int)tp;
        lg_copy_target(ev.detail, sizeof ev.detail, fname, &ev.flags);
    }

    /* fexecve / memfd: execveat(fd, "", AT_EMPTY_PATH) runs a file Landlock
     * never saw by path (DESIGN §2): refused. */
    if (is_at && ((atflags & AT_EMPTY_PATH) || fname[0] == '\0')) {
        ev.result = LG_EFFECT_DENY;
        ev.err = EACCES;
        ev.rule = s->t.exec_default_rule;
        finish(s, req->id, &ev, line);
        return;
    }

    struct lg_verdict v;
    lg_judge_words(s->judge, &s->t, fname, &v);
    ev.flags |= v.flags;
    LG_PHASE(LG_PH_JUDGE);

    int ppid = have_stat ? who->ppid : 0;
    int pid = have_stat ? who->tgid : tid;
    ev.pid = pid;

    /* The program that really runs: the named file's real path and, for a
     * script, its #! interpreters, each judged; a deny among them wins. */
    struct lg_exec_obj *obj = &s->obj;
    const char *shown = line;
    int orc = lg_exec_object(s, tid, pid, dirfd, fname, obj);
    if (orc == 0) {
        if (strcmp(obj->real, fname) != 0 || obj->scripts > 0) {
            /* the audit entry: the name as spelled, the file it reached, and a
             * script's interpreter ("name -> real (#!interp)") */
            char d[LG_FNAME_MAX + sizeof obj->real + LG_BINPRM_BUF + 16];
            int n = snprintf(d, sizeof d, "%s", fname);
            if (n >= 0 && strcmp(obj->real, fname) != 0)
                n += snprintf(d + n, sizeof d - (size_t)n, " -> %s", obj->real);
            if (n >= 0 && obj->scripts > 0)
                snprintf(d + n, sizeof d - (size_t)n, " (#!%s)", obj->heads[0] + 2);
            lg_copy_target(ev.detail, sizeof ev.detail, d, &ev.flags);
        }
        if (obj->v.effect == LG_EFFECT_DENY && v.effect != LG_EFFECT_DENY) {
            v = obj->v;
            ev.flags |= LG_EV_EXECUTED | obj->v.flags;
            shown = obj->shown;
        }
    } else if (orc != -ENOENT && orc != -ENOTDIR) {
        /* the object cannot be judged (unreadable head, a name too long,
         * ELOOP...): nothing runs that was not judged */
        ev.result = LG_EFFECT_DENY;
        ev.err = orc == -ENOMEM ? ENOMEM : -orc;
        ev.flags |= LG_EV_FAILCLOSED;
        ev.rule = -1;
        finish(s, req->id, &ev, line);
        return;
    }

    int is_root = !s->root_seen && pid == s->root_pid;
    int inherit_admit = 0;
    if (v.effect == LG_EFFECT_DENY) {
        ev.result = LG_EFFECT_DENY;
        ev.rule = v.rule;
    } else if (v.effect == LG_EFFECT_ALLOW) {
        ev.result = LG_EFFECT_ALLOW;
        ev.rule = v.rule;
        inherit_admit = v.inherit;
    } else if (is_root) {
        /* the user's act of launching it allows it, and its descendants
         * inherit that allow (a rule matching it with inherit: false is
         * taken above, and a deny always wins) */
        ev.result = LG_EFFECT_ALLOW;
        ev.rule = -1;
        inherit_admit = 1;
    } else if (have_stat && lg_caller_id(after->pidfd, who) == 0 &&
               inherited(s, pid, ppid, who->id) == 1) {
        ev.result = LG_EFFECT_ALLOW;
        ev.flags |= LG_EV_INHERITED;
        inherit_admit = 1;
    } else {
        ev.result = s->t.exec_default_effect == LG_EFFECT_ALLOW ? LG_EFFECT_ALLOW : LG_EFFECT_DENY;
        ev.rule = s->t.exec_default_rule;
        inherit_admit = s->t.exec_default_effect == LG_EFFECT_ALLOW;
    }
    if (is_root) {
        ev.flags |= LG_EV_ROOT;
        if (ev.result == LG_EFFECT_ALLOW)
            s->root_seen = 1;
    }
    if (ev.result == LG_EFFECT_DENY) {
        ev.err = EACCES;
        /* A shell tries each $PATH entry: for a file that does not exist the
         * kernel's answer (ENOENT) is kept, so the search goes on and no
         * denial line is printed for it.  Says nothing about denied files. */
        int missing = orc == -ENOENT || orc == -ENOTDIR ? -orc : 0;
        if (missing) {
            ev.err = missing;
            ev.flags |= LG_EV_MISSING;
            after->again = 1;
        }
        finish(s, req->id, &ev, shown);
        return;
    }
    /* Recorded after the answer (lg_handle_exec), before the next notification
     * is received: the caller's descendants can only ask once its exec is done. */
    after->admit = have_stat;
    after->pid = pid;
    after->inherit = inherit_admit;
    if (s->simulate) {
        finish(s, req->id, &ev, line);
        return;
    }
    /* A file that does not exist (execvp tries every $PATH entry): the
     * kernel's own ENOENT at once.  Nothing was judged by its object, so
     * nothing may run on this answer: if the name appears meanwhile (a
     * symlink to a denied program) the caller just tries again. */
    if (orc == -ENOENT || orc == -ENOTDIR) {
        ev.err = -orc;
        ev.flags |= LG_EV_MISSING;
        after->again = 1;
        ev.t_resp_ns = lg_now_ns();
        lg_push_event(s, &ev);
        lg_send_resp(s, req->id, 0, -orc, 0);
        return;
    }

    /* Allowed: can anything else change what the kernel is about to copy,
     * or which file its path walk finds?  A symlink on the way, a #! line, a
     * plain file renamed over, or the cwd a relative name starts from (moved
     * by a CLONE_FS sibling) can change between our walk and the kernel's,
     * unless every name is absolute and out of the sandbox's writable trees. */
    int racy = !have_stat || !lg_exec_obj_stable(s, tid, obj);
    if (!racy && lg_caller_threads(tid, who) != 1)
        racy = 1;  /* another thread could rewrite what the kernel will copy */
    LG_PHASE(LG_PH_THREADS);
    if (!racy && lg_vfork_sharers_racy(tid, ppid))
        racy = 1;  /* vfork child whose parent's other threads share these pages */
    LG_PHASE(LG_PH_VFORK);
    if (!racy && ranges_overflow)
        racy = 1;
    if (!racy && lg_ranges_racy(tid, raddr, rlen, nr, &after->maps_fd))
        racy = 1;
    LG_PHASE(LG_PH_RACY);
    if (!racy) {
        finish(s, req->id, &ev, line);
        LG_PHASE(LG_PH_ANSWER);
        /* After the answer, once per name: the next exec of it skips the walks
         * (supervise_exec_head.c) */
        if (obj->stable == 1)
            lg_exec_name_keep(s, tid, s->sess_root_set ? s->sess_root_fd : -1, obj);
        return;
    }
    lg_count(s, LG_COUNT_SLOWPATH);
    struct exec_job *j = calloc(1, sizeof *j);
    if (!j || (!obj->expect && lg_exec_expect(obj, &s->judge->argv) < 0)) {
        free(j);
        ev.result = LG_EFFECT_DENY;
        ev.err = ENOMEM;
        ev.flags |= LG_EV_FAILCLOSED;
        finish(s, req->id, &ev, line);
        return;
    }
    j->s = s;
    j->id = req->id;
    j->tid = tid;
    j->dev = obj->dev;
    j->ino = obj->ino;
    j->expect = obj->expect;  /* the worker owns it now */
    j->expect_len = obj->expect_len;
    obj->expect = NULL;
    j->ev = ev;
    j->ev.flags |= LG_EV_VERIFIED;
    int wrc = lg_spawn_worker(s, exec_worker, j);
    if (wrc < 0) {
        free(j->expect);
        free(j);
        ev.result = LG_EFFECT_DENY;
        ev.err = EAGAIN;
        ev.flags |= LG_EV_FAILCLOSED;
        finish(s, req->id, &ev, line);
    }
}

void lg_handle_exec(struct lg_sup *s, const struct seccomp_notif *req, unsigned long long t0)
{
    struct exec_after after = {.pidfd = -1, .maps_fd = -1};
    struct lg_exec_obj *obj = &s->obj;
    obj->fd_obj = -1;
    obj->expect = NULL;
    decide(s, req, t0, &after);
    /* The answer is sent.  What is left is bookkeeping the decision did not
     * need (measured: ~7 us of fstat and closes that the caller waited for).
     * The admission's identity comes from the pidfd opened before ID_VALID, so
     * it names the caller even if it has exited and its pid been reused since. */
    if (after.admit && lg_caller_id(after.pidfd, &after.who) == 0)
        admit(s, after.pid, after.who.id, after.inherit);
    /* After the kernel's ENOENT the caller tries its next $PATH entry: its pidfd
     * is kept for that notification (supervise_caller.c).  Otherwise it is closed:
     * a fork+exec caller rarely asks again, and keeping every caller's pidfd showed
     * no gain there (bench/exec_ab.py: +14 us per exec, within the +12 us an A/A
     * run of one build against itself showed), only pidfds held longer. */
    lg_caller_done(s, (int)req->pid, after.pidfd, &after.who, after.have_stat && after.again);
    if (after.maps_fd >= 0)
        close(after.maps_fd);
    lg_exec_obj_release(obj);
    LG_PHASE(LG_PH_AFTER);
}
