/* launch_int.h: what launch.c (the spawn) and launch_child.c (the sync protocol after
 * it) share.  Internal to the launch module, not part of the cdef. */
#ifndef LANDGATE_LAUNCH_INT_H
#define LANDGATE_LAUNCH_INT_H

#include <stdio.h>
#include <string.h>

#include "launch_wire.h"

/* "step: strerror(e)" into err (when given) and -e: the located message Python raises. */
static inline int lg_launch_report(char *err, int errlen, const char *step, int e)
{
    if (err && errlen > 0)
        snprintf(err, (size_t)errlen, "%s: %s", step, strerror(e));
    return -e;
}

#endif
