/* supervise_tree.h: directories denied as whole trees (supervise_open_tree.c). */
#ifndef LG_SUPERVISE_TREE_H
#define LG_SUPERVISE_TREE_H

#include <sys/stat.h>

#include "supervise_int.h"

/* What the object's statx must ask for (lg_tree_object reads these fields). */
#define LG_TREE_STATX (STATX_TYPE | STATX_INO | STATX_NLINK | STATX_MNT_ID)

/* 1 when `real` (a real path) is a tree's directory or lies beneath it (*rule set),
 * else 0. */
int lg_tree_path(const struct lg_tables *t, const char *real, int access, int *rule);
/* The directory dirfd (real path `real`, may be NULL): 1 when it is a tree's directory or
 * lies beneath one, by path or by the identities of the directories above it (another
 * mount of the same file system); 0 when not; -errno when that cannot be judged. */
int lg_tree_dir(const struct lg_tables *t, int dirfd, const char *real, int access, int *rule);
/* The same for any object (fd: O_PATH or open; st: its statx, with LG_TREE_STATX asked;
 * real: its real path). */
int lg_tree_object(const struct lg_tables *t, int fd, const struct statx *st, const char *real,
                   int access, int *rule);

#endif
