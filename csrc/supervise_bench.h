/* supervise_bench.h: where the exec decision's time goes, for bench/ only.
 *
 * Compiled in only with -DLG_BENCH_PHASES (bench/exec_ab.py --phases builds such a
 * variant; the shipped module never has it): each LG_PHASE(k) adds the time since the
 * previous mark to phase k's sum, on the loop thread (the only caller: no lock).  At
 * lg_sup_free the means are appended as one JSON line to the file named by the
 * environment variable LG_BENCH_PHASES_OUT.  Without the macro every mark is nothing.
 */
#ifndef LANDGATE_SUPERVISE_BENCH_H
#define LANDGATE_SUPERVISE_BENCH_H

enum {
    LG_PH_WAKE,     /* poll's return to RECV's return */
    LG_PH_READ,     /* the caller's memory: filename, argv */
    LG_PH_PIDFD,    /* pidfd_open on the caller */
    LG_PH_VALID,    /* SECCOMP_IOCTL_NOTIF_ID_VALID */
    LG_PH_IDENT,    /* PIDFD_GET_INFO, /proc/TID/task */
    LG_PH_JUDGE,    /* the target, the command rules */
    LG_PH_RESOLVE,  /* the named file resolved in the caller's view, fstat, its real path */
    LG_PH_SPELL,    /* the spelling's absolute form, the real-name judgement */
    LG_PH_HEAD,     /* #! heads */
    LG_PH_STABLE,   /* can the agent change the resolution */
    LG_PH_THREADS,  /* the caller's thread count (/proc/TID/task) */
    LG_PH_VFORK,    /* vfork sharers (kcmp with the parent) */
    LG_PH_RACY,     /* the ranges' mappings (/proc/TID/maps, PROCMAP_QUERY) */
    LG_PH_ANSWER,   /* the event record and the answer */
    LG_PH_AFTER,    /* bookkeeping after the answer */
    LG_PH_N
};

#ifdef LG_BENCH_PHASES
void lg_bench_phase(int k);
void lg_bench_phase_start(void);
void lg_bench_phases_dump(void);
#define LG_PHASE(k) lg_bench_phase(k)
#define LG_PHASE_START() lg_bench_phase_start()
#define LG_PHASES_DUMP() lg_bench_phases_dump()
#else
#define LG_PHASE(k) ((void)0)
#define LG_PHASE_START() ((void)0)
#define LG_PHASES_DUMP() ((void)0)
#endif

#endif
