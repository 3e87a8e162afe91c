/* supervise_net_int.h: what the supervise_net*.c files share (not part of the cdef).
 *
 *   supervise_net.c        lg_handle_net: connect / sendto / sendmsg, and lg_caller_fd
 *   supervise_net_mmsg.c   sendmmsg on a datagram socket: every destination judged
 *   supervise_net_dest.c   host names, the policy's judgement of a destination, the
 *                          sandbox's private loopback
 *   supervise_net_addr.c   a copied sockaddr parsed into a destination, and its text
 *   supervise_net_unix.c   a unix socket file, judged by the object its name reaches
 *   supervise_net_act.c    acting for the caller: its sockets and SCM_RIGHTS fds
 *                          duplicated, the connect or send made with its credentials
 */
#ifndef LANDGATE_SUPERVISE_NET_INT_H
#define LANDGATE_SUPERVISE_NET_INT_H

#include <stddef.h>
#include <sys/socket.h>

#include "supervise_int.h"

#define LG_CTRL_MAX 4096

/* supervise_net_addr.c, supervise_net_dest.c */
struct lg_dest {
    int family;                 /* AF_INET / AF_INET6 (v4-mapped folded to v4) / AF_UNIX / other */
    unsigned char addr[16];
    int port;
    char path[LG_TARGET_MAX];   /* unix: absolute path in the caller's view, or "@abstract" */
    int abstract;
    int unnamed;
    int relative;               /* unix: the name was relative to the caller's cwd */
};

/* Deny wins, then the first allow, then the default; see supervise_net_dest.c. */
void lg_net_judge_dest(const struct lg_tables *t, struct lg_sup *s, const struct lg_dest *d, int *effect,
                       int *rule, char *matched, size_t mlen);
int lg_net_quiet_unix(const struct lg_tables *t, const char *path);
int lg_net_private_loopback(const struct lg_sup *s, int sock, const struct lg_dest *d);
#define LG_PRIVATE_LOOPBACK "the sandbox's own loopback (private network namespace)"
int lg_net_parse_dest(int tid, const unsigned char *sa, size_t len, struct lg_dest *d);
void lg_net_format_dest(const struct lg_dest *d, char *out, size_t cap);

/* supervise_net_unix.c */
void lg_net_unix_object(struct lg_sup *s, int tid, unsigned long long id, const struct lg_dest *d,
                        int *effect, int *rule, unsigned int *flags, char *detail, size_t dlen,
                        int *pathfd);
int lg_net_unix_name_stable(struct lg_sup *s, int tid, unsigned long long id, const struct lg_dest *d);

/* supervise_net_act.c */
struct lg_net_job {
    struct lg_sup *s;
    unsigned long long id;
    int sock;                   /* our duplicate */
    int pathfd;                 /* unix: O_PATH fd of the socket file, or -1 */
    int is_send;
    int flags;
    unsigned char addr[sizeof(struct sockaddr_storage)];
    socklen_t addrlen;
    int has_addr;
    unsigned char *data;
    size_t datalen;
    unsigned char ctrl[LG_CTRL_MAX];
    size_t ctrllen;
    struct lg_creds creds;
    int dups[253];              /* our duplicates of SCM_RIGHTS fds, closed after the send */
    int ndups;
    struct lg_event ev;
};

int lg_net_grab_fd(struct lg_sup *s, unsigned long long id, int tid, int fd, int *err);
long long lg_net_perform(struct lg_net_job *j);
void lg_net_job_free(struct lg_net_job *j);
void *lg_net_worker(void *arg);
void lg_net_answer(struct lg_sup *s, unsigned long long id, struct lg_event *ev, long long val, int err,
                   int cont);
void lg_net_refuse(struct lg_sup *s, struct lg_net_job *j, struct lg_event *ev, int err);
int lg_net_read_msghdr(int tid, unsigned long long mptr, struct lg_net_job *j, unsigned long long *name_ptr,
                       unsigned long long *ranges, size_t *rlens, int *nr);
int lg_net_translate_control(struct lg_sup *s, unsigned long long id, int tid, struct lg_net_job *j,
                             int *dups, int *ndups);

/* supervise_net_mmsg.c: answers the call and frees j */
void lg_net_handle_mmsg(struct lg_sup *s, const struct seccomp_notif *req, struct lg_net_job *j,
                        struct lg_event *ev, const unsigned long long *ranges, const size_t *rlens,
                        int nranges);

#endif
