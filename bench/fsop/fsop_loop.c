/* fsop_loop.c: N renames (a <-> b) and N mkdir+rmdir pairs in the current
 * directory; prints the ns per rename and per mkdir (rmdir is never
 * supervised, it is timed apart and subtracted).  bench/fsop/bench.py runs
 * it bare and inside landgate. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 2000;
    int fd = open("a", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || close(fd) != 0)
        return 1;
    double t0 = now();
    for (int i = 0; i < n; i++)
        if (rename(i % 2 ? "b" : "a", i % 2 ? "a" : "b") != 0)
            return 2;
    double t1 = now();
    double mk = 0, rm = 0;
    for (int i = 0; i < n; i++) {
        double s = now();
        if (mkdir("d", 0755) != 0)
            return 3;
        double m = now();
        if (rmdir("d") != 0)
            return 4;
        mk += m - s;
        rm += now() - m;
    }
    unlink("a");
    unlink("b");
    printf("rename_ns %.0f mkdir_ns %.0f rmdir_ns %.0f\n", (t1 - t0) / n, mk / n, rm / n);
    return 0;
}
