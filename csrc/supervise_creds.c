/* supervise_creds.c: the caller's credentials, taken per thread by the
 * supervisor when it acts for the caller (unix connects, the open check) */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>

#include "supervise_int.h"

/* fsuid, fsgid, groups, tgid and umask from one read of /proc/TID/status. */
/* The last whitespace-separated field of the line starting at p, or NULL. */
static char *last_field(char *p)
{
    char *end = strchr(p, '\n');
    if (!end)
        end = p + strlen(p);
    while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    char *q = end;
    while (q > p && q[-1] != ' ' && q[-1] != '\t')
        q--;
    return q < end ? q : NULL;
}

int lg_read_creds(int tid, struct lg_creds *c)
{
    char path[64], buf[4096];
    memset(c, 0, sizeof *c);
    c->umask = (unsigned)-1;
    snprintf(path, sizeof path, "/proc/%d/status", tid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    int e = errno;
    close(fd);
    if (n < 0)
        return -e;
    if (n == 0)
        return -EIO;
    buf[n] = '\0';
    unsigned r, ef, sv, fs;
    char *u = strstr(buf, "\nUid:"), *g = strstr(buf, "\nGid:"), *gr = strstr(buf, "\nGroups:");
    char *tg = strstr(buf, "\nTgid:"), *um = strncmp(buf, "Umask:", 6) == 0 ? buf - 1 : strstr(buf, "\nUmask:");
    if (!u || !g || sscanf(u + 5, "%u %u %u %u", &r, &ef, &sv, &fs) != 4)
        return -EIO;
    c->uid = fs;
    if (sscanf(g + 5, "%u %u %u %u", &r, &ef, &sv, &fs) != 4)
        return -EIO;
    c->gid = fs;
    if (!tg || sscanf(tg + 6, "%d", &c->tgid) != 1)
        return -EIO;
    /* NStgid / NSpid list the ids from the reader's pid namespace inwards: the
     * last one is what the caller calls itself (its /proc/self, in its procfs). */
    c->ns_tgid = c->tgid;
    c->ns_tid = tid;
    char *nt = strstr(buf, "\nNStgid:"), *np = strstr(buf, "\nNSpid:");
    if (nt && np && (nt = last_field(nt + 8)) && (np = last_field(np + 7)) &&
        (sscanf(nt, "%d", &c->ns_tgid) != 1 || sscanf(np, "%d", &c->ns_tid) != 1))
        return -EIO;
    unsigned mask;
    if (um && sscanf(um + 7, "%o", &mask) == 1)  /* 4.7 */
        c->umask = mask & 0777;
    c->ngroups = 0;
    if (gr) {
        char *q = gr + 8;
        while (*q && *q != '\n' && c->ngroups < 64) {
            char *end;
            unsigned long v = strtoul(q, &end, 10);
            if (end == q)
                break;
            c->groups[c->ngroups++] = (gid_t)v;
            q = end;
            while (*q == ' ' || *q == '\t')
                q++;
        }
    }
    c->have = 1;
    return 0;
}

/* Per-thread credential switch (raw syscalls: glibc's wrappers would apply
 * them to every thread).  A non-zero fsuid drops the filesystem capabilities
 * from the effective set, so path permission checks are the caller's.
 * Only root switches: without CAP_SETUID/CAP_SETGID (and under no_new_privs)
 * the sandbox cannot hold other credentials than landgate's own.
 * 0, or -errno (then the caller must not act). */
int lg_become(const struct lg_creds *c)
{
    if (!c->have || geteuid() != 0)
        return 0;
    if (syscall(SYS_setgroups, c->ngroups, c->groups) != 0)
        return -errno;
    syscall(SYS_setfsgid, c->gid);  /* returns the previous value: checked below */
    if ((unsigned)syscall(SYS_setfsgid, -1) != c->gid)
        return -EPERM;
    syscall(SYS_setfsuid, c->uid);
    if ((unsigned)syscall(SYS_setfsuid, -1) != c->uid)
        return -EPERM;
    return 0;
}

int lg_unbecome(const struct lg_creds *c)
{
    if (!c->have || geteuid() != 0)
        return 0;
    syscall(SYS_setfsuid, 0);
    syscall(SYS_setfsgid, 0);
    if (syscall(SYS_setfsuid, -1) != 0 || syscall(SYS_setfsgid, -1) != 0)
        return -EPERM;
    if (syscall(SYS_setgroups, 0, NULL) != 0)
        return -errno;
    return 0;
}

