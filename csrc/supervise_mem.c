/* supervise_mem.c: reading a caller's memory and normalising the paths read from it */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/uio.h>

#include "supervise_int.h"

int lg_read_mem(int pid, unsigned long long addr, void *buf, size_t len)
{
    struct iovec local = {buf, len};
    struct iovec remote = {(void *)(uintptr_t)addr, len};
    ssize_t n = process_vm_readv(pid, &local, 1, &remote, 1, 0);
    if (n < 0)
        return -errno;
    if ((size_t)n != len)
        return -EFAULT;
    return 0;
}

/* Read a NUL-terminated string page by page (a string may end just before an
 * unmapped page, so never ask for bytes past the current page in one go).
 * -E2BIG if it does not fit cap (the caller fails closed). */
int lg_read_str(int pid, unsigned long long addr, char *buf, size_t cap, size_t *outlen)
{
    size_t pos = 0;
    while (pos < cap) {
        size_t page_left = 4096 - (size_t)(addr & 4095);
        size_t chunk = cap - pos < page_left ? cap - pos : page_left;
        struct iovec local = {buf + pos, chunk};
        struct iovec remote = {(void *)(uintptr_t)addr, chunk};
        ssize_t n = process_vm_readv(pid, &local, 1, &remote, 1, 0);
        if (n <= 0)
            return n < 0 ? -errno : -EFAULT;
        char *nul = memchr(buf + pos, '\0', (size_t)n);
        if (nul) {
            *outlen = (size_t)(nul - buf);
            return 0;
        }
        pos += (size_t)n;
        addr += (unsigned long long)n;
    }
    return -E2BIG;
}

/* Lexically normalise an absolute path: "." and empty components dropped, ".."
 * takes one away (never above "/").  A result that does not fit `cap` is
 * -ENAMETOOLONG: a decision is never made on a shortened path. */
int lg_normalise_path(const char *in, char *out, size_t cap)
{
    if (cap < 2)
        return -ENAMETOOLONG;
    size_t o = 0;
    const char *c = in;
    while (*c) {
        while (*c == '/')
            c++;
        if (!*c)
            break;
        const char *e = strchr(c, '/');
        size_t l = e ? (size_t)(e - c) : strlen(c);
        if (l == 1 && c[0] == '.') {
            /* skip */
        } else if (l == 2 && c[0] == '.' && c[1] == '.') {
            while (o > 0 && out[o - 1] != '/')
                o--;
            if (o > 0)
                o--;
        } else {
            if (o + l + 2 > cap)
                return -ENAMETOOLONG;
            out[o++] = '/';
            memcpy(out + o, c, l);
            o += l;
        }
        c += l;
    }
    if (o == 0)
        out[o++] = '/';
    out[o] = '\0';
    return 0;
}

