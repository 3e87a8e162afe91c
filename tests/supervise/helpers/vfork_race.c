/* The vfork argv race: a vfork child execs a filename (and argv[0]) that a
 * second thread of its PARENT flips between an allowed and a denied program
 * (same length).  The child is a process of its own with one thread, and the
 * bytes are in private anonymous memory (the heap): only the check of the
 * tasks sharing its mm (lg_vfork_sharers_racy) can see the flipper.
 *   vfork_race N ALLOWED DENIED MARKERDIR [--no-flipper]
 *     -> prints "attempts ran_allowed eacces other"
 * --no-flipper: the twin, a single-threaded parent (nothing can change the
 * bytes while the child is in its exec).
 * The denied program writes a marker into MARKERDIR if it ever runs. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

static char *path, *a0;
static const char *allowed, *denied;
static atomic_int stop;

static void *flip(void *arg)
{
    (void)arg;
    size_t n = strlen(allowed) + 1;
    while (!atomic_load(&stop)) {
        memcpy(path, denied, n);
        memcpy(a0, denied, n);
        memcpy(path, allowed, n);
        memcpy(a0, allowed, n);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 5 || argc > 6 || strlen(argv[2]) != strlen(argv[3]))
        return 2;
    int flipper = !(argc == 6 && strcmp(argv[5], "--no-flipper") == 0);
    int n = atoi(argv[1]);
    allowed = argv[2];
    denied = argv[3];
    char *mdir = argv[4];
    path = malloc(4096);
    a0 = malloc(4096);
    if (!path || !a0)
        return 2;
    memcpy(path, allowed, strlen(allowed) + 1);
    memcpy(a0, allowed, strlen(allowed) + 1);
    pthread_t th;
    if (flipper && pthread_create(&th, NULL, flip, NULL) != 0)
        return 2;
    int ran = 0, eacces = 0, other = 0;
    for (int i = 0; i < n; i++) {
        char *args[] = {a0, mdir, NULL};
        pid_t c = vfork();
        if (c < 0)
            return 2;
        if (c == 0) {
            execv(path, args);
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
    if (flipper) {
        atomic_store(&stop, 1);
        pthread_join(th, NULL);
    }
    printf("%d %d %d %d\n", n, ran, eacces, other);
    return 0;
}
