/* The argv race (DESIGN §2): a thread flips the filename and argv[0] between
 * an allowed and a denied program (same length) while the main thread execs.
 *   race_exec N ALLOWED DENIED MARKERDIR   -> prints "attempts ran_allowed eacces other"
 * The denied program writes a marker into MARKERDIR if it ever runs. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "race.h"

static struct race_flip flip;

/* In the child: start the flipping thread, then exec. */
static void child(void *mdir)
{
    memcpy(flip.path, flip.allowed, strlen(flip.allowed) + 1);
    memcpy(flip.a0, flip.allowed, strlen(flip.allowed) + 1);
    pthread_t th;
    pthread_create(&th, NULL, race_flip, &flip);
    char *args[] = {flip.a0, mdir, NULL};
    execv(flip.path, args);
}

int main(int argc, char **argv)
{
    if (argc != 5 || strlen(argv[2]) != strlen(argv[3]))
        return 2;
    flip.allowed = argv[2];
    flip.denied = argv[3];
    flip.path = malloc(4096);
    flip.a0 = malloc(4096);
    if (!flip.path || !flip.a0)
        return 2;
    return race_run(atoi(argv[1]), race_fork, child, argv[4], 0);
}
