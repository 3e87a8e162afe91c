/* supervise_open_bench.h: where an enforced open's time goes, for bench/ only.
 *
 * Compiled in only with -DLG_BENCH_PHASES (bench/open_ab.py --phases and
 * bench_supervise.py's open pieces build such a variant; the shipped module never
 * has it).  Each open the loop thread takes gets a sample slot; LG_OPEN_MARK(seq, k)
 * stores the monotonic time at point k, on whichever thread reaches it (the loop
 * thread, then one opener: a slot is written by one thread at a time, handed over
 * with the job).  At the loop's end the median of every piece (the time between
 * consecutive marks) over the opens that reached every mark is appended as one
 * JSON line to $LG_BENCH_PHASES_OUT.  Without the macro every mark is nothing.
 */
#ifndef LANDGATE_SUPERVISE_OPEN_BENCH_H
#define LANDGATE_SUPERVISE_OPEN_BENCH_H

enum {
    LG_OP_POLL,     /* poll returned (the loop was woken) */
    LG_OP_RECV,     /* SECCOMP_IOCTL_NOTIF_RECV returned */
    LG_OP_READ,     /* the path read from the caller's memory, ID_VALID */
    LG_OP_SPELL,    /* its absolute spelling judged */
    LG_OP_CREDS,    /* the caller's credentials, the session root */
    LG_OP_RESOLVE,  /* resolved to an O_PATH fd in the caller's view */
    LG_OP_JUDGE,    /* the object judged */
    LG_OP_SUBMIT,   /* handed to an opener (the loop thread is done) */
    LG_OP_PICKUP,   /* the opener started the job */
    LG_OP_REOPEN,   /* the opener's open */
    LG_OP_ADDFD,    /* ADDFD returned (the caller has the fd) */
    LG_OP_DONE,     /* the job freed */
    LG_OP_N
};

#ifdef LG_BENCH_PHASES
void lg_bench_phase_marks(unsigned long long *poll_ns, unsigned long long *recv_ns);  /* supervise.c */
int lg_bench_open_begin(void);
void lg_bench_open_mark(int seq, int k);
void lg_bench_open_dump(void);
#define LG_OPEN_BEGIN() lg_bench_open_begin()
#define LG_OPEN_MARK(seq, k) lg_bench_open_mark((seq), (k))
#define LG_OPEN_DUMP() lg_bench_open_dump()
#else
#define LG_OPEN_BEGIN() (-1)
#define LG_OPEN_MARK(seq, k) ((void)(seq))
#define LG_OPEN_DUMP() ((void)0)
#endif

#endif
