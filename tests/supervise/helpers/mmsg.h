/* mmsg.h: one sendmmsg of n datagrams, each to its own address (the part
 * mmsg.c and umsg.c share): addrs holds n addresses of addrlen bytes each.
 * Prints "sent K" or "refused ERRNO"; 0, or 2 when out of memory. */
#ifndef LG_TEST_MMSG_H
#define LG_TEST_MMSG_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static inline int send_batch(int s, int n, void *addrs, socklen_t addrlen)
{
    struct mmsghdr *mm = calloc((size_t)n, sizeof *mm);
    struct iovec *iov = calloc((size_t)n, sizeof *iov);
    char (*data)[16] = calloc((size_t)n, sizeof *data);
    if (!mm || !iov || !data)
        return 2;
    for (int i = 0; i < n; i++) {
        snprintf(data[i], sizeof data[i], "m%d", i);
        iov[i].iov_base = data[i];
        iov[i].iov_len = strlen(data[i]);
        mm[i].msg_hdr.msg_name = (char *)addrs + (size_t)i * addrlen;
        mm[i].msg_hdr.msg_namelen = addrlen;
        mm[i].msg_hdr.msg_iov = &iov[i];
        mm[i].msg_hdr.msg_iovlen = 1;
    }
    int r = sendmmsg(s, mm, (unsigned)n, 0);
    if (r < 0)
        printf("refused %d\n", errno);
    else
        printf("sent %d\n", r);
    return 0;
}

#endif
