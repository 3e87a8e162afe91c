/* supervise_net_unix.c: a named unix destination, judged by the socket file it
 * reaches (its real path, its hard links) and whether the agent can re-aim the name. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <linux/openat2.h>

#include "kernel_compat.h"
#include "supervise_net_int.h"

/* Judge the socket file a named unix destination reaches, not only its name:
 * opened O_PATH in the caller's view, its real path (symlinks resolved) is
 * judged too, and a socket file with more than one name (a hard link) is
 * refused, because only the name used here can be judged: a host socket (an
 * ssh-agent under /tmp) linked into an allowed directory would be reached
 * through it.  *pathfd gets the O_PATH fd (or -1 when the file is missing):
 * a supervisor-made connect or send goes through it, so that the object
 * judged is the object reached.  The name is walked from the caller's root,
 * the session's (lg_session_root, supervise_root.c), like the open check's
 * absolute names.  Only ever tightens *effect. */
void lg_net_unix_object(struct lg_sup *s, int tid, unsigned long long id, const struct lg_dest *d,
                        int *effect, int *rule, unsigned int *flags, char *detail, size_t dlen,
                        int *pathfd)
{
    char real[LG_TARGET_MAX];
    *pathfd = -1;
    int root = lg_session_root(s, tid, id);
    if (root < 0)
        return;  /* the caller is gone (ID_VALID fails later) or no root: as a missing file */
    struct open_how how;
    memset(&how, 0, sizeof how);
    how.flags = O_PATH | O_CLOEXEC;
    how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
    *pathfd = (int)syscall(__NR_openat2, root, d->path, &how, sizeof how);
    if (*pathfd < 0) {
        *pathfd = -1;
        return;
    }
    struct stat pst;
    if (fstat(*pathfd, &pst) == 0 && S_ISSOCK(pst.st_mode) && pst.st_nlink > 1 &&
        *effect != LG_EFFECT_DENY) {
        *effect = LG_EFFECT_DENY;
        *rule = -1;
        *flags |= LG_EV_FAILCLOSED;
        snprintf(detail, dlen, "socket file with %lu names (hard links)", (unsigned long)pst.st_nlink);
    }
    char link[64];
    snprintf(link, sizeof link, "/proc/self/fd/%d", *pathfd);
    ssize_t rl = readlink(link, real, sizeof real - 1);
    if (rl <= 0)
        return;
    real[rl] = '\0';
    if (strcmp(real, d->path) == 0)
        return;
    struct lg_dest d2 = *d;
    snprintf(d2.path, sizeof d2.path, "%s", real);
    int eff2, rule2;
    lg_net_judge_dest(&s->t, s, &d2, &eff2, &rule2, detail, dlen);
    if (eff2 == LG_EFFECT_DENY && *effect != LG_EFFECT_DENY) {
        *effect = LG_EFFECT_DENY;
        *rule = rule2;
    }
    lg_copy_target(detail, dlen, real, flags);
}

/* Can the agent change which socket file this name reaches before the kernel
 * walks it again?  Not when the name is absolute and every link and directory
 * on the way lies outside the trees it can write (supervise_exec_stable.c); a
 * relative name starts at a cwd a CLONE_FS sibling can move. */
int lg_net_unix_name_stable(struct lg_sup *s, int tid, unsigned long long id, const struct lg_dest *d)
{
    if (d->relative)
        return 0;
    /* walked from the session's root, as the kernel's walk is from the caller's,
     * which no task under the launcher's filter can change (supervise_root.c) */
    int root = lg_session_root(s, tid, id);
    if (root < 0)
        return 0;
    const char *names[1] = {d->path};
    return lg_exec_stable(s, tid, root, names, 1);
}
