/* The argv race (DESIGN §2): a thread flips the filename and argv[0] between
 * an allowed and a denied program (same length) while the main thread execs.
 *   race_exec N ALLOWED DENIED MARKERDIR   -> prints "attempts ran_allowed eacces other"
 * The denied program writes a marker into MARKERDIR if it ever runs. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "race.h"

/* On the heap (private anonymous memory): in .bss they could share a page with
 * the binary's file-backed .data, which alone makes the exec racy; here only the
 * second thread does. */
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

/* In the child: start the flipping thread, then exec. */
static void child(void *mdir)
{
    memcpy(path, allowed, strlen(allowed) + 1);
    memcpy(a0, allowed, strlen(allowed) + 1);
    pthread_t th;
    pthread_create(&th, NULL, flip, NULL);
    char *args[] = {a0, mdir, NULL};
    execv(path, args);
}

int main(int argc, char **argv)
{
    if (argc != 5 || strlen(argv[2]) != strlen(argv[3]))
        return 2;
    allowed = argv[2];
    denied = argv[3];
    path = malloc(4096);
    a0 = malloc(4096);
    if (!path || !a0)
        return 2;
    return race_run(atoi(argv[1]), race_fork, child, argv[4], 0);
}
