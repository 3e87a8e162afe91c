/* The symlink race (issue 13): another PROCESS (not a thread: a second thread
 * alone sends the exec down the verified path) re-aims LINK between an allowed
 * and a denied program with rename(2) while this one execs LINK.
 *   swap_exec N LINK ALLOWED DENIED MARKERDIR -> prints "attempts ran eacces other"
 * The denied program writes a marker into MARKERDIR if it ever runs. */
#include <stdlib.h>

#include "race.h"

static char *const *exec_args;  /* LINK MARKERDIR */

static void child(void *arg)
{
    (void)arg;
    execv(exec_args[0], exec_args);
}

int main(int argc, char **argv)
{
    if (argc != 6)
        return 2;
    const char *link = argv[2], *allowed = argv[3], *denied = argv[4];
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
    char *args[] = {argv[2], argv[5], NULL};
    exec_args = args;
    return race_run(atoi(argv[1]), race_fork, child, NULL, swapper);
}
