/* supervise_bench.c: the loop thread's phase times, per notification, for
 * bench/exec_ab.py --phases and bench/open_ab.py --phases (supervise_bench.h).
 *
 * Compiled in only with -DLG_BENCH_PHASES (an empty file otherwise): apart from the
 * loop (supervise.c) so that the bench's recorder and its static state never sit in
 * the file that holds the decision loop.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "supervise_bench.h"
#include "supervise_int.h"

#ifdef LG_BENCH_PHASES
/* bench only (supervise_bench.h): the loop thread's phase times, per notification */
#define LG_PH_SAMPLES 8192
static unsigned ph_cur[LG_PH_N], ph_samp[LG_PH_N][LG_PH_SAMPLES];
static unsigned long long ph_last, ph_n;
static unsigned long long ph_poll_ns, ph_recv_ns;  /* this notification's (open pieces) */

void lg_bench_phase_marks(unsigned long long *poll_ns, unsigned long long *recv_ns)
{
    *poll_ns = ph_poll_ns;
    *recv_ns = ph_recv_ns;
}

static unsigned long long mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (unsigned long long)ts.tv_sec * 1000000000ULL + (unsigned long long)ts.tv_nsec;
}

static void ph_flush(void)
{
    if (ph_n > 0 && ph_n <= LG_PH_SAMPLES)
        for (int k = 0; k < LG_PH_N; k++)
            ph_samp[k][ph_n - 1] = ph_cur[k];
    memset(ph_cur, 0, sizeof ph_cur);
}

void lg_bench_phase_start(void)
{
    ph_flush();
    ph_last = mono_ns();
    ph_poll_ns = ph_last;
    ph_n++;
}

void lg_bench_phase(int k)
{
    unsigned long long t = mono_ns();
    ph_cur[k] += (unsigned)(t - ph_last);
    ph_last = t;
    if (k == LG_PH_WAKE)
        ph_recv_ns = t;
}

static int cmp_u(const void *a, const void *b)
{
    unsigned x = *(const unsigned *)a, y = *(const unsigned *)b;
    return x < y ? -1 : x > y;
}

void lg_bench_phases_dump(void)
{
    static const char *const names[LG_PH_N] = {
        "wake", "read", "pidfd", "valid", "ident", "judge", "resolve",
        "spell", "head", "stable", "threads", "vfork", "maps", "answer", "after"};
    const char *path = getenv("LG_BENCH_PHASES_OUT");
    ph_flush();
    size_t n = ph_n < LG_PH_SAMPLES ? (size_t)ph_n : LG_PH_SAMPLES;
    FILE *f = path && n > 0 ? fopen(path, "a") : NULL;
    if (f) {
        struct timespec cpu;
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu);
        fprintf(f, "{\"n\": %zu, \"loop_cpu_per\": %.2f", n,
                ((double)cpu.tv_sec * 1e9 + (double)cpu.tv_nsec) / (double)n / 1000.0);
        for (int k = 0; k < LG_PH_N; k++) {
            qsort(ph_samp[k], n, sizeof ph_samp[k][0], cmp_u);
            fprintf(f, ", \"%s\": %.2f", names[k], ph_samp[k][n / 2] / 1000.0);
        }
        fprintf(f, "}\n");
        fclose(f);
    }
    ph_n = 0;
}
#endif
