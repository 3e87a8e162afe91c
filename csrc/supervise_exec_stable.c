/* supervise_exec_stable.c: can the agent change what an exec path resolves to?
 *
 * An exec whose path follows a symlink, or names a #! script, is verified at
 * PTRACE_EVENT_EXEC (supervise_exec.c) because the agent could swap the link
 * or rewrite the script between the check and the kernel's own walk.  It can
 * only do that where it can write: Landlock write rights beneath the trees in
 * t->write_trees (compiled by sandbox/session/child.py from the plan).  A
 * link whose directory, and a final file (with its directory), that lie
 * outside every one of them cannot be changed by the agent, so the resolution
 * judged is the one the kernel makes: the fast path is safe (merged-/usr
 * /bin/true, /bin/sh -> dash, a script under /usr/bin).
 *
 * The walk is done here component by component, in the caller's view (from
 * its root, the session's (supervise_root.c), so in its mount namespace: the
 * launcher gives the agent its own), each symlink's directory checked before
 * its target is followed,
 * so links in the middle of a chain (/usr/bin/x -> /tmp/y -> /usr/bin/true)
 * are seen too.  "Writable" is asked twice, and either answer makes the name
 * not stable: by name (t->write_trees, in landgate's view) and by identity
 * (the device and inode of each tree's root, taken when the supervisor
 * starts): every directory on the way and the object are stat'ed in the
 * caller's view, and one that is a tree's root means the agent can write
 * beneath it, which is how Landlock itself decides (rules sit on inodes, and
 * a path's ancestors in the caller's mounts are what it checks).  The
 * identity answer is what makes another mount namespace sound: the same tree
 * under another name there (a bind mount) is still a tree's root.  Without
 * it (a tree's root could not be stat'ed) a caller in another root or mount
 * namespace is "not stable", as before.  The agent cannot change its mounts
 * (the launcher's filter refuses the mount family and new namespaces).
 * Anything unusual is "not stable" (the verified path, never a wrong fast
 * path): an unknown write table, a relative name (a CLONE_FS sibling can
 * change the cwd meanwhile), /proc and /dev/fd names (magic links), an
 * error, too many links.
 *
 * A plain file (no link on the way, no #! line) is no different: the kernel
 * walks its name again after the answer.  Found by attack tests (issue 13c):
 * a relative name is walked from a working directory that a CLONE_FS sibling
 * (another process, so the caller stays single-threaded) can change between
 * the two walks, and a regular file in a writable tree can be replaced by a
 * symlink to a denied program (rename(2) over it).  lg_exec_plain_stable says
 * when neither can happen.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "supervise_bench.h"
#include "supervise_int.h"

#define LG_LINK_HOPS 40  /* the kernel's MAXSYMLINKS */

/* Is path (canonical, absolute) at or beneath a tree the sandbox can write? */
static int writable(const struct lg_tables *t, const char *path)
{
    size_t pl = strlen(path);
    for (int i = 0; i < t->n_write_trees; i++) {
        const char *w = t->write_trees[i];
        size_t wl = strlen(w);
        if (wl == 1 && w[0] == '/')
            return 1;
        if (pl >= wl && memcmp(path, w, wl) == 0 && (path[wl] == '\0' || path[wl] == '/'))
            return 1;
    }
    return 0;
}

/* Is the object st a write tree's root (by device and inode)? */
static int writable_id(const struct lg_sup *s, const struct stat *st)
{
    for (int i = 0; i < s->n_wt_ids; i++) {
        if (s->wt_ids[i].dev == (unsigned long long)st->st_dev &&
            s->wt_ids[i].ino == (unsigned long long)st->st_ino)
            return 1;
    }
    return 0;
}

void lg_view_init(struct lg_sup *s)
{
    struct stat a, b;
    s->self_view_known = stat("/", &a) == 0 && stat("/proc/self/ns/mnt", &b) == 0;
    if (s->self_view_known) {
        s->self_root_dev = a.st_dev;
        s->self_root_ino = a.st_ino;
        s->self_mnt_dev = b.st_dev;
        s->self_mnt_ino = b.st_ino;
    }
    s->wt_ids_known = 0;
    s->n_wt_ids = 0;
    if (!s->t.write_known || s->t.n_write_trees <= 0)
        return;
    s->wt_ids = calloc((size_t)s->t.n_write_trees, sizeof *s->wt_ids);
    if (!s->wt_ids)
        return;
    for (int i = 0; i < s->t.n_write_trees; i++) {
        if (stat(s->t.write_trees[i], &a) < 0) {
            if (errno == ENOENT)
                continue;  /* nothing there for a Landlock rule to sit on */
            return;        /* unknown: identities are not used (wt_ids_known stays 0) */
        }
        s->wt_ids[s->n_wt_ids].dev = a.st_dev;
        s->wt_ids[s->n_wt_ids].ino = a.st_ino;
        s->n_wt_ids++;
    }
    s->wt_ids_known = 1;
}

/* Is the root rootfd names a write tree's root (by identity)?  1, 0, or -1 when
 * it cannot be stat'ed (then no walk from it is stable).  lg_session_root asks it
 * once for the session's root: an fd's inode is fixed for the fd's life. */
int lg_root_wt(const struct lg_sup *s, int rootfd)
{
    struct stat st;
    if (fstat(rootfd, &st) < 0)
        return -1;
    return writable_id(s, &st) ? 1 : 0;
}

/* Does tid see the file system as landgate does (same root, same mounts)? */
static int same_view(const struct lg_sup *s, int tid, int rootfd)
{
    char link[64];
    struct stat a;
    if (!s->self_view_known || fstat(rootfd, &a) < 0 || a.st_dev != s->self_root_dev ||
        a.st_ino != s->self_root_ino)
        return 0;
    snprintf(link, sizeof link, "/proc/%d/ns/mnt", tid);
    if (stat(link, &a) < 0 || a.st_dev != s->self_mnt_dev || a.st_ino != s->self_mnt_ino)
        return 0;
    return 1;
}

/* Note the directory parent[0, pl) ("" is the root) in dirs, once. */
static void dirs_add(struct lg_dirs *dirs, const char *parent, size_t pl)
{
    const char *d = pl == 0 ? "/" : parent;
    size_t dl = pl == 0 ? 1 : pl;
    size_t at = 0;
    for (int i = 0; i < dirs->n; i++) {
        size_t l = strlen(dirs->buf + at);
        if (l == dl && memcmp(dirs->buf + at, d, dl) == 0)
            return;
        at += l + 1;
    }
    if (dirs->n >= LG_DIRS_MAX || at + dl + 1 > sizeof dirs->buf) {
        dirs->overflow = 1;
        return;
    }
    memcpy(dirs->buf + at, d, dl);
    dirs->buf[at + dl] = '\0';
    dirs->n++;
}

/* 1 if no component on the way to path's object sits in a directory the
 * sandbox can write (such a name could become a link, or a link could be
 * re-aimed), and the object itself is out of its reach; 0 otherwise or when
 * unsure.  Walked in the caller's view: from rootfd, the caller's root, every
 * name below is relative to it and canonical (no link, no "." or "..": those
 * are taken lexically, which is exact for a name with no link in it), so the
 * kernel's walk of it cannot leave that root.  Each link's target is followed
 * from where the link sits, so links in the middle of a chain are checked
 * too.  by_id: the identity answer is used (see the head of this file). */
static int chain_stable(const struct lg_sup *s, int rootfd, int by_id, const char *path,
                        const struct lg_walked *obj, struct lg_dirs *dirs)
{
    const struct lg_tables *t = &s->t;
    char cur[PATH_MAX], next[PATH_MAX], parent[PATH_MAX], tgt[PATH_MAX];
    struct stat st;
    if (path[0] != '/' || strlen(path) >= sizeof cur)
        return 0;
    strcpy(cur, path);
    if (writable(t, "/"))
        return 0;
    if (by_id) {
        /* the session's root: answered once (lg_session_root); another root: now */
        int rw = s->sess_root_set && rootfd == s->sess_root_fd ? s->sess_root_wt
                                                                 : lg_root_wt(s, rootfd);
        if (rw != 0)
            return 0;
    }
    for (int hop = 0; hop <= LG_LINK_HOPS; hop++) {
        if (strncmp(cur, "/proc", 5) == 0 || strncmp(cur, "/dev/fd", 7) == 0)
            return 0;  /* magic links: resolved per process, not by these names */
        /* parent: the canonical name of the directory walked so far, "" for
         * the root (so that "/" + name needs no special case) */
        size_t pl = 0;
        parent[0] = '\0';
        size_t len = strlen(cur);
        int followed = 0;
        for (size_t i = 1; i <= len && !followed; i++) {
            if ((i < len && cur[i] != '/') || cur[i - 1] == '/')
                continue;  /* not the end of a component, or an empty one ("//") */
            size_t c0 = i;
            while (c0 > 0 && cur[c0 - 1] != '/')
                c0--;
            size_t cl = i - c0;
            if (cl == 1 && cur[c0] == '.') {
                /* the directory itself: already checked */
            } else if (cl == 2 && cur[c0] == '.' && cur[c0 + 1] == '.') {
                /* its parent: every directory above was checked on the way down */
                while (pl > 0 && parent[pl - 1] != '/')
                    pl--;
                if (pl > 0)
                    pl--;
                parent[pl] = '\0';
            } else {
                if (pl + 1 + cl >= sizeof parent)
                    return 0;
                if (dirs)
                    dirs_add(dirs, parent, pl);  /* the directory this component is looked up in */
                char *name = parent + pl;  /* parent + "/" + component, for now */
                name[0] = '/';
                memcpy(name + 1, cur + c0, cl);
                name[1 + cl] = '\0';
                if (i == len && obj && strcmp(parent, obj->real) == 0) {
                    /* The last name is where the exec check's own walk of this
                     * name (openat2, from the same root) found its object: the
                     * real path of that object is this canonical name, so the
                     * name is no link (a link's object has its target's path;
                     * /proc/self/fd names an object through the mounts it was
                     * reached by, the caller's), and the object is the one
                     * found.  Its identity answers below what a stat of the
                     * name would (one call less).  Taken without the name
                     * check, a link out of reach whose target lies in a
                     * writable tree passed as stable (test_exec_stable.py,
                     * mid_chain). */
                    memset(&st, 0, sizeof st);
                    st.st_dev = (dev_t)obj->dev;
                    st.st_ino = (ino_t)obj->ino;
                    st.st_mode = S_IFREG;
                } else if (fstatat(rootfd, parent + 1, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                    /* relative to the caller's root: the leading '/' skipped */
                    return 0;  /* missing, no access: unsure */
                }
                if (S_ISLNK(st.st_mode)) {
                    ssize_t n = readlinkat(rootfd, parent + 1, tgt, sizeof tgt - 1);
                    if (n < 0 || (size_t)n >= sizeof tgt - 1)
                        return 0;
                    tgt[n] = '\0';
                    parent[pl] = '\0';  /* the link's directory */
                    int w;
                    if (tgt[0] == '/')
                        w = snprintf(next, sizeof next, "%s%s", tgt, cur + i);
                    else
                        w = snprintf(next, sizeof next, "%s/%s%s", parent, tgt, cur + i);
                    if (w < 0 || (size_t)w >= sizeof next)
                        return 0;
                    strcpy(cur, next);
                    followed = 1;
                    continue;
                }
                /* not a link: a directory on the way, or the object itself;
                 * either way the agent must not be able to write in it (or to it) */
                pl += 1 + cl;
                if (writable(t, parent) || (by_id && writable_id(s, &st)))
                    return 0;
            }
            if (i == len)
                return pl > 0;  /* "/" itself, or a name ending in "." or "..": unsure */
        }
        if (!followed)
            return 0;  /* a trailing '/': unsure */
    }
    return 0;  /* too many links: the kernel gives ELOOP; be safe */
}

/* How names may be checked for this caller: 1 by name and identity, 2 by name
 * alone (it sees what landgate sees), 0 not at all. */
static int check_mode(const struct lg_sup *s, int tid, int rootfd)
{
    if (!s->t.write_known)
        return 0;
    if (s->wt_ids_known)
        return 1;
    return same_view(s, tid, rootfd) ? 2 : 0;
}

int lg_exec_stable_dirs(const struct lg_sup *s, int tid, int rootfd, const char *const *names,
                        int n, const struct lg_walked *last, struct lg_dirs *dirs)
{
    /* no root (the session's could not be had): nothing can be walked from it */
    int mode = rootfd >= 0 ? check_mode(s, tid, rootfd) : 0;
    int ok = mode != 0;
    if (dirs) {
        dirs->n = 0;
        dirs->overflow = 0;
    }
    for (int i = 0; ok && i < n; i++)
        ok = chain_stable(s, rootfd, mode == 1, names[i], i == n - 1 ? last : NULL, dirs);
    return ok;
}

int lg_exec_stable_obj(const struct lg_sup *s, int tid, int rootfd, const char *const *names,
                       int n, const struct lg_walked *last)
{
    return lg_exec_stable_dirs(s, tid, rootfd, names, n, last, NULL);
}

int lg_exec_stable(const struct lg_sup *s, int tid, int rootfd, const char *const *names, int n)
{
    return lg_exec_stable_obj(s, tid, rootfd, names, n, NULL);
}

/* A plain file's exec (no symlink followed, no #! line): stable when it is named
 * by an absolute path (a relative name is walked from a cwd that a CLONE_FS
 * sibling can change; execveat's dirfd sits in an fd table a CLONE_FILES
 * sibling can change) and the object, with every directory above it, lies
 * outside the trees the sandbox can write (else the name can be renamed over).
 * obj: the object the exec check resolved fname to; its real path (obj->real) is
 * the object's canonical path, equal to `fname` for a plain file. */
int lg_exec_plain_stable(const struct lg_sup *s, int tid, int rootfd, const char *fname,
                         const struct lg_walked *obj)
{
    const char *real = obj->real;
    if (fname[0] != '/' || real[0] != '/')
        return 0;
    if (strncmp(real, "/proc", 5) == 0 || strncmp(real, "/dev/fd", 7) == 0)
        return 0;
    const char *names[1] = {fname};
    return lg_exec_stable_obj(s, tid, rootfd, names, 1, obj);
}

/* 1 when the agent cannot change what the kernel's walk of the names lg_exec_object
 * resolved will find (supervise_exec_stable.c), 0 otherwise or when unsure; asked
 * once per exec, after lg_exec_object returned 0 for it, while the exec check's
 * buffers are alive.  Kept in o->stable. */
int lg_exec_obj_stable(struct lg_sup *s, int tid, struct lg_exec_obj *o)
{
    if (o->stable >= 0)
        return o->stable;
    if ((o->named && o->scripts == 0) ||
        (o->scripts > 0 && lg_exec_names_stable(s, o->names, o->n_names))) {
        /* the same name, found the same object, as a stable walk kept while no
         * directory it went through has changed; or a script whose name and
         * interpreters' were all kept so (supervise_exec_names.c) */
        o->stable = 1;
        LG_PHASE(LG_PH_STABLE);
        return 1;
    }
    int rootfd = s->sess_root_set ? s->sess_root_fd : -1;
    /* What lg_exec_object's walk found for the named file: o->real and, without a
     * #! line, o->dev/o->ino (with one they are the last interpreter's, which has
     * another real path: then nothing is taken from the walk) */
    struct lg_walked found = {o->real, o->dev, o->ino};
    if (o->linked || o->scripts > 0) {
        /* Links and scripts out of the agent's reach cannot change */
        o->stable = rootfd >= 0 && lg_exec_stable_obj(s, tid, rootfd, o->names, o->n_names,
                                                      o->scripts > 0 ? NULL : &found);
    } else {
        /* A plain file: its name is walked again by the kernel, from a cwd a
         * CLONE_FS sibling can move, or in a tree where it can be renamed
         * over */
        o->stable = rootfd >= 0 && lg_exec_plain_stable(s, tid, rootfd, o->fname, &found);
    }
    LG_PHASE(LG_PH_STABLE);
    return o->stable;
}
