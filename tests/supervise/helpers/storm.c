/* Load: P processes, each doing K rounds of (fork + exec PROG) and a connect
 * to 127.0.0.1:PORT.   storm P K PROG PORT -> prints "execs_ok connects_ok" */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc != 5)
        return 2;
    int P = atoi(argv[1]), K = atoi(argv[2]), port = atoi(argv[4]);
    int fds[2];
    if (pipe(fds) < 0)
        return 3;
    for (int p = 0; p < P; p++) {
        if (fork() == 0) {
            int e = 0, c = 0;
            for (int k = 0; k < K; k++) {
                pid_t pid = fork();
                if (pid == 0) {
                    char *args[] = {argv[3], NULL};
                    execv(argv[3], args);
                    _exit(127);
                }
                int st;
                waitpid(pid, &st, 0);
                if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
                    e++;
                struct sockaddr_in sa = {0};
                sa.sin_family = AF_INET;
                sa.sin_port = htons((unsigned short)port);
                sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
                int s = socket(AF_INET, SOCK_STREAM, 0);
                if (connect(s, (struct sockaddr *)&sa, sizeof sa) == 0)
                    c++;
                close(s);
            }
            int v[2] = {e, c};
            if (write(fds[1], v, sizeof v) != (ssize_t)sizeof v)
                _exit(4);
            _exit(0);
        }
    }
    close(fds[1]);
    long te = 0, tc = 0;
    int v[2];
    while (read(fds[0], v, sizeof v) == (ssize_t)sizeof v) {
        te += v[0];
        tc += v[1];
    }
    while (wait(NULL) > 0)
        ;
    printf("%ld %ld\n", te, tc);
    return 0;
}
