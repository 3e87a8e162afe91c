/* chroot_do DIR open PATH | DIR sendto PATH MSG | DIR connect PATH MSG
 *
 * chroot into DIR (reporting the result on stdout), then act on PATH by its
 * absolute name: inside DIR if the chroot worked, else in the root the session
 * started in.  open prints the file's first line; sendto sends MSG as one
 * datagram to the unix socket PATH; connect connects a stream socket to PATH
 * and writes MSG.  The attack on the supervisor's one root per session
 * (supervise_caller.c) for the open check and the unix-socket paths. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>

int main(int argc, char **argv)
{
    if (argc < 4)
        return 2;
    int rc = chroot(argv[1]);
    printf("chroot %s\n", rc == 0 ? "ok" : strerror(errno));
    fflush(stdout);
    if (rc == 0 && chdir("/") != 0)
        return 125;
    const char *op = argv[2], *path = argv[3];
    if (strcmp(op, "open") == 0) {
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            printf("open %s\n", strerror(errno));
            return 1;
        }
        char buf[256];
        ssize_t n = read(fd, buf, sizeof buf - 1);
        close(fd);
        buf[n > 0 ? n : 0] = '\0';
        printf("open ok: %s", buf);
        return 0;
    }
    if (argc < 5)
        return 2;
    struct sockaddr_un a;
    memset(&a, 0, sizeof a);
    a.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof a.sun_path)
        return 2;
    strcpy(a.sun_path, path);
    const char *msg = argv[4];
    if (strcmp(op, "sendto") == 0) {
        int s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (s < 0)
            return 3;
        ssize_t n = sendto(s, msg, strlen(msg), 0, (struct sockaddr *)&a, sizeof a);
        printf("sendto %s\n", n < 0 ? strerror(errno) : "ok");
        return n < 0;
    }
    if (strcmp(op, "connect") == 0) {
        int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (s < 0)
            return 3;
        if (connect(s, (struct sockaddr *)&a, sizeof a) < 0) {
            printf("connect %s\n", strerror(errno));
            return 1;
        }
        ssize_t n = write(s, msg, strlen(msg));
        printf("connect %s\n", n < 0 ? strerror(errno) : "ok");
        return n < 0;
    }
    return 2;
}
