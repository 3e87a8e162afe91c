/* supervise_exec_racy.c: may another task change the bytes an exec (or a
 * datagram send) is about to have the kernel copy from the caller?
 *
 * The exec fast path (supervise_exec.c) answers CONTINUE on what it read only
 * when nothing but the caller itself, blocked in the syscall, can change those
 * bytes: no other thread, no vfork parent that could run, and every range in
 * private anonymous memory (not a shared or file-backed mapping another
 * process can write).  On any doubt: racy (the verified path).
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>

#include "kernel_compat.h"
#include "supervise_int.h"

/* Note [addr, addr + len) as memory the kernel will copy.  A range within a
 * page of one already noted joins it (argv strings sit back to back, or a few
 * bytes of allocator header apart; pointer chunks follow each other): the
 * joined range covers both and the bytes between, and ranges_racy then asks
 * whether the whole lies in one private VMA, which says it of every part (a
 * whole that spans two VMAs is racy: slower, never wrong).  Too many ranges:
 * *overflow (treated as racy). */
void lg_add_range(unsigned long long *raddr, size_t *rlen, int *nr, int *overflow,
                  unsigned long long addr, size_t len)
{
    unsigned long long end = addr + len;
    for (int i = *nr - 1; i >= 0; i--) {
        unsigned long long s0 = raddr[i], e0 = raddr[i] + rlen[i];
        if (addr <= e0 + 4096 && end + 4096 >= s0) {
            unsigned long long lo = addr < s0 ? addr : s0, hi = end > e0 ? end : e0;
            raddr[i] = lo;
            rlen[i] = (size_t)(hi - lo);
            return;
        }
    }
    if (*nr < LG_RANGES) {
        raddr[*nr] = addr;
        rlen[(*nr)++] = len;
        return;
    }
    *overflow = 1;
}

/* ---- racy or not ------------------------------------------------------------ */

/* Before 6.11 there is no PROCMAP_QUERY: the same question answered from the
 * text of /proc/TID/maps ("start-end perms offset dev inode [path]", fd open at
 * offset 0; the caller closes it), read whole (at most 4 MiB; more, or any parse error: racy).  1 if some range lies
 * in a shared or file-backed VMA or spans past its VMA. */
static int ranges_racy_text(int fd, const unsigned long long *addr, const size_t *len, int n)
{
    size_t cap = 1 << 16, used = 0;
    char *buf = malloc(cap + 1);
    int racy = buf == NULL;
    while (!racy) {
        if (used == cap) {
            char *nb = cap >= (4u << 20) ? NULL : realloc(buf, cap * 2 + 1);
            if (!nb) {
                racy = 1;
                break;
            }
            buf = nb;
            cap *= 2;
        }
        ssize_t r = read(fd, buf + used, cap - used);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            racy = 1;
        if (r <= 0)
            break;
        used += (size_t)r;
    }
    if (racy) {
        free(buf);
        return 1;
    }
    buf[used] = '\0';
    for (int i = 0; i < n && !racy; i++) {
        unsigned long long a = addr[i], e = addr[i] + (len[i] ? len[i] : 1);
        int found = 0;
        for (char *line = buf; line && *line; ) {
            char *nl = strchr(line, '\n');
            unsigned long long vs, ve, off, ino;
            char perms[8];
            unsigned dmaj, dmin;
            if (sscanf(line, "%llx-%llx %7s %llx %x:%x %llu", &vs, &ve, perms, &off, &dmaj,
                       &dmin, &ino) != 7) {
                racy = 1;
                break;
            }
            if (a >= vs && a < ve) {
                found = 1;
                if (perms[3] == 's' || ino != 0 || e > ve)
                    racy = 1;
                break;
            }
            line = nl ? nl + 1 : NULL;
        }
        if (!found)
            racy = 1;
    }
    free(buf);
    return racy;
}

/* 1 if some byte range may be changed by another task: the VMA holding it is
 * shared or file-backed.  6.11 PROCMAP_QUERY, else the text of the maps file;
 * on error, assume racy.  maps_fd: when not NULL, the maps fd is handed over
 * there (or -1) instead of closed, so that the exec check closes it after its
 * answer (a close that drops the last reference to the caller's mm costs
 * 1.7 us, measured on this 2-vCPU VM). */
int lg_ranges_racy(int tid, const unsigned long long *addr, const size_t *len, int n,
                   int *maps_fd)
{
    if (maps_fd)
        *maps_fd = -1;
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/maps", tid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 1;
    unsigned long long lo = 1, hi = 0;  /* last VMA found: [lo, hi) */
    int racy = 0;
    for (int i = 0; i < n && !racy; i++) {
        unsigned long long a = addr[i], e = addr[i] + (len[i] ? len[i] : 1);
        if (a >= lo && e <= hi)
            continue;
        struct procmap_query q;
        memset(&q, 0, sizeof q);
        q.size = sizeof q;
        q.query_addr = a;
        if (ioctl(fd, PROCMAP_QUERY, &q) < 0) {
            /* ENOTTY: a kernel before 6.11 (no PROCMAP_QUERY) */
            racy = errno == ENOTTY ? -1 : 1;
            break;
        }
        if (q.vma_start > a) {
            racy = 1;
            break;
        }
        if ((q.vma_flags & PROCMAP_QUERY_VMA_SHARED) || q.inode != 0 || e > q.vma_end)
            racy = 1;
        lo = q.vma_start;
        hi = q.vma_end;
    }
    if (racy < 0)  /* the same maps fd, still at offset 0: the ioctl reads nothing */
        racy = ranges_racy_text(fd, addr, len, n);
    if (maps_fd)
        *maps_fd = fd;
    else
        close(fd);
    return racy;
}

/* A vfork parent is not asleep in the kernel's wait the moment its child
 * runs: between waking the child and sleeping in wait_for_vfork_done it is
 * runnable, and /proc/PID/syscall then says "running" (the kernel reports a
 * syscall only for a task that is off the CPU).  It gets there when it is
 * next scheduled, without returning to user space (the filter refuses
 * CLONE_VM without CLONE_THREAD or CLONE_VFORK, so a single-threaded parent
 * sharing our mm made us with vfork and waits for our exec).  Seen on
 * Debian's 6.12 in vm-tests (one vCPU, PREEMPT_VOLUNTARY: the child can take
 * the CPU at the parent's might_sleep on the way to the wait): 4 of 50 vfork
 * execs of a single-threaded parent read "running" and took the verified
 * path; 6.1 and this host's 6.18 did not show it.  So a "running" parent is
 * read again after giving it the CPU (sched_yield, then short sleeps), at
 * most LG_VFORK_TRIES times (~0.7 ms, only in that case); the answer is still
 * only ever what /proc/PID/syscall says.  Still running after that: racy. */
#define LG_VFORK_TRIES 10

static int read_sharer_syscall(int pid, char *buf, size_t cap)
{
    for (int attempt = 0;; attempt++) {
        if (lg_proc_read(pid, "syscall", buf, cap) < 0)
            return -1;
        if (strncmp(buf, "running", 7) != 0 || attempt == LG_VFORK_TRIES)
            return 0;
        if (attempt < 3) {
            sched_yield();
        } else {
            struct timespec ts = {0, 100 * 1000};  /* 100 us */
            nanosleep(&ts, NULL);
        }
    }
}

/* The vfork case: the caller shares its mm with its parent.  That is safe
 * only if every other task of that mm is blocked: a single-threaded parent
 * that is itself inside vfork() (or clone with CLONE_VFORK), read from
 * /proc/PID/syscall, and so on up a chain of nested vforks.  Returns 1 if
 * some sharer may be running (racy). */
int lg_vfork_sharers_racy(int tid, int ppid)
{
    int child = tid, parent = ppid;
    for (int depth = 0; depth < 8; depth++) {
        if (parent <= 0 || syscall(SYS_kcmp, child, parent, KCMP_VM, 0, 0) != 0)
            return 0;  /* no (further) sharer up the chain */
        int pp, threads;
        unsigned long long st;
        if (lg_proc_stat(parent, &pp, &threads, &st) < 0 || threads != 1)
            return 1;
        char buf[256];
        if (read_sharer_syscall(parent, buf, sizeof buf) < 0)
            return 1;
        char *end;
        long nr = strtol(buf, &end, 10);
        unsigned long long flags = strtoull(end, NULL, 16);
        int in_vfork = nr == SYS_vfork || (nr == SYS_clone && (flags & CLONE_VFORK));
        if (!in_vfork)
            return 1;  /* a CLONE_VM sharer that is not waiting for us */
        child = parent;
        parent = pp;
    }
    return 1;
}

/* Used by the datagram path: may another task change these caller bytes
 * before the kernel reads them again? (threads, vfork sharing, shared pages) */
int lg_caller_racy(int tid, const unsigned long long *addr, const size_t *len, int n)
{
    int ppid, threads;
    unsigned long long start;
    if (lg_proc_stat(tid, &ppid, &threads, &start) < 0 || threads > 1)
        return 1;
    if (lg_vfork_sharers_racy(tid, ppid))
        return 1;
    return lg_ranges_racy(tid, addr, len, n, NULL);
}
