/* supervise_net.c: connect / sendto / sendmsg / sendmmsg decisions (DESIGN §2 connect row).
 *
 * connect: the address is copied once, judged, and the supervisor connects a
 * duplicate of the caller's socket (lg_caller_fd: pidfd_getfd on the
 * thread's pidfd, or before 6.9 on its leader's, checked with kcmp) with its
 * own copy, returning the result as the syscall's
 * value.  The caller's memory is never read again, so swapping the address
 * after the check changes nothing.  Non-blocking sockets keep EINPROGRESS;
 * a blocking connect runs on a worker, never on the loop.  AF_UNIX paths are
 * resolved in the caller's view (the session's root, /proc/TID/cwd) and connected
 * through an O_PATH descriptor, with the caller's fsuid/fsgid/groups on the
 * connecting thread so that the kernel's permission check on the socket file
 * is the caller's, not root's.
 *
 * Datagram sends with a destination: judged from one copy.  If nothing but the
 * caller can change the destination bytes (single-threaded, unshared mm,
 * private anonymous pages) the syscall continues; otherwise the supervisor
 * sends the datagram itself from copies of the address and data (the receiver
 * then sees the supervisor's credentials on a unix socket: documented).
 * Stream sockets ignore the address (TCP only uses it with MSG_FASTOPEN,
 * which is judged and forwarded like a datagram).
 *
 * This file is the handler; supervise_net_int.h lists the parts it calls on.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/syscall.h>

#include "kernel_compat.h"
#include "supervise_net_int.h"

/* ---- acting for the caller ---------------------------------------------------- */

/* The caller's fd number `fd` as a local fd, or -errno (also used by the open
 * check).  The pidfd pins the task; ID_VALID after opening it proves the tid
 * still belongs to the caller (not a reused pid).
 *
 * 6.9+: pidfd_open(tid, PIDFD_THREAD) opens the calling thread itself.  Before
 * 6.9 that is EINVAL and pidfd_open takes only a thread-group leader, so we
 * open the caller's tgid and take `fd` from the leader's table.  That is the
 * caller's file only while the thread shares its fd table with the leader
 * (threads do, unless one unshared CLONE_FILES), so kcmp(KCMP_FILE) then
 * proves that the file we hold is the very file at `fd` in the calling
 * thread's table; a mismatch, or a kernel without kcmp, is refused (EBADF or
 * kcmp's errno), never acted on with another file.  The caller is blocked in
 * its syscall, so its tgid cannot change under us, and a leader's pid is not
 * freed while any thread of its group lives (ID_VALID checks the thread). */
int lg_caller_fd(struct lg_sup *s, unsigned long long id, int tid, int fd)
{
    int tgid = tid;
    int pidfd = (int)syscall(__NR_pidfd_open, tid, PIDFD_THREAD);
    if (pidfd < 0 && errno == EINVAL) {   /* < 6.9: no PIDFD_THREAD */
        struct lg_creds c;
        int rc = lg_read_creds(tid, &c);
        if (rc < 0)
            return rc == -ENOENT ? -ESRCH : rc;
        tgid = c.tgid;
        pidfd = (int)syscall(__NR_pidfd_open, tgid, 0);
    }
    if (pidfd < 0)
        return -errno;
    if (!lg_id_valid(s, id)) {
        close(pidfd);
        return -ESRCH;
    }
    int local = (int)syscall(__NR_pidfd_getfd, pidfd, fd, 0);
    int e = errno;
    close(pidfd);
    if (local < 0)
        return -e;
    if (tgid != tid) {
        long same = syscall(SYS_kcmp, tid, getpid(), KCMP_FILE, fd, local);
        int ke = errno;
        if (same != 0) {
            close(local);
            return same < 0 ? -ke : -EBADF;
        }
    }
    return local;
}

/* ---- the handler ------------------------------------------------------------------ */

void lg_handle_net(struct lg_sup *s, const struct seccomp_notif *req, unsigned long long t0)
{
    int tid = (int)req->pid;
    int nr = req->data.nr;
    int fd = (int)req->data.args[0];
    struct lg_event ev;
    memset(&ev, 0, sizeof ev);
    ev.t_recv_ns = t0;
    ev.pid = tid;
    ev.tid = tid;
    ev.syscall_nr = nr;
    ev.rule = -1;
    ev.action = nr == SYS_connect ? LG_ACT_CONNECT : LG_ACT_SEND;
    lg_count(s, nr == SYS_connect ? LG_COUNT_CONNECT : LG_COUNT_SEND);

    struct lg_net_job *j = calloc(1, sizeof *j);
    if (!j) {
        ev.result = LG_EFFECT_DENY;
        ev.flags |= LG_EV_FAILCLOSED;
        snprintf(ev.target, sizeof ev.target, "(out of memory)");
        lg_net_answer(s, req->id, &ev, 0, ENOMEM, 0);
        return;
    }
    j->s = s;
    j->id = req->id;
    j->sock = -1;
    j->pathfd = -1;
    j->is_send = nr != SYS_connect;

    unsigned long long ranges[8];
    size_t rlens[8];
    int nranges = 0;
    int rc = 0;
    int flags = 0;
    int mmsg = nr == SYS_sendmmsg;

    if (nr == SYS_connect) {
        unsigned long long aptr = req->data.args[1];
        unsigned long long alen = req->data.args[2];
        if (alen > sizeof j->addr) {
            rc = -EINVAL;
        } else {
            j->addrlen = (socklen_t)alen;
            j->has_addr = 1;
            rc = aptr ? lg_read_mem(tid, aptr, j->addr, j->addrlen) : -EFAULT;
        }
    } else if (nr == SYS_sendto) {
        unsigned long long aptr = req->data.args[4];
        unsigned long long alen = req->data.args[5];
        flags = (int)req->data.args[3];
        if (aptr == 0 || alen == 0) {
            /* no destination (a register, not caller memory): nothing to judge */
            lg_send_resp(s, req->id, 0, 0, 1);
            lg_net_job_free(j);
            return;
        }
        if (alen > sizeof j->addr) {
            rc = -EINVAL;
        } else {
            j->addrlen = (socklen_t)alen;
            j->has_addr = 1;
            rc = lg_read_mem(tid, aptr, j->addr, j->addrlen);
            ranges[nranges] = aptr;
            rlens[nranges++] = alen;
            size_t dlen = req->data.args[2];
            if (rc == 0 && dlen > LG_SEND_MAX)
                rc = -EMSGSIZE;
            if (rc == 0) {
                j->data = malloc(dlen ? dlen : 1);
                j->datalen = dlen;
                rc = !j->data ? -ENOMEM : dlen ? lg_read_mem(tid, req->data.args[1], j->data, dlen) : 0;
            }
        }
    } else {
        /* sendmsg, or the first message of sendmmsg (the others are judged
         * too, below, and the call is forwarded one message at a time). */
        unsigned long long name_ptr = 0;
        flags = (int)(mmsg ? req->data.args[3] : req->data.args[2]);
        rc = lg_net_read_msghdr(tid, req->data.args[1], j, &name_ptr, ranges, rlens, &nranges);
        if (rc == 0 && !j->has_addr && !mmsg) {
            /* sendmsg without a destination: a datagram socket may still be
             * made to send elsewhere by a racing writer of msg_name; checked below */
        }
    }
    if (!lg_id_valid(s, req->id)) {
        lg_count(s, LG_COUNT_GONE);
        lg_net_job_free(j);
        return;
    }
    if (rc) {
        snprintf(ev.target, sizeof ev.target, "(unreadable destination)");
        lg_net_refuse(s, j, &ev, -rc);
        return;
    }

    /* Which socket is it? */
    int err = 0;
    j->sock = lg_net_grab_fd(s, req->id, tid, fd, &err);
    if (j->sock < 0) {
        if (err == ESRCH) {
            lg_count(s, LG_COUNT_GONE);
            lg_net_job_free(j);
            return;
        }
        snprintf(ev.target, sizeof ev.target, "(fd %d: %s)", fd, strerror(err));
        lg_net_refuse(s, j, &ev, err);
        return;
    }
    int stype = 0;
    socklen_t sl = sizeof stype;
    if (getsockopt(j->sock, SOL_SOCKET, SO_TYPE, &stype, &sl) < 0) {
        int e = errno;
        snprintf(ev.target, sizeof ev.target, "(fd %d is not a socket)", fd);
        lg_net_refuse(s, j, &ev, e);
        return;
    }
    if (j->is_send && (stype == SOCK_STREAM || stype == SOCK_SEQPACKET) && !(flags & MSG_FASTOPEN)) {
        /* stream sockets ignore (or refuse) a destination: nothing to judge */
        lg_send_resp(s, req->id, 0, 0, 1);
        lg_net_job_free(j);
        return;
    }
    if (mmsg) {
        lg_net_handle_mmsg(s, req, j, &ev, ranges, rlens, nranges);
        return;
    }

    struct lg_dest d;
    memset(&d, 0, sizeof d);
    if (j->has_addr) {
        rc = lg_net_parse_dest(tid, j->addr, j->addrlen, &d);
        if (rc) {
            snprintf(ev.target, sizeof ev.target, "(bad address)");
            lg_net_refuse(s, j, &ev, -rc);
            return;
        }
    } else {
        /* sendmsg without msg_name on a datagram socket: goes to the
         * connected peer (judged at connect) unless a racing writer fills
         * msg_name in; forwarded below when racy. */
        if (!lg_caller_racy(tid, ranges, rlens, nranges)) {
            lg_send_resp(s, req->id, 0, 0, 1);
            lg_net_job_free(j);
            return;
        }
        ev.result = LG_EFFECT_ALLOW;
        snprintf(ev.target, sizeof ev.target, "(connected peer)");
        goto forward;
    }
    lg_net_format_dest(&d, ev.target, sizeof ev.target);
    if (d.family == AF_UNSPEC && nr == SYS_connect) {
        /* dissolves a UDP association: no destination */
        ev.result = LG_EFFECT_ALLOW;
    } else if (d.family == AF_NETLINK) {
        ev.result = LG_EFFECT_ALLOW;  /* the kernel, not the network */
    } else if (d.family != AF_INET && d.family != AF_INET6 && d.family != AF_UNIX) {
        ev.result = LG_EFFECT_DENY;
        ev.flags |= LG_EV_FAILCLOSED;
    } else {
        int eff, rule;
        lg_net_judge_dest(&s->t, s, &d, &eff, &rule, ev.detail, sizeof ev.detail);
        ev.result = eff;
        ev.rule = rule;
        if (lg_net_private_loopback(s, j->sock, &d)) {
            ev.result = LG_EFFECT_ALLOW;
            ev.rule = -1;
            snprintf(ev.detail, sizeof ev.detail, "%s", LG_PRIVATE_LOOPBACK);
        }
    }
    if (d.family == AF_UNIX && !d.abstract && !d.unnamed) {
        lg_net_unix_object(s, tid, req->id, &d, &ev.result, &ev.rule, &ev.flags, ev.detail,
                    sizeof ev.detail, &j->pathfd);
        lg_read_creds(tid, &j->creds);
    }
    if (ev.result == LG_EFFECT_DENY && ev.rule == s->t.net_default_rule && d.family == AF_UNIX &&
        !d.abstract && !d.unnamed && !(ev.flags & LG_EV_FAILCLOSED) && lg_net_quiet_unix(&s->t, d.path)) {
        /* A lookup glibc makes on its own (nscd), refused by the default: answered
         * as a host without the service answers, with no denial line and no event,
         * so that every session is not reported for it.  The connect never happens
         * (a real nscd would resolve names outside the sandbox's DNS view). */
        lg_send_resp(s, req->id, 0, j->pathfd < 0 ? ENOENT : ECONNREFUSED, 0);
        lg_net_job_free(j);
        return;
    }
    if (ev.result == LG_EFFECT_DENY || s->simulate) {
        lg_net_answer(s, req->id, &ev, 0, ECONNREFUSED, 0);
        lg_net_job_free(j);
        return;
    }
    if (d.family == AF_UNIX && !d.abstract && !d.unnamed && j->pathfd < 0) {
        lg_net_answer(s, req->id, &ev, 0, ENOENT, 0);  /* the kernel's answer for a missing socket file */
        lg_net_job_free(j);
        return;
    }
    if (d.family == AF_UNIX && d.abstract) {
        /* An abstract socket has no file for Landlock to check; Landlock ABI 6
         * scopes it instead (LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET): the sandbox
         * may reach only listeners inside its own domain.  That scoping applies
         * to connects the sandboxed task makes itself.  Made here, from outside
         * the domain, the connect would reach any listener on the host, so the
         * kernel makes it: if a racing thread changes the name after this
         * check, the new name is still confined to the sandbox's domain.
         * (Below ABI 6 there is no scoping and that race stays open.) */
        lg_net_answer(s, req->id, &ev, 0, 0, 1);
        lg_net_job_free(j);
        return;
    }
    if (j->is_send && !lg_caller_racy(tid, ranges, rlens, nranges) &&
        (d.family != AF_UNIX || d.unnamed || lg_net_unix_name_stable(s, tid, req->id, &d))) {
        /* only the caller can change the destination bytes, and for a socket
         * file nobody can change which file the name reaches: the kernel's
         * own walk finds the object judged.  Otherwise the datagram goes
         * through our O_PATH fd of the object judged (forwarded below). */
        lg_net_answer(s, req->id, &ev, 0, 0, 1);
        lg_net_job_free(j);
        return;
    }

forward:
    ev.flags |= LG_EV_FORWARDED;
    j->flags = flags;
    if (j->ctrllen) {
        rc = lg_net_translate_control(s, req->id, tid, j, j->dups, &j->ndups);
        if (rc) {
            lg_net_refuse(s, j, &ev, -rc);
            return;
        }
    }
    int fl = fcntl(j->sock, F_GETFL);
    int nonblock = fl >= 0 && (fl & O_NONBLOCK);
    if (j->is_send && (flags & MSG_DONTWAIT))
        nonblock = 1;
    if (nonblock) {
        long long r = lg_net_perform(j);
        lg_net_answer(s, req->id, &ev, r < 0 ? 0 : r, r < 0 ? (int)-r : 0, 0);
        lg_net_job_free(j);
        return;
    }
    /* A blocking connect/send may wait for a peer: never on the loop, on a
     * persistent worker (no thread creation per connect). */
    j->ev = ev;
    j->ev.t_resp_ns = 0;
    int wrc = lg_pool_submit(&s->netpool, lg_net_worker, j);
    if (wrc < 0) {
        lg_net_refuse(s, j, &ev, EAGAIN);
    }
}
