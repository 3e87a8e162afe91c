/* lginit.h: what the init program's files share (csrc/lginit.c: main, the fork, reap;
 * csrc/lginit_ns.c: init's namespace steps; csrc/lginit_agent.c: the agent's steps).
 * Internal. */
#ifndef LANDGATE_LGINIT_H
#define LANDGATE_LGINIT_H

#include <sys/types.h>

#include "launch_api.h"

/* ERROR(step, err) to landgate on the sync socket, then _exit(125). */
void lg_fail(int sock, const char *step, int err) __attribute__((noreturn));

/* init's namespace steps, in order (csrc/lginit_ns.c). */
void lg_init_ns_steps(const struct lg_spawn_spec *s, int sock);

/* The agent, forked by init: restrict, report, wait for go, execve. */
void lg_agent_main(const struct lg_spawn_spec *s, int sock, int go_rd, pid_t init_pid)
    __attribute__((noreturn));

#endif
