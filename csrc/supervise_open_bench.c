/* supervise_open_bench.c: the open pieces (supervise_open_bench.h); bench builds only. */
#ifdef LG_BENCH_PHASES
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "supervise_open_bench.h"

#define LG_OP_SAMPLES 16384
static unsigned long long op_ts[LG_OP_SAMPLES][LG_OP_N];
static int op_n;  /* slots handed out: the loop thread alone */

static unsigned long long mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (unsigned long long)ts.tv_sec * 1000000000ULL + (unsigned long long)ts.tv_nsec;
}

int lg_bench_open_begin(void)
{
    unsigned long long poll_ns, recv_ns;
    lg_bench_phase_marks(&poll_ns, &recv_ns);
    if (op_n >= LG_OP_SAMPLES)
        return -1;
    int seq = op_n++;
    memset(op_ts[seq], 0, sizeof op_ts[seq]);
    op_ts[seq][LG_OP_POLL] = poll_ns;
    op_ts[seq][LG_OP_RECV] = recv_ns;
    return seq;
}

void lg_bench_open_mark(int seq, int k)
{
    if (seq >= 0 && seq < LG_OP_SAMPLES)
        op_ts[seq][k] = mono_ns();
}

static int cmp_ull(const void *a, const void *b)
{
    unsigned long long x = *(const unsigned long long *)a, y = *(const unsigned long long *)b;
    return x < y ? -1 : x > y;
}

void lg_bench_open_dump(void)
{
    static const char *const names[LG_OP_N] = {
        "poll", "recv", "read", "spell", "creds", "resolve", "judge", "submit",
        "handoff", "reopen", "addfd", "done"};
    const char *path = getenv("LG_BENCH_PHASES_OUT");
    int n = 0;
    for (int i = 0; i < op_n; i++) {
        int full = 1;
        for (int k = 0; k < LG_OP_N; k++)
            full &= op_ts[i][k] != 0;
        if (full)
            memmove(op_ts[n++], op_ts[i], sizeof op_ts[i]);
    }
    FILE *f = path && n > 0 ? fopen(path, "a") : NULL;
    if (f) {
        static unsigned long long d[LG_OP_SAMPLES];
        fprintf(f, "{\"open_n\": %d", n);
        for (int k = 1; k <= LG_OP_N; k++) {
            /* k == LG_OP_N: the loop thread's and the opener's whole share */
            for (int i = 0; i < n; i++)
                d[i] = k < LG_OP_N ? op_ts[i][k] - op_ts[i][k - 1]
                                   : op_ts[i][LG_OP_DONE] - op_ts[i][LG_OP_POLL];
            qsort(d, (size_t)n, sizeof d[0], cmp_ull);
            fprintf(f, ", \"%s\": %.2f", k < LG_OP_N ? names[k] : "total", d[n / 2] / 1000.0);
        }
        fprintf(f, "}\n");
        fclose(f);
    }
    op_n = 0;
}
#else
/* ISO C wants something in every translation unit. */
typedef int lg_open_bench_unused;
#endif
