/* An admitted process's pid, reused by a process that was never admitted.
 *
 *   pid_reuse [--self] PROG ARG... -- CHILD ARG...
 *
 * Forks A, which execs PROG ARG... (the policy admits it, with inherit) and
 * ends; its pid X is then free.  Forks again, writing X - 1 to
 * /proc/sys/kernel/ns_last_pid before each fork, until a child Q gets pid X
 * (children that do not, end at once).  Q has never exec'd anything: it is
 * not the process that was admitted.  Q forks C, whose parent is pid X again,
 * and C execs CHILD ARG... (no rule of its own: it runs only if it inherits).
 * Prints "reused X" once Q holds X, then exits with C's status (126 when the
 * exec was refused).  With --self, Q execs CHILD ARG... itself (the caller is
 * pid X: its exec meets what the supervisor kept for A's pid).  2: usage; 3: A failed; 4: no fork got X in the tries
 * (other processes took it each time); 5: ns_last_pid not writable (needs
 * root: CAP_CHECKPOINT_RESTORE). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int set_last_pid(pid_t pid)
{
    char buf[32];
    int fd = open("/proc/sys/kernel/ns_last_pid", O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int n = snprintf(buf, sizeof buf, "%d", (int)pid);
    int ok = write(fd, buf, (size_t)n) == n;
    close(fd);
    return ok ? 0 : -1;
}

int main(int argc, char **argv)
{
    int self = argc > 1 && strcmp(argv[1], "--self") == 0;
    if (self) {
        argv++;
        argc--;
    }
    int sep = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0) {
            sep = i;
            break;
        }
    }
    if (sep < 2 || sep + 1 >= argc)
        return 2;
    argv[sep] = NULL;
    char **prog = argv + 1, **child = argv + sep + 1;

    pid_t x = fork();
    if (x < 0)
        return 3;
    if (x == 0) {
        execv(prog[0], prog);
        _exit(127);
    }
    int st;
    if (waitpid(x, &st, 0) != x || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
        return 3;
    fflush(stdout);
    for (int tries = 0; tries < 20000; tries++) {
        if (set_last_pid(x - 1) < 0)
            return 5;
        pid_t q = fork();
        if (q < 0)
            return 4;
        if (q == 0) {
            if (getpid() != x)
                _exit(99);
            printf("reused %d\n", (int)x);
            fflush(stdout);
            if (self) {
                execv(child[0], child);
                _exit(errno == EACCES ? 126 : 127);
            }
            pid_t c = fork();
            if (c < 0)
                _exit(98);
            if (c == 0) {
                execv(child[0], child);
                _exit(errno == EACCES ? 126 : 127);
            }
            int cst;
            if (waitpid(c, &cst, 0) != c)
                _exit(98);
            _exit(WIFEXITED(cst) ? WEXITSTATUS(cst) : 97);
        }
        if (waitpid(q, &st, 0) != q)
            return 4;
        if (WIFEXITED(st) && WEXITSTATUS(st) == 99)
            continue;
        return WIFEXITED(st) ? WEXITSTATUS(st) : 97;
    }
    return 4;
}
