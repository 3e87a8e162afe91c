/* supervise_exec.h: internals of the exec check's parts, shared by supervise_exec.c (the
 * handler: decide, answer, bookkeeping) and the parts split from it, one job each:
 *   supervise_exec_read.c    the filename and argv, read from the caller's memory
 *   supervise_exec_admit.c   the admitted processes and inheritance
 *   supervise_exec_verify.c  the slow path's worker (the new image at PTRACE_EVENT_EXEC)
 *   supervise_exec_head.c, supervise_exec_names.c  what is kept between execs: a file's
 *                            head by its version, a stable walk's names under watches
 * Not part of the cdef; nothing here leaves the module. */
#ifndef LANDGATE_SUPERVISE_EXEC_H
#define LANDGATE_SUPERVISE_EXEC_H

#include "supervise_int.h"

#define LG_FNAME_MAX 4096  /* an exec's filename, NUL included (the kernel's PATH_MAX) */

/* supervise_exec_read.c: remote addresses and lengths of what the kernel will copy */
struct lg_exec_ranges {
    unsigned long long addr[LG_RANGES];
    size_t len[LG_RANGES];
    int n;
    int overflow;  /* more than LG_RANGES: the handler takes the slow path */
};
int lg_exec_read(struct lg_sup *s, int tid, unsigned long long fptr, unsigned long long aptr,
                 char *fname, size_t *flen, int *frc, struct lg_exec_ranges *r);

/* supervise_exec_admit.c */
void lg_exec_admit(struct lg_sup *s, int pid, unsigned long long start, int inherit);
int lg_exec_inherited(struct lg_sup *s, int pid, int ppid, unsigned long long start);

/* supervise_exec_verify.c */
int lg_exec_verify_start(struct lg_sup *s, unsigned long long id, int tid, struct lg_exec_obj *obj,
                         const struct lg_event *ev);

/* supervise_exec_head.c: 1 for a file system whose ctime (and directory events) the
 * kernel keeps on this machine, else 0 */
int lg_exec_local_fs(int fd);

/* supervise_exec_names.c */
void lg_exec_names_fini(struct lg_sup *s);

#endif
