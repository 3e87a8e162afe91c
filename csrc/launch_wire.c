/* launch_wire.c: the spec's wire form (see launch_wire.h), both directions.
 *
 * Encoding runs in landgate (an ordinary call: it may allocate).  Decoding runs in the
 * init program right after its execve, single-threaded, before any namespace step; it
 * trusts nothing in the blob: every offset and count is checked against the size read,
 * every string must end before the blob does, counts that must agree are compared.
 */
#include <fcntl.h>
#include <sched.h>
#include <stdlib.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "launch_wire.h"

/* ---- encode -------------------------------------------------------------- */

struct wbuf {
    unsigned char *buf;
    unsigned long cap;
    unsigned long len; /* grows past cap on a sizing pass: nothing is written there */
    int bad;
};

static void put(struct wbuf *w, const void *src, unsigned long n)
{
    if (w->len + n <= w->cap && w->buf)
        memcpy(w->buf + w->len, src, n);
    w->len += n;
}

static void align8(struct wbuf *w)
{
    static const unsigned char zeros[8];
    put(w, zeros, (8 - w->len % 8) % 8);
}

static struct lg_wire_list put_strings(struct wbuf *w, const char *const *items, int count)
{
    struct lg_wire_list l = { (uint32_t)w->len, 0 };
    if (count < 0 || (count > 0 && !items)) {
        w->bad = 1;
        return l;
    }
    for (int i = 0; i < count; i++) {
        if (!items[i]) {
            w->bad = 1;
            return l;
        }
        put(w, items[i], strlen(items[i]) + 1);
    }
    l.count = (uint32_t)count;
    return l;
}

/* A NULL-terminated vector (argv, envp). */
static struct lg_wire_list put_vector(struct wbuf *w, char *const *items)
{
    int count = 0;
    while (items && items[count])
        count++;
    return put_strings(w, (const char *const *)items, count);
}

static struct lg_wire_list put_words(struct wbuf *w, const void *items, int count, unsigned long size)
{
    align8(w);
    struct lg_wire_list l = { (uint32_t)w->len, 0 };
    if (count < 0 || (count > 0 && !items)) {
        w->bad = 1;
        return l;
    }
    put(w, items, (unsigned long)count * size);
    l.count = (uint32_t)count;
    return l;
}

long lg_wire_encode(const struct lg_spawn_spec *s, int landgate_pid, unsigned char *buf,
                    unsigned long cap)
{
    struct lg_wire_hdr h;
    memset(&h, 0, sizeof h);
    struct wbuf w = { buf, cap, sizeof h, 0 };
    if (!s->path || !s->cwd || !s->argv || !s->envp)
        return -EINVAL;
    h.path = put_strings(&w, &s->path, 1);
    h.argv = put_vector(&w, s->argv);
    h.envp = put_vector(&w, s->envp);
    h.cwd = put_strings(&w, &s->cwd, 1);
    h.dev_paths = put_strings(&w, s->dev_paths, s->n_dev_paths);
    h.bind_src = put_strings(&w, s->bind_src, s->n_binds);
    h.bind_dst = put_strings(&w, s->bind_dst, s->n_binds);
    h.ll_paths = put_strings(&w, s->ll_paths, s->n_ll_paths);
    h.ll_access = put_words(&w, s->ll_access, s->n_ll_paths, sizeof *s->ll_access);
    h.ll_ports = put_words(&w, s->ll_ports, s->n_ll_ports, sizeof *s->ll_ports);
    h.ll_port_access = put_words(&w, s->ll_port_access, s->n_ll_ports, sizeof *s->ll_port_access);
    h.filter = put_words(&w, s->filter, s->filter_len, sizeof *s->filter);
    if (w.bad)
        return -EINVAL;
    if (w.len > LG_WIRE_MAX)
        return -E2BIG;
    h.magic = LG_WIRE_MAGIC;
    h.version = LG_WIRE_VERSION;
    h.size = (uint32_t)w.len;
    h.landgate_pid = landgate_pid;
    h.ns_flags = s->ns_flags;
    h.map_uid = s->map_uid;
    h.map_gid = s->map_gid;
    h.mount_proc = s->mount_proc;
    h.memfd_noexec = s->memfd_noexec;
    h.netns_fd = s->netns_fd;
    for (int i = 0; i < 3; i++)
        h.stdio_fds[i] = s->stdio_fds[i];
    h.minimal_dev = s->minimal_dev;
    h.landlock_abi = s->landlock_abi;
    h.filter_flags = s->filter_flags;
    h.ll_handled_fs = s->ll_handled_fs;
    h.ll_handled_net = s->ll_handled_net;
    h.ll_scoped = s->ll_scoped;
    if (buf && w.len <= cap)
        memcpy(buf, &h, sizeof h);
    return (long)w.len;
}

/* ---- decode -------------------------------------------------------------- */

/* Point out[0..count) at the packed strings of l; out[count] = NULL. */
static int get_strings(const unsigned char *b, uint32_t size, struct lg_wire_list l, char ***out,
                       const char **step, const char *bounds_step, const char *end_step)
{
    if (l.off < sizeof(struct lg_wire_hdr) || l.off > size || l.count > size - l.off) {
        *step = bounds_step;
        return -EINVAL;
    }
    char **v = calloc((size_t)l.count + 1, sizeof *v);
    if (!v) {
        *step = "spec: allocate string list";
        return -ENOMEM;
    }
    uint32_t pos = l.off;
    for (uint32_t i = 0; i < l.count; i++) {
        const unsigned char *nul = pos < size ? memchr(b + pos, '\0', size - pos) : NULL;
        if (!nul) {
            free(v);
            *step = end_step;
            return -EINVAL;
        }
        v[i] = (char *)(b + pos);
        pos = (uint32_t)(nul - b) + 1;
    }
    *out = v;
    return 0;
}

static int get_words(uint32_t size, struct lg_wire_list l, const char **step, const char *what)
{
    if (l.off < sizeof(struct lg_wire_hdr) || l.off % 8 != 0 || l.off > size ||
        l.count > (size - l.off) / 8) {
        *step = what;
        return -EINVAL;
    }
    return 0;
}

/* One string list, by field name: the step strings stay literals (no formatting). */
#define GET_STRINGS(field, out)                                                             \
    get_strings(b, h->size, h->field, (out), step, "spec: " #field " out of bounds",       \
                "spec: " #field " unterminated")

static int decode(const unsigned char *b, uint32_t len, struct lg_spawn_spec *s, int *landgate_pid,
                  const char **step)
{
    const struct lg_wire_hdr *h = (const void *)b;
    if (len < sizeof *h) {
        *step = "spec: shorter than its header";
        return -EINVAL;
    }
    if (h->magic != LG_WIRE_MAGIC || h->version != LG_WIRE_VERSION) {
        *step = "spec: not a landgate spec of this version";
        return -EINVAL;
    }
    if (h->size != len) {
        *step = "spec: size does not match the memfd";
        return -EINVAL;
    }
    if (h->path.count != 1 || h->cwd.count != 1) {
        *step = "spec: path and cwd must be one string";
        return -EINVAL;
    }
    if (h->bind_src.count != h->bind_dst.count || h->ll_paths.count != h->ll_access.count ||
        h->ll_ports.count != h->ll_port_access.count) {
        *step = "spec: paired lists differ in length";
        return -EINVAL;
    }
    if (h->dev_paths.count > LG_DEV_MAX || h->filter.count > LG_WIRE_MAX_INSNS) {
        *step = "spec: too many device paths or insns";
        return -E2BIG;
    }
    if ((h->ns_flags & ~(LG_NS_USER | LG_NS_MOUNT | LG_NS_PID | LG_NS_NET | LG_NS_NET_INIT)) !=
            0 ||
        h->netns_fd < -1 || h->stdio_fds[0] < -1 || h->stdio_fds[1] < -1 ||
        h->stdio_fds[2] < -1 || h->landlock_abi < 0) {
        *step = "spec: a scalar is out of range";
        return -EINVAL;
    }
    char **path = NULL, **cwd = NULL, **dev = NULL, **bsrc = NULL, **bdst = NULL, **ll = NULL;
    int rc;
    if ((rc = GET_STRINGS(path, &path)) < 0 || (rc = GET_STRINGS(argv, &s->argv)) < 0 ||
        (rc = GET_STRINGS(envp, &s->envp)) < 0 || (rc = GET_STRINGS(cwd, &cwd)) < 0 ||
        (rc = GET_STRINGS(dev_paths, &dev)) < 0 || (rc = GET_STRINGS(bind_src, &bsrc)) < 0 ||
        (rc = GET_STRINGS(bind_dst, &bdst)) < 0 || (rc = GET_STRINGS(ll_paths, &ll)) < 0)
        return rc; /* what was allocated dies with the process: init fails next */
    if ((rc = get_words(h->size, h->ll_access, step, "spec: ll_access out of bounds")) < 0 ||
        (rc = get_words(h->size, h->ll_ports, step, "spec: ll_ports out of bounds")) < 0 ||
        (rc = get_words(h->size, h->ll_port_access, step, "spec: ll_port_access out of bounds")) < 0 ||
        (rc = get_words(h->size, h->filter, step, "spec: filter out of bounds")) < 0)
        return rc;
    s->path = path[0];
    s->cwd = cwd[0];
    s->dev_paths = (const char **)dev;
    s->n_dev_paths = (int)h->dev_paths.count;
    s->bind_src = (const char **)bsrc;
    s->bind_dst = (const char **)bdst;
    s->n_binds = (int)h->bind_src.count;
    s->ll_paths = (const char **)ll;
    s->n_ll_paths = (int)h->ll_paths.count;
    /* 8-aligned offsets into a malloc'd (16-aligned) buffer: aligned words. */
    s->ll_access = (const unsigned long long *)(const void *)(b + h->ll_access.off);
    s->ll_ports = (const unsigned long long *)(const void *)(b + h->ll_ports.off);
    s->ll_port_access = (const unsigned long long *)(const void *)(b + h->ll_port_access.off);
    s->n_ll_ports = (int)h->ll_ports.count;
    s->filter = (const struct lg_bpf_insn *)(const void *)(b + h->filter.off);
    s->filter_len = (int)h->filter.count;
    s->filter_flags = h->filter_flags;
    s->ns_flags = h->ns_flags;
    s->map_uid = h->map_uid;
    s->map_gid = h->map_gid;
    s->mount_proc = h->mount_proc;
    s->memfd_noexec = h->memfd_noexec;
    s->netns_fd = h->netns_fd;
    for (int i = 0; i < 3; i++)
        s->stdio_fds[i] = h->stdio_fds[i];
    s->minimal_dev = h->minimal_dev;
    s->landlock_abi = h->landlock_abi;
    s->ll_handled_fs = h->ll_handled_fs;
    s->ll_handled_net = h->ll_handled_net;
    s->ll_scoped = h->ll_scoped;
    s->init_helper = NULL; /* this program is the init */
    *landgate_pid = h->landgate_pid;
    return 0;
}

_Static_assert(sizeof(struct lg_bpf_insn) == 8, "bpf insn is one word");
_Static_assert(sizeof(struct lg_wire_hdr) % 8 == 0, "arrays after the header stay aligned");

int lg_wire_decode_fd(int memfd, struct lg_spawn_spec *s, int *landgate_pid, const char **step)
{
    /* Sealed: landgate cannot change the blob under us (we copy it anyway). */
    int seals = fcntl(memfd, F_GET_SEALS);
    int need = F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW;
    if (seals < 0 || (seals & need) != need) {
        *step = "spec: memfd is not sealed";
        return seals < 0 ? -errno : -EPERM;
    }
    struct stat st;
    if (fstat(memfd, &st) != 0) {
        *step = "spec: fstat memfd";
        return -errno;
    }
    if (st.st_size < (off_t)sizeof(struct lg_wire_hdr) || st.st_size > (off_t)LG_WIRE_MAX) {
        *step = "spec: size out of range";
        return -EINVAL;
    }
    uint32_t len = (uint32_t)st.st_size;
    unsigned char *b = malloc(len);
    if (!b) {
        *step = "spec: allocate";
        return -ENOMEM;
    }
    uint32_t got = 0;
    while (got < len) {
        ssize_t n = pread(memfd, b + got, len - got, (off_t)got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            int e = n < 0 ? errno : EIO;
            free(b);
            *step = "spec: read memfd";
            return -e;
        }
        got += (uint32_t)n;
    }
    int rc = decode(b, len, s, landgate_pid, step);
    if (rc < 0)
        free(b);
    return rc; /* on success b lives as long as init: the spec points into it */
}

int lg_wire_loopback_netns(const char **step)
{
    if (unshare(CLONE_NEWNET) != 0) {
        *step = "unshare(CLONE_NEWNET)";
        return -errno;
    }
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        *step = "socket (lo up)";
        return -errno;
    }
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    memcpy(ifr.ifr_name, "lo", 3);
    int rc = 0;
    if (ioctl(fd, SIOCGIFFLAGS, &ifr) != 0) {
        *step = "SIOCGIFFLAGS lo";
        rc = -errno;
    } else {
        ifr.ifr_flags |= IFF_UP;
        if (ioctl(fd, SIOCSIFFLAGS, &ifr) != 0) {
            *step = "SIOCSIFFLAGS lo up";
            rc = -errno;
        }
    }
    if (close(fd) != 0 && rc == 0) {
        *step = "close (lo up)";
        rc = -errno;
    }
    return rc;
}
