/* supervise_exec_admit.c: the processes an allowed exec admitted, and inheritance
 * (DESIGN §3: a program allowed with inherit lets its descendants' execs run).
 *
 * Apart from the exec handler (supervise_exec.c) because it is a table of its own with
 * its own memory story (pages faulted in as pids arrive, a purge and rehash when it
 * fills): the handler only asks lg_exec_inherited before its answer and records with
 * lg_exec_admit after it.
 */
#include <stdlib.h>

#include "supervise_exec.h"

/* The first slot of pid's probe: the 256 pids of an aligned block share one 4 KiB
 * page of the table (16-byte entries), and the blocks are spread over the table's
 * pages (a multiplicative hash of the block number).  The table's pages stay zero
 * pages until written (issue 19: a session holds what it uses), and a session's
 * processes mostly have nearby pids: with every pid hashed on its own, each new
 * admission wrote a fresh page, a page fault of ~4.5 us in the bookkeeping after
 * almost every exec of a 200-exec session (median, bench/exec_ab.py --phases); now
 * a page or two per 256 pids. */
_Static_assert(sizeof(struct lg_admit) * 256 == 4096, "256 admissions per page");
_Static_assert(LG_ADMIT_CAP % 256 == 0, "the admission table is whole pages");

static unsigned admit_slot(int pid)
{
    unsigned p = (unsigned)pid;
    unsigned pages = LG_ADMIT_CAP / 256;
    unsigned block = ((p >> 8) * 2654435761u) % pages;
    return (block * 256 + (p & 255u)) % LG_ADMIT_CAP;
}

static struct lg_admit *admit_find(struct lg_sup *s, int pid)
{
    unsigned idx = admit_slot(pid);
    for (unsigned probe = 0; probe < LG_ADMIT_CAP; probe++) {
        struct lg_admit *a = &s->admit[(idx + probe) % LG_ADMIT_CAP];
        if (a->pid == pid || a->pid == 0)
            return a;
    }
    return NULL;
}

/* Drop entries whose process is gone (or whose pid was reused), then rehash. */
static void admit_purge(struct lg_sup *s)
{
    struct lg_admit *old = s->admit;
    struct lg_admit *fresh = calloc(LG_ADMIT_CAP, sizeof *fresh);
    if (!fresh)
        return;
    lg_prefault(fresh, LG_ADMIT_CAP * sizeof *fresh);
    s->admit = fresh;
    s->admit_count = 0;
    for (unsigned i = 0; i < LG_ADMIT_CAP; i++) {
        if (old[i].pid == 0)
            continue;
        int ppid;
        unsigned long long st;
        if (lg_proc_ident(s, old[i].pid, &ppid, &st) < 0 || st != old[i].start)
            continue;
        struct lg_admit *a = admit_find(s, old[i].pid);
        if (a) {
            *a = old[i];
            s->admit_count++;
        }
    }
    free(old);
}

void lg_exec_admit(struct lg_sup *s, int pid, unsigned long long start, int inherit)
{
    if (s->admit_count >= LG_ADMIT_CAP * 3 / 4)
        admit_purge(s);
    struct lg_admit *a = admit_find(s, pid);
    if (!a)
        return;  /* full of live processes: descendants fall to their own rules (fail closed) */
    if (a->pid == 0)
        s->admit_count++;
    a->pid = pid;
    a->start = start;
    a->inherit = inherit;
}

/* Is pid (with its start time) admitted?  Returns 1 admitted with inherit,
 * 0 admitted without inherit, -1 not admitted. */
static int admitted(struct lg_sup *s, int pid, unsigned long long start)
{
    struct lg_admit *a = admit_find(s, pid);
    if (!a || a->pid != pid || a->start != start)
        return -1;
    return a->inherit ? 1 : 0;
}

/* Inheritance (DESIGN §3): the nearest admitted process among the caller and
 * its ancestors decides; one admitted with inherit lets the exec run. */
int lg_exec_inherited(struct lg_sup *s, int pid, int ppid, unsigned long long start)
{
    int r = admitted(s, pid, start);
    if (r >= 0)
        return r;
    int cur = ppid;
    for (int depth = 0; depth < 64 && cur > 1; depth++) {
        int pp;
        unsigned long long st;
        if (lg_proc_ident(s, cur, &pp, &st) < 0)
            return 0;
        r = admitted(s, cur, st);
        if (r >= 0)
            return r;
        cur = pp;
    }
    return 0;
}
