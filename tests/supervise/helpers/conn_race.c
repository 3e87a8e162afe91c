/* The address-swap race on connect: a thread flips the port in the sockaddr
 * between an allowed and a denied port while the main thread connects.
 *   conn_race N ALLOWED_PORT DENIED_PORT  -> prints "attempts connected refused" */
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static struct sockaddr_in sa;
static unsigned short p_ok, p_bad;
static atomic_int stop;

static void *flip(void *arg)
{
    (void)arg;
    while (!atomic_load(&stop)) {
        sa.sin_port = htons(p_bad);
        sa.sin_port = htons(p_ok);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 4)
        return 2;
    int n = atoi(argv[1]);
    p_ok = (unsigned short)atoi(argv[2]);
    p_bad = (unsigned short)atoi(argv[3]);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = htons(p_ok);
    pthread_t th;
    pthread_create(&th, NULL, flip, NULL);
    int ok = 0, refused = 0;
    for (int i = 0; i < n; i++) {
        int s = socket(AF_INET, SOCK_STREAM, 0);
        if (connect(s, (struct sockaddr *)&sa, sizeof sa) == 0)
            ok++;
        else if (errno == ECONNREFUSED)
            refused++;
        close(s);
    }
    atomic_store(&stop, 1);
    pthread_join(th, NULL);
    printf("%d %d %d\n", n, ok, refused);
    return 0;
}
