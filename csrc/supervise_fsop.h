/* supervise_fsop.h: shared by supervise_fsop.c (read, resolve, judge on the loop
 * thread) and supervise_fsop_do.c (perform on an opener thread). */
#ifndef LANDGATE_SUPERVISE_FSOP_H
#define LANDGATE_SUPERVISE_FSOP_H

#include <limits.h>
#include <sys/syscall.h>

#include "supervise_int.h"

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE 1
#endif
#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE 2
#endif

#define GITCFG_READ_MAX (4 * 1024 * 1024)

/* One name the operation makes or moves, resolved in the caller's view. */
struct fs_name {
    int pfd;                  /* its parent directory (O_PATH), or -1 */
    char last[NAME_MAX + 2];  /* the last component as the caller spelled it */
    char real[PATH_MAX];      /* the parent's real path + "/" + last, no trailing '/' */
};

struct fsop_job {
    struct lg_sup *s;
    unsigned long long id;
    int nr;
    struct lg_creds creds;
    struct fs_name a;         /* rename/link: the source; else the name made */
    struct fs_name b;         /* rename/link/symlink: the destination */
    int obj;                  /* link / truncate: the object itself (O_PATH); -1 */
    unsigned long long arg;   /* mode / length / rename flags */
    unsigned long long dev;   /* mknod */
    int gitcfg;               /* rename judged on content */
    int alias_access;         /* link: the accesses denied on the object (its new name joins them) */
    int alias_rule;           /* link: the rule denying them */
    char target[PATH_MAX];    /* symlink: what it points to */
    struct lg_event ev;
};

static inline int lg_is_rename(int nr)
{
    return nr == SYS_rename || nr == SYS_renameat || nr == SYS_renameat2;
}

static inline int lg_is_link(int nr)
{
    return nr == SYS_link || nr == SYS_linkat;
}

void lg_fsop_job_free(struct fsop_job *j);
void lg_fsop_answer(struct lg_sup *s, unsigned long long id, struct lg_event *ev, long long val,
                    int err);
void *lg_fsop_worker(void *arg);

#endif
