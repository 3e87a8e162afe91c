/* chroot_exec DIR PROG ARG...: chroot into DIR (reporting the result on stdout),
 * then exec PROG by its absolute name: inside DIR if the chroot worked, else in
 * the root the session started in.  The attack on the supervisor's one root per
 * session (supervise_caller.c): PROG names an allowed program in that root and a
 * link to a denied one in DIR. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc < 3)
        return 2;
    int rc = chroot(argv[1]);
    printf("chroot %s\n", rc == 0 ? "ok" : strerror(errno));
    fflush(stdout);
    if (rc == 0 && chdir("/") != 0)
        return 125;
    execv(argv[2], argv + 2);
    printf("exec %s\n", strerror(errno));
    return 126;
}
