/* rootloop: the open check's per-open cost where the caller's root matters.
 *
 *   rootloop open N PATH       N x (open PATH + close) in one thread
 *   rootloop forkopen N PATH   N x (fork; the child opens PATH, closes it, _exits; wait)
 *
 * Prints the mean nanoseconds per iteration.  forkopen is the case the session's
 * one root saves most on: every child is a thread the supervisor never met, whose
 * /proc/TID/root it used to open (sessroot_ab.py). */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/wait.h>

static long long now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

int main(int argc, char **argv)
{
    if (argc != 4)
        return 2;
    int n = atoi(argv[2]);
    const char *path = argv[3];
    int forked = strcmp(argv[1], "forkopen") == 0;
    long long t0 = now_ns();
    for (int i = 0; i < n; i++) {
        if (!forked) {
            int fd = open(path, O_RDONLY | O_CLOEXEC);
            if (fd < 0)
                return 3;
            close(fd);
            continue;
        }
        pid_t p = fork();
        if (p < 0)
            return 4;
        if (p == 0) {
            int fd = open(path, O_RDONLY | O_CLOEXEC);
            _exit(fd < 0 ? 3 : 0);
        }
        int st;
        if (waitpid(p, &st, 0) != p || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
            return 5;
    }
    printf("%lld\n", (now_ns() - t0) / n);
    return 0;
}
