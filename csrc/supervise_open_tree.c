/* supervise_open_tree.c: directories denied as whole trees, by identity.
 *
 * landgate's key directory (the checkpoint key, the witness) grows with every
 * audit directory ever used: one witness file each.  Denying each file by its
 * (dev, ino) meant listing them all at every launch.  Instead the tables name
 * the directory and every directory beneath it, at any depth (struct
 * lg_tree_id; tables.py finds them without listing the witness files) and the
 * judgement asks where an object lies:
 *
 *  - its real path (the kernel's name for it, symlinks resolved) beneath a
 *    tree's real path: the path rules already deny it (the key directory's
 *    file_read and file_write denies), and the string check here says so for
 *    the name-changing syscalls' sources (supervise_fsop.c);
 *  - reached through another mount of the same file system (a bind mount of
 *    the key directory, or of a directory above it, elsewhere), its path
 *    says nothing: the directories above it are then compared with the trees'
 *    identities, walking ".." up to the root of that mount.  That root is
 *    itself one of the tree's directories when the mount is of a directory in
 *    the tree (however deep): every one is a row.  Only objects on a
 *    tree's device but on another mount than the tree's are walked: on the
 *    tree's own mount the kernel's name is the only one a directory has.
 *
 * The audit trail's directories are trees too, for writing (tables.py
 * _trail_tree_base), unless a policy allow overrides their deny beneath them;
 * their files also stay in the identity set (a hard link made before the
 * session), so for them this adds to the per-file walk, it does not replace it.
 *
 * A creation (O_CREAT of a new name, O_TMPFILE) is judged by its parent
 * directory here before anything is made (supervise_open.c), so a refused
 * creation through another mount leaves no empty file in the tree.
 *
 * What this does not see is a hard link to one of the tree's files made in
 * another directory: a file has no parent to walk to.  The sandbox cannot make
 * one (supervise_fsop.c refuses a link or rename whose source lies in a tree);
 * the key directory's top-level files (the keys) are still denied by identity
 * too (tables.py), for a link made before the session by something else.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "kernel_compat.h"
#include "supervise_int.h"
#include "supervise_tree.h"

/* ".." steps walked at most within one mount: a path has at most PATH_MAX/2 components.
 * Deeper than that cannot be judged: refused (the caller fails closed). */
#define TREE_DEPTH (PATH_MAX / 2)

struct tid {
    unsigned long long dev, ino, mnt;
    int has_mnt;     /* the kernel reported the mount id */
    int mount_root;  /* the root of its mount: ".." leaves the mount */
    int dir;
    int unlinked;    /* no name left (an O_TMPFILE file, a removed one): in no directory */
};

static void ident_of(const struct statx *st, struct tid *o)
{
    o->dev = makedev(st->stx_dev_major, st->stx_dev_minor);
    o->ino = st->stx_ino;
    o->has_mnt = (st->stx_mask & STATX_MNT_ID) != 0;
    o->mnt = o->has_mnt ? st->stx_mnt_id : 0;
    o->mount_root = (st->stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) &&
                    (st->stx_attributes & STATX_ATTR_MOUNT_ROOT);
    o->dir = S_ISDIR(st->stx_mode);
    o->unlinked = (st->stx_mask & STATX_NLINK) && st->stx_nlink == 0;
}

static int ident_at(int dirfd, const char *name, int flags, struct tid *o)
{
    struct statx st;
    if (statx(dirfd, name, flags | AT_STATX_SYNC_AS_STAT, LG_TREE_STATX, &st) != 0)
        return -errno;
    ident_of(&st, o);
    return 0;
}

/* The tree row that is this directory, or -1. */
static int row_of(const struct lg_tables *t, const struct tid *d, int access)
{
    for (int i = 0; i < t->n_deny_trees; i++) {
        const struct lg_tree_id *r = &t->deny_trees[i];
        if ((r->access & access) && r->dev == d->dev && r->ino == d->ino)
            return i;
    }
    return -1;
}

/* Could something on this device and mount lie in a tree without its path saying so? */
static int aliased(const struct lg_tables *t, const struct tid *d, int access)
{
    for (int i = 0; i < t->n_deny_trees; i++) {
        const struct lg_tree_id *r = &t->deny_trees[i];
        if ((r->access & access) && r->dev == d->dev && (!d->has_mnt || r->mnt_id != d->mnt))
            return 1;
    }
    return 0;
}

int lg_tree_path(const struct lg_tables *t, const char *real, int access, int *rule)
{
    if (!real || real[0] != '/')
        return 0;
    for (int i = 0; i < t->n_deny_trees; i++) {
        const struct lg_tree_id *r = &t->deny_trees[i];
        size_t n = strlen(r->path);
        while (n > 1 && r->path[n - 1] == '/')
            n--;
        if ((r->access & access) && strncmp(real, r->path, n) == 0 &&
            (real[n] == '\0' || real[n] == '/' || n == 1)) {
            *rule = r->rule;
            return 1;
        }
    }
    return 0;
}

/* The directory d (fd dirfd) and the ones above it, up to its mount's root. */
static int walk_up(const struct lg_tables *t, int dirfd, struct tid d, int access, int *rule)
{
    int cur = -1, rc = 0;
    for (int depth = 0;; depth++) {
        int k = row_of(t, &d, access);
        if (k >= 0) {
            *rule = t->deny_trees[k].rule;
            rc = 1;
            break;
        }
        if (d.mount_root)
            break;  /* above is another mount: not this object's directories */
        if (depth >= TREE_DEPTH) {
            rc = -ELOOP;
            break;
        }
        int up = openat(cur >= 0 ? cur : dirfd, "..", O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (up < 0) {
            rc = -errno;
            break;
        }
        struct tid u;
        rc = ident_at(up, "", AT_EMPTY_PATH, &u);
        if (cur >= 0)
            close(cur);
        cur = up;
        if (rc < 0)
            break;
        if (u.dev == d.dev && u.ino == d.ino)
            break;  /* "/" is its own parent */
        if (u.dev != d.dev || u.has_mnt != d.has_mnt || u.mnt != d.mnt) {
            /* ".." left the mount without the root attribute saying so (a kernel
             * without STATX_ATTR_MOUNT_ROOT): stop there as well */
            break;
        }
        d = u;
    }
    if (cur >= 0)
        close(cur);
    return rc;
}

int lg_tree_dir(const struct lg_tables *t, int dirfd, const char *real, int access, int *rule)
{
    if (t->n_deny_trees <= 0)
        return 0;
    if (lg_tree_path(t, real, access, rule))
        return 1;
    struct tid d;
    int rc = ident_at(dirfd, "", AT_EMPTY_PATH, &d);
    if (rc < 0)
        return rc;
    int k = row_of(t, &d, access);
    if (k >= 0) {
        *rule = t->deny_trees[k].rule;
        return 1;
    }
    if (!aliased(t, &d, access))
        return 0;
    return walk_up(t, dirfd, d, access, rule);
}

int lg_tree_object(const struct lg_tables *t, int fd, const struct statx *st, const char *real,
                   int access, int *rule)
{
    if (t->n_deny_trees <= 0)
        return 0;
    if (lg_tree_path(t, real, access, rule))
        return 1;
    struct tid o;
    ident_of(st, &o);
    int rc;
    if (o.dir || row_of(t, &o, access) >= 0)
        return lg_tree_dir(t, fd, real, access, rule);
    if (o.unlinked || o.mount_root || !aliased(t, &o, access) || !real || real[0] != '/')
        return 0;  /* on the trees' own mounts its path decides; no name, or a file mounted
                    * on its own (a bind-mounted resolv.conf): in no directory of its mount */
    /* A file: its directory is the one its real path names, if that directory holds
     * this very object now (a rename in between: cannot be judged, refused). */
    const char *slash = strrchr(real, '/');
    char dir[PATH_MAX];
    size_t n = slash == real ? 1 : (size_t)(slash - real);
    if (n >= sizeof dir)
        return -ENAMETOOLONG;
    memcpy(dir, real, n);
    dir[n] = '\0';
    int dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return -errno;
    struct tid e;
    rc = ident_at(dfd, slash + 1, AT_SYMLINK_NOFOLLOW, &e);
    if (rc == 0 && (e.dev != o.dev || e.ino != o.ino))
        rc = -ESTALE;
    if (rc == 0)
        rc = lg_tree_dir(t, dfd, dir, access, rule);
    close(dfd);
    return rc;
}
