/* loops.c: timed loops for bench_supervise.py; prints mean ns per iteration.
 *   loops exec N PROG        fork + exec PROG + wait
 *   loops pathexec N NAME    fork + execvp NAME + wait, with PATH=/nonexistent/a:
 *                            /nonexistent/b:/nonexistent/c:/bin (a shell's $PATH search:
 *                            three misses, then the program, all from one process)
 *   loops connect N PORT     socket + blocking connect to 127.0.0.1:PORT + close
 *   loops nbconnect N PORT   the same with a non-blocking socket
 *   loops open N PATH        open + close */
#include <arpa/inet.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char **argv)
{
    if (argc != 4)
        return 2;
    int n = atoi(argv[2]);
    const char *mode = argv[1];
    long long t0 = now_ns();
    for (int i = 0; i < n; i++) {
        if (strcmp(mode, "pathexec") == 0) {
            pid_t p = fork();
            if (p == 0) {
                char *a[] = {argv[3], NULL};
                setenv("PATH", "/nonexistent/a:/nonexistent/b:/nonexistent/c:/bin", 1);
                execvp(argv[3], a);
                _exit(127);
            }
            waitpid(p, NULL, 0);
        } else if (strcmp(mode, "exec") == 0) {
            pid_t p = fork();
            if (p == 0) {
                char *a[] = {argv[3], NULL};
                execv(argv[3], a);
                _exit(127);
            }
            waitpid(p, NULL, 0);
        } else if (strcmp(mode, "connect") == 0 || strcmp(mode, "nbconnect") == 0) {
            struct sockaddr_in sa = {0};
            sa.sin_family = AF_INET;
            sa.sin_port = htons((unsigned short)atoi(argv[3]));
            sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            int s = socket(AF_INET, SOCK_STREAM | (mode[0] == 'n' ? SOCK_NONBLOCK : 0), 0);
            connect(s, (struct sockaddr *)&sa, sizeof sa);
            close(s);
        } else {
            int fd = open(argv[3], O_RDONLY);
            close(fd);
        }
    }
    printf("%lld\n", (now_ns() - t0) / n);
    return 0;
}
