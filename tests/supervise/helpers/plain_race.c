/* Races on an exec of a PLAIN file (no symlink, no #! line: the supervisor's
 * fast path before issue 13c), from another process while this one execs:
 *   plain_race cwd N DIR_A DIR_B MARKERDIR
 *     a CLONE_FS sibling flips the shared working directory between DIR_A and
 *     DIR_B while a CLONE_FS child execs the relative name "./cat"
 *     (DIR_A/cat: an allowed program; DIR_B/cat: a link to the denied one);
 *   plain_race swap N TARGET PLAIN DENIED MARKERDIR
 *     a sibling renames, in turn, a hard link of the regular file PLAIN and a
 *     symlink to DENIED over TARGET while this one execs TARGET.
 * Prints "attempts ran eacces other".  The denied program leaves a marker in
 * MARKERDIR if it ever runs. */
#define _GNU_SOURCE
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>

#include "race.h"

static pid_t fork_fs(void)
{
    /* like fork(), but the child shares the parent's fs_struct (cwd, root) */
    return (pid_t)syscall(SYS_clone, CLONE_FS | SIGCHLD, 0, 0, 0, 0);
}

static char *exec_args[3];  /* the name, MARKERDIR */

static void child(void *arg)
{
    (void)arg;
    execv(exec_args[0], exec_args);
}

int main(int argc, char **argv)
{
    if (argc < 3)
        return 2;
    int cwd_mode = strcmp(argv[1], "cwd") == 0;
    if ((cwd_mode && argc != 6) || (!cwd_mode && argc != 7))
        return 2;
    pid_t racer;
    if (cwd_mode) {
        const char *a = argv[3], *b = argv[4];
        exec_args[0] = "./cat";
        exec_args[1] = argv[5];
        if (chdir(a) != 0)
            return 2;
        racer = fork_fs();
        if (racer == 0) {
            for (;;) {
                if (chdir(b) != 0 || chdir(a) != 0)
                    _exit(3);
            }
        }
    } else {
        const char *target = argv[3], *plain = argv[4], *denied = argv[5];
        exec_args[0] = argv[3];
        exec_args[1] = argv[6];
        char tmp[4096];
        snprintf(tmp, sizeof tmp, "%s.swap", target);
        racer = fork();
        if (racer == 0) {
            for (;;) {
                unlink(tmp);
                if (symlink(denied, tmp) == 0)
                    rename(tmp, target);
                unlink(tmp);
                if (link(plain, tmp) == 0)
                    rename(tmp, target);
            }
        }
    }
    if (racer < 0)
        return 2;
    return race_run(atoi(argv[2]), cwd_mode ? fork_fs : race_fork, child, NULL, racer);
}
