/* The symlink race (issue 13): another PROCESS (not a thread: a second thread
 * alone sends the exec down the verified path) re-aims LINK between an allowed
 * and a denied program with rename(2) while this one execs LINK.
 *   swap_exec N LINK ALLOWED DENIED MARKERDIR -> prints "attempts ran eacces other"
 * The denied program writes a marker into MARKERDIR if it ever runs. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc != 6)
        return 2;
    int n = atoi(argv[1]);
    const char *link = argv[2], *allowed = argv[3], *denied = argv[4], *mdir = argv[5];
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.swap", link);
    pid_t swapper = fork();
    if (swapper < 0)
        return 2;
    if (swapper == 0) {
        for (;;) {
            unlink(tmp);
            if (symlink(denied, tmp) == 0)
                rename(tmp, link);
            unlink(tmp);
            if (symlink(allowed, tmp) == 0)
                rename(tmp, link);
        }
    }
    int ran = 0, eacces = 0, other = 0;
    for (int i = 0; i < n; i++) {
        pid_t c = fork();
        if (c < 0)
            return 2;
        if (c == 0) {
            char *args[] = {(char *)link, (char *)mdir, NULL};
            execv(link, args);
            _exit(errno == EACCES ? 126 : 127);
        }
        int st;
        if (waitpid(c, &st, 0) < 0)
            return 2;
        if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
            ran++;
        else if (WIFEXITED(st) && WEXITSTATUS(st) == 126)
            eacces++;
        else
            other++;
    }
    kill(swapper, SIGKILL);
    waitpid(swapper, NULL, 0);
    printf("%d %d %d %d\n", n, ran, eacces, other);
    return 0;
}
