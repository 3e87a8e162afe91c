/* supervise_open_init.c: setting up and tearing down the open check's openers (the
 * design is in supervise_open.c's header).
 *
 * Once per session, before the first notification: the launch deny set sorted and
 * the pidfd cache (both used by the open check and by simulation), the identity
 * set's storage, the Landlock ruleset the openers restrict themselves with, the
 * pool, and a probe job that proves the first opener's restriction took (a failure
 * refuses the session here, not every open later).  Apart from supervise_opener.c
 * because it runs once, on the session's thread, while that file runs per open on
 * an opener thread.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/capability.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#include "kernel_compat.h"
#include "supervise_open.h"

/* The capabilities an opener keeps when landgate is root: the file-access
 * subset of what the agent keeps (csrc/launch.c kept_caps), plus SETUID/SETGID
 * for the per-job fsuid/fsgid/groups switch (which the agent has too). */
static const int opener_caps[] = {CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_FOWNER, CAP_FSETID, CAP_SETGID, CAP_SETUID};

/* Runs once on each opener thread, before its first job.  Every step applies
 * to this thread alone: unshare(CLONE_FS) gives it its own umask/cwd,
 * no_new_privs, capset and landlock_restrict_self (no TSYNC) are per-task. */
static int opener_init(struct lg_sup *s)
{
    if (unshare(CLONE_FS) != 0)
        return -errno;
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        return -errno;
    if (geteuid() == 0) {
        struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
        struct __user_cap_data_struct data[2];
        memset(data, 0, sizeof data);
        for (size_t i = 0; i < sizeof opener_caps / sizeof opener_caps[0]; i++) {
            data[opener_caps[i] / 32].effective |= 1U << (opener_caps[i] % 32);
            data[opener_caps[i] / 32].permitted |= 1U << (opener_caps[i] % 32);
        }
        if (syscall(SYS_capset, &hdr, data) != 0)
            return -errno;
    }
    if (s->open_ruleset >= 0 && syscall(__NR_landlock_restrict_self, s->open_ruleset, 0) != 0)
        return -errno;
    return 0;
}

struct probe {
    int rc;
    int efd;
};

static void *probe_job(void *arg)
{
    struct probe *p = arg;
    p->rc = lg_pool_thread_ok();
    uint64_t one = 1;
    if (write(p->efd, &one, sizeof one) != sizeof one)
        p->rc = p->rc ? p->rc : -EIO;
    return NULL;
}

int lg_open_init(struct lg_sup *s, char *err, int errlen)
{
    /* Both the open check and simulation judge objects (the launch deny set)
     * and take callers' ids on the loop thread. */
    int rc = lg_deny_ids_sort(s);
    if (rc == 0)
        rc = lg_pidfd_cache_init(s);
    if (rc < 0) {
        snprintf(err, (size_t)errlen, "open check: %s", strerror(-rc));
        return -1;
    }
    /* Not fatal where missing: lg_sup_fd_path then walks /proc/self/fd/N each time. */
    s->self_fd_dir = open("/proc/self/fd", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (s->simulate) {
        /* simulation opens nothing, but judges objects as enforcement does
         * (supervise_open.c): the identity set is kept the same way */
        s->seen = calloc(LG_SEEN_CAP, sizeof *s->seen);
        if (!s->seen) {
            snprintf(err, (size_t)errlen, "open check (simulated): %s", strerror(ENOMEM));
            return -1;
        }
        return 0;
    }
    if (!(s->t.open_check || s->t.fsop_check))
        return 0;  /* the openers serve the open check and supervise_fsop.c */
    if (s->t.open_ruleset_fd >= 0) {
        s->open_ruleset = fcntl(s->t.open_ruleset_fd, F_DUPFD_CLOEXEC, 3);
        if (s->open_ruleset < 0) {
            snprintf(err, (size_t)errlen, "open check: dup Landlock ruleset: %s", strerror(errno));
            return -1;
        }
    }
    s->seen = calloc(LG_SEEN_CAP, sizeof *s->seen);
    if (!s->seen) {
        snprintf(err, (size_t)errlen, "open check: %s", strerror(ENOMEM));
        return -1;
    }
    rc = lg_pool_init(&s->openpool, s, LG_OPENERS_MAX, opener_init);
    if (rc == 0)
        rc = lg_pool_lanes(&s->openpool);  /* an opener pinned per CPU (supervise_pool.c) */
    if (rc < 0) {
        snprintf(err, (size_t)errlen, "open check: opener pool: %s", strerror(-rc));
        return -1;
    }
    /* The first opener starts now and says whether its restriction took: a
     * failure refuses the session here rather than failing every open later. */
    struct probe pr = {-EIO, eventfd(0, EFD_CLOEXEC)};
    if (pr.efd < 0) {
        snprintf(err, (size_t)errlen, "open check: eventfd: %s", strerror(errno));
        return -1;
    }
    rc = lg_pool_submit(&s->openpool, probe_job, &pr);
    uint64_t v;
    if (rc == 0 && read(pr.efd, &v, sizeof v) != sizeof v)
        rc = -errno;
    close(pr.efd);
    if (rc == 0)
        rc = pr.rc;
    if (rc < 0) {
        snprintf(err, (size_t)errlen, "open check: opener thread (unshare/no_new_privs/capset/"
                 "landlock_restrict_self): %s", strerror(-rc));
        return -1;
    }
    return 0;
}

void lg_open_fini(struct lg_sup *s)
{
    lg_pool_fini(&s->openpool);
    if (s->self_fd_dir >= 0)
        close(s->self_fd_dir);
    s->self_fd_dir = -1;
    if (s->open_ruleset >= 0)
        close(s->open_ruleset);
    s->open_ruleset = -1;
    free(s->seen);
    s->seen = NULL;
    lg_pidfd_cache_free(s);
    free(s->deny_sorted);
    s->deny_sorted = NULL;
}
