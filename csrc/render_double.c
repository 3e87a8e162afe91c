/* render_double.c: Python's repr of a clock reading, for csrc/render_event.c's "ts"
 * and "ts_decided" members (lg_render_double in supervise_api.h). */
#include <stdint.h>
#include <string.h>

#include "supervise_api.h"

/* Python's repr of d, for d == 0 or 1e9 <= d < 1e16 (fixed notation there); -1 for
 * any other value.  repr gives the fewest significant digits that read back as d,
 * the nearest such number when several do, ties to an even last digit.  Exact
 * integer arithmetic: d = m * 2^e (53-bit m, -23 <= e <= 1 in this range), so with
 * k = max(0, -e), d * 10^k * 4 = V is an integer below 2^110, and so are the
 * bounds of the interval of numbers that read back as d (half a step either way,
 * a quarter below when m is a power of two; included when m is even, as
 * round-half-even reads them).  The answer is the nearest multiple of 4 * 10^t in
 * that interval for the largest t that has one. */
int lg_render_double(double d, char *out)
{
    typedef unsigned __int128 u128;
    if (d == 0) {
        memcpy(out, "0.0", 4);
        return 3;
    }
    if (!(d >= 1e9 && d < 1e16))
        return -1;
    uint64_t bits;
    memcpy(&bits, &d, sizeof bits);
    int e = (int)((bits >> 52) & 0x7ff) - 1075;
    uint64_t m = (bits & ((1ULL << 52) - 1)) | (1ULL << 52);
    int k = e < 0 ? -e : 0;
    u128 scale = 1; /* 5^k, or 2^e when e >= 0 */
    for (int i = 0; i < (e < 0 ? k : e); i++)
        scale *= e < 0 ? 5 : 2;
    u128 v = (u128)m * 4 * scale, up = 2 * scale, dn = m == (1ULL << 52) ? scale : 2 * scale;
    u128 lo = v - dn, hi = v + up;
    int inclusive = (m & 1) == 0;
    /* A grid finer than the interval is wide has a point in it; a coarser grid's
     * points are also the finer one's, so the largest t is found going up from
     * there (one or two steps; each a 128-bit division). */
    u128 g = 4; /* 4 * 10^t */
    int t = 0;
    while (g * 10 < up + dn)
        g *= 10, t++;
    u128 c = 0;
    for (int have = 0;; g *= 10, t++) {
        u128 below = v / g, above = below + 1; /* the grid points around v */
        int ok_b = below * g == v || (inclusive ? below * g >= lo : below * g > lo);
        int ok_a = below * g != v && (inclusive ? above * g <= hi : above * g < hi);
        if (!ok_b && !ok_a) {
            if (!have)
                return -1; /* cannot happen: the first grid is finer than the interval */
            g /= 10, t--;
            break;
        }
        if (ok_b && ok_a) {
            u128 db = v - below * g, da = above * g - v;
            c = db < da ? below : da < db ? above : (below & 1) ? above : below;
        } else {
            c = ok_b ? below : above;
        }
        have = 1;
        if (g > hi)
            break;
    }
    /* c * 10^t / 10^k: the digits of c, t - k being the decimal exponent */
    char digits[48];
    int nd = 0;
    char tmp[48];
    do {
        tmp[nd++] = (char)('0' + (int)(c % 10));
        c /= 10;
    } while (c);
    for (int i = 0; i < nd; i++)
        digits[i] = tmp[nd - 1 - i];
    while (nd > 1 && digits[nd - 1] == '0')
        nd--, t++;
    int decpt = nd + t - k; /* digits before the point: 10..16 in this range */
    if (decpt < 1 || decpt > 17)
        return -1;
    int n = 0;
    for (int i = 0; i < decpt; i++)
        out[n++] = i < nd ? digits[i] : '0';
    out[n++] = '.';
    if (nd <= decpt)
        out[n++] = '0';
    else
        for (int i = decpt; i < nd; i++)
            out[n++] = digits[i];
    out[n] = 0;
    return n;
}
