/* supervise_identity.c: the open check's identity set and object judgement.
 *
 * A denied file is the same file under any name: the identity set holds
 * (st_dev, st_ino, birth time) of every object the deny rules named at launch
 * (the tables' deny_ids) plus every object met under a denied name since (a
 * later hard link, rename or symlink of it stays denied).  Every module that
 * judges or changes names (supervise_open.c, supervise_fsop*.c) goes through
 * the functions here; nothing else touches s->seen.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "kernel_compat.h"
#include "supervise_int.h"
#include "supervise_tree.h"

/* Objects met under a denied name after launch join the deny set, so that a
 * later rename, hard link or symlink of the same inode stays denied. */
static void seen_add(struct lg_sup *s, unsigned long long dev, unsigned long long ino,
                     unsigned long long btime, int access, int rule)
{
    if (!s->seen)
        return;  /* no open check in this session: nothing judges by identity */
    pthread_mutex_lock(&s->seen_lock);
    for (int i = 0; i < s->seen_count; i++) {
        if (s->seen[i].dev == dev && s->seen[i].ino == ino) {
            if (s->seen[i].btime != btime) {
                /* the inode number was freed and reused: a new object */
                s->seen[i].btime = btime;
                s->seen[i].access = access;
                s->seen[i].rule = rule;
            }
            s->seen[i].access |= access;
            pthread_mutex_unlock(&s->seen_lock);
            return;
        }
    }
    if (s->seen_count < LG_SEEN_CAP) {
        struct lg_file_id *e = &s->seen[s->seen_count++];
        e->dev = dev;
        e->ino = ino;
        e->btime = btime;
        e->access = access;
        e->rule = rule;
    } else {
        lg_count(s, LG_COUNT_ERRORS);  /* full: later renames of this object are judged by name only */
    }
    pthread_mutex_unlock(&s->seen_lock);
}

static int id_cmp(const void *a, const void *b)
{
    const struct lg_file_id *x = a, *y = b;
    if (x->dev != y->dev)
        return x->dev < y->dev ? -1 : 1;
    if (x->ino != y->ino)
        return x->ino < y->ino ? -1 : 1;
    return 0;
}

/* The launch deny set (up to IDENTITY_LIMIT = 10k entries, 4.3k measured with the
 * default protected paths) is looked up on every open: a sorted copy and a
 * binary search instead of a scan of every entry.  The tables key it by
 * (dev, ino), so no two entries share one.  0 or -ENOMEM. */
int lg_deny_ids_sort(struct lg_sup *s)
{
    free(s->deny_sorted);
    s->deny_sorted = NULL;
    if (s->t.n_deny_ids <= 0)
        return 0;
    s->deny_sorted = malloc((size_t)s->t.n_deny_ids * sizeof *s->deny_sorted);
    if (!s->deny_sorted)
        return -ENOMEM;
    memcpy(s->deny_sorted, s->t.deny_ids, (size_t)s->t.n_deny_ids * sizeof *s->deny_sorted);
    qsort(s->deny_sorted, (size_t)s->t.n_deny_ids, sizeof *s->deny_sorted, id_cmp);
    return 0;
}

static int seen_find(struct lg_sup *s, unsigned long long dev, unsigned long long ino,
                     unsigned long long btime, int access, int *rule)
{
    int hit = 0;
    if (!s->seen)
        return 0;
    pthread_mutex_lock(&s->seen_lock);
    for (int i = 0; i < s->seen_count; i++)
        if (s->seen[i].dev == dev && s->seen[i].ino == ino && s->seen[i].btime == btime &&
            (s->seen[i].access & access)) {
            *rule = s->seen[i].rule;
            hit = 1;
            break;
        }
    pthread_mutex_unlock(&s->seen_lock);
    return hit;
}

/* Judge the object fd refers to.  1 = denied (*rule set), 0 = allowed,
 * -errno when it cannot be judged (the caller fails closed).  real gets the
 * object's path as the kernel names it.
 *
 * judged/judged_bits: a path the caller has already judged with lg_judge_path
 * and every access bit that judgement denied (NULL: none).  When the object's
 * real path is that same string, the path rules are not matched again:
 * lg_judge_path's bits depend on the path alone (the access only picks the
 * rule it names), so the answer would be the same. */
int lg_judge_object_named(struct lg_sup *s, int fd, int access, int *rule, char *real, size_t cap,
                          const char *judged, int judged_bits)
{
    /* statx for the birth time: the identity is (dev, ino, btime), so a reused
     * inode number is not the denied object it once was. */
    struct statx st;
    if (statx(fd, "", AT_EMPTY_PATH | AT_STATX_SYNC_AS_STAT, STATX_BTIME | LG_TREE_STATX, &st) != 0)
        return -errno;
    unsigned long long btime = (st.stx_mask & STATX_BTIME)
        ? (unsigned long long)st.stx_btime.tv_sec * 1000000000ULL + st.stx_btime.tv_nsec : 0;
    int rc = lg_sup_fd_path(s, fd, real, cap);
    if (rc < 0)
        return rc;
    *rule = -1;
    unsigned long long dev = makedev(st.stx_dev_major, st.stx_dev_minor), ino = st.stx_ino;
    if (!s->deny_sorted && s->t.n_deny_ids > 0)
        return -ENOMEM;  /* lg_open_init sorts them: never judge without the launch set */
    struct lg_file_id key;
    memset(&key, 0, sizeof key);
    key.dev = dev;
    key.ino = ino;
    const struct lg_file_id *id = s->t.n_deny_ids > 0
        ? bsearch(&key, s->deny_sorted, (size_t)s->t.n_deny_ids, sizeof key, id_cmp) : NULL;
    if (id && (id->btime == 0 || id->btime == btime) && (id->access & access)) {
        *rule = id->rule;
        return 1;
    }
    if (seen_find(s, dev, ino, btime, access, rule))
        return 1;
    int bits;
    if (real[0] != '/')
        bits = 0;  /* "(deleted)", anon inodes: no name to judge, the identity was */
    else if (judged && judged_bits == 0 && strcmp(real, judged) == 0)
        bits = 0;  /* the same path, already judged: nothing denied */
    else
        bits = lg_judge_path(&s->t, real, strlen(real), access, rule);
    if (!(bits & access) && s->t.n_deny_trees > 0) {
        /* beneath a tree denied as a whole (the key directory) by another mount's name */
        int tr = -1;
        rc = lg_tree_object(&s->t, fd, &st, real, access, &tr);
        if (rc < 0)
            return rc;
        if (rc > 0) {
            *rule = tr;
            return 1;
        }
    }
    if (bits) {
        /* Every access its name denies joins the identity set, each under a rule
         * that denies it (not the requested access's -1: a read of .git/config
         * records its write deny with the write rule). */
        int r = *rule;
        if (r < 0 && (bits & ~access)) {
            int other = -1;
            (void)lg_judge_path(&s->t, real, strlen(real), bits & ~access, &other);
            r = other;
        }
        seen_add(s, dev, ino, btime, bits, r);
    }
    return (bits & access) ? 1 : 0;
}

int lg_judge_object(struct lg_sup *s, int fd, int access, int *rule, char *real, size_t cap)
{
    return lg_judge_object_named(s, fd, access, rule, real, cap, NULL, 0);
}

/* The object named `name` beneath dirfd (not followed) joins the identity set under
 * (dev, ino, btime), the same identity lg_judge_object compares.  0, or -errno when it
 * cannot be looked at (nothing there: the operation itself then fails). */
int lg_seen_add_at(struct lg_sup *s, int dirfd, const char *name, int access, int rule)
{
    struct statx st;
    if (statx(dirfd, name, AT_SYMLINK_NOFOLLOW | AT_STATX_SYNC_AS_STAT, STATX_INO | STATX_BTIME,
              &st) != 0)
        return -errno;
    unsigned long long btime = (st.stx_mask & STATX_BTIME)
        ? (unsigned long long)st.stx_btime.tv_sec * 1000000000ULL + st.stx_btime.tv_nsec : 0;
    seen_add(s, makedev(st.stx_dev_major, st.stx_dev_minor), st.stx_ino, btime, access, rule);
    return 0;
}

/* A rename over an existing name frees that inode when it was its last link:
 * the identity set must not keep it, or the next file that gets the same
 * inode number (and, where the filesystem has none, the same zero birth time)
 * would be denied as if it were the old one. */
void lg_seen_forget(struct lg_sup *s, const struct stat *old)
{
    if (!s->seen || old->st_nlink != 1 || S_ISDIR(old->st_mode))
        return;
    pthread_mutex_lock(&s->seen_lock);
    for (int i = 0; i < s->seen_count; i++) {
        if (s->seen[i].dev == (unsigned long long)old->st_dev &&
            s->seen[i].ino == (unsigned long long)old->st_ino) {
            s->seen[i] = s->seen[--s->seen_count];
            break;
        }
    }
    pthread_mutex_unlock(&s->seen_lock);
}
