/* supervise_fsop.h: shared by supervise_fsop.c (read and decide on the loop thread,
 * with supervise_fsop_name.c resolving and supervise_fsop_judge.c judging) and
 * supervise_fsop_do.c (perform on an opener thread). */
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

/* supervise_fsop_name.c: resolution in the caller's view (fds returned are ours to close) */
int lg_fsop_base_fd(struct lg_sup *s, unsigned long long id, int tid, int dirfd, const char *path);
int lg_fsop_walk(const struct lg_creds *c, int base, const char *path, unsigned long long flags);
int lg_fsop_fd_path(int fd, char *out, size_t cap);
int lg_fsop_resolve_name(struct lg_sup *s, unsigned long long id, int tid, const struct lg_creds *c,
                         int dirfd, const char *path, struct fs_name *n);

/* supervise_fsop_judge.c: 1 (refused, *rule set) or 0; lg_fsop_tree_op also -errno */
int lg_fsop_name_denied(const struct lg_tables *t, const char *real, int ancestors, int *rule);
int lg_fsop_mkdir_denied(const struct lg_tables *t, const struct fs_name *n, int *rule);
int lg_fsop_gitcfg_eligible(const struct lg_tables *t, const char *real);
int lg_fsop_dir_contents_covered(const struct lg_tables *t, int dirfd, const char *name,
                                 const char *real, int *rule);
void lg_fsop_keep_identity(struct lg_sup *s, int dirfd, const char *name, const char *real);
int lg_fsop_tree_op(struct lg_sup *s, const struct fsop_job *j, const struct fs_name *made,
                    int *rule);
int lg_fsop_tree_like(const struct fsop_job *j);

#endif
