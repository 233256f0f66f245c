/*
 * Benchmark target: the cost of following a process tree.
 *
 *   fork_loop
 *
 * Prints "ready", then for each line "N fork" or "N exec" read on stdin
 * runs N children one after the other, each waited for before the next:
 * "fork" children _exit(0) at once (a prefork server's short-lived
 * worker), "exec" children exec /bin/true (a wrapper's command).  Prints
 * "ns X", nanoseconds a child from fork to reaped, and waits for the next
 * line; exits at the end of its input.  Built like the test targets.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static int child(int exec)
{
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		if (exec)
			execl("/bin/true", "true", (char *)NULL);
		_exit(0);
	}
	int status;
	return waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
			       WEXITSTATUS(status) == 0
		       ? 0
		       : -1;
}

int main(void)
{
	char line[64], how[16];
	long n;

	printf("ready\n");
	fflush(stdout);
	while (fgets(line, sizeof(line), stdin)) {
		if (sscanf(line, "%ld %15s", &n, how) != 2 || n <= 0 ||
		    (strcmp(how, "fork") && strcmp(how, "exec"))) {
			fprintf(stderr, "fork_loop: expected \"N fork\" or \"N exec\"\n");
			return 2;
		}
		int exec = strcmp(how, "exec") == 0;
		double t0 = now();
		for (long i = 0; i < n; i++)
			if (child(exec)) {
				fprintf(stderr, "fork_loop: a child failed\n");
				return 1;
			}
		printf("ns %.1f\n", (now() - t0) / n);
		fflush(stdout);
	}
	return 0;
}
