/* supervise_net_act.c: acting for the caller.  The caller's socket and SCM_RIGHTS fds
 * duplicated (lg_caller_fd), its sendmsg header copied once, the connect or send made
 * on the duplicate with the caller's credentials (on a worker when it may block), and
 * the answer: event, denial line, response. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>

#include "supervise_net_int.h"

/* lg_caller_fd, with the errno apart: the local fd, or -1 and *err. */
int lg_net_grab_fd(struct lg_sup *s, unsigned long long id, int tid, int fd, int *err)
{
    int local = lg_caller_fd(s, id, tid, fd);
    if (local < 0) {
        *err = -local;
        return -1;
    }
    return local;
}

/* Connect or send on our duplicate; returns the syscall's value or -errno. */
long long lg_net_perform(struct lg_net_job *j)
{
    struct sockaddr_un via;
    const void *addr = j->addr;
    socklen_t alen = j->addrlen;
    if (j->pathfd >= 0) {
        memset(&via, 0, sizeof via);
        via.sun_family = AF_UNIX;
        snprintf(via.sun_path, sizeof via.sun_path, "/proc/self/fd/%d", j->pathfd);
        addr = &via;
        alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(via.sun_path) + 1);
    }
    long long r;
    int brc = lg_become(&j->creds);
    if (brc < 0) {
        lg_unbecome(&j->creds);
        return brc;  /* never connect with credentials other than the caller's */
    }
    if (!j->is_send) {
        r = connect(j->sock, addr, alen) < 0 ? -errno : 0;
    } else {
        struct iovec iov = {j->data, j->datalen};
        struct msghdr mh;
        memset(&mh, 0, sizeof mh);
        mh.msg_name = j->has_addr ? (void *)addr : NULL;
        mh.msg_namelen = j->has_addr ? alen : 0;
        mh.msg_iov = &iov;
        mh.msg_iovlen = 1;
        mh.msg_control = j->ctrllen ? j->ctrl : NULL;
        mh.msg_controllen = j->ctrllen;
        ssize_t n = sendmsg(j->sock, &mh, j->flags | MSG_NOSIGNAL);
        r = n < 0 ? -errno : n;
    }
    if (lg_unbecome(&j->creds) < 0)
        lg_count(j->s, LG_COUNT_ERRORS);
    return r;
}

void lg_net_job_free(struct lg_net_job *j)
{
    if (j->sock >= 0)
        close(j->sock);
    if (j->pathfd >= 0)
        close(j->pathfd);
    for (int i = 0; i < j->ndups; i++)
        close(j->dups[i]);
    free(j->data);
    free(j);
}

void *lg_net_worker(void *arg)
{
    struct lg_net_job *j = arg;
    struct lg_sup *s = j->s;
    long long r = lg_net_perform(j);
    j->ev.t_resp_ns = lg_now_ns();
    lg_push_event(s, &j->ev);
    lg_send_resp(s, j->id, r < 0 ? 0 : r, r < 0 ? (int)-r : 0, 0);
    lg_net_job_free(j);
    return NULL;
}

void lg_net_answer(struct lg_sup *s, unsigned long long id, struct lg_event *ev, long long val, int err, int cont)
{
    ev->t_resp_ns = lg_now_ns();
    if (s->simulate) {
        /* Simulation records what enforcement would do, but egress the policy
         * denies stays refused (DESIGN §3): a simulated run must not leak what
         * the enforced one would keep in (nftables holds TCP/UDP back in a
         * namespace; unix sockets and the no-namespace rung have only this). */
        ev->flags |= LG_EV_SIMULATED;
        lg_push_event(s, ev);
        if (ev->result == LG_EFFECT_DENY)
            lg_send_resp(s, id, 0, err ? err : ECONNREFUSED, 0);
        else
            lg_send_resp(s, id, 0, 0, 1);
        return;
    }
    if (ev->result == LG_EFFECT_DENY && !(ev->flags & LG_EV_FAILCLOSED))
        lg_report_denial(s, "network", ev->target, ev->rule);
    lg_push_event(s, ev);
    lg_send_resp(s, id, val, err, cont);
}

/* A call that cannot be judged or carried out: refused with err (fail closed: no
 * denial line, the event says why), and the job freed. */
void lg_net_refuse(struct lg_sup *s, struct lg_net_job *j, struct lg_event *ev, int err)
{
    ev->result = LG_EFFECT_DENY;
    ev->flags |= LG_EV_FAILCLOSED;
    lg_net_answer(s, j->id, ev, 0, err, 0);
    lg_net_job_free(j);
}

/* Read the destination of a sendmsg msghdr at mptr: name pointer/len and the
 * data (iovecs), control.  Fills j (data malloc'ed). */
int lg_net_read_msghdr(int tid, unsigned long long mptr, struct lg_net_job *j, unsigned long long *name_ptr,
                       unsigned long long *ranges, size_t *rlens, int *nr)
{
    struct msghdr mh;
    int rc = lg_read_mem(tid, mptr, &mh, sizeof mh);
    if (rc)
        return rc;
    ranges[*nr] = mptr;
    rlens[(*nr)++] = sizeof mh;
    *name_ptr = (unsigned long long)(uintptr_t)mh.msg_name;
    j->has_addr = mh.msg_name != NULL && mh.msg_namelen > 0;
    if (j->has_addr) {
        if (mh.msg_namelen > sizeof j->addr)
            return -EINVAL;
        j->addrlen = mh.msg_namelen;
        rc = lg_read_mem(tid, *name_ptr, j->addr, j->addrlen);
        if (rc)
            return rc;
        ranges[*nr] = *name_ptr;
        rlens[(*nr)++] = j->addrlen;
    }
    if (mh.msg_iovlen > 1024)
        return -EMSGSIZE;
    struct iovec iov[1024];
    size_t total = 0;
    if (mh.msg_iovlen) {
        rc = lg_read_mem(tid, (unsigned long long)(uintptr_t)mh.msg_iov, iov, mh.msg_iovlen * sizeof iov[0]);
        if (rc)
            return rc;
    }
    for (size_t i = 0; i < mh.msg_iovlen; i++)
        total += iov[i].iov_len;
    if (total > LG_SEND_MAX)
        return -EMSGSIZE;
    j->data = malloc(total ? total : 1);
    if (!j->data)
        return -ENOMEM;
    size_t pos = 0;
    for (size_t i = 0; i < mh.msg_iovlen; i++) {
        if (!iov[i].iov_len)
            continue;
        rc = lg_read_mem(tid, (unsigned long long)(uintptr_t)iov[i].iov_base, j->data + pos, iov[i].iov_len);
        if (rc)
            return rc;
        pos += iov[i].iov_len;
    }
    j->datalen = total;
    if (mh.msg_controllen) {
        if (mh.msg_controllen > LG_CTRL_MAX)
            return -ENOBUFS;
        rc = lg_read_mem(tid, (unsigned long long)(uintptr_t)mh.msg_control, j->ctrl, mh.msg_controllen);
        if (rc)
            return rc;
        j->ctrllen = mh.msg_controllen;
    }
    return 0;
}

/* SCM_RIGHTS: replace the caller's fd numbers with our duplicates of the same
 * open files; SCM_CREDENTIALS would be checked against root's: refused. */
int lg_net_translate_control(struct lg_sup *s, unsigned long long id, int tid, struct lg_net_job *j, int *dups, int *ndups)
{
    struct msghdr mh;
    memset(&mh, 0, sizeof mh);
    mh.msg_control = j->ctrl;
    mh.msg_controllen = j->ctrllen;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
        if (c->cmsg_level != SOL_SOCKET)
            continue;
        if (c->cmsg_type == SCM_CREDENTIALS)
            return -EPERM;
        if (c->cmsg_type == SCM_RIGHTS) {
            int n = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
            int *fds = (int *)CMSG_DATA(c);
            for (int i = 0; i < n; i++) {
                if (*ndups >= 253)
                    return -ETOOMANYREFS;
                int e = 0, theirs;
                memcpy(&theirs, &fds[i], sizeof theirs);
                int mine = lg_net_grab_fd(s, id, tid, theirs, &e);
                if (mine < 0)
                    return -e;
                dups[(*ndups)++] = mine;
                memcpy(&fds[i], &mine, sizeof mine);
            }
        }
    }
    return 0;
}
