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
#include "supervise_int.h"

#ifndef PTRACE_EVENT_STOP
#define PTRACE_EVENT_STOP 128
#endif

#define LG_FNAME_MAX 4096
#define LG_RANGES 64  /* memory ranges of one exec checked for sharing */

/* /proc/PID/stat: ppid (field 4), num_threads (20), starttime (22).
 * comm (field 2) may hold spaces and ')': parse after the last ')'. */
int lg_proc_stat(int pid, int *ppid, int *threads, unsigned long long *start)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    int e = errno;
    close(fd);
    if (n <= 0)
        return n < 0 ? -e : -EIO;
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    if (!p)
        return -EIO;
    p++;
    /* p points at " S ppid ..." : field 3 is state */
    int field = 2;
    unsigned long long vals[23] = {0};
    char *save = NULL;
    for (char *tok = strtok_r(p, " ", &save); tok && field < 22; tok = strtok_r(NULL, " ", &save)) {
        field++;
        if (field >= 4)
            vals[field] = strtoull(tok, NULL, 10);
    }
    if (field < 22)
        return -EIO;
    *ppid = (int)vals[4];
    *threads = (int)vals[20];
    *start = vals[22];
    return 0;
}

static int proc_tgid(int tid)
{
    char path[64], buf[4096];
    snprintf(path, sizeof path, "/proc/%d/status", tid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return -EIO;
    buf[n] = '\0';
    char *t = strstr(buf, "\nTgid:");
    if (!t)
        return -EIO;
    return (int)strtol(t + 6, NULL, 10);
}

/* ---- admitted processes ---------------------------------------------------- */

static struct lg_admit *admit_find(struct lg_sup *s, int pid)
{
    unsigned idx = ((unsigned)pid * 2654435761u) % LG_ADMIT_CAP;
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
        int ppid, thr;
        unsigned long long st;
        if (lg_proc_stat(old[i].pid, &ppid, &thr, &st) < 0 || st != old[i].start)
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
        int pp, thr;
        unsigned long long st;
        if (lg_proc_stat(cur, &pp, &thr, &st) < 0)
            return 0;
        r = admitted(s, cur, st);
        if (r >= 0)
            return r;
        cur = pp;
    }
    return 0;
}

/* ---- racy or not ------------------------------------------------------------ */

/* 1 if some byte range may be changed by another task: the VMA holding it is
 * shared or file-backed.  6.11 PROCMAP_QUERY; on error, assume racy. */
static int ranges_racy(int tid, const unsigned long long *addr, const size_t *len, int n)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/maps", tid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 1;
    unsigned long long lo = 1, hi = 0;  /* last VMA found: [lo, hi) */
    int racy = 0;
    for (int i = 0; i < n && !racy; i++) {
        unsigned long long a = addr[i], e = addr[i] + (len[i] ? len[i] : 1);
        if (a >= lo && e <= hi)
            continue;
        struct procmap_query q;
        memset(&q, 0, sizeof q);
        q.size = sizeof q;
        q.query_addr = a;
        if (ioctl(fd, PROCMAP_QUERY, &q) < 0 || q.vma_start > a) {
            racy = 1;
            break;
        }
        if ((q.vma_flags & PROCMAP_QUERY_VMA_SHARED) || q.inode != 0 || e > q.vma_end)
            racy = 1;
        lo = q.vma_start;
        hi = q.vma_end;
    }
    close(fd);
    return racy;
}

/* The vfork case: the caller shares its mm with its parent.  That is safe
 * only if every other task of that mm is blocked: a single-threaded parent
 * that is itself inside vfork() (or clone with CLONE_VFORK), read from
 * /proc/PID/syscall, and so on up a chain of nested vforks.  Returns 1 if
 * some sharer may be running (racy). */
static int vfork_sharers_racy(int tid, int ppid)
{
    int child = tid, parent = ppid;
    for (int depth = 0; depth < 8; depth++) {
        if (parent <= 0 || syscall(SYS_kcmp, child, parent, KCMP_VM, 0, 0) != 0)
            return 0;  /* no (further) sharer up the chain */
        int pp, threads;
        unsigned long long st;
        if (lg_proc_stat(parent, &pp, &threads, &st) < 0 || threads != 1)
            return 1;
        char path[64], buf[256];
        snprintf(path, sizeof path, "/proc/%d/syscall", parent);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            return 1;
        ssize_t n = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (n <= 0)
            return 1;
        buf[n] = '\0';
        char *end;
        long nr = strtol(buf, &end, 10);
        unsigned long long flags = strtoull(end, NULL, 16);
        int in_vfork = nr == SYS_vfork || (nr == SYS_clone && (flags & CLONE_VFORK));
        if (!in_vfork)
            return 1;  /* a CLONE_VM sharer that is not waiting for us */
        child = parent;
        parent = pp;
    }
    return 1;
}

/* ---- slow path: verify the new image at PTRACE_EVENT_EXEC ----------------- */

struct exec_job {
    struct lg_sup *s;
    unsigned long long id;
    int tid;
    int dirfd;                /* execveat dirfd (AT_FDCWD for execve) */
    char fname[LG_FNAME_MAX];
    char *argv;               /* argv bytes as judged, each NUL-terminated */
    size_t argvlen;
    int argc;
    struct lg_event ev;       /* prefilled allow event */
};

/* Spell path as the caller sees it (its root, and its cwd or dirfd) through
 * /proc/TID.  0, or -ENAMETOOLONG when it does not fit. */
static int path_in_view(int tid, int dirfd, const char *path, char *full, size_t cap)
{
    int n;
    if (path[0] == '/')
        n = snprintf(full, cap, "/proc/%d/root%s", tid, path);
    else if (dirfd == AT_FDCWD)
        n = snprintf(full, cap, "/proc/%d/cwd/%s", tid, path);
    else
        n = snprintf(full, cap, "/proc/%d/fd/%d/%s", tid, dirfd, path);
    return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

/* Open path as the caller would see it. */
static int open_in_view(int tid, int dirfd, const char *path)
{
    char full[LG_FNAME_MAX + 64];
    int rc = path_in_view(tid, dirfd, path, full, sizeof full);
    if (rc < 0)
        return rc;
    int fd = open(full, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    return fd < 0 ? -errno : fd;
}

/* ENOENT / ENOTDIR if path does not exist in the caller's view, else 0. */
static int missing_in_view(int tid, int dirfd, const char *path)
{
    char full[LG_FNAME_MAX + 64];
    if (path_in_view(tid, dirfd, path, full, sizeof full) < 0)
        return 0;
    struct stat st;
    if (stat(full, &st) == 0)
        return 0;
    return errno == ENOENT || errno == ENOTDIR ? errno : 0;
}

/* What /proc/PID/exe and /proc/PID/cmdline must be after the exec. */
struct expect {
    dev_t dev;
    ino_t ino;
    char *cmdline;
    size_t len;
};

static int build_expect(struct exec_job *j, struct expect *x)
{
    int fd = open_in_view(j->tid, j->dirfd, j->fname);
    if (fd < 0)
        return fd;
    struct stat st;
    char head[256];
    ssize_t n = 0;
    if (fstat(fd, &st) < 0) {
        close(fd);
        return -errno;
    }
    n = pread(fd, head, sizeof head - 1, 0);
    close(fd);
    x->cmdline = malloc(j->argvlen + 2 * sizeof head + LG_FNAME_MAX + 8);
    if (!x->cmdline)
        return -ENOMEM;
    if (n > 2 && head[0] == '#' && head[1] == '!') {
        /* binfmt_script: cmdline = interp [optarg] filename argv[1..] */
        head[n] = '\0';
        char *nl = strchr(head, '\n');
        if (nl)
            *nl = '\0';
        char *p = head + 2;
        while (*p == ' ' || *p == '\t')
            p++;
        char *interp = p;
        while (*p && *p != ' ' && *p != '\t')
            p++;
        char *arg = NULL;
        if (*p) {
            *p++ = '\0';
            while (*p == ' ' || *p == '\t')
                p++;
            char *end = p + strlen(p);
            while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
                *--end = '\0';
            if (*p)
                arg = p;
        }
        int ifd = open_in_view(j->tid, AT_FDCWD, interp);
        if (ifd < 0)
            return ifd;
        if (fstat(ifd, &st) < 0) {
            close(ifd);
            return -errno;
        }
        close(ifd);
        size_t pos = 0;
        size_t l = strlen(interp) + 1;
        memcpy(x->cmdline + pos, interp, l);
        pos += l;
        if (arg) {
            l = strlen(arg) + 1;
            memcpy(x->cmdline + pos, arg, l);
            pos += l;
        }
        l = strlen(j->fname) + 1;
        memcpy(x->cmdline + pos, j->fname, l);
        pos += l;
        size_t a0 = j->argc > 0 ? strlen(j->argv) + 1 : 0;
        memcpy(x->cmdline + pos, j->argv + a0, j->argvlen - a0);
        pos += j->argvlen - a0;
        x->len = pos;
    } else if (j->argc == 0) {
        x->cmdline[0] = '\0';  /* 5.18+: an empty argv gets argv[0] = "" */
        x->len = 1;
    } else {
        memcpy(x->cmdline, j->argv, j->argvlen);
        x->len = j->argvlen;
    }
    x->dev = st.st_dev;
    x->ino = st.st_ino;
    return 0;
}

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
    struct expect x = {0, 0, NULL, 0};
    int have = build_expect(j, &x) == 0;
    /* Seize before the exec can happen: the caller is blocked in the
     * notification (killable only, WAIT_KILLABLE_RECV), so it cannot run. */
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
    free(x.cmdline);
    free(j->argv);
    free(j);
    lg_worker_done(s);
    return NULL;
}

/* ---- the handler ------------------------------------------------------------ */

/* argv strings usually sit back to back in one buffer ("a\0b\0c\0"): reading
 * each with its own process_vm_readv of up to a page made a 7,000-argument xargs
 * exec cost ~3 ms (one syscall and a page copy per argument).  This keeps the
 * last page-bounded chunk read from the caller and serves the next string from
 * it when it starts there; anything else goes through lg_read_str.  The bytes
 * are the caller's memory as read once, exactly as before. */
static int read_str_cached(int pid, struct lg_str_cache *c, unsigned long long addr, char *buf,
                           size_t cap, size_t *outlen)
{
    if (!(c->n > 0 && addr >= c->base && addr < c->base + c->n)) {
        size_t page_left = 4096 - (size_t)(addr & 4095);
        struct iovec local = {c->data, page_left};
        struct iovec remote = {(void *)(uintptr_t)addr, page_left};
        ssize_t n = process_vm_readv(pid, &local, 1, &remote, 1, 0);
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

void lg_handle_exec(struct lg_sup *s, const struct seccomp_notif *req, unsigned long long t0)
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

    int rc = lg_read_str(tid, fptr, fname, sizeof fname, &flen);
    int argc = 0;
    size_t pos = 0;
    int fail = rc;
    if (rc == 0) {
        raddr[nr] = fptr;
        rlen[nr++] = flen + 1;
    }
    /* argv: pointers until NULL, read without crossing a page in one call */
    s->strc.n = 0;
    unsigned long long p = aptr;
    while (fail == 0 && aptr != 0) {
        unsigned long long ptrs[64];
        size_t page_left = 4096 - (size_t)(p & 4095);
        size_t cnt = page_left / 8 < 64 ? page_left / 8 : 64;
        if (cnt == 0)
            cnt = 1;
        fail = lg_read_mem(tid, p, ptrs, cnt * 8);
        if (fail)
            break;
        if (nr < LG_RANGES) {
            raddr[nr] = p;
            rlen[nr++] = cnt * 8;
        } else {
            ranges_overflow = 1;
        }
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
            if (nr < LG_RANGES) {
                raddr[nr] = ptrs[k];
                rlen[nr++] = l + 1;
            } else {
                ranges_overflow = 1;  /* too many ranges to check: treated as racy below */
            }
            pos += l + 1;
        }
        if (fail || k < cnt)
            break;
        p += cnt * 8;
    }
    s->judge->argv.n = argc;
    /* Nothing read above is trusted unless the notification is still ours. */
    if (!lg_id_valid(s, req->id)) {
        lg_count(s, LG_COUNT_GONE);
        return;
    }
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

    int ppid = 0, threads = 0;
    unsigned long long start = 0;
    int have_stat = lg_proc_stat(tid, &ppid, &threads, &start) == 0;
    int pid = tid;
    if (have_stat && threads > 1) {
        int tg = proc_tgid(tid);
        if (tg > 0 && tg != tid) {
            pid = tg;
            int pp2, th2;
            if (lg_proc_stat(tg, &pp2, &th2, &start) < 0)
                have_stat = 0;
        }
    }
    ev.pid = pid;

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
        /* the user's act of launching it allows it, without inheritance */
        ev.result = LG_EFFECT_ALLOW;
        ev.rule = -1;
    } else if (have_stat && inherited(s, pid, ppid, start) == 1) {
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
        inherit_admit = 0;
        if (ev.result == LG_EFFECT_ALLOW)
            s->root_seen = 1;
    }
    if (ev.result == LG_EFFECT_DENY) {
        ev.err = EACCES;
        /* A shell tries each $PATH entry: for a file that does not exist the
         * kernel's answer (ENOENT) is kept, so the search goes on and no
         * denial line is printed for it.  Says nothing about denied files. */
        int missing = missing_in_view(tid, dirfd, fname);
        if (missing) {
            ev.err = missing;
            ev.flags |= LG_EV_MISSING;
        }
        finish(s, req->id, &ev, line);
        return;
    }
    if (have_stat)
        admit(s, pid, start, inherit_admit);
    if (s->simulate) {
        finish(s, req->id, &ev, line);
        return;
    }

    /* Allowed: can anything else change what the kernel is about to copy? */
    int racy = !have_stat || threads > 1;
    if (!racy && vfork_sharers_racy(tid, ppid))
        racy = 1;  /* vfork child whose parent's other threads share these pages */
    if (!racy && ranges_overflow)
        racy = 1;
    if (!racy && ranges_racy(tid, raddr, rlen, nr))
        racy = 1;
    if (!racy) {
        finish(s, req->id, &ev, line);
        return;
    }
    /* The slow path attaches with ptrace and waits for the new image; an exec of a
     * file that does not exist has no new image.  execvp() tries every $PATH entry,
     * each one a notification, and each would cost a ptrace attach: answer the
     * kernel's own ENOENT at once instead.  Nothing runs on this answer; if the
     * file appears meanwhile, the caller just moves on or tries again. */
    int absent = missing_in_view(tid, dirfd, fname);
    if (absent) {
        ev.err = absent;
        ev.flags |= LG_EV_MISSING;
        ev.t_resp_ns = lg_now_ns();
        lg_push_event(s, &ev);
        lg_send_resp(s, req->id, 0, absent, 0);
        return;
    }

    lg_count(s, LG_COUNT_SLOWPATH);
    struct exec_job *j = calloc(1, sizeof *j);
    char *argv_copy = malloc(pos + 1);
    if (!j || !argv_copy) {
        free(j);
        free(argv_copy);
        ev.result = LG_EFFECT_DENY;
        ev.err = ENOMEM;
        ev.flags |= LG_EV_FAILCLOSED;
        finish(s, req->id, &ev, line);
        return;
    }
    memcpy(argv_copy, s->judge->cmd, pos);
    j->s = s;
    j->id = req->id;
    j->tid = tid;
    j->dirfd = dirfd;
    memcpy(j->fname, fname, flen + 1);
    j->argv = argv_copy;
    j->argvlen = pos;
    j->argc = argc;
    j->ev = ev;
    j->ev.flags |= LG_EV_VERIFIED;
    int wrc = lg_spawn_worker(s, exec_worker, j);
    if (wrc < 0) {
        free(argv_copy);
        free(j);
        ev.result = LG_EFFECT_DENY;
        ev.err = EAGAIN;
        ev.flags |= LG_EV_FAILCLOSED;
        finish(s, req->id, &ev, line);
    }
}

/* Used by the datagram path: may another task change these caller bytes
 * before the kernel reads them again? (threads, vfork sharing, shared pages) */
int lg_caller_racy(int tid, const unsigned long long *addr, const size_t *len, int n)
{
    int ppid, threads;
    unsigned long long start;
    if (lg_proc_stat(tid, &ppid, &threads, &start) < 0 || threads > 1)
        return 1;
    if (vfork_sharers_racy(tid, ppid))
        return 1;
    return ranges_racy(tid, addr, len, n);
}
