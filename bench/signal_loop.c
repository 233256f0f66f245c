/*
 * Benchmark target: the cost of signals on a host where fh-bpf runs.
 *
 *   signal_loop COUNT
 *
 * Installs a SIGUSR1 handler, prints "ready", waits for a line on stdin,
 * then raises SIGUSR1 COUNT times (each one generated, delivered, handled,
 * returned from: both signal tracepoints fire every time), prints
 * "rate N" (signals per second) and "ns X" (nanoseconds a signal), and
 * waits for its stdin to close.  Built like the test targets.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static volatile sig_atomic_t handled;

static void on_usr1(int sig)
{
	(void)sig;
	handled++;
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: signal_loop COUNT\n");
		return 2;
	}
	long count = atol(argv[1]);
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr1;
	sigaction(SIGUSR1, &sa, NULL);
	printf("ready\n");
	fflush(stdout);
	char line[16];
	if (!fgets(line, sizeof(line), stdin))
		return 1;
	double t0 = now();
	for (long i = 0; i < count; i++)
		raise(SIGUSR1);
	double t = now() - t0;
	if (handled != (sig_atomic_t)count) {
		fprintf(stderr, "signal_loop: %ld raised, %ld handled\n", count, (long)handled);
		return 1;
	}
	printf("rate %.0f\nns %.1f\n", count / t, t * 1e9 / count);
	fflush(stdout);
	while (fgets(line, sizeof(line), stdin))
		;
	return 0;
}
