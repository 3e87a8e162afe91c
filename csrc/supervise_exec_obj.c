/* supervise_exec_obj.c: the object an exec will really run (issue 13).
 *
 * The command line is judged by argv[0] and the file name as spelled; neither
 * says what the kernel runs.  `ln -s /usr/bin/curl ./cat; ./cat URL` and a
 * file `cat` starting `#!/usr/bin/curl -s` both run curl under an allowed
 * name.  Here the named file is resolved in the caller's view the way the
 * open check resolves (openat2 with RESOLVE_IN_ROOT from the caller's root,
 * which is the session's (lg_session_root), for an absolute path, from
 * /proc/TID/cwd or its dirfd for a relative one, the
 * caller's /proc/self spellings rewritten to its pid), its real path taken
 * from /proc/self/fd/N (symlinks resolved), and for a `#!` script the
 * interpreter and its argument are followed as binfmt_script does (up to
 * four levels, as the kernel).  Each form -- the real name with argv[1..],
 * and for each script level `interp [arg] file argv[1..]` -- is judged
 * against the command rules; any deny wins.
 *
 * These forms can only deny: an allow still comes from the spelled form.
 * Distributions run most programs through aliases (/bin/sh -> dash,
 * python3 -> python3.12, /etc/alternatives), so requiring the real name to be
 * allowed too would refuse `sh -c` under a policy that allows `sh*`.
 *
 * Races: the file system can change between this walk and the kernel's.
 * Unless every name on the way (the spelled path, each link, each script and
 * interpreter) is absolute and out of the agent's reach
 * (supervise_exec_stable.c), the caller takes the verified path:
 * at PTRACE_EVENT_EXEC /proc/PID/exe must be the object judged here (dev,
 * ino) and /proc/PID/cmdline the form judged here, or the new image is
 * killed before its first instruction.
 *
 * A hard link of a program a deny rule names (same device and inode, known
 * from the table sandbox/supervise/programs.py compiles; on overlayfs, which
 * numbers links of one inode apart, the same attributes: overlay_same) is
 * judged under that program's path too.  What this cannot see: a byte copy under an allowed
 * name is a new file with the same bytes; names are all command rules have
 * (DESIGN §3).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>

#include "supervise_bench.h"
#include "supervise_int.h"


/* Resolve path as the caller's exec would, to an O_PATH fd (or -errno).
 * Unlike the open check this walk keeps landgate's own credentials: it only
 * names the object to judge; the kernel walks again with the caller's rights,
 * and the verified path compares what it found with what was judged. */
static int resolve_in_view(int tid, int tgid, int rootfd, int dirfd, const char *path)
{
    char p[PATH_MAX];
    int fdnum = -1;
    if (lg_rewrite_self(path, tgid, tid, p, sizeof p, &fdnum) < 0)
        return -ENAMETOOLONG;
    struct open_how how;
    memset(&how, 0, sizeof how);
    how.flags = O_PATH | O_CLOEXEC;
    int base;
    char link[64];
    if (strncmp(p, "/proc/", 6) == 0 && p[6] >= '0' && p[6] <= '9') {
        /* the caller's own /proc/PID links (exe, fd/N): magic links that
         * RESOLVE_IN_ROOT would refuse; walked in our procfs, where PID is it */
        base = AT_FDCWD;
    } else if (p[0] == '/') {
        if (rootfd < 0)
            return -ESRCH;  /* the caller's root could not be opened */
        base = rootfd;
        how.resolve = RESOLVE_IN_ROOT;  /* "/" and absolute symlinks: the caller's root */
    } else {
        if (dirfd == AT_FDCWD)
            snprintf(link, sizeof link, "/proc/%d/cwd", tid);
        else
            snprintf(link, sizeof link, "/proc/%d/fd/%d", tid, dirfd);
        base = open(link, O_PATH | O_DIRECTORY | O_CLOEXEC);
    }
    if (base < 0 && base != AT_FDCWD)
        return -errno;
    int fd = (int)syscall(__NR_openat2, base, p, &how, sizeof how);
    int e = errno;
    if (base >= 0 && base != rootfd)
        close(base);
    return fd < 0 ? -e : fd;
}

/* Parse a `#!` line as binfmt_script does: the interpreter ends at a blank,
 * the rest (trimmed) is one optional argument.  1 if head is a script. */
int lg_parse_shebang(char *head, ssize_t n, char **interp, char **arg)
{
    if (n < 3 || head[0] != '#' || head[1] != '!')
        return 0;
    head[n] = '\0';
    char *nl = strchr(head, '\n');
    if (nl)
        *nl = '\0';
    char *p = head + 2;
    while (*p == ' ' || *p == '\t')
        p++;
    if (*p == '\0')
        return 0;  /* the kernel: ENOEXEC, nothing runs */
    *interp = p;
    while (*p && *p != ' ' && *p != '\t')
        p++;
    *arg = NULL;
    if (*p) {
        *p++ = '\0';
        while (*p == ' ' || *p == '\t')
            p++;
        char *end = p + strlen(p);
        while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
            *--end = '\0';
        if (*p)
            *arg = p;
    }
    return 1;
}

static int same_base(const char *a, const char *b)
{
    int al, bl;
    const char *ab = lg_basename(a, (int)strlen(a), &al);
    const char *bb = lg_basename(b, (int)strlen(b), &bl);
    return al == bl && memcmp(ab, bb, (size_t)al) == 0;
}

/* The form `name words[1..]` for the denial line, into o->shown. */
static void show_form(struct lg_exec_obj *o, const struct lg_words *w, const char *name)
{
    int nl;
    const char *b = lg_basename(name, (int)strlen(name), &nl);
    size_t pos = 0, cap = sizeof o->shown;
    for (int i = 0; i < w->n || i == 0; i++) {
        const char *s = i == 0 ? b : w->w[i];
        size_t l = i == 0 ? (size_t)nl : (size_t)w->len[i];
        if (pos + l + 2 >= cap)
            break;
        if (i > 0)
            o->shown[pos++] = ' ';
        memcpy(o->shown + pos, s, l);
        pos += l;
    }
    o->shown[pos] = '\0';
}

#define LG_OVERLAYFS_MAGIC 0x794c7630

/* Overlayfs numbers one inode differently under different names: a name
 * copied up from a lower layer keeps its origin's st_dev/st_ino, a hard link
 * made to it in the upper layer shows the upper inode's (layers on different
 * file systems without xino; found by vm-tests, issue 17: `ln /usr/bin/curl
 * /var/tmp/x/cat` ran curl).  Every other attribute is the one upper inode's,
 * so there a multiply-linked file is the same file as a denied program when
 * mode, owner, link count, size, mtime and ctime (to the nanosecond: set by
 * the kernel, never by a program) all agree.  A false match only denies. */
static int overlay_same(const struct stat *st, const char *path)
{
    struct stat ps;
    if (stat(path, &ps) != 0)
        return 0;
    return ps.st_mode == st->st_mode && ps.st_uid == st->st_uid && ps.st_gid == st->st_gid &&
           ps.st_nlink == st->st_nlink && ps.st_size == st->st_size &&
           ps.st_mtim.tv_sec == st->st_mtim.tv_sec && ps.st_mtim.tv_nsec == st->st_mtim.tv_nsec &&
           ps.st_ctim.tv_sec == st->st_ctim.tv_sec && ps.st_ctim.tv_nsec == st->st_ctim.tv_nsec;
}

/* The canonical path of a program a deny rule names, when st (fd) is its file
 * under another name (a hard link), or NULL. */
static const char *denied_program(const struct lg_tables *t, int fd, const struct stat *st,
                                  const char *real)
{
    for (int i = 0; i < t->n_deny_programs; i++) {
        const struct lg_program_id *p = &t->deny_programs[i];
        if (p->dev == (unsigned long long)st->st_dev && p->ino == (unsigned long long)st->st_ino)
            return strcmp(p->path, real) != 0 ? p->path : NULL;
    }
    /* only a multiply-linked file on overlayfs: one fstatfs, then a stat per program */
    struct statfs sf;
    if (st->st_nlink < 2 || fstatfs(fd, &sf) != 0 || sf.f_type != LG_OVERLAYFS_MAGIC)
        return NULL;
    for (int i = 0; i < t->n_deny_programs; i++) {
        const struct lg_program_id *p = &t->deny_programs[i];
        if (strcmp(p->path, real) != 0 && overlay_same(st, p->path))
            return p->path;
    }
    return NULL;
}

/* Keep the first deny among the forms. */
static void take_deny(struct lg_exec_obj *o, const struct lg_verdict *v, const struct lg_words *w,
                      const char *name)
{
    if (v->effect != LG_EFFECT_DENY || o->v.effect == LG_EFFECT_DENY)
        return;
    o->v = *v;
    show_form(o, w, name);
}

int lg_exec_object(struct lg_sup *s, int tid, int tgid, int dirfd, const char *fname,
                   struct lg_exec_obj *o)
{
    struct lg_judge *b = s->judge;
    memset(&o->v, 0, sizeof o->v);
    o->v.rule = -1;
    o->shown[0] = '\0';
    o->scripts = 0;
    o->linked = 0;
    o->stable = 0;
    o->expect = NULL;
    o->expect_len = 0;
    o->fd_obj = -1;
    o->named = 0;
    /* The caller's root, the session's (lg_session_root; -1 when it could
     * not be opened: absolute names then fail closed, nothing is stable):
     * absolute names are resolved from it here, and walked from it again by
     * lg_exec_stable.  Not ours to close. */
    int rootfd = s->sess_root_set ? s->sess_root_fd : -1;
    int fd = resolve_in_view(tid, tgid, rootfd, dirfd, fname);
    if (fd < 0)
        return fd;
    struct stat st;
    /* A name kept after a stable walk (supervise_exec_names.c) that found this same
     * object: its real path without asking our fd's link */
    int prc = fstat(fd, &st) != 0             ? -errno
              : lg_exec_name_hit(s, fname, &st, o) ? 0
                                                   : lg_exec_fd_path(s, fd, o->real, sizeof o->real);
    if (prc < 0) {
        close(fd);
        return prc;
    }
    LG_PHASE(LG_PH_RESOLVE);
    size_t rl = strlen(o->real);
    /* An object with no name in any directory (a memfd: "/memfd:x (deleted)",
     * or a file unlinked after it was opened) cannot be judged by name, and
     * Landlock's EXECUTE right never sees it (it checks paths beneath rules;
     * on kernels without vm.memfd_noexec, < 6.3, nothing else refuses it):
     * DESIGN §2 says memfd execs are denied, so refuse. */
    size_t rlen = rl;
    static const char deleted[] = " (deleted)";
    if (o->real[0] != '/' || strncmp(o->real, "/memfd:", 7) == 0 ||
        (rlen >= sizeof deleted - 1 &&
         strcmp(o->real + rlen - (sizeof deleted - 1), deleted) == 0)) {
        close(fd);
        return -EACCES;
    }
    char abs[PATH_MAX];
    if (!o->named &&
        (lg_absolute_in_view(tid, dirfd, fname, abs, sizeof abs) < 0 || strcmp(abs, o->real) != 0))
        o->linked = 1;  /* a symlink was followed (or the spelling could not be compared) */

    const struct lg_words saved = b->argv;
    int has_by_path = 0;
    for (int i = 0; i < s->t.n_exec; i++)
        has_by_path |= s->t.exec[i].by_path;
    struct lg_verdict v;
    if (!same_base(o->real, fname) || (has_by_path && o->linked)) {
        lg_judge_words(b, &s->t, o->real, &v);  /* `curl -s URL` for ./cat -> curl */
        take_deny(o, &v, &saved, o->real);
    }
    const char *same = denied_program(&s->t, fd, &st, o->real);
    if (same) {
        /* a hard link of a denied program (same device and inode): judged as it */
        lg_judge_words(b, &s->t, same, &v);
        take_deny(o, &v, &saved, same);
    }

    LG_PHASE(LG_PH_SPELL);
    /* #! scripts: the kernel runs `interp [arg] file argv[1..]` */
    const char **ws = NULL;
    int *ls = NULL;
    int rc = 0;
    struct lg_words cur = saved;
    const char *curname = fname;
    const char *names[1 + LG_SCRIPT_DEPTH];  /* the named file and each interpreter */
    int n_names = 0;
    names[n_names++] = fname;
    char atname[PATH_MAX];
    if (dirfd != AT_FDCWD && fname[0] != '/') {
        /* execveat: the script's name as the kernel passes it (fs/exec.c alloc_bprm) */
        int w = snprintf(atname, sizeof atname, "/dev/fd/%d/%s", dirfd, fname);
        if (w > 0 && (size_t)w < sizeof atname)
            curname = atname;
    }
    for (int level = 0; level < LG_SCRIPT_DEPTH; level++) {
        char *head = o->heads[level];
        ssize_t n = lg_read_head(s, fd, &st, head, LG_BINPRM_BUF);
        if (n < 0) {
            rc = (int)n;
            break;
        }
        char *interp, *arg;
        if (!lg_parse_shebang(head, n, &interp, &arg))
            break;
        o->scripts++;
        names[n_names++] = interp;
        int extra = arg ? 3 : 2;
        int nw = (cur.n > 0 ? cur.n - 1 : 0) + extra;
        const char **nws = malloc((size_t)nw * sizeof *nws);
        int *nls = malloc((size_t)nw * sizeof *nls);
        if (!nws || !nls) {
            free(nws);
            free(nls);
            rc = -ENOMEM;
            break;
        }
        int k = 0;
        nws[k] = interp;
        nls[k++] = (int)strlen(interp);
        if (arg) {
            nws[k] = arg;
            nls[k++] = (int)strlen(arg);
        }
        nws[k] = curname;
        nls[k++] = (int)strlen(curname);
        for (int i = 1; i < cur.n; i++) {
            nws[k] = cur.w[i];
            nls[k++] = cur.len[i];
        }
        free(ws);
        free(ls);
        ws = nws;
        ls = nls;
        cur.w = ws;
        cur.len = ls;
        cur.n = nw;
        cur.cap = nw;
        curname = interp;
        /* the interpreter, resolved as open_exec does: from the caller's cwd */
        close(fd);
        fd = resolve_in_view(tid, tgid, rootfd, AT_FDCWD, interp);
        if (fd < 0 || fstat(fd, &st) != 0) {
            rc = fd < 0 ? fd : -errno;
            break;
        }
        char ireal[PATH_MAX];
        rc = lg_exec_fd_path(s, fd, ireal, sizeof ireal);
        if (rc < 0)
            break;
        b->argv = cur;
        lg_judge_words(b, &s->t, ireal, &v);  /* the interpreter's own name and path */
        b->argv = saved;
        take_deny(o, &v, &cur, ireal);
        const char *isame = denied_program(&s->t, fd, &st, ireal);
        if (isame) {
            b->argv = cur;
            lg_judge_words(b, &s->t, isame, &v);
            b->argv = saved;
            take_deny(o, &v, &cur, isame);
        }
    }
    LG_PHASE(LG_PH_HEAD);
    if (rc == 0) {
        /* Whether the agent can change this resolution matters only to an exec
         * about to be allowed: lg_exec_obj_stable walks the names then (8 us for
         * /bin/true), not for a denial.  The names stay valid as long as the
         * exec check's: fname is its buffer, each interpreter lies in o->heads. */
        memcpy(o->names, names, (size_t)n_names * sizeof names[0]);
        o->n_names = n_names;
        o->fname = fname;
        o->stable = -1;
    }
    if (rc == 0) {
        o->dev = st.st_dev;
        o->ino = st.st_ino;
        /* A script's last form lives in ws/ls, freed below: kept now.  A plain
         * file's is the caller's argv, which the exec check still holds: made
         * only if the exec takes the verified path (lg_exec_expect there). */
        if (o->scripts > 0)
            rc = lg_exec_expect(o, &cur);
    }
    /* Not closed here: the exec check answers first (lg_exec_obj_release) */
    o->fd_obj = fd;
    free(ws);
    free(ls);
    return rc;
}

/* What lg_exec_object left for after the answer: its fd and the expected
 * command line.  Safe to call again, and on an object never judged once its
 * fds are -1 and expect NULL. */
void lg_exec_obj_release(struct lg_exec_obj *o)
{
    if (o->fd_obj >= 0)
        close(o->fd_obj);
    o->fd_obj = -1;
    free(o->expect);
    o->expect = NULL;
}
