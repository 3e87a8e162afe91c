/* race.h: the loop the exec race helpers share (race_exec, shm_race,
 * plain_race, swap_exec): N times, fork a child (with `forker`) that runs
 * `child` (which execs and never returns), wait for it and count how it
 * ended: exit 0 (the program ran), 126 (the exec was refused EACCES), or
 * anything else (killed as an exec race, another error).  Then the racer, if
 * any, is killed and reaped, and "attempts ran eacces other" printed.
 * A child whose exec fails exits with race_exec_failed(). */
#ifndef LG_TEST_RACE_H
#define LG_TEST_RACE_H

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

static inline void race_exec_failed(void)
{
    _exit(errno == EACCES ? 126 : 127);
}

static inline pid_t race_fork(void)
{
    return fork();
}

/* 0, or 2 when a fork or wait failed (the helper's usage error status). */
static inline int race_run(int n, pid_t (*forker)(void), void (*child)(void *), void *arg,
                           pid_t racer)
{
    int ran = 0, eacces = 0, other = 0, rc = 0;
    for (int i = 0; i < n; i++) {
        pid_t c = forker();
        if (c < 0) {
            rc = 2;
            break;
        }
        if (c == 0) {
            child(arg);
            race_exec_failed();
        }
        int st;
        if (waitpid(c, &st, 0) < 0) {
            rc = 2;
            break;
        }
        if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
            ran++;
        else if (WIFEXITED(st) && WEXITSTATUS(st) == 126)
            eacces++;
        else
            other++;
    }
    if (racer > 0) {
        kill(racer, SIGKILL);
        waitpid(racer, NULL, 0);
    }
    if (rc == 0)
        printf("%d %d %d %d\n", n, ran, eacces, other);
    return rc;
}

#endif
