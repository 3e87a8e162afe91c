/* supervise_open.c: the open check for carve-outs (DESIGN §2 carve-out row). */
#include <errno.h>
#include <string.h>

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

void lg_handle_open(struct lg_sup *s, const struct seccomp_notif *req, unsigned long long t0)
{
    struct lg_event ev;
    memset(&ev, 0, sizeof ev);
    ev.t_recv_ns = t0;
    ev.pid = (int)req->pid;
    ev.tid = (int)req->pid;
    ev.action = LG_ACT_OPEN;
    ev.result = LG_EFFECT_DENY;
    ev.rule = -1;
    ev.err = EACCES;
    ev.flags = LG_EV_FAILCLOSED;
    ev.syscall_nr = req->data.nr;
    ev.t_resp_ns = lg_now_ns();
    lg_push_event(s, &ev);
    lg_send_resp(s, req->id, 0, EACCES, 0);
}
