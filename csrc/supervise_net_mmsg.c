/* supervise_net_mmsg.c: sendmmsg on a datagram socket (lg_handle_net hands it here
 * once the socket is known to be one). */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/socket.h>

#include "supervise_net_int.h"

#define LG_MMSG_MAX 1024  /* UIO_MAXIOV: sendmmsg sends at most this many of a batch */

/* Judge every destination the kernel will send to (it takes at most UIO_MAXIOV
 * messages of vlen: every one of those is read and judged, none is left unjudged);
 * continue only when the memory is stable, else refuse a racy batch.  Answers the
 * call and frees j. */
void lg_net_handle_mmsg(struct lg_sup *s, const struct seccomp_notif *req, struct lg_net_job *j,
                        struct lg_event *ev, const unsigned long long *ranges, const size_t *rlens,
                        int nranges)
{
    int tid = (int)req->pid;
    unsigned vlen = (unsigned)req->data.args[2];
    if (vlen > LG_MMSG_MAX)
        vlen = LG_MMSG_MAX;  /* the kernel's own cap: it never sends more */
    struct mmsghdr *mm = vlen ? calloc(vlen, sizeof *mm) : NULL;
    /* what another task could rewrite: the array and every msg_name */
    size_t nr_cap = (size_t)nranges + 1 + vlen;
    unsigned long long *rr = malloc(nr_cap * sizeof *rr);
    size_t *rl = malloc(nr_cap * sizeof *rl);
    int nrr = 0;
    int rc = (vlen && !mm) || !rr || !rl ? -ENOMEM : 0;
    if (rc == 0) {
        for (int i = 0; i < nranges; i++) {
            rr[nrr] = ranges[i];
            rl[nrr++] = rlens[i];
        }
        if (vlen) {
            rr[nrr] = req->data.args[1];
            rl[nrr++] = vlen * sizeof mm[0];
            rc = lg_read_mem(tid, req->data.args[1], mm, vlen * sizeof mm[0]);
        }
    }
    int worst = LG_EFFECT_ALLOW, worst_rule = -1, any_dest = 0, unix_racy = 0;
    char tgt[LG_TARGET_MAX] = "";
    for (unsigned i = 0; rc == 0 && i < vlen; i++) {
        if (!mm[i].msg_hdr.msg_name || !mm[i].msg_hdr.msg_namelen)
            continue;
        unsigned char a[sizeof(struct sockaddr_storage)];
        size_t al = mm[i].msg_hdr.msg_namelen;
        if (al > sizeof a) {
            rc = -EINVAL;
            break;
        }
        rr[nrr] = (unsigned long long)(uintptr_t)mm[i].msg_hdr.msg_name;
        rl[nrr++] = al;
        rc = lg_read_mem(tid, (unsigned long long)(uintptr_t)mm[i].msg_hdr.msg_name, a, al);
        if (rc)
            break;
        struct lg_dest d;
        rc = lg_net_parse_dest(tid, a, al, &d);
        if (rc)
            break;
        int eff, rule;
        char m[LG_DETAIL_MAX] = "";
        lg_net_judge_dest(&s->t, s, &d, &eff, &rule, m, sizeof m);
        if (d.family == AF_UNIX && !d.abstract && !d.unnamed) {
            /* the socket file reached, as for sendto; the kernel sends the
             * batch itself, walking each name again: a name the agent can
             * re-aim makes the batch racy (refused below) */
            int pfd = -1;
            unsigned int fl = 0;
            lg_net_unix_object(s, tid, req->id, &d, &eff, &rule, &fl, m, sizeof m, &pfd);
            if (pfd >= 0)
                close(pfd);
            if (!lg_net_unix_name_stable(s, tid, req->id, &d))
                unix_racy = 1;
        }
        if (lg_net_private_loopback(s, j->sock, &d)) {
            eff = LG_EFFECT_ALLOW;
            rule = -1;
        }
        any_dest = 1;
        if (eff == LG_EFFECT_DENY && worst != LG_EFFECT_DENY) {
            worst = eff;
            worst_rule = rule;
            lg_net_format_dest(&d, tgt, sizeof tgt);
        } else if (worst_rule < 0 && worst == LG_EFFECT_ALLOW) {
            worst_rule = rule;
            lg_net_format_dest(&d, tgt, sizeof tgt);
        }
    }
    free(mm);
    if (!lg_id_valid(s, req->id)) {
        free(rr);
        free(rl);
        lg_count(s, LG_COUNT_GONE);
        lg_net_job_free(j);
        return;
    }
    int racy = rc == 0 && any_dest && worst == LG_EFFECT_ALLOW &&
               (unix_racy || lg_caller_racy(tid, rr, rl, nrr));
    free(rr);
    free(rl);
    if (rc || racy) {
        /* unreadable, or destinations another task could rewrite: refused */
        lg_copy_target(ev->target, sizeof ev->target, tgt[0] ? tgt : "(sendmmsg)", NULL);
        lg_net_refuse(s, j, ev, rc ? -rc : EPERM);
        return;
    }
    if (!any_dest) {
        lg_send_resp(s, req->id, 0, 0, 1);
        lg_net_job_free(j);
        return;
    }
    ev->result = worst;
    ev->rule = worst_rule;
    lg_copy_target(ev->target, sizeof ev->target, tgt, NULL);
    lg_net_answer(s, req->id, ev, 0, worst == LG_EFFECT_DENY ? ECONNREFUSED : 0, worst == LG_EFFECT_ALLOW);
    lg_net_job_free(j);
}
