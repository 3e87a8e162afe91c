/* The shared-memory argv race: the filename (and argv[0]) sit in a MAP_SHARED
 * page that another PROCESS (not a thread: the caller stays single-threaded)
 * flips between an allowed and a denied program while the caller execs.  The
 * page right before it is private, and argv[1] (the marker directory) ends
 * there, a few bytes from the filename: the supervisor joins nearby ranges, and
 * a joined range that spans the two mappings must still be seen as racy.
 *   shm_race N ALLOWED DENIED MARKERDIR   -> prints "attempts ran_allowed eacces other"
 * The denied program writes a marker into MARKERDIR if it ever runs. */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "race.h"

static char *shared, *mdir;

static void child(void *arg)
{
    (void)arg;
    char *args[] = {shared, mdir, NULL};
    execv(shared, args);
}

int main(int argc, char **argv)
{
    if (argc != 5 || strlen(argv[2]) != strlen(argv[3]) || strlen(argv[4]) >= 2048)
        return 2;
    const char *allowed = argv[2], *denied = argv[3];
    size_t len = strlen(allowed) + 1;
    char *base = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED)
        return 2;
    shared = mmap(base + 4096, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED,
                  -1, 0);
    if (shared != base + 4096)
        return 2;
    size_t ml = strlen(argv[4]) + 1;
    mdir = base + 4096 - ml;  /* ends where the shared page begins */
    memcpy(mdir, argv[4], ml);
    memcpy(shared, allowed, len);
    pid_t flipper = fork();
    if (flipper < 0)
        return 2;
    if (flipper == 0) {
        for (;;) {
            memcpy(shared, denied, len);
            memcpy(shared, allowed, len);
        }
    }
    return race_run(atoi(argv[1]), race_fork, child, NULL, flipper);
}
