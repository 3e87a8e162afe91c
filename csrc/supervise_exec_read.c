/* supervise_exec_read.c: what an exec asks to run, read from the caller's memory: the
 * filename and the argv strings, with the ranges the kernel will copy them from (for
 * supervise_exec_racy.c's sharing check).
 *
 * Apart from the handler (supervise_exec.c) because it is the one part that reads the
 * caller's memory, with its own batching (the string cache below): the handler judges
 * what this returns and never reads the caller's memory itself.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/uio.h>

#include "supervise_exec.h"

/* argv strings usually sit back to back in one buffer ("a\0b\0c\0"): reading
 * each with its own process_vm_readv of up to a page made a 7,000-argument xargs
 * exec cost ~3 ms (one syscall and a page copy per argument).  This keeps the
 * last chunk read from the caller and serves the next string from it when it
 * starts there; anything else goes through lg_read_str.  A chunk ends at a page
 * end; once an exec's strings have needed a second chunk (they span pages) the
 * next ones take up to LG_STRC_PAGES pages in one call, each page its own
 * remote element: the kernel stops at the first unmapped one and says how many
 * bytes it copied, so nothing is read that a page-by-page read would not have.
 * The bytes are the caller's memory as read once, exactly as before. */
static int read_str_cached(int pid, struct lg_str_cache *c, unsigned long long addr, char *buf,
                           size_t cap, size_t *outlen)
{
    if (!(c->n > 0 && addr >= c->base && addr < c->base + c->n)) {
        size_t page_left = 4096 - (size_t)(addr & 4095);
        struct iovec remote[LG_STRC_PAGES];
        int pages = c->misses > 0 ? LG_STRC_PAGES : 1;
        size_t total = 0;
        for (int i = 0; i < pages; i++) {
            size_t len = i == 0 ? page_left : 4096;
            remote[i].iov_base = (void *)(uintptr_t)(addr + total);
            remote[i].iov_len = len;
            total += len;
        }
        struct iovec local = {c->data, total};
        c->misses++;
        ssize_t n = process_vm_readv(pid, &local, 1, remote, (unsigned long)pages, 0);
        if (n <= 0) {
            c->n = 0;
            return n < 0 ? -errno : -EFAULT;
        }
        c->base = addr;
        c->n = (size_t)n;
    }
    size_t off = (size_t)(addr - c->base);
    size_t avail = c->n - off;
    const char *nul = memchr(c->data + off, '\0', avail);
    if (nul) {
        size_t l = (size_t)(nul - (c->data + off));
        if (l + 1 > cap)
            return -E2BIG;
        memcpy(buf, c->data + off, l + 1);
        *outlen = l;
        return 0;
    }
    /* The string runs past the cached chunk: the page-by-page reader takes it. */
    c->n = 0;
    return lg_read_str(pid, addr, buf, cap, outlen);
}

/* Read the filename at fptr into fname (cap LG_FNAME_MAX; its length in *flen, and the
 * read's own result in *frc: 0 or -errno) and the argv array at aptr into the judge's
 * argv (s->judge: strings in cmd, words in argv), noting each range read in r.
 * 0, or -errno: EFAULT-like for unreadable memory, -E2BIG beyond our bounds; then the
 * handler fails closed (nothing read is judged). */
int lg_exec_read(struct lg_sup *s, int tid, unsigned long long fptr, unsigned long long aptr,
                 char *fname, size_t *flen, int *frc, struct lg_exec_ranges *r)
{
    /* One process_vm_readv for the filename's page chunk (into the string
     * cache: argv[0] is often the same string, or on the same page) and the
     * argv array's first page chunk; anything it did not bring is read below
     * as before.  The kernel copies whole remote iovecs or stops: n says which. */
    unsigned long long ptrs[64];
    size_t first_cnt = 0;
    r->n = 0;
    r->overflow = 0;  /* addr and len are written only as far as n: never cleared whole */
    s->strc.n = 0;
    s->strc.misses = 0;
    {
        size_t fleft = 4096 - (size_t)(fptr & 4095);
        size_t aleft = 4096 - (size_t)(aptr & 4095);
        size_t acnt = aleft / 8 < 64 ? aleft / 8 : 64;
        if (acnt == 0)
            acnt = 1;
        struct iovec local[2] = {{s->strc.data, fleft}, {ptrs, acnt * 8}};
        struct iovec remote[2] = {{(void *)(uintptr_t)fptr, fleft},
                                  {(void *)(uintptr_t)aptr, acnt * 8}};
        ssize_t got = process_vm_readv(tid, local, 1 + (aptr != 0), remote, 1 + (aptr != 0), 0);
        if (got >= (ssize_t)fleft) {
            s->strc.base = fptr;
            s->strc.n = fleft;
        }
        if (aptr != 0 && got == (ssize_t)(fleft + acnt * 8))
            first_cnt = acnt;
    }
    int rc = read_str_cached(tid, &s->strc, fptr, fname, LG_FNAME_MAX, flen);
    *frc = rc;
    int argc = 0;
    size_t pos = 0;
    int fail = rc;
    if (rc == 0)
        lg_add_range(r->addr, r->len, &r->n, &r->overflow, fptr, *flen + 1);
    /* argv: pointers until NULL, read without crossing a page in one call */
    unsigned long long p = aptr;
    while (fail == 0 && aptr != 0) {
        size_t page_left = 4096 - (size_t)(p & 4095);
        size_t cnt = page_left / 8 < 64 ? page_left / 8 : 64;
        if (cnt == 0)
            cnt = 1;
        if (p == aptr && first_cnt == cnt)
            first_cnt = 0;  /* the first chunk came with the filename */
        else
            fail = lg_read_mem(tid, p, ptrs, cnt * 8);
        if (fail)
            break;
        lg_add_range(r->addr, r->len, &r->n, &r->overflow, p, cnt * 8);
        size_t k;
        for (k = 0; k < cnt; k++) {
            if (ptrs[k] == 0)
                break;
            if (argc >= s->judge->argv.cap) {
                fail = -E2BIG;
                break;
            }
            size_t l = 0;
            fail = read_str_cached(tid, &s->strc, ptrs[k], s->judge->cmd + pos, LG_CMD_MAX - pos, &l);
            if (fail)
                break;
            s->judge->argv.w[argc] = s->judge->cmd + pos;
            s->judge->argv.len[argc] = (int)l;
            argc++;
            lg_add_range(r->addr, r->len, &r->n, &r->overflow, ptrs[k], l + 1);
            pos += l + 1;
        }
        if (fail || k < cnt)
            break;
        p += cnt * 8;
    }
    s->judge->argv.n = argc;
    return fail;
}
