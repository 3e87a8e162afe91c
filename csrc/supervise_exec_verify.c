/* supervise_exec_verify.c: the exec check's slow path, the new image verified at
 * PTRACE_EVENT_EXEC (the design and what it rests on: supervise_exec.c's header).
 *
 * Apart from the handler because it runs on a worker thread of its own, after the
 * handler's answer: the handler decides that an allowed exec is racy and hands it
 * here (lg_exec_verify_start), and this file owns the job from then on: the seize,
 * the CONTINUE, the comparison of /proc/PID/exe and cmdline with what was judged
 * (lg_exec_expect writes the command line to expect), and the SIGKILL of a mismatch.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "kernel_compat.h"
#include "supervise_exec.h"

#ifndef PTRACE_EVENT_STOP
#define PTRACE_EVENT_STOP 128
#endif

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

/* What /proc/PID/cmdline must be after the exec (the verified path compares
 * it): the form w, NUL-separated, into o->expect.  0 or -ENOMEM. */
int lg_exec_expect(struct lg_exec_obj *o, const struct lg_words *w)
{
    size_t len = 0;
    for (int i = 0; i < w->n; i++)
        len += (size_t)w->len[i] + 1;
    free(o->expect);
    o->expect = malloc(len + 1);
    if (!o->expect)
        return -ENOMEM;
    if (w->n == 0) {
        o->expect[0] = '\0';  /* 5.18+: an empty argv gets argv[0] = "" */
        o->expect_len = 1;
        return 0;
    }
    size_t pos = 0;
    for (int i = 0; i < w->n; i++) {
        memcpy(o->expect + pos, w->w[i], (size_t)w->len[i]);
        pos += (size_t)w->len[i];
        o->expect[pos++] = '\0';
    }
    o->expect_len = pos;
    return 0;
}

/* Hand the allowed, racy exec `id` of tid to a verifying worker, which answers it.
 * ev: the allow event, as the handler made it.  0 (the worker owns the answer and
 * obj->expect now), or -ENOMEM / -EAGAIN (no job, or no worker): then nothing was
 * answered and the handler must refuse the exec (fail closed). */
int lg_exec_verify_start(struct lg_sup *s, unsigned long long id, int tid, struct lg_exec_obj *obj,
                         const struct lg_event *ev)
{
    struct exec_job *j = calloc(1, sizeof *j);
    if (!j || (!obj->expect && lg_exec_expect(obj, &s->judge->argv) < 0)) {
        free(j);
        return -ENOMEM;
    }
    j->s = s;
    j->id = id;
    j->tid = tid;
    j->dev = obj->dev;
    j->ino = obj->ino;
    j->expect = obj->expect;  /* the worker owns it now */
    j->expect_len = obj->expect_len;
    obj->expect = NULL;
    j->ev = *ev;
    j->ev.flags |= LG_EV_VERIFIED;
    if (lg_spawn_worker(s, exec_worker, j) < 0) {
        free(j->expect);
        free(j);
        return -EAGAIN;
    }
    return 0;
}
