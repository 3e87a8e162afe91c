/* audit_fence.c: a fence in the kernel's audit stream (sandbox.supervise.kaudit).
 *
 * Landlock's denial records reach landgate asynchronously (kauditd).  Once the agent's
 * tree is dead, every record of its denials is already queued (a record is queued in
 * the denied syscall itself, before it returns), but maybe not yet delivered.  kauditd
 * hands records to the read-only multicast group in queue order.  So a denial of our
 * own, made now, is delivered after every one of them: when its record arrives, the
 * reader has seen everything the agent's domains logged.
 *
 * The fence: a short-lived process (clone, sharing landgate's memory and suspending it
 * until the child exits, like vfork) restricts itself with a Landlock ruleset that
 * handles READ_DIR and grants nothing, and opens "/" as a directory: refused, and,
 * audit being on, logged with its domain record (pid: the child, exe: landgate's).
 * The child is left unreaped: its pid cannot name another process until the caller
 * has seen the record and reaped it (lg_audit_fence_reap).  Only syscalls in the child
 * (no allocation, no locks: it runs on landgate's memory).  */
#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "kernel_compat.h"
#include "supervise_api.h"

#define FENCE_STACK (64 * 1024)

static int fence_child(void *arg)
{
    (void)arg;
    struct lg_landlock_ruleset_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.handled_access_fs = LANDLOCK_ACCESS_FS_READ_DIR;
    /* no_new_privs: landlock_restrict_self needs it without CAP_SYS_ADMIN (per task) */
    if (syscall(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        syscall(SYS_exit, 1);
    long rs = syscall(__NR_landlock_create_ruleset, &attr, LG_RULESET_ATTR_SIZE_V1, 0);
    if (rs < 0)
        syscall(SYS_exit, 2);
    if (syscall(__NR_landlock_restrict_self, rs, 0) != 0)
        syscall(SYS_exit, 3);
    long fd = syscall(SYS_openat, AT_FDCWD, "/", O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
    if (fd >= 0)
        syscall(SYS_exit, 4); /* not refused: no record either */
    syscall(SYS_exit, 0);
    return 0;
}

int lg_audit_fence(void)
{
    char *stack = malloc(FENCE_STACK);
    if (!stack)
        return -ENOMEM;
    /* Every signal blocked in the child (it inherits this thread's mask): no handler of
     * landgate's may run on its stack, over landgate's memory (as glibc's posix_spawn). */
    sigset_t all, old;
    sigfillset(&all);
    int rc = pthread_sigmask(SIG_SETMASK, &all, &old);
    if (rc != 0) {
        free(stack);
        return -rc;
    }
    /* CLONE_VFORK: back here once the child has exited (its record is queued by then);
     * CLONE_VM: no copy of landgate's page tables.  SIGCHLD: reaped with waitpid. */
    int pid = clone(fence_child, stack + FENCE_STACK, CLONE_VM | CLONE_VFORK | SIGCHLD, NULL);
    int e = errno;
    rc = pthread_sigmask(SIG_SETMASK, &old, NULL);
    free(stack);
    if (pid < 0)
        return -e;
    if (rc != 0) { /* cannot happen (SIG_SETMASK, a valid set): no fence, nothing left */
        lg_audit_fence_reap(pid);
        return -rc;
    }
    return pid;
}

int lg_audit_fence_reap(int pid)
{
    int status = 0;
    pid_t r;
    do {
        r = waitpid(pid, &status, 0);
    } while (r < 0 && errno == EINTR);
    if (r < 0)
        return -errno;
    if (!WIFEXITED(status))
        return -ECHILD;
    return WEXITSTATUS(status); /* 0: the denial was made (and logged, audit being on) */
}
