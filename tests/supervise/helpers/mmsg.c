/* sendmmsg of a batch: mmsg N OKPORT LASTPORT -- N datagrams to 127.0.0.1,
 * the first N-1 to OKPORT and the last to LASTPORT, in one sendmmsg call.
 * Prints "sent K" or "refused ERRNO". */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>

#include "mmsg.h"

int main(int argc, char **argv)
{
    if (argc < 4)
        return 2;
    int n = atoi(argv[1]);
    int ok = atoi(argv[2]), last = atoi(argv[3]);
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    if (s < 0 || n <= 0)
        return 2;
    struct sockaddr_in *sa = calloc((size_t)n, sizeof *sa);
    if (!sa)
        return 2;
    for (int i = 0; i < n; i++) {
        sa[i].sin_family = AF_INET;
        sa[i].sin_port = htons((unsigned short)(i == n - 1 ? last : ok));
        sa[i].sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    }
    return send_batch(s, n, sa, sizeof *sa);
}
