/* tests/policy/test_glob_steps.py's harness: csrc/glob.c compiled with a step
 * counter (LG_GLOB_STEP), run over cases read from stdin.
 *
 * Each case: u32 words, the program's u32 words, u32 text length, the text,
 * u64 cap (0: none).  Prints "<match> <steps>" per case; a case whose steps pass
 * its cap prints "over" and the harness exits 3 (the interpreter would go on for
 * as long as it likes: seconds, for the pathological globs). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static unsigned long long steps, cap;

#define LG_GLOB_STEP()                      \
    do {                                    \
        if (++steps > cap && cap) {         \
            printf("over\n");               \
            exit(3);                        \
        }                                   \
    } while (0)

#include "glob.c"

static int get(void *p, size_t n)
{
    return fread(p, 1, n, stdin) == n;
}

int main(void)
{
    uint32_t nw, len;
    while (get(&nw, 4)) {
        unsigned *prog = malloc((nw ? nw : 1) * sizeof *prog);
        if (!prog || !get(prog, nw * sizeof *prog) || !get(&len, 4))
            return 2;
        char *text = malloc(len ? len : 1);
        uint64_t c;
        if (!text || !get(text, len) || !get(&c, 8))
            return 2;
        steps = 0;
        cap = c;
        int r = lg_glob_match(prog, text, len, 1);
        printf("%d %llu\n", r, steps);
        fflush(stdout);
        free(prog);
        free(text);
    }
    return 0;
}
