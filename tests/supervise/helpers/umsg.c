/* sendmmsg of unix datagrams: umsg N OKPATH LASTPATH -- N datagrams from an
 * unbound AF_UNIX datagram socket, the first N-1 to OKPATH and the last to
 * LASTPATH, in one sendmmsg call.  Prints "sent K" or "refused ERRNO". */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc < 4)
        return 2;
    int n = atoi(argv[1]);
    int s = socket(AF_UNIX, SOCK_DGRAM, 0);
    if (s < 0 || n <= 0)
        return 2;
    struct mmsghdr *mm = calloc((size_t)n, sizeof *mm);
    struct sockaddr_un *sa = calloc((size_t)n, sizeof *sa);
    struct iovec *iov = calloc((size_t)n, sizeof *iov);
    char (*data)[16] = calloc((size_t)n, sizeof *data);
    if (!mm || !sa || !iov || !data)
        return 2;
    for (int i = 0; i < n; i++) {
        sa[i].sun_family = AF_UNIX;
        snprintf(sa[i].sun_path, sizeof sa[i].sun_path, "%s", i == n - 1 ? argv[3] : argv[2]);
        snprintf(data[i], sizeof data[i], "m%d", i);
        iov[i].iov_base = data[i];
        iov[i].iov_len = strlen(data[i]);
        mm[i].msg_hdr.msg_name = &sa[i];
        mm[i].msg_hdr.msg_namelen = sizeof sa[i];
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
