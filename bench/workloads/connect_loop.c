/* connect_loop HOST PORT COUNT: open a TCP connection to HOST:PORT COUNT times,
 * closing each one.  The connect-heavy workload of bench/run.py: under landgate
 * every connect is a seccomp user notification judged by the supervisor.
 * Exits 1 with the failing call and errno on the first failure. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: %s HOST PORT COUNT\n", argv[0]);
		return 2;
	}
	struct sockaddr_in addr;
	memset(&addr, 0, sizeof addr);
	addr.sin_family = AF_INET;
	addr.sin_port = htons((unsigned short)atoi(argv[2]));
	if (inet_pton(AF_INET, argv[1], &addr.sin_addr) != 1) {
		fprintf(stderr, "connect_loop: bad address %s\n", argv[1]);
		return 2;
	}
	int count = atoi(argv[3]);
	for (int i = 0; i < count; i++) {
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			fprintf(stderr, "connect_loop: socket: %s\n", strerror(errno));
			return 1;
		}
		if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
			fprintf(stderr, "connect_loop: connect %s:%s (#%d): %s\n", argv[1], argv[2], i,
				strerror(errno));
			close(fd);
			return 1;
		}
		close(fd);
	}
	return 0;
}
