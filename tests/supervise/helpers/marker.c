/* A "denied program": if it runs, it leaves a marker file in argv[1]. */
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>
int main(int argc, char **argv)
{
    if (argc < 2)
        return 3;
    char p[4096];
    snprintf(p, sizeof p, "%s/marker.%d", argv[1], (int)getpid());
    int fd = open(p, O_CREAT | O_WRONLY, 0644);
    if (fd >= 0)
        close(fd);
    return 0;
}
