/* supervise_net_addr.c: a sockaddr copied from the caller, parsed into the
 * destination the kernel would use (v4-mapped IPv6 folded to IPv4, a relative unix
 * name joined to the caller's cwd and normalised), and that destination as text. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "supervise_net_int.h"

/* Parse a copied sockaddr.  Returns 0, or -errno the kernel would give. */
int lg_net_parse_dest(int tid, const unsigned char *sa, size_t len, struct lg_dest *d)
{
    memset(d, 0, sizeof *d);
    if (len < sizeof(sa_family_t))
        return -EINVAL;
    sa_family_t fam;
    memcpy(&fam, sa, sizeof fam);
    d->family = fam;
    if (fam == AF_INET) {
        struct sockaddr_in in;
        if (len < sizeof in)
            return -EINVAL;
        memcpy(&in, sa, sizeof in);
        memcpy(d->addr, &in.sin_addr, 4);
        d->port = ntohs(in.sin_port);
        return 0;
    }
    if (fam == AF_INET6) {
        struct sockaddr_in6 in6;
        if (len < sizeof in6)  /* SIN6_LEN_RFC2133 (24) is also accepted by the kernel */
            if (len < 24)
                return -EINVAL;
        memset(&in6, 0, sizeof in6);
        memcpy(&in6, sa, len < sizeof in6 ? len : sizeof in6);
        d->port = ntohs(in6.sin6_port);
        static const unsigned char v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (memcmp(&in6.sin6_addr, v4mapped, 12) == 0) {
            /* ::ffff:a.b.c.d reaches a.b.c.d: judge it as IPv4 */
            d->family = AF_INET;
            memcpy(d->addr, (unsigned char *)&in6.sin6_addr + 12, 4);
        } else {
            memcpy(d->addr, &in6.sin6_addr, 16);
        }
        return 0;
    }
    if (fam == AF_UNIX) {
        size_t plen = len - offsetof(struct sockaddr_un, sun_path);
        const char *sp = (const char *)sa + offsetof(struct sockaddr_un, sun_path);
        if (len <= offsetof(struct sockaddr_un, sun_path)) {
            d->unnamed = 1;
            return 0;
        }
        if (sp[0] == '\0') {
            d->abstract = 1;
            size_t n = plen - 1 < sizeof d->path - 2 ? plen - 1 : sizeof d->path - 2;
            d->path[0] = '@';
            for (size_t i = 0; i < n; i++)
                d->path[i + 1] = sp[i + 1] ? sp[i + 1] : '@';
            d->path[n + 1] = '\0';
            return 0;
        }
        char rel[sizeof ((struct sockaddr_un *)0)->sun_path + 1];
        size_t n = strnlen(sp, plen);
        memcpy(rel, sp, n);
        rel[n] = '\0';
        if (rel[0] == '/') {
            snprintf(d->path, sizeof d->path, "%s", rel);
        } else {
            d->relative = 1;
            char link[64], cwd[LG_TARGET_MAX];
            snprintf(link, sizeof link, "/proc/%d/cwd", tid);
            ssize_t cl = readlink(link, cwd, sizeof cwd - 1);
            if (cl < 0)
                return -ENOENT;
            cwd[cl] = '\0';
            if ((size_t)snprintf(d->path, sizeof d->path, "%s/%s", cwd, rel) >= sizeof d->path)
                return -ENAMETOOLONG;
        }
        char norm[sizeof d->path];
        int nrc = lg_normalise_path(d->path, norm, sizeof norm);
        if (nrc < 0)
            return nrc;  /* never judged on a shortened path */
        memcpy(d->path, norm, strlen(norm) + 1);
        return 0;
    }
    return 0;
}

void lg_net_format_dest(const struct lg_dest *d, char *out, size_t cap)
{
    char ip[INET6_ADDRSTRLEN];
    if (d->family == AF_INET) {
        inet_ntop(AF_INET, d->addr, ip, sizeof ip);
        snprintf(out, cap, "%s:%d", ip, d->port);
    } else if (d->family == AF_INET6) {
        inet_ntop(AF_INET6, d->addr, ip, sizeof ip);
        snprintf(out, cap, "[%s]:%d", ip, d->port);
    } else if (d->family == AF_UNIX) {
        memcpy(out, "unix:", 6);
        lg_copy_target(out + 5, cap - 5, d->unnamed ? "(unnamed)" : d->path, NULL);
    } else {
        snprintf(out, cap, "family %d", d->family);
    }
}
