/* supervise_open.h: private to the open check (supervise_open.c: the notification
 * and the path as spelled; supervise_open_object.c: the loop thread's resolution and
 * judgement of the object; supervise_opener.c: the opener threads' open and the answer;
 * supervise_open_init.c: the openers' set-up; supervise_open_ownproc.c: the caller's
 * own /proc entries; supervise_open_path.c: the caller's view of a path). */
#ifndef LG_SUPERVISE_OPEN_H
#define LG_SUPERVISE_OPEN_H

#include <limits.h>

#include "supervise_int.h"

struct open_job {
    struct lg_sup *s;
    unsigned long long id;
    int obj;            /* the judged object (O_PATH, or the caller's own fd), or -1 */
    int parent;         /* O_CREAT of a missing name / O_TMPFILE: the parent directory */
    char name[NAME_MAX + 1];
    long long flags;    /* the caller's open flags */
    unsigned mode;
    int access;
    struct lg_creds creds;
    struct lg_event ev;
    int own_dir;        /* its own /proc/PID entry: that directory (O_PATH), or -1 */
    int own_fd;         /* ... and the entry opened by the loop thread, or -1 (own_proc_prepare) */
    int bench_seq;      /* its sample slot in a bench build (supervise_open_bench.h), or -1 */
};


void lg_open_job_free(struct open_job *j);
void lg_open_record(struct lg_sup *s, const struct lg_event *ev);
void lg_open_answer_as(struct lg_sup *s, unsigned long long id, struct lg_event *ev, int err,
                       int told);
void lg_open_answer(struct lg_sup *s, unsigned long long id, struct lg_event *ev, int err);
/* Flags carried over when the judged object is reopened / created.  Not
 * O_CREAT/O_EXCL (handled by the resolution), not O_NOFOLLOW/O_DIRECTORY
 * (checked on the walk; they would break the /proc/self/fd reopen). */
#define LG_REOPEN_FLAGS (O_ACCMODE | O_APPEND | O_NONBLOCK | O_DSYNC | O_SYNC | O_DIRECT | O_NOATIME | O_LARGEFILE)

void lg_open_object(struct lg_sup *s, const struct seccomp_notif *req, struct lg_event *ev,
                    int dirfd, const char *path, long long flags, unsigned mode,
                    unsigned long long resolve, int access, int simulate, const char *abs,
                    int abs_bits, int seq);
int lg_own_proc_prepare(struct open_job *j, const char *p, long long flags);
int lg_own_proc_granted(const struct open_job *j);
void *lg_open_worker(void *arg);
void lg_strip_own_root(char *p, int tgid, int tid);

#endif
