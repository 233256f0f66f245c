/*
 * Test target: many processes, each in a mount namespace of its own.
 *
 *   hostile_park N
 *
 * Starts N children; each enters a new user and mount namespace (as an
 * unprivileged user may) and executes this program again ("--child"), so
 * that a host agent sees N processes, each with a root of its own.  Each
 * child writes "r\n" to fd 3 once it runs, then waits until stdin ends;
 * the parent waits for them all.
 */
#define _GNU_SOURCE
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	char buf[64];
	if (argc == 2 && !strcmp(argv[1], "--child")) {
		if (write(3, "r\n", 2) != 2)
			return 2;
		close(3);
		while (read(0, buf, sizeof(buf)) > 0) {
		}
		return 0;
	}
	if (argc != 2) {
		fprintf(stderr, "usage: hostile_park N\n");
		return 2;
	}
	int n = atoi(argv[1]);
	for (int i = 0; i < n; i++) {
		pid_t pid = fork();
		if (pid < 0) {
			perror("fork");
			return 2;
		}
		if (pid == 0) {
			if (unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0) {
				perror("unshare");
				_exit(2);
			}
			execl("/proc/self/exe", argv[0], "--child", (char *)NULL);
			perror("exec");
			_exit(2);
		}
	}
	close(3);
	int status, failed = 0;
	while (wait(&status) > 0)
		failed |= !WIFEXITED(status) || WEXITSTATUS(status) != 0;
	return failed ? 1 : 0;
}
