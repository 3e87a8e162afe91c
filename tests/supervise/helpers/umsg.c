/* sendmmsg of unix datagrams: umsg N OKPATH LASTPATH -- N datagrams from an
 * unbound AF_UNIX datagram socket, the first N-1 to OKPATH and the last to
 * LASTPATH, in one sendmmsg call.  Prints "sent K" or "refused ERRNO". */
#define _GNU_SOURCE
#include <stdlib.h>
#include <sys/un.h>

#include "mmsg.h"

int main(int argc, char **argv)
{
    if (argc < 4)
        return 2;
    int n = atoi(argv[1]);
    int s = socket(AF_UNIX, SOCK_DGRAM, 0);
    if (s < 0 || n <= 0)
        return 2;
    struct sockaddr_un *sa = calloc((size_t)n, sizeof *sa);
    if (!sa)
        return 2;
    for (int i = 0; i < n; i++) {
        sa[i].sun_family = AF_UNIX;
        snprintf(sa[i].sun_path, sizeof sa[i].sun_path, "%s", i == n - 1 ? argv[3] : argv[2]);
    }
    return send_batch(s, n, sa, sizeof *sa);
}
