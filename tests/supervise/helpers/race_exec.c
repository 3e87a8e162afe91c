/* The argv race (DESIGN §2): a thread flips the filename and argv[0] between
 * an allowed and a denied program (same length) while the main thread execs.
 *   race_exec N ALLOWED DENIED MARKERDIR [miss-first]
 *                                -> prints "attempts ran_allowed eacces other"
 * The denied program writes a marker into MARKERDIR if it ever runs.  With
 * miss-first, each child first execs a name that does not exist, while it is
 * still single-threaded (the supervisor then keeps its pidfd for the next ask,
 * supervise_caller.c), and only then starts the flipping thread and execs. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "race.h"

static struct race_flip flip;
static int miss_first;

/* In the child: start the flipping thread, then exec. */
static void child(void *mdir)
{
    memcpy(flip.path, flip.allowed, strlen(flip.allowed) + 1);
    memcpy(flip.a0, flip.allowed, strlen(flip.allowed) + 1);
    if (miss_first) {
        char *none[] = {"kept", NULL};
        execv("/nonexistent/kept-pidfd", none);  /* ENOENT, answered by the supervisor */
    }
    pthread_t th;
    pthread_create(&th, NULL, race_flip, &flip);
    char *args[] = {flip.a0, mdir, NULL};
    execv(flip.path, args);
}

int main(int argc, char **argv)
{
    if (argc < 5 || argc > 6 || strlen(argv[2]) != strlen(argv[3]))
        return 2;
    miss_first = argc == 6 && strcmp(argv[5], "miss-first") == 0;
    flip.allowed = argv[2];
    flip.denied = argv[3];
    flip.path = malloc(4096);
    flip.a0 = malloc(4096);
    if (!flip.path || !flip.a0)
        return 2;
    return race_run(atoi(argv[1]), race_fork, child, argv[4], 0);
}
