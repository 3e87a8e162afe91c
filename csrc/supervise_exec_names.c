/* supervise_exec_names.c: absolute names whose walk was stable, kept with their real
 * path and object while no directory on that walk changes (inotify), so the next exec
 * of the same name skips the walks (issue 19).
 *
 * Apart from supervise_exec_head.c (which keeps a file's head by its identity and
 * version) because what is kept here is keyed by a name and is right only while the
 * directories stay as they were: the watches, and the argument that nothing a sandboxed
 * task can do is missed, are this file's alone.
 */
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/inotify.h>
#include <sys/stat.h>

#include "supervise_exec.h"

/* Why:
 *
 * Every allowed exec of an absolute name walks it twice besides the openat2
 * that finds its object: our fd's link for its real path (readlinkat, ~2.5 us)
 * and the stable walk (supervise_exec_stable.c: a stat per component, a
 * readlink per symlink: /bin/true is four calls, ~5.4 us), for the same
 * /bin/true or /usr/bin/git behind every exec of a session.  Both answers
 * depend on the directories the walk looked names up in and on nothing else:
 * the same directory entries lead to the same dentries, so to the same real
 * path, and to the same "outside every writable tree" (the write trees and
 * their identities are fixed for the session, and so is the session's root).
 * So a name whose walk was stable is kept with its real path, its object's
 * identity, and an inotify watch on each of those directories, and the next
 * exec of the same name whose openat2 finds the same object takes both from
 * here, as long as no watched directory has had an entry created, deleted or
 * renamed (or itself deleted or moved, or its file system unmounted) since:
 * such an event, or an overflowed queue, forgets every kept name, and the
 * walk is done again.  A #! script's name and its interpreters' names are kept
 * the same way for their walks alone (the stable walk of a script is the walk
 * of each of them: 14.5 -> 1.2 us for a script under /usr/bin-like trees).
 *
 * Why nothing a sandboxed task can do is missed: it can change a directory
 * only where it can write, and a stable walk's directories are all outside the
 * writable trees (it cannot create, delete or rename there); whoever changes
 * one (the host) raises the event in the same syscall, before it returns, so a
 * change made before this exec's openat2 is in the queue when it is asked.
 * Mounts are the host's too (the filter refuses the mount family), and the
 * walk itself judges a mount only by its root's identity.  A name is kept only
 * when its directories are on a local file system (lg_exec_local_fs: a network file
 * system changed by another machine raises no event here), and only after the
 * watches are in place and a second walk, done under them, was still stable
 * with the same directories and no event came in meanwhile.
 * test_exec_stable.py re-aims a kept name's link, outside the writable trees,
 * at a hard link of the same program inside one between two execs of one
 * session (and a kept script's interpreter link through a link inside one):
 * the second exec must be denied or verified (kept without the watches, it ran
 * on the fast path). */
#define LG_NAME_CACHE 32   /* names, direct-mapped by a hash of the name */
#define LG_NAME_LEN 256    /* longer names and real paths are walked every time */
#define LG_NAME_WATCHES 128
#define LG_IFD_UNMADE (-2)


struct lg_exec_name {
    int used;
    int seen;      /* the name was exec'd once (name set, nothing else): keep it next time */
    int has_real;  /* real, linked, dev and ino are kept (a plain file or a link) */
    int linked;
    unsigned long long dev, ino;
    char name[LG_NAME_LEN];
    char real[LG_NAME_LEN];
};

struct lg_exec_names {
    int ifd;       /* inotify, non-blocking; LG_IFD_UNMADE until a name is kept; -1 when
                    * it could not be made (nothing is kept) */
    int watches;   /* the highest watch descriptor: watches added, at most */
    size_t dirs_used;  /* the directories watched since the last change, NUL-separated: */
    char dirs[4096];   /* the next name kept in them adds no watch */
    struct lg_exec_name e[LG_NAME_CACHE];
};

static struct lg_exec_name *name_slot(struct lg_exec_names *n, const char *name)
{
    unsigned long long h = 1469598103934665603ULL;
    for (const char *p = name; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    return &n->e[h % LG_NAME_CACHE];
}

/* A name is kept only at its second exec in the session: the first is noted
 * (its slot's name, seen), nothing more.  Why: closing an inotify instance
 * that has watches waits for an SRCU grace period (fsnotify_destroy_group
 * flushes the mark reaper: 6-15 ms measured on 6.18), and the session's context
 * is freed on the CLI's exit path; a session that execs each name once (a
 * `landgate run -- /bin/true`, one build step) made the instance for nothing
 * and paid that at exit.  Keeping at the second exec makes no instance there,
 * and costs an exec-heavy session one more walk per name. */
static int noted_before(struct lg_exec_names *n, const char *name)
{
    struct lg_exec_name *e = name_slot(n, name);
    if ((e->seen || e->used) && strcmp(e->name, name) == 0)
        return 1;
    if (strlen(name) >= LG_NAME_LEN)
        return 0;
    e->used = 0;  /* another name in this slot: forgotten, as a kept one's rewrite would */
    e->seen = 1;
    memcpy(e->name, name, strlen(name) + 1);
    return 0;
}

/* The inotify instance, made at the first name kept.  0, or -1 (nothing kept). */
static int names_ifd(struct lg_exec_names *n)
{
    if (n->ifd == LG_IFD_UNMADE)
        n->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    return n->ifd >= 0 ? 0 : -1;
}

/* Has a watched directory changed (or the queue overflowed, or poll failed)?
 * Then every kept name is forgotten and the queue drained: 1.  Else 0. */
static int names_changed(struct lg_exec_names *n)
{
    struct pollfd p = {n->ifd, POLLIN, 0};
    int r = poll(&p, 1, 0);
    if (r == 0)
        return 0;
    for (int i = 0; i < LG_NAME_CACHE; i++)
        n->e[i].used = 0;
    n->dirs_used = 0;  /* a watch may be gone (IN_IGNORED) or on a replaced directory */
    char buf[4096];
    while (read(n->ifd, buf, sizeof buf) > 0)
        ;  /* drained: events after this one will be asked about again */
    return 1;
}

/* The name kept for fname, when openat2 has just found the same object (st)
 * and no watched directory changed since it was kept: o->real and o->linked
 * are filled and o->named set, 1.  Else 0 (walk as usual). */
int lg_exec_name_hit(struct lg_sup *s, const char *fname, const struct stat *st,
                     struct lg_exec_obj *o)
{
    struct lg_exec_names *n = s->exec_names;
    if (!n || n->ifd < 0 || fname[0] != '/')
        return 0;
    struct lg_exec_name *e = name_slot(n, fname);
    if (!e->used || !e->has_real || e->dev != (unsigned long long)st->st_dev ||
        e->ino != (unsigned long long)st->st_ino || strcmp(e->name, fname) != 0)
        return 0;
    if (names_changed(n))
        return 0;
    memcpy(o->real, e->real, strlen(e->real) + 1);
    o->linked = e->linked;
    o->named = 1;
    return 1;
}

/* Watch every directory in d (the caller's view: beneath the session's root,
 * reached through our fd of it).  0, or -1 when one cannot be watched, is not
 * on a local file system, or the watches are used up. */
static int watch_dirs(struct lg_exec_names *n, int rootfd, const struct lg_dirs *d)
{
    const char *dir = d->buf;
    for (int i = 0; i < d->n; i++, dir += strlen(dir) + 1) {
        size_t dl = strlen(dir) + 1;
        int watched = 0;
        for (size_t at = 0; at < n->dirs_used && !watched; at += strlen(n->dirs + at) + 1)
            watched = strcmp(n->dirs + at, dir) == 0;
        if (watched)
            continue;  /* its watch was added before this walk, and no event came since */
        if (n->dirs_used + dl > sizeof n->dirs)
            return -1;
        char path[64 + sizeof d->buf];
        snprintf(path, sizeof path, "/proc/self/fd/%d%s", rootfd, strcmp(dir, "/") == 0 ? "/." : dir);
        int fd = open(path, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
            return -1;
        int local = lg_exec_local_fs(fd);
        close(fd);
        if (!local)
            return -1;
        int wd = inotify_add_watch(n->ifd, path,
                                   IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO |
                                       IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR |
                                       IN_DONT_FOLLOW);
        if (wd < 0 || wd > LG_NAME_WATCHES)
            return -1;
        if (wd > n->watches)
            n->watches = wd;
        memcpy(n->dirs + n->dirs_used, dir, dl);
        n->dirs_used += dl;
    }
    return 0;
}

/* Keep one name whose walk (last: what the exec check's own walk found for it,
 * or NULL) is stable: the walk again noting its directories, their watches, a
 * third walk under them with the same answer and directories, and no event
 * since.  real (or NULL: a script or an interpreter, kept for its walk alone)
 * with dev and ino is what lg_exec_name_hit serves.  Nothing is kept on any
 * doubt. */
static void keep_one(struct lg_sup *s, int tid, int rootfd, const char *name,
                     const struct lg_walked *last, const char *real, int linked)
{
    struct lg_exec_names *n = s->exec_names;
    if (name[0] != '/' || strlen(name) >= LG_NAME_LEN || (real && strlen(real) >= LG_NAME_LEN))
        return;
    struct lg_dirs before = {0}, after = {0};
    if (lg_exec_stable_dirs(s, tid, rootfd, &name, 1, last, &before) != 1 || before.overflow ||
        watch_dirs(n, rootfd, &before) < 0)
        return;
    /* Walked again under the watches: a change after they were added is an event;
     * one before shows here as another answer or other directories. */
    if (lg_exec_stable_dirs(s, tid, rootfd, &name, 1, last, &after) != 1 || after.overflow ||
        after.n != before.n || memcmp(after.buf, before.buf, sizeof after.buf) != 0)
        return;
    if (names_changed(n))
        return;
    struct lg_exec_name *e = name_slot(n, name);
    e->used = 1;
    e->has_real = real != NULL;
    e->linked = linked;
    e->dev = last ? last->dev : 0;
    e->ino = last ? last->ino : 0;
    memcpy(e->name, name, strlen(name) + 1);
    if (real)
        memcpy(e->real, real, strlen(real) + 1);
}

/* After the exec check found o's walk stable and answered: keep its names, as
 * the head of this section says; once per name (two more walks and the
 * watches). */
void lg_exec_name_keep(struct lg_sup *s, int tid, int rootfd, const struct lg_exec_obj *o)
{
    /* Only where the walk judged by identity as well as by name (wt_ids_known):
     * by name alone its answer holds only for a caller that sees landgate's own
     * mounts, which the walk asks of each caller (supervise_exec_stable.c). */
    if (o->stable != 1 || rootfd < 0 || !s->wt_ids_known || (o->scripts == 0 && o->named))
        return;
    if (!s->exec_names) {
        s->exec_names = calloc(1, sizeof *s->exec_names);
        if (!s->exec_names)
            return;
        s->exec_names->ifd = LG_IFD_UNMADE;
    }
    struct lg_exec_names *n = s->exec_names;
    if (n->ifd == -1 || n->watches >= LG_NAME_WATCHES)
        return;
    if (o->scripts == 0) {
        /* a plain file or a link: the name with the real path and object found */
        if (!noted_before(n, o->fname) || names_ifd(n) < 0)
            return;
        struct lg_walked found = {o->real, o->dev, o->ino};
        keep_one(s, tid, rootfd, o->fname, &found, o->real, o->linked);
        return;
    }
    /* a script: the script's name and each interpreter's, for their walks */
    for (int i = 0; i < o->n_names; i++) {
        struct lg_exec_name *e = name_slot(n, o->names[i]);
        if (e->used && strcmp(e->name, o->names[i]) == 0)
            continue;
        if (noted_before(n, o->names[i]) && names_ifd(n) == 0)
            keep_one(s, tid, rootfd, o->names[i], NULL, NULL, 0);
    }
}

/* 1 when every one of names is kept (its walk was stable, and no watched
 * directory has changed since: one look at the queue for all): a script's and
 * its interpreters' names need no walk.  Else 0. */
int lg_exec_names_stable(struct lg_sup *s, const char *const *names, int n)
{
    struct lg_exec_names *k = s->exec_names;
    if (!k || k->ifd < 0 || n <= 0)
        return 0;
    for (int i = 0; i < n; i++) {
        const struct lg_exec_name *e = name_slot(k, names[i]);
        if (!e->used || strcmp(e->name, names[i]) != 0)
            return 0;
    }
    return !names_changed(k);
}

void lg_exec_names_fini(struct lg_sup *s)
{
    if (s->exec_names) {
        if (s->exec_names->ifd >= 0)
            close(s->exec_names->ifd);
        free(s->exec_names);
        s->exec_names = NULL;
    }
}
