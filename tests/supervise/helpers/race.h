/* race.h: what the exec race helpers share.  The loop (race_exec, shm_race,
 * plain_race, swap_exec; vfork_race keeps its own, since a vfork child may not
 * return from the function that called vfork): N times, fork a child (with `forker`) that runs
 * `child` (which execs and never returns), wait for it and count how it
 * ended: exit 0 (the program ran), 126 (the exec was refused EACCES), or
 * anything else (killed as an exec race, another error).  Then the racer, if
 * any, is killed and reaped, and "attempts ran eacces other" printed.
 * A child whose exec fails exits with race_exec_failed(). */
#ifndef LG_TEST_RACE_H
#define LG_TEST_RACE_H

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
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

/* How one child ended, counted: exit 0 ran, 126 refused EACCES, else other. */
static inline void race_count(int st, int *ran, int *eacces, int *other)
{
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
        (*ran)++;
    else if (WIFEXITED(st) && WEXITSTATUS(st) == 126)
        (*eacces)++;
    else
        (*other)++;
}

/* The argv flipper (race_exec, vfork_race): a thread that swaps the filename
 * and argv[0] between the allowed and the denied program (same length) until
 * `stop` is set.  path and a0 on the heap (private anonymous memory): in .bss
 * they could share a page with the binary's file-backed .data, which alone
 * makes the exec racy; there only the flipping thread does. */
struct race_flip {
    char *path, *a0;
    const char *allowed, *denied;
    atomic_int stop;
};

static inline void *race_flip(void *arg)
{
    struct race_flip *f = arg;
    size_t n = strlen(f->allowed) + 1;
    while (!atomic_load(&f->stop)) {
        memcpy(f->path, f->denied, n);
        memcpy(f->a0, f->denied, n);
        memcpy(f->path, f->allowed, n);
        memcpy(f->a0, f->allowed, n);
    }
    return NULL;
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
        race_count(st, &ran, &eacces, &other);
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
