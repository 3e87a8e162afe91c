/* Hold an exec inside the kernel, after the supervisor let it proceed and
 * while its ptrace worker waits for PTRACE_EVENT_EXEC (the verified path):
 * the only environment string lies in a page registered with userfaultfd and
 * not yet populated.  The supervisor reads the file name and argv, never envp;
 * the kernel copies envp during execve and blocks on that page.  A second
 * thread (which also sends the exec down the verified path) sees the fault,
 * prints "held" on stdout, and populates the page when a byte arrives on stdin:
 * only then can the exec go on.
 *   exec_hold PROG ARG...   (execve fails: 127/126; uffd setup fails: 125)
 * Needs a kernel-mode userfaultfd fault: root (CAP_SYS_PTRACE) or
 * vm.unprivileged_userfaultfd=1. */
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

static int uffd;
static char *page;

static void *handler(void *arg)
{
    (void)arg;
    struct pollfd p = {uffd, POLLIN, 0};
    struct uffd_msg msg;
    for (;;) {
        if (poll(&p, 1, -1) < 0) {
            if (errno == EINTR)
                continue;
            perror("exec_hold: poll");
            exit(125);
        }
        ssize_t n = read(uffd, &msg, sizeof msg);
        if (n == (ssize_t)sizeof msg && msg.event == UFFD_EVENT_PAGEFAULT)
            break;
        if (n < 0 && errno != EAGAIN && errno != EINTR) {
            perror("exec_hold: read uffd");
            exit(125);
        }
    }
    if (write(1, "held\n", 5) != 5)
        exit(125);
    char go;
    if (read(0, &go, 1) != 1)
        exit(125);
    static char src[4096] __attribute__((aligned(4096))) = "HELD=1";
    struct uffdio_copy c = {(unsigned long)page, (unsigned long)src, 4096, 0, 0};
    if (ioctl(uffd, UFFDIO_COPY, &c) < 0) {
        perror("exec_hold: UFFDIO_COPY");
        exit(125);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: exec_hold PROG ARG...\n");
        return 2;
    }
    uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC);
    if (uffd < 0) {
        perror("exec_hold: userfaultfd");
        return 125;
    }
    struct uffdio_api api = {UFFD_API, 0, 0};
    if (ioctl(uffd, UFFDIO_API, &api) < 0) {
        perror("exec_hold: UFFDIO_API");
        return 125;
    }
    page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (page == MAP_FAILED) {
        perror("exec_hold: mmap");
        return 125;
    }
    struct uffdio_register reg = {{(unsigned long)page, 4096}, UFFDIO_REGISTER_MODE_MISSING, 0};
    if (ioctl(uffd, UFFDIO_REGISTER, &reg) < 0) {
        perror("exec_hold: UFFDIO_REGISTER");
        return 125;
    }
    pthread_t t;
    if (pthread_create(&t, NULL, handler, NULL) != 0) {
        fprintf(stderr, "exec_hold: pthread_create failed\n");
        return 125;
    }
    char *envp[] = {page, NULL};
    execve(argv[1], argv + 1, envp);
    fprintf(stderr, "exec_hold: exec %s: %s\n", argv[1], strerror(errno));
    return errno == ENOENT ? 127 : 126;
}
