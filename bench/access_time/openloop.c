/* openloop.c: the per-open workload of the access-time benchmark.
 *
 *   openloop DIR [PASSES [r|w]]
 *
 * Lists the regular files under DIR (nftw, not timed), then PASSES times
 * opens each one (r: O_RDONLY, read 4 KiB; w: O_WRONLY, write 1 byte at
 * offset 0, no truncation), closes it, and prints one JSON line:
 *   {"files": N, "errors": E, "ns_per_open": [pass1, pass2, ...]}
 * A refused open counts as an error, not a failure of the run.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static char **files;
static int nfiles, cap;

static int add(const char *p, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    if (type != FTW_F)
        return 0;
    if (nfiles == cap) {
        cap = cap ? cap * 2 : 1024;
        files = realloc(files, cap * sizeof *files);
        if (!files) {
            perror("openloop: realloc");
            exit(111);
        }
    }
    files[nfiles++] = strdup(p);
    return 0;
}

static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: openloop DIR [PASSES [r|w]]\n");
        return 2;
    }
    int passes = argc > 2 ? atoi(argv[2]) : 1;
    int wr = argc > 3 && argv[3][0] == 'w';
    if (nftw(argv[1], add, 32, FTW_PHYS) != 0) {
        perror("openloop: nftw");
        return 111;
    }
    char buf[4096];
    long errors = 0;
    printf("{\"files\": %d, \"ns_per_open\": [", nfiles);
    for (int p = 0; p < passes; p++) {
        long long t0 = now_ns();
        for (int i = 0; i < nfiles; i++) {
            int fd = open(files[i], wr ? O_WRONLY : O_RDONLY);
            if (fd < 0) {
                errors++;
                continue;
            }
            if (wr ? pwrite(fd, "x", 1, 0) != 1 : read(fd, buf, sizeof buf) < 0)
                errors++;
            close(fd);
        }
        printf("%s%.0f", p ? ", " : "", (double)(now_ns() - t0) / (nfiles ? nfiles : 1));
    }
    printf("], \"errors\": %ld}\n", errors);
    return 0;
}
