/* supervise_fsop_judge.c: may this name be made, moved or linked?  (Step 2 of
 * supervise_fsop.c's design, on the loop thread, over the names supervise_fsop_name.c
 * resolved.)
 *
 * Each test reads the one compiled decision (lg_judge_path, the fsop rows, the trees
 * denied whole): a name a file_write deny or an `ancestor` row covers; mkdir of a
 * directory covered with all it will contain; a rename onto a git config file judged
 * on content instead; a directory whose contents a rule covers by position; the
 * identity a denied source keeps.  Apart from the handler (which decodes the syscall
 * and answers) so that the rules of what is refused read in one place.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "kernel_compat.h"
#include "supervise_fsop.h"
#include "supervise_tree.h"

/* Which fsop rows of `kind` match path: the first one's rule index, or -2. */
static int fsop_match(const struct lg_tables *t, int kind, const char *path)
{
    for (int i = 0; i < t->n_fsop; i++)
        if (t->fsop[i].kind == kind && lg_glob_match(t->fsop[i].glob, path, strlen(path), 1))
            return t->fsop[i].rule;
    return -2;
}

/* May a name be made here?  0 = yes; else 1 with *rule set (the deny rule or
 * the protected path beneath it). */
int lg_fsop_name_denied(const struct lg_tables *t, const char *real, int ancestors, int *rule)
{
    if (lg_judge_path(t, real, strlen(real), LG_ACCESS_WRITE, rule) & LG_ACCESS_WRITE)
        return 1;
    int r = ancestors ? fsop_match(t, LG_FSOP_ANCESTOR, real) : -2;
    if (r != -2) {
        *rule = r;
        return 1;
    }
    return 0;
}

/* mkdir: a directory that a rule covers together with everything beneath it
 * may be made empty (what is made in it is judged by name); inside a
 * denied directory, or one a plain-name rule denies, it may not. */
int lg_fsop_mkdir_denied(const struct lg_tables *t, const struct fs_name *n, int *rule)
{
    if (!lg_fsop_name_denied(t, n->real, 0, rule))
        return 0;
    char probe[PATH_MAX + 16];
    int tmp;
    size_t rl = strlen(n->real);
    const char *cut = strrchr(n->real, '/');
    size_t pl = cut ? (size_t)(cut - n->real) : 0;
    snprintf(probe, sizeof probe, "%.*s", (int)(pl ? pl : 1), n->real);
    if (lg_judge_path(t, probe, strlen(probe), LG_ACCESS_WRITE, &tmp) & LG_ACCESS_WRITE)
        return 1;  /* the parent is denied: this is inside a protected tree */
    snprintf(probe, sizeof probe, "%.*s/.landgate-probe", (int)rl, n->real);
    return (lg_judge_path(t, probe, strlen(probe), LG_ACCESS_WRITE, &tmp) & LG_ACCESS_WRITE) ? 0 : 1;
}

/* A rename onto a git config file that nothing but protected-path rules
 * denies: judged on its content. */
int lg_fsop_gitcfg_eligible(const struct lg_tables *t, const char *real)
{
    if (fsop_match(t, LG_FSOP_GITCFG, real) == -2)
        return 0;
    int hits[64];
    int n = lg_path_hits(t, real, strlen(real), LG_ACCESS_WRITE, hits, 64);
    if (n >= 64)
        return 0;
    for (int i = 0; i < n; i++) {
        const struct lg_path_rule *r = &t->paths[hits[i]];
        if (r->effect == LG_EFFECT_DENY && !r->overridable)
            return 0;  /* the policy's own deny (or the key directory): no content exception */
    }
    return 1;
}

/* A directory being renamed whose contents a rule covers because of where
 * they are (`./secrets/`, `~/.ssh/`, an ancestor of `.git/hooks`): after the
 * rename no rule would.  1 with *rule set. */
int lg_fsop_dir_contents_covered(const struct lg_tables *t, int dirfd, const char *name,
                                const char *real, int *rule)
{
    struct stat st;
    if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISDIR(st.st_mode))
        return 0;  /* not a directory (or nothing there: the kernel answers) */
    char probe[PATH_MAX + 32];
    snprintf(probe, sizeof probe, "%s/.landgate-probe", real);
    if (lg_judge_path(t, probe, strlen(probe), LG_ACCESS_READ | LG_ACCESS_WRITE, rule))
        return 1;
    int r = fsop_match(t, LG_FSOP_ANCESTOR, real);
    if (r == -2)
        return 0;
    *rule = r;
    return 1;
}

/* The source of a rename or link keeps its identity: a denied object joins the
 * deny set by dev+ino before it gets a name no rule covers. */
void lg_fsop_keep_identity(struct lg_sup *s, int dirfd, const char *name, const char *real)
{
    int rule = -1;
    int bits = lg_judge_path(&s->t, real, strlen(real), LG_ACCESS_READ | LG_ACCESS_WRITE, &rule);
    if (!bits)
        return;
    /* nothing there (an error): the operation itself fails with the kernel's errno */
    (void)lg_seen_add_at(s, dirfd, name, bits, rule);
}

/* Trees denied as a whole (the key directory: supervise_open_tree.c) are judged by where
 * an object lies, not by a list of their files taken at launch.  So nothing may leave
 * one under a new name: a link or rename whose source lies in a tree is refused (the
 * file would have a name the next session's tables do not deny), and no name is made in
 * one through another mount of its file system (its path would not say so).
 * 1 refused (*rule set), 0 not, -errno when it cannot be judged (refused, fail closed). */
int lg_fsop_tree_op(struct lg_sup *s, const struct fsop_job *j, const struct fs_name *made,
                   int *rule)
{
    const struct lg_tables *t = &s->t;
    const int any = LG_ACCESS_WRITE;  /* leaving or entering a tree writes its directory */
    if (t->n_deny_trees <= 0 || j->nr == SYS_truncate)
        return 0;  /* truncate: its object is judged by lg_judge_object, trees included */
    int rc = made->pfd >= 0 ? lg_tree_dir(t, made->pfd, NULL, any, rule) : 0;
    if (rc != 0)
        return rc;
    if (lg_is_rename(j->nr)) {
        if (lg_tree_path(t, j->a.real, any, rule))
            return 1;
        return j->a.pfd >= 0 ? lg_tree_dir(t, j->a.pfd, NULL, any, rule) : 0;
    }
    if (lg_is_link(j->nr) && j->obj >= 0) {
        struct statx st;
        char real[PATH_MAX];
        if (statx(j->obj, "", AT_EMPTY_PATH | AT_STATX_SYNC_AS_STAT, LG_TREE_STATX, &st) != 0)
            return -errno;
        rc = lg_fd_path(j->obj, real, sizeof real);
        if (rc < 0)
            return rc;
        return lg_tree_object(t, j->obj, &st, real, any, rule);
    }
    return 0;
}

/* Does the name being made stand for a tree (a directory, or a symlink that may
 * point at one)?  Only then can it put names beneath an `ancestor` row. */
int lg_fsop_tree_like(const struct fsop_job *j)
{
    struct stat st;
    if (j->nr == SYS_symlink || j->nr == SYS_symlinkat)
        return 1;
    int rc = lg_is_link(j->nr) ? fstat(j->obj, &st)
                            : fstatat(j->a.pfd, j->a.last, &st, AT_SYMLINK_NOFOLLOW);
    if (rc != 0)
        return 1;  /* cannot tell: judge it as a tree */
    return S_ISDIR(st.st_mode) || S_ISLNK(st.st_mode);
}
