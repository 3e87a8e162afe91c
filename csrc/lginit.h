/* lginit.h: what the init program's two files share (csrc/lginit.c: main, init's
 * steps, reap; csrc/lginit_agent.c: the agent's steps).  Internal. */
#ifndef LANDGATE_LGINIT_H
#define LANDGATE_LGINIT_H

#include <sys/types.h>

#include "launch_api.h"

/* ERROR(step, err) to landgate on the sync socket, then _exit(125). */
void lg_fail(int sock, const char *step, int err) __attribute__((noreturn));

/* The agent, forked by init: restrict, report, wait for go, execve. */
void lg_agent_main(const struct lg_spawn_spec *s, int sock, int go_rd, pid_t init_pid)
    __attribute__((noreturn));

#endif
