/* supervise_open.h: private to the open check (supervise_open.c: the loop
 * thread's resolution and judgement; supervise_opener.c: the opener threads;
 * supervise_open_path.c: the caller's view of a path). */
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
int lg_own_proc_prepare(struct open_job *j, const char *p, long long flags);
void *lg_open_worker(void *arg);
void lg_strip_own_root(char *p, int tgid, int tid);

#endif
