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
 *
 * This file is the handler: it decides, answers, and does the bookkeeping after the
 * answer.  Its parts with a job of their own are apart (supervise_exec.h lists them):
 * reading the caller's memory (supervise_exec_read.c), the admitted processes
 * (supervise_exec_admit.c) and the slow path's worker (supervise_exec_verify.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>

#include "kernel_compat.h"
#include "supervise_bench.h"
#include "supervise_exec.h"

/* ---- the handler ------------------------------------------------------------ */

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

    struct lg_event ev;
    memset(&ev, 0, sizeof ev);
    ev.t_recv_ns = t0;
    ev.pid = tid;
    ev.tid = tid;
    ev.action = LG_ACT_EXEC;
    ev.syscall_nr = req->data.nr;
    ev.rule = -1;
    lg_count(s, LG_COUNT_EXEC);

    size_t flen = 0;
    int rc;  /* the filename's read: 0, or -errno */
    struct lg_exec_ranges r;  /* lg_exec_read sets n and overflow; addr, len up to n */
    int fail = lg_exec_read(s, tid, fptr, aptr, fname, &flen, &rc, &r);
    int argc = s->judge->argv.n;
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
    /* The session's root (supervise_root.c), taken at the first notification
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
               lg_exec_inherited(s, pid, ppid, who->id) == 1) {
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
    if (!racy && r.overflow)
        racy = 1;
    if (!racy && lg_ranges_racy(tid, r.addr, r.len, r.n, &after->maps_fd))
        racy = 1;
    LG_PHASE(LG_PH_RACY);
    if (!racy) {
        finish(s, req->id, &ev, line);
        LG_PHASE(LG_PH_ANSWER);
        /* After the answer, once per name: the next exec of it skips the walks
         * (supervise_exec_names.c) */
        if (obj->stable == 1)
            lg_exec_name_keep(s, tid, s->sess_root_set ? s->sess_root_fd : -1, obj);
        return;
    }
    lg_count(s, LG_COUNT_SLOWPATH);
    /* The racy path: a worker verifies the new image (supervise_exec_verify.c) and
     * answers; without one the exec is refused (fail closed). */
    int vrc = lg_exec_verify_start(s, req->id, tid, obj, &ev);
    if (vrc < 0) {
        ev.result = LG_EFFECT_DENY;
        ev.err = -vrc;
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
        lg_exec_admit(s, after.pid, after.who.id, after.inherit);
    /* After the kernel's ENOENT the caller tries its next $PATH entry: its pidfd
     * is kept for that notification (supervise_caller_kept.c).  Otherwise it is closed:
     * a fork+exec caller rarely asks again, and keeping every caller's pidfd showed
     * no gain there (bench/exec_ab.py: +14 us per exec, within the +12 us an A/A
     * run of one build against itself showed), only pidfds held longer. */
    lg_caller_done(s, (int)req->pid, after.pidfd, &after.who, after.have_stat && after.again);
    if (after.maps_fd >= 0)
        close(after.maps_fd);
    lg_exec_obj_release(obj);
    LG_PHASE(LG_PH_AFTER);
}
