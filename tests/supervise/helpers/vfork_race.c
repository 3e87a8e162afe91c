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

#include "race.h"

static struct race_flip flip;

int main(int argc, char **argv)
{
    if (argc < 5 || argc > 6 || strlen(argv[2]) != strlen(argv[3]))
        return 2;
    int flipper = !(argc == 6 && strcmp(argv[5], "--no-flipper") == 0);
    int n = atoi(argv[1]);
    flip.allowed = argv[2];
    flip.denied = argv[3];
    char *mdir = argv[4];
    flip.path = malloc(4096);
    flip.a0 = malloc(4096);
    if (!flip.path || !flip.a0)
        return 2;
    memcpy(flip.path, flip.allowed, strlen(flip.allowed) + 1);
    memcpy(flip.a0, flip.allowed, strlen(flip.allowed) + 1);
    pthread_t th;
    if (flipper && pthread_create(&th, NULL, race_flip, &flip) != 0)
        return 2;
    int ran = 0, eacces = 0, other = 0;
    for (int i = 0; i < n; i++) {
        char *args[] = {flip.a0, mdir, NULL};
        pid_t c = vfork();
        if (c < 0)
            return 2;
        if (c == 0) {
            execv(flip.path, args);
            race_exec_failed();
        }
        int st;
        if (waitpid(c, &st, 0) < 0)
            return 2;
        race_count(st, &ran, &eacces, &other);
    }
    if (flipper) {
        atomic_store(&flip.stop, 1);
        pthread_join(th, NULL);
    }
    printf("%d %d %d %d\n", n, ran, eacces, other);
    return 0;
}
