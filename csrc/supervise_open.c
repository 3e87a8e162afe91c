/* supervise_open.c: open / openat / openat2 / creat notifications.
 *
 * Simulation: every open is judged by its path (made absolute in the
 * caller's view: cwd or dirfd, lexically normalised) against the carve-out
 * deny globs, recorded, and continued: nothing is blocked.
 *
 * Enforcement (the carve-out open check, DESIGN §2): not implemented yet.
 * The module says so (sandbox.supervise.SUPPORTS_OPEN_CHECK = False), so the
 * planner never relies on it; should the filter send an open anyway in
 * enforce mode, it is refused (fail closed), never silently continued.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>

#include "kernel_compat.h"
#include "supervise_int.h"

int lg_open_init(struct lg_sup *s, char *err, int errlen)
{
    (void)s;
    (void)err;
    (void)errlen;
    return 0;
}

void lg_open_fini(struct lg_sup *s)
{
    (void)s;
}

/* Make path absolute in the caller's view and normalise "." and "..". */
static int absolute_in_view(int tid, int dirfd, const char *path, char *out, size_t cap)
{
    char base[LG_TARGET_MAX];
    if (path[0] == '/') {
        base[0] = '\0';
    } else {
        char link[64];
        if (dirfd == AT_FDCWD)
            snprintf(link, sizeof link, "/proc/%d/cwd", tid);
        else
            snprintf(link, sizeof link, "/proc/%d/fd/%d", tid, dirfd);
        ssize_t n = readlink(link, base, sizeof base - 1);
        if (n < 0)
            return -errno;
        base[n] = '\0';
    }
    char tmp[2 * LG_TARGET_MAX + 2];
    size_t bl = strlen(base), pl = strlen(path);
    if (bl + pl + 2 > sizeof tmp)
        return -ENAMETOOLONG;
    memcpy(tmp, base, bl);
    tmp[bl] = '/';
    memcpy(tmp + bl + 1, path, pl + 1);
    /* normalise into out */
    size_t o = 0;
    const char *c = tmp;
    while (*c) {
        while (*c == '/')
            c++;
        if (!*c)
            break;
        const char *e = strchr(c, '/');
        size_t l = e ? (size_t)(e - c) : strlen(c);
        if (l == 1 && c[0] == '.') {
            /* skip */
        } else if (l == 2 && c[0] == '.' && c[1] == '.') {
            while (o > 0 && out[o - 1] != '/')
                o--;
            if (o > 0)
                o--;
        } else {
            if (o + l + 2 > cap)
                return -ENAMETOOLONG;
            out[o++] = '/';
            memcpy(out + o, c, l);
            o += l;
        }
        c += l;
    }
    if (o == 0)
        out[o++] = '/';
    out[o] = '\0';
    return 0;
}

void lg_handle_open(struct lg_sup *s, const struct seccomp_notif *req, unsigned long long t0)
{
    int tid = (int)req->pid;
    int nr = req->data.nr;
    struct lg_event ev;
    memset(&ev, 0, sizeof ev);
    ev.t_recv_ns = t0;
    ev.pid = tid;
    ev.tid = tid;
    ev.action = LG_ACT_OPEN;
    ev.syscall_nr = nr;
    ev.rule = -1;
    lg_count(s, LG_COUNT_OPEN);

    int dirfd = AT_FDCWD;
    unsigned long long pptr;
    long long flags;
    if (nr == SYS_open) {
        pptr = req->data.args[0];
        flags = (long long)req->data.args[1];
    } else if (nr == SYS_creat) {
        pptr = req->data.args[0];
        flags = O_CREAT | O_WRONLY | O_TRUNC;
    } else {
        dirfd = (int)req->data.args[0];
        pptr = req->data.args[1];
        flags = (long long)req->data.args[2];
        if (nr == __NR_openat2) {
            unsigned long long how[3] = {0, 0, 0};
            if (lg_read_mem(tid, req->data.args[2], how, sizeof how) == 0)
                flags = (long long)how[0];
        }
    }
    char path[LG_TARGET_MAX];
    size_t plen = 0;
    int rc = lg_read_str(tid, pptr, path, sizeof path, &plen);
    if (!lg_id_valid(s, req->id)) {
        lg_count(s, LG_COUNT_GONE);
        return;
    }
    int access = (flags & O_ACCMODE) == O_RDONLY ? LG_ACCESS_READ : LG_ACCESS_WRITE;
    if ((flags & O_ACCMODE) == O_RDWR)
        access = LG_ACCESS_READ | LG_ACCESS_WRITE;
    if (flags & (O_CREAT | O_TRUNC))
        access |= LG_ACCESS_WRITE;
    char abs[LG_TARGET_MAX];
    if (rc == 0)
        rc = absolute_in_view(tid, dirfd, path, abs, sizeof abs);
    if (rc == 0) {
        lg_copy_target(ev.target, sizeof ev.target, abs, &ev.flags);
        ev.result = LG_EFFECT_ALLOW;
        for (int i = 0; i < s->t.n_deny_paths; i++) {
            const struct lg_path_rule *r = &s->t.deny_paths[i];
            if ((r->access & access) && lg_glob_path(r->glob, abs)) {
                ev.result = LG_EFFECT_DENY;
                ev.rule = r->rule;
                break;
            }
        }
    } else {
        lg_copy_target(ev.target, sizeof ev.target, "(unreadable path)", &ev.flags);
        ev.result = LG_EFFECT_DENY;
        ev.flags |= LG_EV_FAILCLOSED;
    }
    snprintf(ev.detail, sizeof ev.detail, "%s", (access & LG_ACCESS_WRITE) ? "write" : "read");
    ev.target_len = (int)strlen(ev.target);
    ev.t_resp_ns = lg_now_ns();
    if (s->simulate) {
        ev.flags |= LG_EV_SIMULATED;
        lg_push_event(s, &ev);
        lg_send_resp(s, req->id, 0, 0, 1);
        return;
    }
    /* Enforcement of the open check is not implemented: refuse, loudly. */
    ev.result = LG_EFFECT_DENY;
    ev.err = EACCES;
    ev.flags |= LG_EV_FAILCLOSED;
    lg_push_event(s, &ev);
    lg_send_resp(s, req->id, 0, EACCES, 0);
}
