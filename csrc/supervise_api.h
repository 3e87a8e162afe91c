/* supervise_api.h: public interface of sandbox._supervise (cdef-clean, see csrc/build.py). */
#ifndef LANDGATE_SUPERVISE_API_H
#define LANDGATE_SUPERVISE_API_H

/* Placeholder until the supervise module lands: returns the module's API version. */
int lg_supervise_api_version(void);

#endif
