/* launch_api.h: public interface of sandbox._launch (cdef-clean, see csrc/build.py). */
#ifndef LANDGATE_LAUNCH_API_H
#define LANDGATE_LAUNCH_API_H

/* Placeholder until the launch module lands: returns the module's API version. */
int lg_launch_api_version(void);

#endif
